"""The thunderbird plan's file list."""

from __future__ import annotations

from plan_support import by_state, run_plan

from ansible_collections.middlebury.mail_clients.plugins.plugin_utils.client_plans import thunderbird

LAYOUT = thunderbird.LAYOUTS["Debian"]
AUTOCONFIG = LAYOUT["pref_dir"] + "/autoconfig.js"
CFG = "%s/%s" % (LAYOUT["cfg_dir"], thunderbird.CFG_NAME)
LEGACY = "%s/%s" % (LAYOUT["legacy_cfg_dir"], thunderbird.CFG_NAME)
ISP = LAYOUT["isp_dir"] + "/middlebury.edu.xml"


def test_present_writes_autoconfig_policies_and_wizard_file_and_no_validator_needs_a_package():
    files, _rendered = run_plan("thunderbird")
    assert by_state(files) == ({AUTOCONFIG, CFG, LAYOUT["policies_path"], ISP}, {LEGACY})
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
    assert by_state(files)[0] == {AUTOCONFIG, CFG}
    assert all(variables["__thunderbird_define"] is False for _name, variables in rendered)


def test_lock_follows_lab_mode_unless_set():
    def lock(options=None, users=None):
        _files, rendered = run_plan("thunderbird", options, users=users)
        return {variables["__thunderbird_lock"] for _name, variables in rendered}
    assert lock() == {True}
    assert lock(users=[{"login": "a"}]) == {False}
    assert lock({"thunderbird_lock_server_settings": True}, users=[{"login": "a"}]) == {True}
