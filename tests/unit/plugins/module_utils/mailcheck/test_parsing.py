"""Capability parsing and judging per protocol, SASL encoding, connect_to parsing."""

from __future__ import annotations

import base64
import socket

import pytest

from ansible_collections.middlebury.mail_clients.plugins.module_utils.mailcheck import (
    imap,
    pop3,
    resolve,
    sasl,
    smtp,
)

DOVECOT_143 = ("* OK [CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ STARTTLS "
               "LOGINDISABLED] Dovecot ready.")


def test_imap_capabilities_from_greeting_and_untagged_line():
    caps = imap.parse_capabilities(DOVECOT_143)
    assert "STARTTLS" in caps and "LOGINDISABLED" in caps
    assert imap.parse_capabilities("* CAPABILITY imap4rev1 auth=plain") == ["IMAP4REV1", "AUTH=PLAIN"]
    assert imap.parse_capabilities("* OK ready") is None


def test_imap_safe_plaintext_offer_is_nothing():
    assert imap.auth_before_tls(imap.parse_capabilities(DOVECOT_143)) == []


@pytest.mark.parametrize(("caps", "offered"), [
    (["IMAP4REV1", "STARTTLS"], ["LOGIN command (no LOGINDISABLED)"]),
    (["IMAP4REV1", "STARTTLS", "LOGINDISABLED", "AUTH=PLAIN"], ["AUTH=PLAIN"]),
    (["STARTTLS", "AUTH=PLAIN", "AUTH=LOGIN"], ["AUTH=PLAIN", "AUTH=LOGIN", "LOGIN command (no LOGINDISABLED)"]),
])
def test_imap_auth_before_tls(caps, offered):
    assert imap.auth_before_tls(caps) == offered


def test_imap_password_ways_count_the_login_command():
    assert imap.password_ways(["AUTH=PLAIN", "AUTH=LOGIN"]) == ["PLAIN", "LOGIN"]
    assert imap.password_ways(["IMAP4REV1"]) == ["LOGIN"]
    assert imap.password_ways(["AUTH=NTLM", "LOGINDISABLED"]) == []


def test_pop3_before_and_after_stls():
    before = ["TOP", "UIDL", "RESP-CODES", "PIPELINING", "STLS", "SASL"]
    assert pop3.auth_before_tls(before, "+OK Dovecot ready.") == []
    assert pop3.auth_before_tls(["USER", "SASL PLAIN"], "") == ["SASL PLAIN", "USER/PASS"]
    assert pop3.auth_before_tls([], "+OK POP3 ready <1896.697170952@dbc.mtview.ca.us>") == ["APOP"]
    assert pop3.password_ways(["USER", "SASL PLAIN LOGIN"]) == ["PLAIN", "LOGIN"]
    assert pop3.password_ways(["USER"]) == ["LOGIN"]
    assert pop3.password_ways(["SASL NTLM GSSAPI"]) == []


def test_smtp_ehlo_parsing_and_judging():
    caps = smtp.parse_ehlo(["PIPELINING", "SIZE 10240000", "STARTTLS", "auth=LOGIN PLAIN", "8BITMIME"])
    assert "STARTTLS" in caps
    assert smtp.mechanisms(caps) == ["LOGIN", "PLAIN"]
    assert smtp.auth_before_tls(caps) == ["AUTH LOGIN", "AUTH PLAIN"]
    assert smtp.auth_before_tls(["STARTTLS", "PIPELINING"]) == []
    assert smtp.password_ways(["AUTH NTLM"]) == []


def test_sasl_plain_is_rfc4616_and_login_is_two_steps():
    (plain,) = sasl.responses("PLAIN", "jdoe", "pä ss")
    assert base64.b64decode(plain) == "\0jdoe\0pä ss".encode()
    assert [base64.b64decode(x) for x in sasl.responses("LOGIN", "jdoe", "pw")] == [b"jdoe", b"pw"]
    with pytest.raises(ValueError, match="NUL"):
        sasl.responses("PLAIN", "a\0b", "pw")
    assert sasl.choose(["LOGIN", "PLAIN"], ["PLAIN", "LOGIN"]) == "PLAIN"
    assert sasl.choose(["LOGIN"], ["PLAIN"]) is None
    assert sasl.choose(["NTLM"], ["PLAIN", "LOGIN"]) is None


def test_connect_to_keys_with_and_without_port():
    parsed = resolve.parse_connect_to({"Mail.Example.org:993": "192.0.2.1", "smtp.example.org": "[2001:db8::1]"})
    assert resolve.override_for(parsed, "mail.example.org", 993) == "192.0.2.1"
    assert resolve.override_for(parsed, "mail.example.org", 143) is None
    assert resolve.override_for(parsed, "smtp.example.org.", 25) == "2001:db8::1"
    with pytest.raises(ValueError):
        resolve.parse_connect_to({"mail.example.org:0": "192.0.2.1"})
    with pytest.raises(ValueError):
        resolve.parse_connect_to({"mail.example.org": ""})


def test_family_selection():
    both = [(socket.AF_INET6, "2001:db8::1"), (socket.AF_INET, "192.0.2.1")]
    assert resolve.pick(both, "4", "h") == [(socket.AF_INET, "192.0.2.1")]
    assert resolve.pick(both, "any", "h") == both
    with pytest.raises(resolve.ResolveError) as info:
        resolve.pick([(socket.AF_INET, "192.0.2.1")], "6", "h")
    assert info.value.kind == "no_family"
    assert resolve.literal_addresses("::1") == [(socket.AF_INET6, "::1")]
