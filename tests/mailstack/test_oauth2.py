"""OAuth2 in the test stack: the stand-in identity provider's flows, and Dovecot and Postfix taking its tokens
(XOAUTH2 and OAUTHBEARER, after TLS only), with stdlib clients. The real clients' logins are their roles' tests."""

from __future__ import annotations

import base64
import hashlib
import http.client
import imaplib
import json
import poplib
import re
import secrets
import smtplib
import socket
import time
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from . import graph, settings
from .dovecot import LOGIN_LOGGED
from .tlsclient import context_for

TIMEOUT = 10
CLIENT = "mailstack-oauth-test"


def _http(stack, method, path, form=None, headers=None):
    """One request to the stand-in provider by address, its certificate checked for its name."""
    conn = http.client.HTTPSConnection(stack.idp_ip, settings.IDP_PORT, timeout=TIMEOUT,
                                       context=context_for(settings.IDP_NAME, stack.ca_path))
    try:
        body = None if form is None else urlencode(form)
        all_headers = {"Host": settings.IDP_NAME, **(headers or {})}
        if body is not None:
            all_headers["Content-Type"] = "application/x-www-form-urlencoded"
        conn.request(method, path, body=body, headers=all_headers)
        response = conn.getresponse()
        data = response.read()
        return response.status, dict(response.getheaders()), json.loads(data) if data else {}
    finally:
        conn.close()


def _xoauth2(user, token):
    return "user=%s\x01auth=Bearer %s\x01\x01" % (user, token)


def _imap(stack):
    return imaplib.IMAP4_SSL(stack.imap_host_ip, stack.ports["imaps"], ssl_context=stack.tls_context(),
                             timeout=TIMEOUT)


# ----- the identity provider ---------------------------------------------------------------------------


def test_authorization_code_with_pkce_and_a_loopback_redirect(mail_stack):
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    query = {"response_type": "code", "client_id": CLIENT, "redirect_uri": "http://127.0.0.1:4711/cb",
             "code_challenge": challenge, "code_challenge_method": "S256", "state": "s1", "scope": "mail"}
    # Nobody has signed in yet: the request waits for a person.
    status, _headers, waiting = _http(mail_stack, "GET", "/authorize?" + urlencode(query))
    assert status == 200 and waiting["waiting"]
    mail_stack.idp_call("/test/approve", {"request": waiting["waiting"], "user": "jdoe"})
    status, headers, _body = _http(mail_stack, "GET", "/authorize?request=" + waiting["waiting"])
    assert status == 302
    redirect = urlsplit(headers["Location"])
    assert (redirect.hostname, redirect.port, redirect.path) == ("127.0.0.1", 4711, "/cb")
    params = {k: v[0] for k, v in parse_qs(redirect.query).items()}
    assert params["state"] == "s1"
    exchange = {"grant_type": "authorization_code", "code": params["code"], "client_id": CLIENT,
                "redirect_uri": query["redirect_uri"]}
    status, _h, refused = _http(mail_stack, "POST", "/token", dict(exchange, code_verifier="wrong" * 10))
    assert status == 400 and refused["error"] == "invalid_grant"
    # The code is spent by a failed attempt too: a new authorization, pre-approved this time.
    mail_stack.idp_call("/test/approve", {"client_id": CLIENT, "user": "jdoe"})
    status, headers, _body = _http(mail_stack, "GET", "/authorize?" + urlencode(query))
    code = parse_qs(urlsplit(headers["Location"]).query)["code"][0]
    status, _h, tokens = _http(mail_stack, "POST", "/token", dict(exchange, code=code, code_verifier=verifier))
    assert status == 200 and tokens["token_type"] == "Bearer" and 0 < tokens["expires_in"] <= 300
    assert len(tokens["access_token"]) >= 1500, "tokens as long as Entra's exercise the servers' line limits"


