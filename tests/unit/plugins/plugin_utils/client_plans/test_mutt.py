"""The mutt plan's file list."""

from __future__ import annotations

from plan_support import by_state, run_plan

LAB = {"/etc/Muttrc.d/zz-middlebury.rc", "/etc/neomuttrc.d/zz-middlebury.rc"}
HELPER = "/usr/local/bin/mail-clients-oauth2"
HELPER_CONFIG = "/etc/mail-clients/oauth2.json"
# Password logins: the OAuth2 token helper is not wanted (removed if an earlier run installed it).
NO_HELPER = {HELPER, HELPER_CONFIG}
APP = {"client_id": "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0"}


def test_lab_mode_writes_one_root_dropin_per_client_and_nothing_in_homes():
    files, rendered = run_plan("mutt")
    assert by_state(files) == (LAB, NO_HELPER)
    written = [f for f in files if f["state"] == "present"]
    assert {f["owner"] for f in written} == {"root"} and {f["mode"] for f in written} == {"0644"}
    assert [r[1]["__mutt_render"]["client"] for r in rendered] == ["mutt", "neomutt"]


def test_a_client_not_listed_loses_its_dropin():
    files, _rendered = run_plan("mutt", {"mutt_clients": ["neomutt"]})
    assert by_state(files) == ({"/etc/neomuttrc.d/zz-middlebury.rc"}, {"/etc/Muttrc.d/zz-middlebury.rc", *NO_HELPER})


def test_named_users_get_their_own_file_read_by_both_clients():
    files, rendered = run_plan("mutt", users=[{"login": "alice"}, {"login": "bob"}])
    present = by_state(files)[0]
    assert present == LAB | {"~alice/.config/mutt/middlebury.rc", "~bob/.config/mutt/middlebury.rc"}
    alice = next(f for f in files if f["path"].startswith("~alice"))
    assert alice["mode"] == "0600" and "owner" not in alice
    assert alice["validate_with"] == {"name": "muttrc", "clients": ["mutt", "neomutt"], "missing_ok": False}
    assert [r[1]["__mutt_render"].get("index") for r in rendered] == [None, None, 0, 1]


def test_a_missing_client_is_fine_only_in_check_mode_with_an_install():
    files, _rendered = run_plan("mutt", {"mutt_install": True}, check_mode=True)
    muttrcs = [f for f in files if f["state"] == "present"]
    assert muttrcs and all(f["validate_with"]["missing_ok"] for f in muttrcs)
    files, _rendered = run_plan("mutt", {"mutt_install": False}, check_mode=True)
    assert not any(f["validate_with"]["missing_ok"] for f in files if f["state"] == "present")


def test_oauth2_installs_the_token_helper_and_its_settings_from_the_account():
    files, rendered = run_plan("mutt", account={"provider": "microsoft365", "oauth2": APP})
    helper = next(f for f in files if f["path"] == HELPER)
    assert helper["content"].startswith("#!/usr/bin/python3\n") and "def main(" in helper["content"]
    assert (helper["owner"], helper["mode"]) == ("root", "0755")
    config = next(f for f in files if f["path"] == HELPER_CONFIG)
    assert config["mode"] == "0644" and config["validate_with"] == {"name": "json"}
    settings = next(v["__mutt_oauth2"] for name, v in rendered if name == "oauth2.json.j2")
    assert settings["client_id"] == APP["client_id"] and settings["token_endpoint"].endswith("/token")
    assert "offline_access" in settings["scopes"] and settings["ca_file"] is None
    commands = {v["__mutt_refresh_command"] for name, v in rendered if name == "muttrc.j2"}
    assert commands == {"%s --config %s" % (HELPER, HELPER_CONFIG)}


def test_a_site_helper_replaces_ours_and_passwords_need_none():
    own = {"mutt_oauth_refresh_command": "~/bin/token"}
    files, rendered = run_plan("mutt", own, account={"auth": "oauth2"})
    assert by_state(files)[1] >= NO_HELPER
    assert {v["__mutt_refresh_command"] for name, v in rendered if name == "muttrc.j2"} == {"~/bin/token"}
    files, rendered = run_plan("mutt")
    assert by_state(files)[1] >= NO_HELPER


def test_the_helper_needs_the_device_flow_and_neomutt_pop_needs_oauthbearer():
    import pytest

    from ansible_collections.middlebury.mail_clients.plugins.module_utils.account_model import AccountError

    generic = {"auth": "oauth2", "oauth2": {"client_id": "mail-app", "token_endpoint": "https://sso.example.edu/t"}}
    with pytest.raises(AccountError, match=r"^mail_clients_account\.oauth2\.device_authorization_endpoint:"):
        run_plan("mutt", account=generic)
    with pytest.raises(AccountError, match=r"^mutt_clients:"):
        run_plan("mutt", account={"provider": "microsoft365", "protocol": "pop3", "oauth2": APP})
    files, _rendered = run_plan("mutt", {"mutt_clients": ["mutt"]},
                                account={"provider": "microsoft365", "protocol": "pop3", "oauth2": APP})
    assert files
