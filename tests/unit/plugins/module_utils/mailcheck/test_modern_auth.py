"""OAuth2 and Exchange Online's refusals against a scripted server. The replies are Exchange Online's, as the
reference notes quote them; the live XOAUTH2 logins against Dovecot/Postfix are in tests/integration/mail_check."""

from __future__ import annotations

import base64

import pytest

pytestmark = pytest.mark.timeout(60)

EXCHANGE_IMAP_GREETING = b"* OK The Microsoft Exchange IMAP4 service is ready. [TQBOADIAUABSADAANQBDAEEAMAAwADEA]\r\n"
EXCHANGE_IMAP_CAPS = (b"* CAPABILITY IMAP4 IMAP4rev1 AUTH=PLAIN AUTH=XOAUTH2 SASL-IR UIDPLUS ID UNSELECT CHILDREN "
                      b"IDLE\r\n")
EXCHANGE_SMTP_EHLO = b"250-SN4PR0201CA0001.exchange.example.test Hello\r\n250-SIZE 157286400\r\n250 STARTTLS\r\n"
EXCHANGE_SMTP_EHLO_TLS = (b"250-SN4PR0201CA0001.exchange.example.test Hello\r\n250-SIZE 157286400\r\n"
                          b"250 AUTH LOGIN XOAUTH2\r\n")
TOKEN = "at." + "x" * 1600


def _codes(result):
    return [f["code"] for f in result["findings"]]


def _exchange_imap(after):
    return [("send", EXCHANGE_IMAP_GREETING), ("expect", "a1 CAPABILITY"),
            ("send", EXCHANGE_IMAP_CAPS + b"a1 OK CAPABILITY completed.\r\n"), *after]


def test_exchange_refuses_a_password_login_as_basic_auth_disabled(scripted, check):
    server = scripted(_exchange_imap([
        ("expect", "a2 AUTHENTICATE PLAIN "), ("send", b"a2 NO Basic authentication is disabled.\r\n")]),
        implicit=True)
    result = check(server, "imap", "ssl", username="jdoe@example.edu", password="secret")
    assert _codes(result) == ["basic_auth_disabled"] and result["error_class"] == "policy"
    assert result["server"] == "exchange_online"
    assert result["sasl"] == {"before_tls": None, "after_tls": ["PLAIN", "XOAUTH2"]}
    assert "OAuth2" in result["message"]


def test_exchange_login_failed_stays_ambiguous_and_says_so(scripted, check):
    server = scripted(_exchange_imap([
        ("expect", "a2 AUTHENTICATE PLAIN "), ("send", b"a2 NO LOGIN failed.\r\n")]), implicit=True)
    result = check(server, "imap", "ssl", username="jdoe@example.edu", password="secret")
    assert _codes(result) == ["login_failed"]
    assert "wrong password" in result["message"] and "basic authentication" in result["message"]


@pytest.mark.parametrize(("reply", "code"), [
    (b"535 5.7.139 Authentication unsuccessful, basic authentication is disabled.", "basic_auth_disabled"),
    (b"535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant. Visit "
     b"https://aka.ms/smtp_auth_disabled for more information.", "smtp_auth_disabled"),
    (b"535 5.7.3 Authentication unsuccessful", "login_failed"),
])
def test_exchange_smtp_refusals_are_told_apart(scripted, check, reply, code):
    server = scripted([
        ("send", b"220 SN4PR0201CA0001.exchange.example.test Microsoft ESMTP MAIL Service ready\r\n"),
        ("expect", "EHLO"), ("send", EXCHANGE_SMTP_EHLO), ("expect", "STARTTLS"),
        ("send", b"220 2.0.0 SMTP server ready\r\n"), ("tls", None), ("expect", "EHLO"),
        ("send", EXCHANGE_SMTP_EHLO_TLS), ("expect", "AUTH LOGIN"), ("send", b"334 VXNlcm5hbWU6\r\n"),
        ("expect", ""), ("send", b"334 UGFzc3dvcmQ6\r\n"), ("expect", ""), ("send", reply + b"\r\n"),
    ])
    result = check(server, "smtp", "starttls", username="jdoe@example.edu", password="secret")
    assert _codes(result) == [code], result["findings"]
    assert result["server"] == "exchange_online"
    assert result["sasl"] == {"before_tls": [], "after_tls": ["LOGIN", "XOAUTH2"]}


def test_a_token_login_uses_xoauth2_with_sasl_ir_and_proves_itself_with_select(scripted, check):
    server = scripted(_exchange_imap([
        ("expect", "a2 AUTHENTICATE XOAUTH2 "), ("send", b"a2 OK AUTHENTICATE completed.\r\n"),
        ("expect", "a3 SELECT INBOX"), ("send", b"* 3 EXISTS\r\na3 OK [READ-WRITE] SELECT completed.\r\n")]),
        implicit=True)
    result = check(server, "imap", "ssl", username="jdoe@example.edu", auth="oauth2", token=TOKEN)
    assert result["status"] == "pass", result["findings"]
    assert result["auth"]["mechanism"] == "XOAUTH2" and result["auth"]["success"] is True
    sent = next(line for line in server.received if "AUTHENTICATE XOAUTH2" in line)
    assert base64.b64decode(sent.split()[-1]).decode() == "user=jdoe@example.edu\x01auth=Bearer %s\x01\x01" % TOKEN
    assert not any(TOKEN in line or sent.split()[-1] in line for line in result["transcript"])


