"""mutt and NeoMutt with OAuth2, configured only by the role with the Microsoft 365 preset and the tenant's app,
against the test stack: the preset's host names are mapped inside the sandbox to the real Dovecot and Postfix
and to the stand-in identity provider, nothing of what the role writes is changed. The clients start with no
token; the role's helper signs in with the device-code flow on their terminal, and the test approves the code
it shows there through the provider's test API, as the person at the PC would in a browser."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import time
import uuid

import pytest
from ansible_runner import run_playbook
from mailstack import LOGIN_LOGGED
from mutt_support import CA_IN_SANDBOX, MUTT_LOGINS, LogTail, Tui, converge
from sandbox import Sandbox

from ansible_collections.middlebury.mail_clients.plugins.module_utils.account_model import PRESETS, normalize_account
from ansible_collections.middlebury.mail_clients.plugins.plugin_utils.client_plans.mutt import LAYOUTS

LOGIN, RECIPIENT = MUTT_LOGINS
APP = "mutt-role-oauth-test"
ACCOUNT = {"provider": "microsoft365", "oauth2": {"client_id": APP}}
LAYOUT = LAYOUTS["Debian"]
TOKEN_FILE = ".local/state/mail-clients/oauth2-token.json"
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
USER_CODE = re.compile(r"enter the code ([A-Z0-9]{4}-[A-Z0-9]{4})")
# The device sign-in, the first IMAP login and the index: a few seconds; generous for a busy machine.
SIGN_IN_TIMEOUT = 60

pytestmark = pytest.mark.timeout(600)


@pytest.fixture
def preset_sandbox(stack, tmp_path):
    """A sandbox where the preset's names are the stack; /usr/local is overlaid too (the helper goes there)."""
    sb = Sandbox(tmp_path / "sandbox", hosts_file=stack.hosts_file_presets, extra_overlays=("/usr/local",))
    proc = sb.sh("install -m 0644 %s %s" % (shlex.quote(str(stack.ca_path)), CA_IN_SANDBOX))
    assert proc.returncode == 0, proc
    for login in MUTT_LOGINS:
        sb.add_user(login, login.title())
    # The presets' folder names (Exchange's, Gmail's), as the provider's mailboxes have them.
    folders = {f for name in PRESETS for f in normalize_account({"provider": name})["folders"].values()}
    for folder in sorted(folders):
        made = subprocess.run(["doveadm", "-c", str(stack.dovecot_conf), "mailbox", "create", "-s", "-u", LOGIN,
                               folder], capture_output=True, text=True, timeout=30, check=False)
        assert made.returncode == 0 or "exists" in made.stderr, made
    return sb


@pytest.fixture
def tui(preset_sandbox, tmp_path):
    driver = Tui(preset_sandbox, tmp_path / "tmux.sock")
    yield driver
    driver.close()


def _configure(sb, users=None, account=None):
    result = converge(sb, {"mutt_ca_file": CA_IN_SANDBOX, "mail_clients_account": account or ACCOUNT,
                           "mail_clients_users": users or []})
    assert result.rc == 0, result
    return result


def _sign_in(stack, tui):
    """The helper's code on the client's screen, approved as the account's owner at the provider."""
    screen = tui.wait_for("enter the code", timeout=SIGN_IN_TIMEOUT)
    code = USER_CODE.search(screen)
    assert code, screen
    assert "Sign in to your mail" in screen and "/device" in screen, screen
    stack.idp_call("/test/approve-device", {"user_code": code.group(1), "user": LOGIN})


def _first_start_reads_and_browses(stack, tui, client):
    """No token yet: sign in with the helper's code, read the INBOX, list a subscribed folder in the browser
    (imap_list_subscribed), all with an XOAUTH2 login over TLS in Dovecot's log."""
    dovecot_log = LogTail(stack.dovecot_log)
    tui.start(LOGIN, [client])
    _sign_in(stack, tui)
    tui.wait_for(*stack.inbox_subjects, timeout=SIGN_IN_TIMEOUT)
    tui.keys("c")
    tui.wait_for("Open mailbox")
    tui.keys("?")
    tui.wait_for(PRESETS["microsoft365"]["folders"]["sent"], "Personal")
    _assert_token_login(dovecot_log.new(), LOGIN)
    tui.close()


def _token_file(sb):
    return sb.upper("/home/%s/%s" % (LOGIN, TOKEN_FILE))


