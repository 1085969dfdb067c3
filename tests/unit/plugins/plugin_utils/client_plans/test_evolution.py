"""The evolution plan's file list."""

from __future__ import annotations

from plan_support import by_state, run_plan

from ansible_collections.middlebury.mail_clients.plugins.plugin_utils.client_plans import evolution

AUTOCONFIG_DIR = "/etc/xdg/evolution-data-server/autoconfig"
KINDS = ("", "-identity", "-transport")


def _sources(protocol, where=AUTOCONFIG_DIR):
    return {"%s/middlebury-%s%s.source" % (where, protocol, kind) for kind in KINDS}


def _source_files(files):
    return by_state([f for f in files if f["path"].endswith(".source")])


def test_lab_mode_writes_revisioned_templates_and_removes_the_other_protocols():
    files, _rendered = run_plan("evolution")
    assert _source_files(files) == (_sources("imap"), _sources("pop"))
    template = next(f for f in files if f["state"] == "present")
    assert template["content"].startswith("rendered account.source.j2\n\n[Autoconfig]\nRevision=")
    assert template["validate_with"] == {"name": "evolution-autoconfig"} and template["owner"] == "root"


def test_switching_protocol_swaps_the_uids():
    files, _rendered = run_plan("evolution", account={"protocol": "pop3"})
    assert _source_files(files) == (_sources("pop"), _sources("imap"))


def test_named_users_get_their_own_sources_compared_as_key_files():
    files, rendered = run_plan("evolution", users=[{"login": "alice"}])
    home = "~alice/.config/evolution/sources"
    # The lab templates go too: after a lab run they would still give every login the account.
    assert _source_files(files) == (_sources("imap", home), _sources("pop", home) | _sources("imap") | _sources("pop"))
    assert {f.get("compare") for f in files if f["state"] == "present"} == {"keyfile"}
    assert [r[1]["__evolution_person"]["index"] for r in rendered] == [0, 0, 0]


def test_dconf_files_only_with_settings_and_compiled_after_a_change():
    files, _rendered = run_plan("evolution")
    assert {f["path"] for f in files if "dconf" in f["path"] and f["state"] == "present"} == set()
    files, _rendered = run_plan("evolution", {"evolution_dconf_settings": {"org/x": {"k": True}}})
    dconf = {f["path"]: f for f in files if f["path"].startswith("/etc/dconf/")}
    assert dconf["/etc/dconf/db/local.d/50-middlebury-evolution"]["validate_with"] == {"name": "dconf"}
    assert dconf["/etc/dconf/db/local.d/locks/50-middlebury-evolution"]["state"] == "absent"
    assert dconf["/etc/dconf/profile/user"]["state"] == "present"
    assert evolution.after_change(evolution.LAYOUTS["Debian"]) == [
        {"paths": ["/etc/dconf/"], "command": ["dconf", "update"]}]