def test_a_login_reported_as_accepted_but_failing_the_next_command_is_a_rejected_token(scripted, check):
    server = scripted(_exchange_imap([
        ("expect", "a2 AUTHENTICATE XOAUTH2 "), ("send", b"a2 OK AUTHENTICATE completed.\r\n"),
        ("expect", "a3 SELECT INBOX"), ("send", b"a3 BAD User is authenticated but not connected.\r\n")]),
        implicit=True)
    result = check(server, "imap", "ssl", username="other@example.edu", auth="oauth2", token=TOKEN)
    assert _codes(result) == ["oauth_rejected"] and "SELECT INBOX" in result["message"]


def test_a_refused_token_gets_the_empty_response_and_is_oauth_rejected(scripted, check):
    error = base64.b64encode(b'{"status":"401","schemes":"bearer","scope":"https://mail.google.com/"}')
    server = scripted(_exchange_imap([
        ("expect", "a2 AUTHENTICATE XOAUTH2 "), ("send", b"+ " + error + b"\r\n"), ("expect", ""),
        ("send", b"a2 NO AUTHENTICATE failed.\r\n")]), implicit=True)
    result = check(server, "imap", "ssl", username="jdoe@example.edu", auth="oauth2", token=TOKEN)
    assert _codes(result) == ["oauth_rejected"]
    assert '"status":"401"' in result["auth"]["reply"]


def test_oauth2_wanted_but_not_offered_is_no_oauth_mechanism_and_nothing_is_sent(scripted, check):
    server = scripted([
        ("send", b"* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] ready\r\n"), ("expect", "a1 LOGOUT")],
        implicit=True)
    result = check(server, "imap", "ssl", username="jdoe", auth="oauth2", token=TOKEN)
    assert _codes(result) == ["no_oauth_mechanism"] and result["auth"]["attempted"] is False
    assert not any("AUTHENTICATE" in line for line in server.received)


def test_smtp_token_login_is_proven_by_mail_from(scripted, check):
    server = scripted([
        ("send", b"220 SN4PR0201CA0001.exchange.example.test Microsoft ESMTP MAIL Service ready\r\n"),
        ("expect", "EHLO"), ("send", EXCHANGE_SMTP_EHLO), ("expect", "STARTTLS"),
        ("send", b"220 2.0.0 SMTP server ready\r\n"), ("tls", None), ("expect", "EHLO"),
        ("send", EXCHANGE_SMTP_EHLO_TLS), ("expect", "AUTH XOAUTH2 "),
        ("send", b"235 2.7.0 Authentication successful\r\n"), ("expect", "MAIL FROM:<jdoe@example.edu>"),
        ("send", b"250 2.1.0 Sender OK\r\n"), ("expect", "RSET"), ("send", b"250 2.0.0 Resetting\r\n"),
    ])
    result = check(server, "smtp", "starttls", username="jdoe@example.edu", auth="oauth2", token=TOKEN)
    assert result["status"] == "pass", result["findings"]
    assert result["auth"]["mechanism"] == "XOAUTH2"


def test_smtp_token_login_pipelines_mail_from_and_rset_where_offered(scripted, check):
    # The server answers only once both commands have arrived: a client that waits for MAIL's reply before
    # sending RSET never gets one (a round trip saved at every host, RFC 2920).
    ehlo_tls = EXCHANGE_SMTP_EHLO_TLS.replace(b"250-SIZE", b"250-PIPELINING\r\n250-SIZE")
    server = scripted([
        ("send", b"220 SN4PR0201CA0001.exchange.example.test Microsoft ESMTP MAIL Service ready\r\n"),
        ("expect", "EHLO"), ("send", EXCHANGE_SMTP_EHLO), ("expect", "STARTTLS"),
        ("send", b"220 2.0.0 SMTP server ready\r\n"), ("tls", None), ("expect", "EHLO"),
        ("send", ehlo_tls), ("expect", "AUTH XOAUTH2 "),
        ("send", b"235 2.7.0 Authentication successful\r\n"), ("expect", "MAIL FROM:<jdoe@example.edu>"),
        ("expect", "RSET"), ("send", b"250 2.1.0 Sender OK\r\n250 2.0.0 Resetting\r\n"),
    ])
    result = check(server, "smtp", "starttls", username="jdoe@example.edu", auth="oauth2", token=TOKEN, timeout=5)
    assert result["status"] == "pass", result["findings"]