def test_a_redirect_that_is_not_loopback_is_refused(mail_stack):
    status, _h, body = _http(mail_stack, "GET", "/authorize?" + urlencode({
        "response_type": "code", "client_id": CLIENT, "redirect_uri": "https://attacker.example/cb"}))
    assert status == 400 and body["error"] == "invalid_request"


def test_a_client_that_never_says_hello_does_not_stop_the_provider(mail_stack):
    # Dovecot asks the provider about every token: one stalled connection must not hold up everyone's logins.
    silent = socket.create_connection((mail_stack.idp_ip, settings.IDP_PORT), timeout=TIMEOUT)
    try:
        begin = time.monotonic()
        status, _headers, body = _http(mail_stack, "GET", "/test/pending")
        assert status == 200 and "pending" in body
        assert time.monotonic() - begin < 5, "the provider waited for the silent client"
    finally:
        silent.close()


def test_connections_are_kept_alive(mail_stack):
    conn = http.client.HTTPSConnection(mail_stack.idp_ip, settings.IDP_PORT, timeout=TIMEOUT,
                                       context=context_for(settings.IDP_NAME, mail_stack.ca_path))
    try:
        for _attempt in range(3):
            conn.request("GET", "/test/pending", headers={"Host": settings.IDP_NAME})
            response = conn.getresponse()
            response.read()
            assert response.status == 200 and response.version == 11
            assert not response.will_close
    finally:
        conn.close()


def test_device_flow_refresh_rotation_revocation_and_introspection(mail_stack):
    status, _h, device = _http(mail_stack, "POST", "/devicecode", {"client_id": CLIENT, "scope": "mail"})
    assert status == 200 and device["interval"] >= 1
    poll = {"grant_type": "urn:ietf:params:oauth:grant-type:device_code", "device_code": device["device_code"],
            "client_id": CLIENT}
    status, _h, pending = _http(mail_stack, "POST", "/token", poll)
    assert status == 400 and pending["error"] == "authorization_pending"
    mail_stack.idp_call("/test/approve-device", {"user_code": device["user_code"], "user": "asmith"})
    status, _h, tokens = _http(mail_stack, "POST", "/token", poll)
    assert status == 200

    refresh = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"], "client_id": CLIENT}
    status, _h, renewed = _http(mail_stack, "POST", "/token", refresh)
    assert status == 200 and renewed["refresh_token"] != tokens["refresh_token"]
    status, _h, reused = _http(mail_stack, "POST", "/token", refresh)
    assert status == 400 and reused["error"] == "invalid_grant", "a rotated refresh token is spent"

    secret = (mail_stack.idp_dir / "introspection.secret").read_text().strip()
    basic = {"Authorization": "Basic " + base64.b64encode(("dovecot:" + secret).encode()).decode()}
    status, _h, _body = _http(mail_stack, "POST", "/introspect", {"token": renewed["access_token"]})
    assert status == 401, "introspection needs the introspection client's credentials"
    status, _h, info = _http(mail_stack, "POST", "/introspect", {"token": renewed["access_token"]}, basic)
    assert info["active"] is True and info["username"] == "asmith"
    _http(mail_stack, "POST", "/revoke", {"token": renewed["refresh_token"]})
    status, _h, info = _http(mail_stack, "POST", "/introspect", {"token": renewed["access_token"]}, basic)
    assert info == {"active": False}, "revoking the refresh token revokes what it issued"
    status, _h, gone = _http(mail_stack, "POST", "/token", dict(refresh, refresh_token=renewed["refresh_token"]))
    assert status == 400 and gone["error"] == "invalid_grant"


def _graph_get(stack, path, token=None):
    """A GET of the Microsoft Graph stand-in by its real name (the certificate is checked for it)."""
    base = urlsplit(settings.graph_settings()["base"]).hostname
    conn = http.client.HTTPSConnection(stack.idp_ip, settings.IDP_PORT, timeout=TIMEOUT,
                                       context=context_for(base, stack.ca_path))
    try:
        conn.request("GET", path, headers={"Host": base, **({"Authorization": "Bearer " + token} if token else {})})
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), json.loads(response.read() or b"{}")
    finally:
        conn.close()


