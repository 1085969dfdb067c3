"""The mutt role's OAuth2 token helper (roles/mutt/files/mail_clients_oauth2.py), run as the clients run it,
against the stack's stand-in identity provider: device sign-in on a terminal, the user's token file, refreshes
without asking, one refresh for parallel clients, and plain-language failures. The real mutt and NeoMutt using
it are in test_mutt_oauth2.py."""

from __future__ import annotations

import fcntl
import json
import os
import re
import select
import stat
import subprocess
import sys
import termios
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from ansible_collections.middlebury.mail_clients.plugins.action.client_files import ROLES

HELPER = ROLES / "mutt" / "files" / "mail_clients_oauth2.py"
CLIENT = "mutt-helper-test"
USER = "helperjane"
USER_CODE = re.compile(r"enter the code ([A-Z0-9]{4}-[A-Z0-9]{4})")
TIMEOUT = 60

pytestmark = pytest.mark.timeout(300)


@pytest.fixture
def helper(mail_stack, tmp_path):
    """Run the helper with settings for the stand-in provider (by address: its certificate names it), a state
    directory of its own, and optionally a terminal."""
    base = "https://%s" % mail_stack.idp_ip
    config = tmp_path / "oauth2.json"
    config.write_text(json.dumps({
        "issuer": mail_stack.idp["name"], "client_id": CLIENT, "token_endpoint": base + "/token",
        "device_authorization_endpoint": base + "/devicecode", "scopes": ["mail", "offline_access"],
        "ca_file": str(mail_stack.ca_path)}))
    state = tmp_path / "state"
    env = {"PATH": "/usr/bin:/bin", "XDG_STATE_HOME": str(state), "LANG": "C.UTF-8"}

    class Helper:
        token_file = state / "mail-clients" / "oauth2-token.json"
        settings = config

        @staticmethod
        def run(*args, config_file=config):
            return subprocess.run([sys.executable, str(HELPER), "--config", str(config_file), *args],
                                  capture_output=True, text=True, timeout=TIMEOUT, env=env, check=False,
                                  stdin=subprocess.DEVNULL, start_new_session=True)

        @staticmethod
        def on_terminal(approve_as=USER):
            """Run on a pseudo-terminal; approve the code it shows there. (proc, what the terminal showed)."""
            master, slave = os.openpty()

            def controlling_terminal():
                fcntl.ioctl(0, termios.TIOCSCTTY, 0)

            proc = subprocess.Popen([sys.executable, str(HELPER), "--config", str(config), "--user", USER],
                                    stdin=slave, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                                    start_new_session=True, preexec_fn=controlling_terminal)
            os.close(slave)
            shown, code, deadline = "", None, time.monotonic() + TIMEOUT
            try:
                while code is None and time.monotonic() < deadline:
                    ready, _w, _x = select.select([master], [], [], 1)
                    if ready:
                        shown += os.read(master, 4096).decode("utf-8", "replace")
                        found = USER_CODE.search(shown)
                        code = found and found.group(1)
                assert code, "no device code on the terminal: %r" % shown
                mail_stack.idp_call("/test/approve-device", {"user_code": code, "user": approve_as})
                out, err = proc.communicate(timeout=TIMEOUT)
                while select.select([master], [], [], 0.2)[0]:
                    try:
                        shown += os.read(master, 4096).decode("utf-8", "replace")
                    except OSError:
                        break
            finally:
                os.close(master)
                if proc.poll() is None:
                    proc.kill()
            return proc, out, err, shown

        @staticmethod
        def age():
            """As if the access token's lifetime had passed, here and at the provider."""
            tokens = json.loads(Helper.token_file.read_text())
            tokens["expires_at"] = int(time.time()) - 1
            Helper.token_file.write_text(json.dumps(tokens))
            mail_stack.idp_call("/test/expire", {"user": USER})

    return Helper


def _introspected_user(stack, token):
    import base64
    import http.client

    from mailstack import settings
    from mailstack.tlsclient import context_for

    conn = http.client.HTTPSConnection(stack.idp_ip, settings.IDP_PORT, timeout=15,
                                       context=context_for(settings.IDP_NAME, stack.ca_path))
    secret = (stack.idp_dir / "introspection.secret").read_text().strip()
    basic = base64.b64encode(("%s:%s" % (settings.INTROSPECTION_CLIENT, secret)).encode()).decode()
    conn.request("POST", "/introspect", body="token=" + token, headers={
        "Host": settings.IDP_NAME, "Authorization": "Basic " + basic,
        "Content-Type": "application/x-www-form-urlencoded"})
    answer = json.loads(conn.getresponse().read())
    conn.close()
    return answer.get("username") if answer.get("active") else None


def _grants(stack):
    return [grant for grant, client in stack.token_grants() if client == CLIENT]


