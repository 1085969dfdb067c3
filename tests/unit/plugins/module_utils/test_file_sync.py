"""managed_files' logic on real files in a temp dir."""

from __future__ import annotations

import os
import stat
import subprocess

import pytest

from ansible_collections.middlebury.mail_clients.plugins.module_utils.file_sync import (
    FileSyncError,
    keyfile_contains,
)
from ansible_collections.middlebury.mail_clients.plugins.module_utils.file_sync import (
    sync_files as _sync_files,
)


def _run(argv):
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    return proc.returncode, proc.stdout, proc.stderr


def sync_files(entries, check_mode=False):
    return _sync_files(entries, _run, check_mode=check_mode)


def _mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_create_then_unchanged_then_update(tmp_path):
    target = tmp_path / "sub" / "dir" / "a.conf"
    results, diffs = sync_files([{"path": str(target), "content": "one\n"}])
    assert results[0]["action"] == "created" and results[0]["changed"]
    assert target.read_text() == "one\n" and _mode(target) == 0o644
    assert _mode(target.parent) == 0o755
    assert diffs[0]["after"] == "one\n" and diffs[0]["before"] == ""
    results, diffs = sync_files([{"path": str(target), "content": "one\n"}])
    assert results[0] == {"path": str(target), "changed": False, "action": "unchanged"} and diffs == []
    results, diffs = sync_files([{"path": str(target), "content": "two\n", "mode": "0640"}])
    assert results[0]["action"] == "updated" and target.read_text() == "two\n" and _mode(target) == 0o640
    assert diffs[0]["before"] == "one\n"


def test_mode_only_change_is_reported(tmp_path):
    target = tmp_path / "a"
    sync_files([{"path": str(target), "content": "x"}])
    results, _diffs = sync_files([{"path": str(target), "content": "x", "mode": "0600"}])
    assert results[0]["action"] == "attributes" and _mode(target) == 0o600


def test_check_mode_writes_nothing(tmp_path):
    target = tmp_path / "new" / "a"
    results, diffs = sync_files([{"path": str(target), "content": "x"}], check_mode=True)
    assert results[0]["changed"] and diffs
    assert not target.parent.exists()


def test_absent(tmp_path):
    target = tmp_path / "a"
    target.write_text("mine")
    results, _diffs = sync_files([{"path": str(target), "state": "absent"}], check_mode=True)
    assert results[0]["action"] == "removed" and target.exists()
    results, _diffs = sync_files([{"path": str(target), "state": "absent"}])
    assert results[0]["action"] == "removed" and not target.exists()
    results, _diffs = sync_files([{"path": str(target), "state": "absent"}])
    assert results[0] == {"path": str(target), "changed": False, "action": "absent"}


def test_marker_removes_only_our_files_under_old_names(tmp_path):
    marker = "<!-- written by us -->"
    old, current, theirs = tmp_path / "old.example.xml", tmp_path / "new.example.xml", tmp_path / "other.xml"
    old.write_text("x\n%s\n" % marker)
    theirs.write_text("not ours\n")
    entries = [{"path": str(current), "content": "y\n%s\n" % marker},
               {"path": str(tmp_path / "*.xml"), "state": "absent", "marker": marker}]
    results, _diffs = sync_files(entries, check_mode=True)
    assert [(r["path"], r["action"]) for r in results] == [(str(current), "created"), (str(old), "removed")]
    assert old.exists()
    sync_files(entries)
    assert current.exists() and theirs.read_text() == "not ours\n" and not old.exists()
    results, _diffs = sync_files(entries)
    assert [r["action"] for r in results] == ["unchanged"], "the file written by the same call is kept"


def test_a_file_named_by_an_entry_is_left_to_that_entry(tmp_path):
    marker = "<!-- written by us -->"
    ours = tmp_path / "old.example.xml"
    ours.write_text(marker)
    entries = [{"path": str(ours), "state": "absent"},
               {"path": str(tmp_path / "*.xml"), "state": "absent", "marker": marker}]
    results, _diffs = sync_files(entries)
    assert [(r["path"], r["action"]) for r in results] == [(str(ours), "removed")] and not ours.exists()


def test_marker_needs_an_absent_absolute_glob(tmp_path):
    with pytest.raises(FileSyncError, match="marker needs state absent"):
        sync_files([{"path": str(tmp_path / "*"), "content": "x", "marker": "m"}])


def test_each_new_file_is_validated_once(tmp_path):
    log = tmp_path / "validations"
    entries = [{"path": str(tmp_path / name), "content": "x\n", "validate": "sh -c 'echo %%s >> %s'" % log}
               for name in ("a", "b")]
    sync_files(entries)
    assert len(log.read_text().splitlines()) == 2