def _age(stack, sb):
    """As if the access token's lifetime had passed: at the provider, and in the user's own file."""
    path = _token_file(sb)
    tokens = json.loads(path.read_text())
    tokens["expires_at"] = int(time.time()) - 1
    path.write_text(json.dumps(tokens))  # in place: owner and mode stay the user's
    stack.idp_call("/test/expire", {"user": LOGIN})


def _grants(stack):
    return [grant for grant, client in stack.token_grants() if client == APP]


def _assert_token_login(dovecot_text, login, mechanism="XOAUTH2"):
    lines = [line for line in dovecot_text.splitlines()
             if re.search(r"imap-login: Info: " + LOGIN_LOGGED % login + r", method=%s,.*\bTLS\b" % mechanism, line)]
    assert lines, "no %s login over TLS in the Dovecot log:\n%s" % (mechanism, dovecot_text[-3000:])


def _send(sb, client, subject, recipient):
    argv = ["runuser", "-u", LOGIN, "--", "env", "-i", "HOME=/home/%s" % LOGIN, "PATH=/usr/bin:/bin",
            "LANG=C.UTF-8", client, "-s", subject, recipient]
    proc = sb.run(argv, input="sent by %s with a token\n" % client, timeout=120)
    assert proc.returncode == 0, proc
    return proc


def _assert_sent_with_token(stack, postfix_text, subject):
    assert stack.wait_for_message(RECIPIENT, subject), "the message did not arrive in %s's INBOX" % RECIPIENT
    assert "TLS connection established" in postfix_text, postfix_text[-3000:]
    assert re.search(r"sasl_method=XOAUTH2, sasl_username=%s\b" % LOGIN, postfix_text), postfix_text[-3000:]


def _assert_no_token_outside_the_users_file(stack, sb):
    token = json.loads(_token_file(sb).read_text())
    secrets_ = [token["access_token"], token["refresh_token"]]
    info = _token_file(sb).stat()
    assert oct(info.st_mode & 0o777) == "0o600", oct(info.st_mode)
    owner = sb.run(["stat", "-c", "%U %a", "/home/%s/%s" % (LOGIN, TOKEN_FILE)])
    assert owner.stdout.split() == [LOGIN, "600"], owner
    assert sb.run(["stat", "-c", "%a", "/home/%s/.local/state/mail-clients" % LOGIN]).stdout.strip() == "700"
    upper = sb.workdir / "upper"
    system = [p for top in ("etc", "usr_local", "root") for p in (upper / top).rglob("*") if p.is_file()]
    logs = [stack.dovecot_log, stack.postfix_log]
    for path in system + logs:
        data = path.read_bytes()
        assert not any(s.encode() in data for s in secrets_), "a token in %s" % path


def _verify_with_the_helpers_token(stack, sb):
    """The verifier on the same host, logging in with the token the helper keeps for the user (README)."""
    play = [{"hosts": "localhost", "gather_facts": False, "tasks": [{
        "name": "Check the preset's endpoints with the user's token",
        "middlebury.mail_clients.mail_check": {
            "account": ACCOUNT, "ca_path": CA_IN_SANDBOX,
            "username": stack.address_of(LOGIN), "auth": "oauth2",
            "token_command": "%s --config %s" % (LAYOUT["oauth2_helper"], LAYOUT["oauth2_config"]),
            "token_command_user": LOGIN},
        "register": "checked"}, {"name": "Keep the result", "ansible.builtin.copy": {
            "content": "{{ checked | to_json }}", "dest": "/root/checked.json", "mode": "0600"}}]}]
    result = run_playbook(play, sandbox=sb)
    assert result.rc == 0, result
    endpoints = json.loads(sb.upper("/root/checked.json").read_text())["endpoints"]
    assert {e["protocol"] for e in endpoints} == {"imap", "pop3", "smtp"}
    assert all(e["status"] == "pass" and e["auth"]["mechanism"] == "XOAUTH2" for e in endpoints), endpoints


