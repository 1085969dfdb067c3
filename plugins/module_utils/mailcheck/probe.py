# Copyright (c) Middlebury College
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""One endpoint, one address family: resolve, connect, TLS, dialogue, judge; never raises."""

from __future__ import annotations

import contextlib
import re
import ssl

from . import findings, imap, pop3, resolve, sasl, smtp, tls
from .clock import Timings
from .connect import tcp_connect
from .wire import LineConn

_JUDGES = {"imap": imap, "pop3": pop3, "smtp": smtp}
# Seconds a login reply is awaited (see _login): Dovecot's 15 s penalty plus its 2 s failure delay, and
# a little more. The overall deadline still bounds it.
LOGIN_WAIT = 18.0


def _dialogue(protocol, conn, ehlo_name):
    if protocol == "imap":
        return imap.Imap(conn)
    if protocol == "pop3":
        return pop3.Pop3(conn)
    if ehlo_name is None:  # an address literal needs no DNS, unlike getfqdn()
        local = conn.sock.getsockname()[0]
        ehlo_name = "[IPv6:%s]" % local if ":" in local else "[%s]" % local
    return smtp.Smtp(conn, ehlo_name)


def _offers(caps, word):
    return any(c.split()[:1] == [word] for c in caps)


def _addresses(endpoint, opts, resolver, deadline):
    override = resolve.override_for(opts["connect_to"], endpoint["host"], endpoint["port"])
    target = override or endpoint["host"]
    if resolve.is_ip_literal(target):
        found = resolve.literal_addresses(target)
    else:
        found = resolver.lookup(target, deadline.step(opts["dns_timeout"]))
    return resolve.pick(found, opts["family"], target), override


class Probe:
    """State of one check; run() fills ``result``."""

    def __init__(self, endpoint, opts, resolver, deadline, context):
        self.endpoint = endpoint
        self.opts = opts
        self.resolver = resolver
        self.deadline = deadline
        self.context = context
        self.timings = Timings()
        self.phase = "dns"
        self.findings = []
        self.conn = None
        self.result = dict(endpoint)
        self.result.update({
            "ip_version": opts["family"], "address": None, "connect_to": None, "tls": None,
            "certificate": None, "greeting": None,
            "capabilities": {"before_tls": None, "after_tls": None},
            # The SASL mechanisms offered on each side of TLS (None: that side was not seen, as before implicit TLS).
            "sasl": {"before_tls": None, "after_tls": None},
            # "exchange_online" when the greeting is Exchange's (its refusals are then read in its words).
            "server": None,
            "auth": {"attempted": False, "success": None, "mechanism": None, "reply": None},
            "connect_attempts": [],
        })

    def _ctx(self):
        return {"host": self.endpoint["host"], "port": self.endpoint["port"], "protocol": self.endpoint["protocol"],
                "phase": self.phase, "min_tls_version": self.opts["min_tls_version"]}

    def _step(self, name):
        self.phase = name
        return self.timings.phase(name)

    def run(self):
        try:
            self._run()
        except Exception as exc:  # every failure becomes a classified finding, never a traceback
            ctx = self._ctx()
            self.result["failed_phase"] = self.phase
            if isinstance(exc, ssl.SSLCertVerificationError):
                self.result["tls"] = {"verified": False, "verify_code": exc.verify_code,
                                      "verify_message": exc.verify_message}
                if self.conn is not None:
                    self.conn.close()
                self._describe_rejected_certificate()
                ctx["certificate"] = self.result["certificate"]
            self.findings.append(findings.classify(exc, ctx))
        finally:
            if self.conn is not None:
                self.conn.close()
        return self._finish()

    def _run(self):
        ep = self.endpoint
        with self._step("dns"):
            addresses, override = _addresses(ep, self.opts, self.resolver, self.deadline)
        self.result["connect_to"] = override
        with self._step("tcp"):
            try:
                sock, attempts = tcp_connect(addresses, ep["port"], self.deadline)
            except Exception as exc:
                self.result["connect_attempts"] = getattr(exc, "attempts", [])
                raise
        self.result["connect_attempts"] = attempts
        self.result["address"] = attempts[-1]["address"]
        self.result["family"] = resolve.FAMILY_NAMES[sock.family]
        self.conn = LineConn(sock, self.deadline)
        self.dialogue = _dialogue(ep["protocol"], self.conn, self.opts["ehlo_name"])
        if ep["security"] == "ssl":
            self._handshake()
            caps = self._greet()
        else:
            if not self._before_tls(self._greet()):
                return
            with self._step("starttls"):
                self.dialogue.starttls()
            self._handshake()
            # RFC 3207/2595: forget what was offered in plaintext and ask again.
            with self._step("capabilities_tls"):
                caps = self.dialogue.capabilities()
            self.result["capabilities"]["after_tls"] = caps
        self._after_tls(caps)

    def _greet(self):
        with self._step("greeting"):
            text, caps = self.dialogue.greeting()
        self.result["greeting"] = text
        if findings.is_exchange(text):
            self.result["server"] = "exchange_online"
        if caps is None:  # SMTP always needs EHLO; IMAP only when the greeting did not list them
            with self._step("capabilities"):
                caps = self.dialogue.capabilities()
        key = "after_tls" if self.endpoint["security"] == "ssl" else "before_tls"
        self.result["capabilities"][key] = caps
        return caps

    def _before_tls(self, caps):
        """Judge the plaintext offer. False when STARTTLS is missing: nothing more to test."""
        judge = _JUDGES[self.endpoint["protocol"]]
        self.result["sasl"]["before_tls"] = judge.mechanisms(caps)
        offered = judge.auth_before_tls(caps, self.result["greeting"])
        missing = not _offers(caps, self.dialogue.starttls_word)
        if missing:  # the more basic problem first: it decides the endpoint's message
            self.findings.append(findings.starttls_missing(self.dialogue.starttls_word))
        if offered:
            self.findings.append(findings.auth_before_tls(offered))
        if missing:
            self._quit()
            return False
        return True

    def _handshake(self):
        with self._step("tls"):
            leftover = self.conn.start_tls(self.context, self.endpoint["host"])
        if leftover:
            self.findings.append(findings.starttls_injection(len(leftover)))
        session, cert = tls.session_facts(self.conn.sock)
        session["verified"] = True
        self.result["tls"] = session
        self.result["certificate"] = cert
        self.findings.extend(findings.expiry(cert, self.opts["days_warning"], self.opts["days_critical"]))

    def _after_tls(self, caps):
        judge = _JUDGES[self.endpoint["protocol"]]
        offered = judge.mechanisms(caps)
        self.result["auth"]["offered"] = offered
        self.result["sasl"]["after_tls"] = offered
        if self.opts.get("auth") == "oauth2":
            if sasl.choose_token(offered) is None:
                self.findings.append(findings.no_oauth_mechanism(offered))
            elif self.opts["username"] and self.opts.get("token"):
                self._login(caps, token=self.opts["token"])
            self._quit()
            return
        ways = judge.password_ways(caps)
        wanted = [m.upper() for m in self.opts["auth_mechanisms"]]
        if not any(m in wanted for m in ways):
            self.findings.append(findings.no_password_mechanism(offered or ways, wanted))
        elif self.opts["username"] and self.opts["password"] is not None:
            self._login(caps)
        self._quit()

    def _login(self, caps, token=None):
        # The hard rule: credentials only inside a TLS session whose certificate and name verified.
        sock = self.conn.sock
        if not isinstance(sock, ssl.SSLSocket) or sock.context.verify_mode != ssl.CERT_REQUIRED \
                or not sock.context.check_hostname or not self.result["tls"].get("verified"):
            raise AssertionError("refusing to send credentials outside verified TLS")
        self.result["auth"]["attempted"] = True
        # Servers answer a wrong password late on purpose (Dovecot: 2 s, plus a penalty doubled per failure
        # from the same address up to 15 s): the answer is awaited up to LOGIN_WAIT, within the overall
        # deadline, so that a wrong password is reported as one and not as a timeout.
        self.conn.reply_timeout = max(self.deadline.step_timeout, LOGIN_WAIT)
        try:
            with self._step("auth"):
                if token is not None:
                    ok, mechanism, reply = self.dialogue.token_login(caps, self.opts["username"], token)
                else:
                    ok, mechanism, reply = self.dialogue.login(caps, self.opts["username"], self.opts["password"],
                                                               self.opts["auth_mechanisms"])
        finally:
            self.conn.reply_timeout = None
        self.result["auth"].update({"success": ok, "mechanism": mechanism, "reply": _short(reply)})
        if not ok:
            refused = findings.login_failed(reply)
            if token is not None and refused["code"] != "smtp_auth_disabled":
                refused = findings.oauth_rejected(reply)
            self.findings.append(refused)

    def _quit(self):
        # The verdict is in; a failed goodbye changes nothing.
        with contextlib.suppress(Exception):
            self.dialogue.quit()

    def _describe_rejected_certificate(self):
        """Connect once more without verification, only to report what the server presented.

        Only the STARTTLS command is sent on this connection: never credentials."""
        if self.result["address"] is None or self.deadline.remaining() < 0.2:
            return
        conn = None
        try:
            family = resolve.FAMILIES[self.result["family"]]
            sock, _attempts = tcp_connect([(family, self.result["address"])], self.endpoint["port"], self.deadline)
            conn = LineConn(sock, self.deadline)
            if self.endpoint["security"] != "ssl":
                dialogue = _dialogue(self.endpoint["protocol"], conn, self.opts["ehlo_name"])
                if dialogue.greeting()[1] is None:
                    dialogue.capabilities()
                dialogue.starttls()
            conn.start_tls(tls.describe_context(), self.endpoint["host"])
            der = conn.sock.getpeercert(binary_form=True)
            if der:
                self.result["certificate"] = tls.facts_from_der(der)
                self.result["certificate"]["verified"] = False
        except Exception:  # description is a courtesy; the verdict is already made
            pass
        finally:
            if conn is not None:
                conn.close()

    def _finish(self):
        result = self.result
        result["transcript"] = self.conn.transcript if self.conn is not None else []
        result["timings_ms"] = self.timings.as_dict()
        result["findings"] = self.findings
        fails = [f for f in self.findings if f["severity"] == "fail"]
        warns = [f for f in self.findings if f["severity"] == "warn"]
        result["status"] = "fail" if fails else "warn" if warns else "pass"
        first = (fails or warns or [None])[0]
        result["error_class"] = fails[0]["class"] if fails else None
        result["message"] = first["message"] if first else _ok_message(result)
        result["reachable"] = result["address"] is not None and bool(result["connect_attempts"]) \
            and result["connect_attempts"][-1]["error"] is None
        result["tls_ok"] = bool(result["tls"] and result["tls"].get("verified"))
        return result


def _short(reply):
    """Server replies without the capability list some servers append to a successful login."""
    text = re.sub(r"\[CAPABILITY [^\]]*\]\s*", "", reply or "").strip()
    return text[:200]


def _ok_message(result):
    parts = ["%s reachable" % result["name"]]
    if result["tls"]:
        parts.append("%s verified" % result["tls"].get("version"))
    cert = result["certificate"] or {}
    days = cert.get("chain_min_days_left", cert.get("days_left"))
    if days is not None:
        parts.append("certificate%s valid for %.0f more days" % (
            " chain" if cert.get("chain_checked") else " (only the server's own: this Python cannot show the chain)",
            days))
    if result["auth"]["attempted"]:
        parts.append("login accepted (%s)" % result["auth"]["mechanism"])
    return "OK: " + ", ".join(parts)
