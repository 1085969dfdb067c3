"""mail_check with OAuth2 against the real test stack (Dovecot and Postfix asking the stand-in identity provider)
and against the Exchange-like variants, in one playbook run: a token from the provider logs in everywhere, an
expired or revoked one is `oauth_rejected`, Exchange's refusals are told apart, and the servers' own logs show
that no token and no password arrived before TLS."""

from __future__ import annotations

import json
import re
import time

import pytest
from mail_check_cases import TIMEOUT, base, run_cases, task

from ansible_collections.middlebury.mail_clients.plugins.module_utils import account_model

PRESET = {"provider": "microsoft365"}
USERS = {"good": "mcoauth", "expired": "mcoauthexp", "revoked": "mcoauthrev"}


def _codes(result):
    return {ep["name"]: [f["code"] for f in ep["findings"]] for ep in result["endpoints"]}


def _exchange(stack, variant):
    """The preset's servers -> an Exchange-like variant (the names come from the model, never restated)."""
    hosts = {ep["host"] for ep in account_model.documented_endpoints(account_model.normalize_account(PRESET))}
    return {"ca_path": str(stack.ca_path), "connect_to": dict.fromkeys(hosts, stack.negatives[variant]["host_ip"]),
            "timeout": TIMEOUT, "deadline": 20.0, "account": PRESET}


@pytest.fixture(scope="module")
def oauth_results(mail_stack, tmp_path_factory):
    stack = mail_stack
    for login in USERS.values():
        stack.add_user(login, "Oauth-Unused-Pass_%s" % login)
    good = stack.tokens_for(USERS["good"])["access_token"]
    expired = stack.tokens_for(USERS["expired"])["access_token"]
    stack.idp_call("/test/expire", {"user": USERS["expired"]})
    revoked = stack.tokens_for(USERS["revoked"])["access_token"]
    stack.idp_call("/test/revoke", {"user": USERS["revoked"]})
    address = account_model.normalize_account(PRESET, [{"login": "jdoe"}])["users"][0]["username"]
    exchange_token = stack.tokens_for(address)["access_token"]
    other_token = stack.tokens_for("someone-else@" + stack.mail_domain)["access_token"]
    workdir = tmp_path_factory.mktemp("oauth")
    token_file = workdir / "token"
    token_file.write_text(good + "\n")
    token_file.chmod(0o600)
    oauth = {"auth": "oauth2"}
    cases = [
        task("oauth_good", base(stack), oauth, username=USERS["good"], access_token=good),
        task("oauth_command", base(stack), oauth, username=USERS["good"], token_command="cat %s" % token_file,
             only=["imaps", "smtp_starttls"]),
        task("oauth_expired", base(stack), oauth, username=USERS["expired"], access_token=expired, report_only=True,
             only=["imaps", "smtp_starttls"]),
        task("oauth_revoked", base(stack), oauth, username=USERS["revoked"], access_token=revoked, report_only=True,
             only=["imap_starttls", "pop3s"]),
        task("oauth_offered", base(stack), oauth),
        task("exchange_password", _exchange(stack, "exchange"), auth="password", username=address,
             password="Exchange-Test-Pass_1", report_only=True),
        task("exchange_token", _exchange(stack, "exchange"), username=address, access_token=exchange_token),
        task("exchange_mismatch", _exchange(stack, "exchange"), username=address, access_token=other_token,
             report_only=True, only=["imaps"]),
        task("tenant_password", _exchange(stack, "exchange_tenant"), auth="password", username=address,
             password="Exchange-Test-Pass_1", report_only=True, only=["smtp_starttls"]),
        task("tenant_token", _exchange(stack, "exchange_tenant"), username=address, access_token=exchange_token,
             report_only=True),
    ]
    marks = {"dovecot": stack.dovecot_log.stat().st_size, "postfix": stack.postfix_log.stat().st_size}
    results = run_cases(cases, workdir)
    # Postfix writes its log through postlogd, a moment after the session ended.
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and "auth=1" not in stack.postfix_log.read_text(errors="replace")[
            marks["postfix"]:]:
        time.sleep(0.2)
    results["logs"] = {"dovecot": stack.dovecot_log.read_text(errors="replace")[marks["dovecot"]:],
                       "postfix": stack.postfix_log.read_text(errors="replace")[marks["postfix"]:],
                       "exchange": stack.exchange_logins()}
    results["tokens"] = [good, expired, revoked, exchange_token, other_token]
    return results


