"""managed_files on bad days, on real file systems: killed half-way, a full file system, two runs at once.
Every file is always the old or the new version, whole, and the next run finishes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from ansible_collections.middlebury.mail_clients.plugins.module_utils.file_sync import FileSyncError, sync_files

pytestmark = pytest.mark.timeout(300)
# sync_files in a process of its own (one module run), so that it can be killed.
RUN = r"""
import json, subprocess, sys
from ansible_collections.middlebury.mail_clients.plugins.module_utils.file_sync import sync_files
def run(argv):
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    return proc.returncode, proc.stdout, proc.stderr
for _ in range(int(sys.argv[2])):
    sync_files(json.loads(sys.argv[1]), run)
"""


def _run_command(argv):
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    return proc.returncode, proc.stdout, proc.stderr


def _child(entries, times=1):
    env = dict(os.environ, PYTHONPATH=os.environ["MAIL_CLIENTS_COLLECTIONS_ROOT"])
    return subprocess.Popen([sys.executable, "-c", RUN, json.dumps(entries), str(times)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for(predicate, seconds=60):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_killed_half_way_changes_nothing_and_the_next_run_finishes(tmp_path):
    first, second, mark = tmp_path / "first.rc", tmp_path / "second.rc", tmp_path / "validating"
    old = "old content\n" * 100
    first.write_text(old)
    second.write_text(old)
    new = "new content\n" * 200
    # The second file's validator hangs: the module is killed while the batch is being checked, after the
    # first file was checked and before anything went live.
    hang = "sh -c 'touch %s; sleep 120' %%s" % mark
    entries = [{"path": str(first), "content": new}, {"path": str(second), "content": new, "validate": hang}]
    child = _child(entries)
    try:
        assert _wait_for(mark.exists), "the validator never ran"
        time.sleep(0.5)
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait(timeout=60)
    assert first.read_text() == old and second.read_text() == old
    assert sorted(p.name for p in tmp_path.iterdir()) == ["first.rc", "second.rc", "validating"]
    results, _diffs = sync_files([entries[0], dict(entries[1], validate=None)], _run_command)
    assert [r["action"] for r in results] == ["updated", "updated"]
    assert first.read_text() == new and second.read_text() == new


@pytest.fixture
def tiny_fs(tmp_path):
    """A 256 KiB tmpfs of our own (the test runs as root, as CI does)."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)],
                          capture_output=True, text=True, timeout=30, check=False)
    assert proc.returncode == 0, "mounting a tmpfs needs root: %s" % proc.stderr
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True, timeout=30, check=False)


def test_full_file_system_is_a_clear_error_and_the_old_files_stay(tiny_fs):
    small, target = tiny_fs / "a-small.rc", tiny_fs / "zz-middlebury.rc"
    small.write_text("old\n")
    target.write_text("set from = 'old'\n")
    filler = tiny_fs / "filler"
    # Unbuffered, so that closing it has nothing left to write into the full file system.
    with filler.open("wb", buffering=0) as handle, pytest.raises(OSError):
        while True:  # until ENOSPC
            handle.write(b"x" * 4096)
    os.truncate(filler, filler.stat().st_size - 8192)  # room for the small file, not for the big one
    with pytest.raises(FileSyncError) as refused:
        sync_files([{"path": str(small), "content": "new\n"},
                    {"path": str(target), "content": "set from = 'new'\n" * 5000}], _run_command)
    message = str(refused.value)
    assert str(target) in message and "No space left on device" in message, message
    # The batch is all or nothing: the small file fitted, yet it did not go live without the other.
    assert small.read_text() == "old\n" and target.read_text() == "set from = 'old'\n"
    assert sorted(p.name for p in tiny_fs.iterdir()) == ["a-small.rc", "filler", "zz-middlebury.rc"], \
        "a temporary copy was left"


def test_two_runs_at_once_never_leave_a_mixed_file(tmp_path):
    target = tmp_path / "shared.source"
    contents = ["[Data Source]\nDisplayName=%s\n" % (letter * 20000) for letter in "AB"]
    children = [_child([{"path": str(target), "content": text}], times=60) for text in contents]
    seen = set()
    try:
        while any(c.poll() is None for c in children):
            if target.exists():
                seen.add(target.read_text())
    finally:
        for child in children:
            child.wait(timeout=120)
    assert all(c.returncode == 0 for c in children), [c.stderr.read() for c in children]
    assert seen <= set(contents) and target.read_text() in contents
    assert [p.name for p in tmp_path.iterdir()] == ["shared.source"], "temporary copies left behind"
