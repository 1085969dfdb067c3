"""Each failure maps to one error class and a message that names the host and what to do."""

from __future__ import annotations

import errno
import socket
import ssl
import time
from pathlib import Path

import pytest

from ansible_collections.middlebury.mail_clients.plugins.module_utils.mailcheck import findings, probe, tls
from ansible_collections.middlebury.mail_clients.plugins.module_utils.mailcheck.connect import ConnectFailed
from ansible_collections.middlebury.mail_clients.plugins.module_utils.mailcheck.resolve import ResolveError
from ansible_collections.middlebury.mail_clients.plugins.module_utils.mailcheck.wire import (
    ProtocolError,
    ServerClosed,
)

CTX = {"host": "mail.example.org", "port": 993, "protocol": "imap", "phase": "tls", "min_tls_version": "TLSv1.2"}


def _verify_error(code, message):
    exc = ssl.SSLCertVerificationError(1, "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed")
    exc.verify_code = code
    exc.verify_message = message
    return exc


def _connect_failed(exc):
    return ConnectFailed([{"address": "192.0.2.1", "ms": 1.0, "error": str(exc)}], exc)


@pytest.mark.parametrize(("exc", "phase", "cls", "code"), [
    (ResolveError("nxdomain", "x does not exist"), "dns", "dns", "dns_nxdomain"),
    (ResolveError("timeout", "no answer"), "dns", "dns", "dns_timeout"),
    (ResolveError("no_family", "no IPv6"), "dns", "dns", "dns_no_family"),
    (_connect_failed(ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused")), "tcp", "refused", "refused"),
    (_connect_failed(socket.timeout("timed out")), "tcp", "timeout", "connect_timeout"),
    (_connect_failed(OSError(errno.ENETUNREACH, "Network is unreachable")), "tcp", "unreachable", "unreachable"),
    (socket.timeout("timed out"), "greeting", "timeout", "greeting_timeout"),
    (socket.timeout("timed out"), "capabilities", "timeout", "reply_timeout"),
    (_verify_error(10, "certificate has expired"), "tls", "tls_verify", "cert_expired"),
    (_verify_error(62, "Hostname mismatch"), "tls", "tls_verify", "cert_name_mismatch"),
    (_verify_error(19, "self-signed certificate in certificate chain"), "tls", "tls_verify", "cert_untrusted"),
    (_verify_error(20, "unable to get local issuer certificate"), "tls", "tls_verify", "cert_untrusted"),
    (_verify_error(9, "certificate is not yet valid"), "tls", "tls_verify", "cert_not_yet_valid"),
    (ssl.SSLError(1, "[SSL: WRONG_VERSION_NUMBER] wrong version number"), "tls", "tls_protocol", None),
    (ssl.SSLEOFError(8, "EOF occurred in violation of protocol"), "tls", "tls_protocol", "tls_dropped"),
    (ServerClosed("closed"), "tls", "tls_protocol", "tls_dropped"),
    (ServerClosed("closed"), "greeting", "protocol", "protocol_error"),
    (ProtocolError("not IMAP", "HTTP/1.1 400"), "greeting", "protocol", "protocol_error"),
    (ConnectionResetError(errno.ECONNRESET, "reset"), "capabilities", "network", "network_error"),
])
def test_classify(exc, phase, cls, code):
    item = findings.classify(exc, dict(CTX, phase=phase))
    assert item["class"] == cls
    assert item["class"] in findings.ERROR_CLASSES
    assert item["severity"] == "fail"
    if code:
        assert item["code"] == code
    assert len(item["message"]) > 20


@pytest.mark.parametrize(("protocol", "article"), [("imap", "an IMAP"), ("pop3", "a POP3"), ("smtp", "an SMTP")])
def test_protocol_error_says_it_once_with_the_right_article(protocol, article):
    context = dict(CTX, protocol=protocol, phase="greeting")
    item = findings.classify(ProtocolError("it greeted with 'HTTP/1.1 400'"), context)
    assert "the way %s server does: it greeted with 'HTTP/1.1 400'." % article in item["message"], item
    assert item["message"].lower().count("server") == 1, item


def test_a_silent_service_after_connect_is_not_called_overloaded():
    # An HTTPS server on 993: TLS works, then no greeting ever comes.
    item = findings.classify(socket.timeout("timed out"), dict(CTX, phase="greeting"))
    assert "overloaded" not in item["message"] and "web server" in item["message"], item


def test_verify_messages_use_the_presented_certificate():
    ctx = dict(CTX, certificate={"sans": ["wrong.example.net"], "subject_cn": "wrong.example.net"})
    item = findings.classify(_verify_error(62, "Hostname mismatch"), ctx)
    assert "wrong.example.net" in item["message"] and "mail.example.org" in item["message"]
    ctx = dict(CTX, certificate={"not_after": "2020-01-01T00:00:00Z", "days_left": -3.2})
    assert "2020-01-01" in findings.classify(_verify_error(10, "expired"), ctx)["message"]


def test_timeout_in_connect_mentions_blocked_port():
    item = findings.classify(_connect_failed(socket.timeout()), dict(CTX, phase="tcp"))
    assert "firewall" in item["message"] and item["attempts"]


@pytest.mark.parametrize(("days", "code", "severity"), [
    (400.0, None, None), (29.9, "cert_expiry_warning", "warn"), (6.5, "cert_expiry_critical", "fail"),
    (-1.0, "cert_expired", "fail"),
])
def test_expiry_thresholds(days, code, severity):
    out = findings.expiry({"days_left": days}, 30, 7)
    if code is None:
        assert out == []
    else:
        assert [(f["code"], f["severity"], f["class"]) for f in out] == [(code, severity, "cert_expiry")]


def test_chain_expiry_is_judged_apart_from_the_leaf():
    out = findings.expiry({"days_left": 300.0, "chain_min_days_left": 5.0}, 30, 7)
    assert [f["code"] for f in out] == ["cert_expiry_critical"]
    assert "chain" in out[0]["message"]


def test_certificate_facts_from_getpeercert_dict():
    not_after = time.strftime("%b %d %H:%M:%S %Y GMT", time.gmtime(time.time() + 10 * 86400 + 60))
    info = {"subject": ((("commonName", "mail.example.org"),),), "issuer": ((("commonName", "Test CA"),),),
            "subjectAltName": (("DNS", "mail.example.org"),), "notAfter": not_after,
            "notBefore": "Jan  1 00:00:00 2024 GMT", "serialNumber": "01"}
    facts = tls.facts_from_dict(info, b"der")
    assert facts["subject_cn"] == "mail.example.org" and facts["issuer_cn"] == "Test CA"
    assert facts["sans"] == ["mail.example.org"]
    assert facts["days_left"] == 10.0
    assert facts["not_before"] == "2024-01-01T00:00:00Z"
    assert len(facts["sha256"]) == 64


class _Python39Socket:
    """What a TLS socket offers on Python 3.9: the leaf only, no verified chain."""

    def __init__(self, info):
        self.info = info

    def getpeercert(self, binary_form=False):
        return b"der" if binary_form else self.info

    def cipher(self):
        return ("TLS_AES_256_GCM_SHA384", "TLSv1.3", 256)

    def version(self):
        return "TLSv1.3"


def test_without_the_chain_the_result_says_only_the_leaf_was_checked():
    not_after = time.strftime("%b %d %H:%M:%S %Y GMT", time.gmtime(time.time() + 40 * 86400 + 60))
    info = {"subject": ((("commonName", "mail.example.org"),),), "notAfter": not_after}
    _session, cert = tls.session_facts(_Python39Socket(info))
    assert cert["chain_checked"] is False and "chain" not in cert
    result = {"name": "imaps", "tls": {"version": "TLSv1.3"}, "certificate": cert, "auth": {"attempted": False}}
    assert "only the server's own" in probe._ok_message(result)


def test_verified_context_is_strict_about_trust_and_names(pki):
    ctx = tls.verified_context(pki["ca"], "TLSv1.3")
    assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname
    assert ctx.minimum_version == ssl.TLSVersion.TLSv1_3
    assert not ctx.verify_flags & getattr(ssl, "VERIFY_X509_STRICT", 0)
    assert tls.verified_context(pki["ca"], x509_strict=True).verify_flags & getattr(ssl, "VERIFY_X509_STRICT", 0)


def test_facts_of_an_unverified_der(pki):
    pem = Path(pki["cert"]).read_text()
    facts = tls.facts_from_der(ssl.PEM_cert_to_DER_cert(pem))
    assert facts["subject_cn"] == "mail.unit.test"
    assert 199 <= facts["days_left"] <= 200