def test_a_token_from_the_identity_provider_logs_in_on_every_documented_endpoint(oauth_results):
    result = oauth_results["oauth_good"]
    assert result["summary"]["failed"] == 0, result["msg"]
    for ep in result["endpoints"]:
        assert ep["auth"]["success"] is True and ep["auth"]["mechanism"] == "XOAUTH2", ep["message"]
        assert {"XOAUTH2", "OAUTHBEARER"} <= set(ep["sasl"]["after_tls"])
        if ep["security"] == "starttls":
            assert not ep["sasl"]["before_tls"], "nothing to log in with before STARTTLS"
    command = oauth_results["oauth_command"]
    assert command["summary"]["failed"] == 0 and all(ep["auth"]["success"] for ep in command["endpoints"])


def test_an_expired_or_revoked_token_is_oauth_rejected(oauth_results):
    for name in ("oauth_expired", "oauth_revoked"):
        codes = _codes(oauth_results[name])
        assert codes and all(found == ["oauth_rejected"] for found in codes.values()), (name, codes)


def test_without_a_token_oauth2_is_checked_as_offered_only(oauth_results):
    result = oauth_results["oauth_offered"]
    assert result["summary"]["failed"] == 0
    assert not any(ep["auth"]["attempted"] for ep in result["endpoints"])


def test_exchange_refuses_passwords_in_its_own_words(oauth_results):
    codes = _codes(oauth_results["exchange_password"])
    # POP3's refusal is Exchange's old, ambiguous text: it stays a login failure.
    assert codes == {"imaps": ["basic_auth_disabled"], "pop3s": ["login_failed"],
                     "smtp_starttls": ["basic_auth_disabled"]}, codes
    assert {ep["server"] for ep in oauth_results["exchange_password"]["endpoints"]} == {"exchange_online"}
    assert _codes(oauth_results["tenant_password"]) == {"smtp_starttls": ["smtp_auth_disabled"]}


def test_exchange_takes_a_token_and_the_second_command_catches_a_mismatch(oauth_results):
    result = oauth_results["exchange_token"]
    assert result["summary"]["failed"] == 0, result["msg"]
    assert _codes(oauth_results["exchange_mismatch"]) == {"imaps": ["oauth_rejected"]}
    # In the tenant mode SMTP refuses tokens too; IMAP and POP3 still take them.
    assert _codes(oauth_results["tenant_token"]) == {"imaps": [], "pop3s": [], "smtp_starttls": ["smtp_auth_disabled"]}


def test_no_token_and_no_password_arrived_before_tls(oauth_results):
    logs = oauth_results["logs"]
    logins = [line for line in logs["dovecot"].splitlines() if re.search(r"(Login|Logged in): user=<mcoauth", line)]
    assert logins and all("TLS" in line for line in logins), logins
    # Postfix's summary of each session: every one with an AUTH command had STARTTLS first.
    sessions = [line for line in logs["postfix"].splitlines() if "disconnect from" in line and " auth=" in line]
    assert sessions, logs["postfix"][-3000:]
    assert all("starttls=1" in line for line in sessions), sessions
    assert logs["exchange"] and all(entry["tls"] for entry in logs["exchange"]), logs["exchange"]
    printed = json.dumps({k: v for k, v in oauth_results.items() if k not in ("tokens", "logs", "run")})
    assert not any(token in printed for token in oauth_results["tokens"]), "a token leaked into the results"