def test_graph_answers_a_users_own_folders_with_a_live_token_only(mail_stack):
    # Bare and with Graph's URL, as clients ask for them.
    scope = "Mail.Read Calendars.Read %s/Contacts.Read offline_access" % settings.graph_settings()["base"]
    token = mail_stack.tokens_for("graphuser", client_id=CLIENT, scope=scope)["access_token"]
    mine = "/v1.0/users/graphuser%40example.edu"
    # A token without the call's permission: refused, as Graph does.
    mail_only = mail_stack.tokens_for("graphuser", client_id=CLIENT, scope="Mail.Read")["access_token"]
    status, _h, body = _graph_get(mail_stack, mine + "/calendarGroups", mail_only)
    assert status == 403 and body["error"]["code"] == "ErrorAccessDenied", body
    status, _h, body = _graph_get(mail_stack, "/v1.0/users?$top=1", mail_only)
    assert status == 403 and body["error"]["code"] == "Authorization_RequestDenied", body
    status, headers, body = _graph_get(mail_stack, mine + "/calendarGroups")
    assert status == 401 and body["error"]["code"] == "InvalidAuthenticationToken", body
    assert headers["WWW-Authenticate"].startswith("Bearer ")
    status, _h, body = _graph_get(mail_stack, mine + "/calendarGroups", token)
    assert status == 200 and [g["id"] for g in body["value"]] == [g["id"] for g in graph.CALENDAR_GROUPS], body
    group = graph.CALENDAR_GROUPS[0]["id"]
    status, _h, body = _graph_get(mail_stack, "%s/calendarGroups/%s/calendars" % (mine, group), token)
    assert status == 200 and [c["name"] for c in body["value"]] == [c["name"] for c in graph.CALENDARS[group]]
    status, _h, body = _graph_get(mail_stack, "/v1.0/users/someoneelse%40example.edu/calendarGroups", token)
    assert status == 403 and body["error"]["code"] == "ErrorAccessDenied", body
    # The delta round: every folder first, then (with the link it gave) no change.
    status, _h, body = _graph_get(mail_stack, mine + "/contactFolders/delta", token)
    assert status == 200 and [f["id"] for f in body["value"]] == [f["id"] for f in graph.CONTACT_FOLDERS], body
    link = urlsplit(body["@odata.deltaLink"])
    assert link.hostname == urlsplit(settings.graph_settings()["base"]).hostname, link
    status, _h, body = _graph_get(mail_stack, "%s?%s" % (link.path, link.query), token)
    assert status == 200 and body["value"] == [] and "@odata.deltaLink" in body, body
    mail_stack.idp_call("/test/expire", {"token": token})
    status, _h, body = _graph_get(mail_stack, mine + "/mailFolders/inbox", token)
    assert status == 401, body


# ----- Dovecot and Postfix take the provider's tokens ----------------------------------------------------


def _dovecot_log_since(stack, mark):
    return stack.dovecot_log.read_text(errors="replace")[mark:]