def test_first_run_signs_in_on_the_terminal_and_keeps_the_token_in_a_private_file(mail_stack, helper):
    proc, out, err, shown = helper.on_terminal()
    assert proc.returncode == 0, (err, shown)
    assert "Sign in to your mail as %s" % USER in shown and "/device" in shown, shown
    token = out.strip()
    assert _introspected_user(mail_stack, token) == USER
    info = helper.token_file.stat()
    assert stat.S_IMODE(info.st_mode) == 0o600 and info.st_uid == os.getuid()
    assert stat.S_IMODE(helper.token_file.parent.stat().st_mode) == 0o700
    assert token not in err and token not in shown
    # While it is comfortably valid, the same token, without asking the provider.
    before = len(_grants(mail_stack))
    again = helper.run()
    assert again.returncode == 0 and again.stdout.strip() == token and len(_grants(mail_stack)) == before


def test_an_expired_token_is_refreshed_without_asking_and_parallel_clients_refresh_once(mail_stack, helper):
    proc, out, err, _shown = helper.on_terminal()
    assert proc.returncode == 0, err
    helper.age()
    before = len(_grants(mail_stack))
    # Four clients at once (mutt's IMAP and SMTP, NeoMutt...), with a provider slow enough that they overlap:
    # the refresh token rotates, so an unserialised second refresh would present a spent one and fail.
    mail_stack.idp_call("/test/delay", {"seconds": 1.5})
    try:
        with ThreadPoolExecutor(4) as pool:
            runs = list(pool.map(lambda _i: helper.run(), range(4)))
    finally:
        mail_stack.idp_call("/test/delay", {"seconds": 0})
    assert [r.returncode for r in runs] == [0] * 4, [r.stderr for r in runs]
    tokens = {r.stdout.strip() for r in runs}
    assert len(tokens) == 1 and out.strip() not in tokens
    assert _introspected_user(mail_stack, tokens.pop()) == USER
    assert _grants(mail_stack)[before:] == ["refresh_token"]


def test_a_revoked_sign_in_says_so_and_the_next_start_signs_in_again(mail_stack, helper):
    proc, _out, err, _shown = helper.on_terminal()
    assert proc.returncode == 0, err
    mail_stack.idp_call("/test/revoke", {"user": USER})
    helper.age()
    refused = helper.run()
    assert refused.returncode == 1 and refused.stdout == ""
    assert "expired or was revoked" in refused.stderr and "sign in anew" in refused.stderr, refused.stderr
    assert not helper.token_file.exists()
    # Without a terminal there is nobody to sign in: said plainly, not a hang.
    lonely = helper.run()
    assert lonely.returncode == 1 and "no terminal" in lonely.stderr, lonely.stderr


def test_forget_removes_the_users_tokens(helper):
    proc, _out, err, _shown = helper.on_terminal()
    assert proc.returncode == 0, err
    gone = subprocess.run([sys.executable, str(HELPER), "--forget"], capture_output=True, text=True, timeout=TIMEOUT,
                          env={"PATH": "/usr/bin:/bin", "XDG_STATE_HOME": str(helper.token_file.parents[1])},
                          check=False)
    assert gone.returncode == 0 and not helper.token_file.exists(), gone.stderr


def test_a_token_file_others_can_read_is_refused(helper):
    proc, _out, err, _shown = helper.on_terminal()
    assert proc.returncode == 0, err
    helper.token_file.chmod(0o644)
    refused = helper.run()
    assert refused.returncode == 1 and "readable by others" in refused.stderr and refused.stdout == ""


def test_an_unreachable_provider_is_a_network_message(mail_stack, helper, tmp_path):
    from mailstack import settings

    config = json.loads(helper.settings.read_text())
    for key in ("token_endpoint", "device_authorization_endpoint"):
        config[key] = "https://%s:%d/token" % (mail_stack.idp_ip, settings.CLOSED_PORT)
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps(config))
    proc, _out, err, _shown = helper.on_terminal()
    assert proc.returncode == 0, err
    helper.age()
    refused = helper.run(config_file=broken)
    assert refused.returncode == 1 and "cannot reach the sign-in service" in refused.stderr, refused.stderr
    assert "network" in refused.stderr


def test_providers_refusals_are_explained_in_the_users_terms():
    sys.path.insert(0, str(HELPER.parent))
    try:
        import mail_clients_oauth2 as module
    finally:
        sys.path.pop(0)
    config = {"client_id": "0b1c2d3e-4f50", "scopes": ["https://outlook.office.com/IMAP.AccessAsUser.All"]}
    consent = module.explain(config, {"error": "invalid_grant", "error_description": (
        "AADSTS65001: The user or administrator has not consented to use the application with ID '0b1c2d3e-4f50'.")},
        "")
    assert "ask IT to grant consent" in consent and "0b1c2d3e-4f50" in consent and "IMAP.AccessAsUser.All" in consent
    disabled = module.explain(config, {"error": "invalid_client", "error_description": "AADSTS7000112: disabled"}, "")
    assert "app registration" in disabled
    assert "clock is 10 minutes slow" in module._clock_note(
        {"Date": time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 600))})
    assert module._clock_note({"Date": time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime())}) == ""


def test_the_helper_is_standard_library_python_3_only():
    imported = set(re.findall(r"^(?:import|from) ([a-z_.]+)", HELPER.read_text(), re.M))
    assert {name.split(".")[0] for name in imported} <= set(sys.stdlib_module_names)
    assert not HELPER.read_text().startswith("#!"), "the plan puts the OS's interpreter line on top"
    assert Path(HELPER).stat().st_mode & 0o111 == 0
