"""The mutt plan's file list."""

from __future__ import annotations

from plan_support import by_state, run_plan

LAB = {"/etc/Muttrc.d/zz-middlebury.rc", "/etc/neomuttrc.d/zz-middlebury.rc"}


def test_lab_mode_writes_one_root_dropin_per_client_and_nothing_in_homes():
    files, rendered = run_plan("mutt")
    assert by_state(files) == (LAB, set())
    assert {f["owner"] for f in files} == {"root"} and {f["mode"] for f in files} == {"0644"}
    assert [r[1]["__mutt_render"]["client"] for r in rendered] == ["mutt", "neomutt"]


def test_a_client_not_listed_loses_its_dropin():
    files, _rendered = run_plan("mutt", {"mutt_clients": ["neomutt"]})
    assert by_state(files) == ({"/etc/neomuttrc.d/zz-middlebury.rc"}, {"/etc/Muttrc.d/zz-middlebury.rc"})


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
    assert all(f["validate_with"]["missing_ok"] for f in files)
    files, _rendered = run_plan("mutt", {"mutt_install": False}, check_mode=True)
    assert not any(f["validate_with"]["missing_ok"] for f in files)