def test_xoauth2_and_oauthbearer_logins_over_tls_with_a_token_from_the_provider(mail_stack):
    token = mail_stack.tokens_for("jdoe")["access_token"]
    mark = mail_stack.dovecot_log.stat().st_size
    imap = _imap(mail_stack)
    try:
        assert "AUTH=XOAUTH2" in imap.capabilities and "AUTH=OAUTHBEARER" in imap.capabilities
        assert imap.authenticate("XOAUTH2", lambda _c: _xoauth2("jdoe", token).encode())[0] == "OK"
        assert imap.select("INBOX")[0] == "OK"
    finally:
        imap.logout()
    imap = _imap(mail_stack)
    try:
        bearer = "n,a=jdoe,\x01auth=Bearer %s\x01\x01" % token
        assert imap.authenticate("OAUTHBEARER", lambda _c: bearer.encode())[0] == "OK"
    finally:
        imap.logout()
    pop = poplib.POP3_SSL(mail_stack.imap_host_ip, mail_stack.ports["pop3s"], context=mail_stack.tls_context(),
                          timeout=TIMEOUT)
    try:
        # POP3 XOAUTH2 as Exchange wants it: the command, then the SASL string on its own line.
        assert pop._shortcmd("AUTH XOAUTH2").startswith(b"+")
        assert pop._shortcmd(base64.b64encode(_xoauth2("jdoe", token).encode()).decode()).startswith(b"+OK")
        assert pop.stat()[0] >= 1
    finally:
        pop.quit()
    log = _dovecot_log_since(mail_stack, mark)
    assert re.search((LOGIN_LOGGED % "jdoe") + r".*method=XOAUTH2.*TLS", log), log
    assert re.search((LOGIN_LOGGED % "jdoe") + r".*method=OAUTHBEARER.*TLS", log), log


def test_smtp_offers_oauth_only_after_starttls_and_takes_a_long_token_on_the_auth_line(mail_stack):
    token = mail_stack.tokens_for("jdoe")["access_token"]
    with smtplib.SMTP(mail_stack.smtp_host_ip, mail_stack.ports["smtp"], timeout=TIMEOUT,
                      local_hostname="client.invalid") as smtp:
        smtp.ehlo()
        assert "auth" not in smtp.esmtp_features
        smtp.starttls(context=mail_stack.tls_context(mail_stack.names["smtp_host"]))
        smtp.ehlo()
        assert {"XOAUTH2", "OAUTHBEARER"} <= set(smtp.esmtp_features["auth"].split())
        line = base64.b64encode(_xoauth2("jdoe", token).encode()).decode()
        assert len(line) > 2048, "longer than Postfix's default line_length_limit"
        code, reply = smtp.docmd("AUTH", "XOAUTH2 " + line)
        assert code == 235, reply


@pytest.mark.parametrize("how", ["expire", "revoke"])
def test_an_expired_or_revoked_token_is_refused(mail_stack, how):
    mail_stack.add_user("oauthgone", "Oauth-Gone-Pass_1")
    token = mail_stack.tokens_for("oauthgone")["access_token"]
    mail_stack.idp_call("/test/" + how, {"user": "oauthgone"})
    imap = _imap(mail_stack)
    try:
        with pytest.raises(imaplib.IMAP4.error, match="AUTHENTICATIONFAILED"):
            imap.authenticate("XOAUTH2", lambda _c: _xoauth2("oauthgone", token).encode())
    finally:
        imap.shutdown()
    with smtplib.SMTP(mail_stack.smtp_host_ip, mail_stack.ports["smtp"], timeout=TIMEOUT,
                      local_hostname="client.invalid") as smtp:
        smtp.starttls(context=mail_stack.tls_context(mail_stack.names["smtp_host"]))
        smtp.ehlo()
        code, _reply = smtp.docmd("AUTH", "XOAUTH2 " + base64.b64encode(_xoauth2("oauthgone", token).encode()).decode())
        if code == 334:  # the server's error challenge: the client answers with an empty line
            code, _reply = smtp.docmd("")
        assert code == 535


def test_a_token_for_another_user_is_refused(mail_stack):
    token = mail_stack.tokens_for("asmith")["access_token"]
    imap = _imap(mail_stack)
    try:
        with pytest.raises(imaplib.IMAP4.error):
            imap.authenticate("XOAUTH2", lambda _c: _xoauth2("jdoe", token).encode())
    finally:
        imap.shutdown()


def test_the_provider_was_asked_only_by_address_and_logs_no_token(mail_stack):
    log = mail_stack.idp_call("/test/log")["log"]
    assert any(entry["event"] == "introspect" for entry in log)
    assert not any("token" in key for entry in log for key in entry if key != "event"), log
