"""Whole dialogues against a scripted server: what the real stack cannot be made to do."""

from __future__ import annotations

import base64
import socket
import ssl
import time

import pytest

from ansible_collections.middlebury.mail_clients.plugins.module_utils.mailcheck import resolve

pytestmark = pytest.mark.timeout(60)

EHLO_SAFE = b"250-ssmtp.unit.test\r\n250-PIPELINING\r\n250 STARTTLS\r\n"


def _codes(result):
    return [f["code"] for f in result["findings"]]


def test_smtp_ntlm_only_after_tls_fails_and_sends_no_credentials(scripted, check):
    server = scripted([
        ("send", b"220 ssmtp.unit.test ESMTP\r\n"), ("expect", "EHLO client.unit.test"), ("send", EHLO_SAFE),
        ("expect", "STARTTLS"), ("send", b"220 2.0.0 Ready\r\n"), ("tls", None),
        ("expect", "EHLO"), ("send", b"250-ssmtp.unit.test\r\n250 AUTH NTLM GSSAPI\r\n"),
    ])
    result = check(server, "smtp", "starttls", username="jdoe", password="secret")
    assert result["status"] == "fail" and result["error_class"] == "policy"
    assert _codes(result) == ["no_password_mechanism"]
    assert "NTLM" in result["message"]
    assert result["auth"]["attempted"] is False
    assert not [line for line in server.received if line.startswith("AUTH")]


def test_bytes_after_starttls_reply_are_dropped_and_reported(scripted, check):
    server = scripted([
        ("send", b"220 ssmtp.unit.test ESMTP\r\n"), ("expect", "EHLO"), ("send", EHLO_SAFE),
        ("expect", "STARTTLS"), ("send", b"220 2.0.0 Ready\r\n250 injected\r\n"), ("tls", None),
        ("expect", "EHLO"), ("send", b"250-ssmtp.unit.test\r\n250 AUTH PLAIN LOGIN\r\n"),
    ])
    result = check(server, "smtp", "starttls")
    assert "starttls_injection" in _codes(result)
    assert result["status"] == "fail"


def test_smtp_wrong_password_is_auth_not_connectivity(scripted, check):
    server = scripted([
        ("send", b"220 ssmtp.unit.test ESMTP\r\n"), ("expect", "EHLO"), ("send", EHLO_SAFE),
        ("expect", "STARTTLS"), ("send", b"220 2.0.0 Ready\r\n"), ("tls", None),
        ("expect", "EHLO"), ("send", b"250-ssmtp.unit.test\r\n250 AUTH PLAIN LOGIN\r\n"),
        ("expect", "AUTH PLAIN "), ("send", b"535 5.7.8 Error: authentication failed\r\n"),
    ])
    result = check(server, "smtp", "starttls", username="jdoe", password="wrong")
    assert result["error_class"] == "auth" and _codes(result) == ["login_failed"]
    assert result["reachable"] and result["tls_ok"]
    assert result["auth"] == {"attempted": True, "success": False, "mechanism": "PLAIN", "offered": ["PLAIN", "LOGIN"],
                              "reply": "535 5.7.8 Error: authentication failed"}
    sent = next(line for line in server.received if line.startswith("AUTH PLAIN "))
    assert base64.b64decode(sent.split()[-1]) == b"\0jdoe\0wrong"
    assert not any("wrong" in line or sent.split()[-1] in line for line in result["transcript"])


def test_imap_without_capabilities_in_greeting_and_login_command_quoting(scripted, check):
    server = scripted([
        ("send", b"* OK IMAP ready\r\n"), ("expect", "a1 CAPABILITY"),
        ("send", b"* CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED\r\na1 OK done\r\n"),
        ("expect", "a2 STARTTLS"), ("send", b"a2 OK go\r\n"), ("tls", None),
        ("expect", "a3 CAPABILITY"), ("send", b"* CAPABILITY IMAP4rev1 ID\r\na3 OK done\r\n"),
        ("expect", "a4 LOGIN"), ("send", b"a4 OK logged in\r\n"),
    ])
    result = check(server, "imap", "starttls", username="jdoe", password='p"w\\x')
    assert result["status"] == "pass", result
    assert result["auth"]["mechanism"] == "LOGIN" and result["auth"]["success"] is True
    assert 'a4 LOGIN "jdoe" "p\\"w\\\\x"' in server.received
    assert result["capabilities"]["before_tls"] == ["IMAP4REV1", "STARTTLS", "LOGINDISABLED"]


def test_imap_literal_in_untagged_reply_is_skipped(scripted, check):
    server = scripted([
        ("send", b"* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] ready\r\n"),
        ("expect", "a1 AUTHENTICATE PLAIN"), ("send", b"+ \r\n"), ("expect", ""),
        ("send", b"* ID {5}\r\nhello\r\na1 OK welcome\r\n"),
    ], implicit=True)
    result = check(server, "imap", "ssl", username="jdoe", password="pw")
    assert result["auth"]["success"] is True, result


def test_pop3_plaintext_user_and_no_stls(scripted, check):
    server = scripted([
        ("send", b"+OK POP3 ready\r\n"), ("expect", "CAPA"), ("send", b"+OK\r\nUSER\r\nSASL PLAIN\r\n.\r\n"),
    ])
    result = check(server, "pop3", "starttls", username="jdoe", password="pw")
    assert _codes(result) == ["starttls_missing", "auth_before_tls"]
    assert result["findings"][1]["offered"] == ["SASL PLAIN", "USER/PASS"]
    assert not [line for line in server.received if line.startswith(("USER", "PASS", "AUTH"))]


