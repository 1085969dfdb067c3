"""The thunderbird plan's file list."""

from __future__ import annotations

from plan_support import by_state, run_plan

from ansible_collections.middlebury.mail_clients.plugins.plugin_utils.client_plans import thunderbird

LAYOUT = thunderbird.LAYOUTS["Debian"]
AUTOCONFIG = LAYOUT["pref_dir"] + "/autoconfig.js"
CFG = "%s/%s" % (LAYOUT["cfg_dir"], thunderbird.CFG_NAME)
LEGACY = "%s/%s" % (LAYOUT["legacy_cfg_dir"], thunderbird.CFG_NAME)
ISP = LAYOUT["isp_dir"] + "/middlebury.edu.xml"
EXTENSION = "%s/%s" % (LAYOUT["cfg_dir"], thunderbird.EXTENSION_FILE)


def test_present_writes_autoconfig_policies_and_wizard_file_and_no_validator_needs_a_package():
    files, _rendered = run_plan("thunderbird")
    assert by_state(files) == ({AUTOCONFIG, CFG, LAYOUT["policies_path"], ISP}, {LEGACY, EXTENSION})
    validators = {f["path"]: f.get("validate_with", {}).get("name") for f in files if f["state"] == "present"}
    assert validators == {AUTOCONFIG: None, CFG: None, LAYOUT["policies_path"]: "json", ISP: "xml"}
    assert not any("validate" in f for f in files)


def test_stale_wizard_files_of_ours_are_found_by_the_marker():
    files, _rendered = run_plan("thunderbird", account={"mail_domain": "example.org"})
    (marked,) = [f for f in files if "marker" in f]
    assert marked == {"path": LAYOUT["isp_dir"] + "/*.xml", "state": "absent", "marker": thunderbird.ISP_MARKER}
    assert LAYOUT["isp_dir"] + "/example.org.xml" in by_state(files)[0]


def test_absent_keeps_the_cfg_as_a_cleanup_script_unless_told_otherwise():
    files, rendered = run_plan("thunderbird", {"thunderbird_state": "absent"})
    # The policies stay with the cleanup too: they block our provider extension out of the profiles.
    assert by_state(files)[0] == {AUTOCONFIG, CFG, LAYOUT["policies_path"]}
    assert all(variables["__thunderbird_define"] is False for _name, variables in rendered)
    files, rendered = run_plan("thunderbird", {"thunderbird_state": "absent", "thunderbird_cleanup_profiles": False})
    assert by_state(files)[0] == set() and not rendered


def test_lock_follows_lab_mode_unless_set():
    def lock(options=None, users=None):
        _files, rendered = run_plan("thunderbird", options, users=users)
        return {variables["__thunderbird_lock"] for _name, variables in rendered}
    assert lock() == {True}
    assert lock(users=[{"login": "a"}]) == {False}
    assert lock({"thunderbird_lock_server_settings": True}, users=[{"login": "a"}]) == {True}


def test_the_organisations_app_gets_a_provider_extension_packed_the_same_every_time():
    import base64
    import io
    import zipfile

    account = {"provider": "microsoft365", "oauth2": {"client_id": "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0"}}
    files, rendered = run_plan("thunderbird", account=account)
    (xpi,) = [f for f in files if f["path"] == EXTENSION]
    again, _rendered = run_plan("thunderbird", account=account)
    assert xpi == next(f for f in again if f["path"] == EXTENSION)
    archive = zipfile.ZipFile(io.BytesIO(base64.b64decode(xpi["content_base64"])))
    assert archive.namelist() == ["manifest.json"]
    urls = {v["__thunderbird_extension_url"] for _name, v in rendered}
    assert urls == {"file://" + EXTENSION}
    # Without a client ID: Thunderbird's built-in registration, no extension.
    files, rendered = run_plan("thunderbird", account={"provider": "microsoft365"})
    assert EXTENSION in by_state(files)[1] and {v["__thunderbird_extension_url"] for _n, v in rendered} == {None}


def test_ews_is_for_microsoft_365_only_takes_the_app_in_its_override_and_warns():
    import pytest

    from ansible_collections.middlebury.mail_clients.plugins.module_utils.account_model import (
        EWS_END,
        AccountError,
        normalize_account,
    )

    for account in ({}, {"provider": "google"}, {"provider": "microsoft365", "auth": "password"}):
        with pytest.raises(AccountError, match=r"^thunderbird_ews: Exchange Web Services need"):
            run_plan("thunderbird", {"thunderbird_ews": True}, account=account)
    account = {"provider": "microsoft365", "oauth2": {"client_id": "an-app", "tenant": "example.org"}}
    files, rendered = run_plan("thunderbird", {"thunderbird_ews": True}, account=account)
    # The tenant's app goes into the per-host override: no provider extension, which would claim the host.
    assert EXTENSION in by_state(files)[1]
    from urllib.parse import urlsplit

    model = normalize_account(account)
    ews = [v["__thunderbird_ews"] for _name, v in rendered]
    assert ews and all(x == ews[0] for x in ews)
    assert ews[0]["host"] == urlsplit(model["ews"]["url"]).hostname
    assert ews[0]["endpoint_host"] == urlsplit(model["oauth2"]["token_endpoint"]).hostname
    assert {v["__thunderbird_keys"]["account"] for _n, v in rendered} == {thunderbird.EWS_KEYS["account"]}
    options = {"thunderbird_ews": True, "thunderbird_state": "present"}
    (said,) = thunderbird.warnings(options, normalize_account(account))
    assert said.startswith("thunderbird_ews:") and EWS_END in said and "EWSAllowedAppIDs" in said
    assert thunderbird.warnings(dict(options, thunderbird_state="absent"), normalize_account(account)) == []
    assert thunderbird.warnings(dict(options, thunderbird_ews=False), normalize_account(account)) == []