def test_mutt_lab_mode_signs_in_with_a_device_code_reads_imaps_and_sends_with_xoauth2(stack, preset_sandbox, tui):
    sb = preset_sandbox
    _configure(sb)
    helper = sb.run(["stat", "-c", "%U %a", LAYOUT["oauth2_helper"]])
    assert helper.stdout.split() == ["root", "755"], helper
    _first_start_reads_and_browses(stack, tui, "mutt")

    subject = "mutt-oauth2-%s" % uuid.uuid4().hex[:10]
    postfix_log = LogTail(stack.postfix_log)
    _send(sb, "mutt", subject, stack.address_of(RECIPIENT))
    _assert_sent_with_token(stack, postfix_log.new(), subject)
    _assert_no_token_outside_the_users_file(stack, sb)
    _verify_with_the_helpers_token(stack, sb)

    # The access token's lifetime passes: the next start refreshes, without a sign-in.
    _age(stack, sb)
    before = len(_grants(stack))
    again = Tui(sb, tui.socket + "-2")
    try:
        again.start(LOGIN, ["mutt"])
        screen = again.wait_for(*stack.inbox_subjects, timeout=SIGN_IN_TIMEOUT)
        assert "enter the code" not in screen, screen
    finally:
        again.close()
    assert "refresh_token" in _grants(stack)[before:] and DEVICE_GRANT not in _grants(stack)[before:]

    # Revoked at the provider (a password change, IT): once the token runs out, the helper says so on mutt's screen.
    stack.idp_call("/test/revoke", {"user": LOGIN})
    _age(stack, sb)
    revoked = Tui(sb, tui.socket + "-3")
    try:
        revoked.start(LOGIN, ["mutt"])
        screen = revoked.wait_for("expired or was revoked", "Press a key", timeout=SIGN_IN_TIMEOUT)
        assert "sign in anew" in screen, screen
        revoked.keys("Enter")
        revoked.wait_for("Command returned empty string")
    finally:
        revoked.close()


def test_neomutt_named_user_signs_in_reads_imaps_and_sends_with_xoauth2(stack, preset_sandbox, tui):
    sb = preset_sandbox
    _configure(sb, users=[{"login": LOGIN, "full_name": "Jane O'Doe $(id)"}])
    _first_start_reads_and_browses(stack, tui, "neomutt")
    subject = "neomutt-oauth2-%s" % uuid.uuid4().hex[:10]
    postfix_log = LogTail(stack.postfix_log)
    _send(sb, "neomutt", subject, stack.address_of(RECIPIENT))
    _assert_sent_with_token(stack, postfix_log.new(), subject)
    _assert_no_token_outside_the_users_file(stack, sb)


def test_mutt_with_the_google_preset_signs_in_and_logs_in_with_oauthbearer(stack, preset_sandbox, tui):
    # Google's servers have OAUTHBEARER, tried first; the same helper, Google's endpoints (mapped to the stand-in).
    _configure(preset_sandbox, account={"provider": "google", "oauth2": {"client_id": APP}})
    dovecot_log = LogTail(stack.dovecot_log)
    tui.start(LOGIN, ["mutt"])
    _sign_in(stack, tui)
    tui.wait_for(*stack.inbox_subjects, timeout=SIGN_IN_TIMEOUT)
    _assert_token_login(dovecot_log.new(), LOGIN, "OAUTHBEARER")


def test_neomutt_falls_back_to_xoauth2_for_a_token_too_long_for_its_oauthbearer(stack, preset_sandbox, tui):
    # NeoMutt caps OAUTHBEARER tokens at 510 characters; the stand-in's are 1,600 (as long as Entra's, or many a
    # Keycloak's). Google's order, OAUTHBEARER then XOAUTH2, still gets it in.
    _configure(preset_sandbox, users=[{"login": LOGIN}], account={"provider": "google", "oauth2": {"client_id": APP}})
    dovecot_log = LogTail(stack.dovecot_log)
    tui.start(LOGIN, ["neomutt"])
    _sign_in(stack, tui)
    tui.wait_for(*stack.inbox_subjects, timeout=SIGN_IN_TIMEOUT)
    _assert_token_login(dovecot_log.new(), LOGIN, "XOAUTH2")


def test_absent_removes_the_helper_and_its_settings_and_leaves_the_users_token(stack, preset_sandbox):
    sb = preset_sandbox
    _configure(sb)
    for path in (LAYOUT["oauth2_helper"], LAYOUT["oauth2_config"]):
        assert sb.upper(path).exists(), path
    token = sb.upper("/home/%s/%s" % (LOGIN, TOKEN_FILE))
    token.parent.mkdir(parents=True)
    token.write_text("{}")
    result = converge(sb, {"mutt_state": "absent", "mail_clients_account": ACCOUNT})
    assert result.rc == 0, result
    gone = sb.run(["ls", LAYOUT["oauth2_helper"], LAYOUT["oauth2_config"]])
    assert gone.returncode != 0 and gone.stdout == "", gone
    # The user's own state is theirs (the README shows --forget at logout).
    assert token.read_text() == "{}"