def test_untrusted_certificate_never_gets_credentials(scripted, check, pki):
    server = scripted([
        ("send", b"220 ssmtp.unit.test ESMTP\r\n"), ("expect", "EHLO"), ("send", EHLO_SAFE),
        ("expect", "STARTTLS"), ("send", b"220 2.0.0 Ready\r\n"), ("tls", None),
    ])
    result = check(server, "smtp", "starttls", ca_path=pki["other_ca"], username="jdoe", password="pw")
    assert result["error_class"] == "tls_verify" and _codes(result) == ["cert_untrusted"]
    assert result["auth"]["attempted"] is False
    assert all(not line.startswith("AUTH") for line in server.received)


def test_plaintext_server_on_an_implicit_tls_port(scripted, check):
    server = scripted([("send", b"* OK IMAP plaintext ready\r\n"), ("hang", None)])
    result = check(server, "imap", "ssl")
    assert result["error_class"] == "tls_protocol", result["findings"]


def test_silent_server_fails_within_the_overall_deadline(scripted, check):
    server = scripted([("hang", None)])
    begin = time.monotonic()
    result = check(server, "smtp", "starttls", timeout=60, deadline=1)
    # Deadline 1 s, per-step timeout 60 s: the deadline wins (with room for a busy machine).
    assert time.monotonic() - begin < 15
    assert result["error_class"] == "timeout" and result["failed_phase"] == "greeting"


class _Nowhere:
    """No server at all: the check must give up before it would connect."""

    port = 9

    def finish(self):
        return []


def test_stalled_resolver_is_bounded(monkeypatch, check):
    server = _Nowhere()

    def stall(*_args, **_kwargs):
        time.sleep(30)
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")

    monkeypatch.setattr(resolve.socket, "getaddrinfo", stall)
    result = check(server, "imap", "ssl", connect_to={}, timeout=0.5)
    # A 30 s stall cut at the 0.5 s step timeout (with room for a busy machine).
    assert result["timings_ms"]["dns"] < 10000
    assert result["error_class"] == "dns" and _codes(result) == ["dns_timeout"]


def test_imap_login_command_sends_utf8_password_as_literal(scripted, check):
    password = "pässwörd \"x\""
    data = password.encode()
    server = scripted([
        ("send", b"* OK [CAPABILITY IMAP4rev1] ready\r\n"),
        ("expect", "a1 LOGIN \"jdoe\" {%d}" % len(data)), ("send", b"+ go ahead\r\n"),
        ("expect", password), ("send", b"a1 OK logged in\r\n"),
    ], implicit=True)
    result = check(server, "imap", "ssl", username="jdoe", password=password)
    assert result["auth"]["success"] is True, (result["findings"], server.errors)
    assert not server.errors


def test_credentials_with_line_breaks_are_refused_before_any_connection(check):
    with pytest.raises(ValueError, match="password must not contain"):
        check(_Nowhere(), "imap", "ssl", username="jdoe", password="a\r\nb")


def test_server_below_the_minimum_tls_version(scripted, check):
    server = scripted([("hang", None)], implicit=True, max_tls=ssl.TLSVersion.TLSv1_2)
    result = check(server, "imap", "ssl", min_tls_version="TLSv1.3")
    assert result["error_class"] == "tls_protocol" and _codes(result) == ["tls_version"], result["findings"]
    assert "TLSv1.3" in result["message"]


def test_negotiated_version_and_cipher_are_reported(scripted, check):
    server = scripted([("send", b"* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] ready\r\n")], implicit=True,
                      max_tls=ssl.TLSVersion.TLSv1_2)
    result = check(server, "imap", "ssl")
    assert result["tls"]["version"] == "TLSv1.2" and result["tls"]["cipher"] and result["tls"]["bits"] >= 128
    assert result["certificate"]["subject_cn"] == "mail.unit.test" and result["certificate"]["issuer_cn"] == "Unit ca"


def _dual_stack(monkeypatch, port):
    """The name has an IPv6 and an IPv4 address; only IPv4 listens (the scripted server)."""
    def fake(host, _port, *_args, **_kwargs):
        return [(socket.AF_INET6, socket.SOCK_STREAM, 6, "", ("::1", port, 0, 0)),
                (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]

    monkeypatch.setattr(resolve.socket, "getaddrinfo", fake)


IMAPS_GREETING = [("send", b"* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] ready\r\n")]


def test_any_family_falls_back_and_reports_each_attempt(monkeypatch, scripted, check):
    server = scripted(IMAPS_GREETING, implicit=True)
    _dual_stack(monkeypatch, server.port)
    result = check(server, "imap", "ssl", connect_to={})
    assert result["status"] == "pass" and result["family"] == "4"
    assert [a["address"] for a in result["connect_attempts"]] == ["::1", "127.0.0.1"]
    assert result["connect_attempts"][0]["error"] and result["connect_attempts"][1]["error"] is None


def test_only_ipv6_does_not_fall_back(monkeypatch, scripted, check):
    server = scripted(IMAPS_GREETING, implicit=True)
    _dual_stack(monkeypatch, server.port)
    result = check(server, "imap", "ssl", connect_to={}, ip_version="6")
    assert result["error_class"] == "refused" and [a["address"] for a in result["connect_attempts"]] == ["::1"]


def test_whole_verified_chain_is_reported(scripted, check):
    server = scripted(IMAPS_GREETING, implicit=True)
    cert = check(server, "imap", "ssl")["certificate"]
    assert [c["subject_cn"] for c in cert["chain"]] == ["mail.unit.test", "Unit ca"]
    assert cert["chain_min_days_left"] == cert["days_left"]  # the leaf (200 d) expires before the CA (400 d)
