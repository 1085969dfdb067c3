"""The evolution plan's file list."""

from __future__ import annotations

from plan_support import by_state, run_plan

from ansible_collections.middlebury.mail_clients.plugins.plugin_utils.client_plans import evolution

AUTOCONFIG_DIR = "/etc/xdg/evolution-data-server/autoconfig"
KINDS = {"imap": ("", "-identity", "-transport"), "pop": ("", "-identity", "-transport"),
         "m365": ("", "-mail", "-identity", "-transport")}


def _sources(part, where=AUTOCONFIG_DIR):
    return {"%s/middlebury-%s%s.source" % (where, part, kind) for kind in KINDS[part]}


def _source_files(files):
    return by_state([f for f in files if f["path"].endswith(".source")])


def test_lab_mode_writes_revisioned_templates_and_removes_the_other_protocols():
    files, _rendered = run_plan("evolution")
    assert _source_files(files) == (_sources("imap"), _sources("pop") | _sources("m365"))
    template = next(f for f in files if f["state"] == "present")
    assert template["content"].startswith("rendered account.source.j2\n\n[Autoconfig]\nRevision=")
    assert template["validate_with"] == {"name": "evolution-autoconfig"} and template["owner"] == "root"


def test_switching_protocol_swaps_the_uids():
    files, _rendered = run_plan("evolution", account={"protocol": "pop3"})
    assert _source_files(files) == (_sources("pop"), _sources("imap") | _sources("m365"))


def test_named_users_get_their_own_sources_compared_as_key_files():
    files, rendered = run_plan("evolution", users=[{"login": "alice"}])
    home = "~alice/.config/evolution/sources"
    # The lab templates go too: after a lab run they would still give every login the account.
    lab = _sources("imap") | _sources("pop") | _sources("m365")
    assert _source_files(files) == (_sources("imap", home), _sources("pop", home) | _sources("m365", home) | lab)
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


def test_microsoft_365_is_a_graph_collection_with_evolution_ews_and_its_environment():
    files, rendered = run_plan("evolution", account={"provider": "microsoft365"})
    present, gone = _source_files(files)
    assert present == _sources("m365") and _sources("imap") <= gone
    assert {name for name, _v in rendered} == {"m365-collection.source.j2", "m365-account.source.j2",
                                               "identity.source.j2", "m365-transport.source.j2"}
    assert {v["__evolution_oauth2_method"] for _n, v in rendered} == {"Microsoft365"}
    environment = next(f for f in files if f["path"].startswith("/etc/environment.d/"))
    assert environment["state"] == "present" and evolution.M365_ENVIRONMENT in environment["content"]
    options = {"evolution_dconf_settings": {}, "evolution_state": "present"}
    from ansible_collections.middlebury.mail_clients.plugins.module_utils.account_model import normalize_account
    assert "evolution-ews" in evolution.packages(options, evolution.LAYOUTS["Debian"],
                                                 normalize_account({"provider": "microsoft365"}))
    assert "evolution-ews" not in evolution.packages(options, evolution.LAYOUTS["Debian"], normalize_account({}))
    # Not for the other accounts.
    files, _rendered = run_plan("evolution")
    assert next(f for f in files if f["path"].startswith("/etc/environment.d/"))["state"] == "absent"