def test_failed_validation_keeps_the_old_file(tmp_path):
    target = tmp_path / "a"
    target.write_text("good\n")
    with pytest.raises(FileSyncError, match=r"files\[0\].*validation"):
        sync_files([{"path": str(target), "content": "bad\n", "validate": "grep -q good %s"}])
    assert target.read_text() == "good\n"
    assert os.listdir(tmp_path) == ["a"]  # no temp file left behind
    sync_files([{"path": str(target), "content": "good too\n", "validate": "grep -q good %s"}])
    assert target.read_text() == "good too\n"


def test_validation_runs_in_check_mode(tmp_path):
    target = tmp_path / "a"
    target.write_text("good\n")
    with pytest.raises(FileSyncError, match="validation"):
        sync_files([{"path": str(target), "content": "bad\n", "validate": "grep -q good %s"}], check_mode=True)


def test_every_entry_is_checked_before_anything_is_written(tmp_path):
    first = tmp_path / "first"
    with pytest.raises(FileSyncError, match=r"files\[1\].*absolute"):
        sync_files([{"path": str(first), "content": "x"}, {"path": "relative/path", "content": "y"}])
    assert not first.exists()
    with pytest.raises(FileSyncError, match=r"files\[1\].*content is required"):
        sync_files([{"path": str(first), "content": "x"}, {"path": str(tmp_path / "b")}])
    assert not first.exists()


def test_unknown_home_user_is_named(tmp_path):
    with pytest.raises(FileSyncError, match="no user 'no-such-user-xyz'"):
        sync_files([{"path": "~no-such-user-xyz/.muttrc", "content": "x"}])
    with pytest.raises(FileSyncError, match="must name the user"):
        sync_files([{"path": "~/.muttrc", "content": "x"}])


def test_symlink_is_never_replaced(tmp_path):
    real = tmp_path / "real"
    real.write_text("theirs")
    link = tmp_path / "link"
    link.symlink_to(real)
    with pytest.raises(FileSyncError, match="symbolic link"):
        sync_files([{"path": str(link), "content": "ours"}])
    assert real.read_text() == "theirs"


def test_keyfile_compare_ignores_keys_added_by_the_program(tmp_path):
    ours = "[Data Source]\nDisplayName=Mail\nEnabled=true\n"
    rewritten = "[Data Source]\nDisplayName=Mail\nEnabled=true\nParent=\n\n[Offline]\nStaySynchronized=false\n"
    assert keyfile_contains(rewritten, ours)
    assert not keyfile_contains(rewritten.replace("Enabled=true", "Enabled=false"), ours)
    target = tmp_path / "x.source"
    target.write_text(rewritten)
    target.chmod(0o644)
    results, _diffs = sync_files([{"path": str(target), "content": ours, "compare": "keyfile"}])
    assert results[0]["action"] == "unchanged"
    results, _diffs = sync_files([{"path": str(target), "content": ours}])
    assert results[0]["action"] == "updated"


def test_one_failing_validator_leaves_the_whole_batch_untouched(tmp_path):
    """Validators run on scratch copies of every changed file before the first write (or mkdir)."""
    first = tmp_path / "new" / "first"
    second = tmp_path / "other" / "second"
    with pytest.raises(FileSyncError, match=r"files\[1\].*validation"):
        sync_files([{"path": str(first), "content": "good\n", "validate": "grep -q good %s"},
                    {"path": str(second), "content": "bad\n", "validate": "grep -q good %s"}])
    assert os.listdir(tmp_path) == []
    with pytest.raises(FileSyncError, match=r"files\[0\].*validation"):
        sync_files([{"path": str(second), "content": "bad\n", "validate": "grep -q good %s"}], check_mode=True)
    assert os.listdir(tmp_path) == []


def test_binary_content_is_written_byte_exact_and_diffed_by_digest(tmp_path):
    import base64
    import hashlib

    target = tmp_path / "x.xpi"
    data = b"PK\x03\x04\x00\xff\xfe binary \r\n\x00"
    entry = {"path": str(target), "content_base64": base64.b64encode(data).decode()}
    results, diffs = sync_files([entry])
    assert results[0]["action"] == "created" and target.read_bytes() == data
    assert diffs[0]["after"] == "(binary, %d bytes, sha256 %s)\n" % (len(data), hashlib.sha256(data).hexdigest())
    results, diffs = sync_files([entry])
    assert results[0]["action"] == "unchanged" and diffs == []
    with pytest.raises(FileSyncError, match="exactly one of content and content_base64"):
        sync_files([dict(entry, content="text")])
    with pytest.raises(FileSyncError, match="not base64"):
        sync_files([{"path": str(target), "content_base64": "not base64!"}])
