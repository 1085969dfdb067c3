# Copyright (c) Middlebury College
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Error classes, findings and the plain-language messages a helpdesk can act on.

An endpoint's ``error_class`` is one of ERROR_CLASSES; the class answers "whose problem is it"
(this machine's network, the server's configuration, the user's password), the message says what
to do about it."""

from __future__ import annotations

import errno
import socket
import ssl

from .connect import ConnectFailed
from .resolve import ResolveError
from .wire import ProtocolError, ReplyFlood, ServerClosed

ERROR_CLASSES = ("dns", "refused", "timeout", "unreachable", "network", "tls_verify", "tls_protocol",
                 "protocol", "policy", "cert_expiry", "auth")
SEVERITIES = ("fail", "warn", "info")

# OpenSSL X509_V_ERR_* codes seen on mail servers, and the finding each one is.
VERIFY_CODES = {
    2: "cert_untrusted", 18: "cert_untrusted", 19: "cert_untrusted", 20: "cert_untrusted",
    21: "cert_untrusted", 9: "cert_not_yet_valid", 10: "cert_expired", 62: "cert_name_mismatch",
    64: "cert_name_mismatch",
}
_UNREACHABLE = (errno.ENETUNREACH, errno.EHOSTUNREACH, getattr(errno, "EADDRNOTAVAIL", -1))


def finding(code, severity, error_class, message, **details):
    item = {"code": code, "severity": severity, "class": error_class, "message": message}
    item.update(details)
    return item


def _tls_verify(exc, ctx):
    code = getattr(exc, "verify_code", None)
    detail = getattr(exc, "verify_message", None) or str(exc)
    kind = VERIFY_CODES.get(code, "cert_invalid")
    host = ctx["host"]
    cert = ctx.get("certificate") or {}
    if kind == "cert_name_mismatch" and (cert.get("sans") or cert.get("subject_cn")):
        detail = "it is for %s" % ", ".join(cert.get("sans") or [cert["subject_cn"]])
    expired = ""
    if kind == "cert_expired" and cert.get("not_after"):
        ago = round(-(cert.get("days_left") or 0))
        expired = " on %s (%d day%s ago)" % (cert["not_after"], ago, "" if ago == 1 else "s")
    if kind == "cert_untrusted" and cert.get("issuer_cn"):
        detail = "%s; issued by %r" % (detail, cert["issuer_cn"])
    messages = {
        "cert_expired": "The server's certificate for %s expired%s, so every mail client will refuse it. "
                        "Only the mail administrators can fix this: the certificate must be renewed." % (host, expired),
        "cert_not_yet_valid": "The server's certificate for %s is not valid yet. Check this machine's clock "
                              "and time zone first." % host,
        "cert_name_mismatch": "The server answering for %s presents a certificate for another name (%s). The "
                              "server name in the settings is wrong, or the connection is not reaching the "
                              "real server." % (host, detail),
        "cert_untrusted": "The certificate of %s is not signed by an authority this machine trusts (%s). "
                          "Either the college CA is missing here (give ca_path), or something between this "
                          "machine and the server intercepts TLS (captive portal, inspecting proxy)."
                          % (host, detail),
        "cert_invalid": "The certificate of %s failed verification: %s." % (host, detail),
    }
    return finding(kind, "fail", "tls_verify", messages[kind], verify_code=code, verify_message=detail)


def _tls_protocol(exc, ctx):
    reason = (getattr(exc, "reason", None) or str(exc) or type(exc).__name__).upper()
    where = "%s:%s" % (ctx["host"], ctx["port"])
    if "WRONG_VERSION_NUMBER" in reason or "RECORD_LAYER" in reason or "PACKET_LENGTH" in reason:
        message = ("%s does not answer with TLS. The security setting does not fit the port: implicit SSL/TLS "
                   "and STARTTLS are not interchangeable." % where)
        code = "not_tls"
    elif "VERSION" in reason or "NO_PROTOCOLS" in reason or "UNSUPPORTED_PROTOCOL" in reason:
        message = ("%s and this machine have no TLS version in common at or above %s. The server needs a "
                   "TLS update, or min_tls_version is set too high." % (where, ctx.get("min_tls_version")))
        code = "tls_version"
    elif isinstance(exc, (ssl.SSLEOFError, ConnectionResetError, ServerClosed)) or "EOF" in reason:
        message = ("The connection to %s was dropped during the TLS handshake: a server-side TLS error, or a "
                   "firewall/IPS in the path that cuts TLS." % where)
        code = "tls_dropped"
    else:
        message = "The TLS handshake with %s failed: %s." % (where, reason.lower())
        code = "tls_failed"
    return finding(code, "fail", "tls_protocol", message, reason=getattr(exc, "reason", None))


def _timeout(ctx):
    where = "%s:%s" % (ctx["host"], ctx["port"])
    phase = ctx.get("phase")
    if phase == "tcp":
        return finding("connect_timeout", "fail", "timeout",
                       "No answer from %s: the packets are dropped silently. Either a firewall blocks the port "
                       "(port 25 is often blocked by internet providers and cloud networks) or the server is "
                       "down." % where)
    if phase == "dns":
        return finding("dns_timeout", "fail", "dns",
                       "No DNS answer for %s in time. Check this machine's DNS servers and network "
                       "connection." % ctx["host"])
    if phase == "auth":
        return finding("auth_timeout", "fail", "timeout",
                       "%s did not answer the login in time. Servers delay the answer to a wrong password by a "
                       "few seconds: raise timeout, then check the password." % where)
    if phase == "greeting":
        return finding("greeting_timeout", "fail", "timeout",
                       "%s accepted the connection but never greeted as a mail server does. Another kind of "
                       "service may be listening on this port (a web server, for one), or the server is too busy "
                       "to answer." % where)
    return finding("reply_timeout", "fail", "timeout",
                   "%s accepted the connection but stopped answering during %s. The server is overloaded or "
                   "something in the path swallows the traffic." % (where, phase))


def classify(exc, ctx):
    """The failing finding for an exception raised in phase ctx['phase'] of endpoint ctx."""
    if isinstance(exc, ResolveError):
        if exc.kind == "timeout":
            return finding("dns_timeout", "fail", "dns", "%s. Check this machine's DNS servers (/etc/resolv.conf) "
                                                         "and network connection." % exc)
        if exc.kind == "no_family":
            return finding("dns_no_family", "fail", "dns", "%s; this machine cannot reach the server over that "
                                                           "IP version." % exc)
        return finding("dns_" + exc.kind, "fail", "dns", "%s. Check the spelling of the server name in the "
                                                         "settings and this machine's DNS configuration." % exc)
    if isinstance(exc, ConnectFailed):
        last = exc.last
        where = "%s port %s" % (ctx["host"], ctx["port"])
        if isinstance(last, ConnectionRefusedError):
            return finding("refused", "fail", "refused",
                           "%s refused the connection: nothing listens on that port or a firewall rejects it. "
                           "Check the port number; if it is right, the service is down." % where,
                           attempts=exc.attempts)
        if isinstance(last, socket.timeout):
            return dict(_timeout(ctx), attempts=exc.attempts)
        if isinstance(last, OSError) and last.errno in _UNREACHABLE:
            return finding("unreachable", "fail", "unreachable",
                           "There is no network route from this machine to %s (%s). Check the network "
                           "connection, VPN or IPv6 configuration." % (where, last.strerror or last),
                           attempts=exc.attempts)
        return finding("connect_failed", "fail", "network", "Connecting to %s failed: %s." % (where, last),
                       attempts=exc.attempts)
    if isinstance(exc, ssl.SSLCertVerificationError):
        return _tls_verify(exc, ctx)
    if isinstance(exc, socket.timeout):
        return _timeout(ctx)
    if ctx.get("phase") == "tls" and isinstance(exc, (ssl.SSLError, ConnectionResetError, ServerClosed)):
        return _tls_protocol(exc, ctx)
    if isinstance(exc, ssl.SSLError):
        return _tls_protocol(exc, ctx)
    if isinstance(exc, ReplyFlood):
        return finding("reply_flood", "fail", "protocol",
                       "%s:%s floods its replies: it sent more lines or bytes in one reply than any mail server "
                       "does, so the check stopped reading. The server is broken, or it is not a real mail "
                       "server." % (ctx["host"], ctx["port"]))
    if isinstance(exc, ProtocolError):
        protocol = ctx["protocol"].upper()
        return finding("protocol_error", "fail", "protocol",
                       "%s:%s does not answer the way %s %s server does: %s." % (
                           ctx["host"], ctx["port"], "a" if protocol == "POP3" else "an", protocol, exc),
                       reply=exc.reply)
    if isinstance(exc, OSError):
        return finding("network_error", "fail", "network",
                       "The connection to %s:%s broke during %s: %s." % (ctx["host"], ctx["port"], ctx.get("phase"),
                                                                         exc.strerror or exc))
    return finding("internal_error", "fail", "protocol", "Unexpected %s during %s: %s" % (
        type(exc).__name__, ctx.get("phase"), exc))


def starttls_missing(word):
    return finding("starttls_missing", "fail", "policy",
                   "The server does not offer %s on this port. A client set to STARTTLS as documented cannot "
                   "connect, and a loosely configured one would send the password unencrypted. Report this "
                   "to the mail administrators." % word)


def auth_before_tls(offered):
    return finding("auth_before_tls", "fail", "policy",
                   "The server offers to log in before TLS (%s). A misconfigured client could send the "
                   "password unencrypted. Report this to the mail administrators." % ", ".join(offered),
                   offered=offered)


def no_password_mechanism(offered, wanted):
    return finding("no_password_mechanism", "fail", "policy",
                   "After TLS the server offers no normal-password login (%s); it offers %s. Clients set to "
                   "'normal password' as documented cannot log in." % (
                       " or ".join(wanted), ", ".join(offered) if offered else "nothing"),
                   offered=offered)


def starttls_injection(size):
    return finding("starttls_injection", "fail", "policy",
                   "The server sent %d bytes after its STARTTLS reply, before TLS started. They were discarded; a "
                   "server or middlebox that does this is open to command injection." % size)


def expiry(facts, warning_days, critical_days):
    """Expiry findings for the leaf and, when known, the rest of the chain."""
    out = []
    pairs = (("certificate", facts.get("days_left")), ("certificate chain", facts.get("chain_min_days_left")))
    for label, days in pairs:
        if days is None or (label != "certificate" and days == facts.get("days_left")):
            continue
        if days < 0:
            out.append(finding("cert_expired", "fail", "cert_expiry", "The server's %s has expired." % label,
                               days_left=days))
        elif days < critical_days:
            out.append(finding("cert_expiry_critical", "fail", "cert_expiry",
                               "The server's %s expires in %.1f days (critical below %s). Tell the mail "
                               "administrators now." % (label, days, critical_days), days_left=days))
        elif days < warning_days:
            out.append(finding("cert_expiry_warning", "warn", "cert_expiry",
                               "The server's %s expires in %.1f days (warning below %s)." % (label, days, warning_days),
                               days_left=days))
    return out


# Exchange Online's own words (matched case-insensitively). Only these are conclusive: its IMAP
# "NO LOGIN failed." means basic auth off, a wrong password, or IMAP disabled for the mailbox alike.
SMTP_AUTH_DISABLED = "smtpclientauthentication is disabled for the tenant"
BASIC_AUTH_DISABLED = ("basic authentication is disabled", "basic authentication is not supported")
AMBIGUOUS_EXCHANGE = ("login failed.", "authenticate failed.")
# How Exchange Online greets (IMAP, POP3, SMTP).
EXCHANGE_GREETINGS = ("microsoft exchange", "microsoft esmtp mail service")


def is_exchange(greeting):
    return any(word in (greeting or "").lower() for word in EXCHANGE_GREETINGS)


def login_failed(reply):
    text = (reply or "no reason given").strip()
    lower = text.lower()
    if SMTP_AUTH_DISABLED in lower:
        return finding("smtp_auth_disabled", "fail", "policy",
                       "The server turned SMTP AUTH off for the whole tenant (%s): no client can send through it "
                       "with a password or with OAuth2 until its administrators allow SMTP AUTH again." % text)
    if any(words in lower for words in BASIC_AUTH_DISABLED):
        return finding("basic_auth_disabled", "fail", "policy",
                       "The server no longer accepts password logins (%s). The network, TLS and the password may "
                       "all be fine: the clients must use OAuth2 (mail_clients_account.provider, auth: oauth2)." % text)
    if lower.rstrip().endswith(AMBIGUOUS_EXCHANGE):
        return finding("login_failed", "fail", "auth",
                       "The server refused the login (%s). Exchange Online answers this for a wrong password, for a "
                       "mailbox without IMAP or POP, and for password logins that are switched off alike: check "
                       "the password, then whether the tenant still allows basic authentication." % text)
    return finding("login_failed", "fail", "auth",
                   "The server rejected the username or password (%s). The network and TLS are fine: check the "
                   "username and the password." % text)


def no_oauth_mechanism(offered):
    return finding("no_oauth_mechanism", "fail", "policy",
                   "After TLS the server offers no OAuth2 login (XOAUTH2 or OAUTHBEARER); it offers %s. Clients set "
                   "to OAuth2 cannot log in here." % (", ".join(offered) if offered else "nothing"), offered=offered)


def oauth_rejected(reply):
    return finding("oauth_rejected", "fail", "auth",
                   "The server refused the OAuth2 access token (%s). The network and TLS are fine: the token has "
                   "expired or was revoked, was issued for another user, or lacks this protocol's scope."
                   % ((reply or "no reason given").strip()))
