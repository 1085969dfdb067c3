"""managed_files on bad days, on real file systems: killed between two files, a full file system, two
runs at once. Every file is always the old or the new version, whole, and the next run finishes."""

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


def test_killed_between_two_files_leaves_each_whole_and_the_next_run_finishes(tmp_path):
    first, second, mark = tmp_path / "first.rc", tmp_path / "second.rc", tmp_path / "validated-once"
    old = "old content\n" * 100
    first.write_text(old)
    second.write_text(old)
    new = "new content\n" * 200
    # second's validator passes in the dry run (leaving a mark), then hangs in the real run: the module is
    # killed after the first file went live and before the second did.
    hang = "sh -c 'if [ -e %s ]; then sleep 120; fi; touch %s' %%s" % (mark, mark)
    entries = [{"path": str(first), "content": new}, {"path": str(second), "content": new, "validate": hang}]
    child = _child(entries)
    try:
        assert _wait_for(lambda: first.read_text() == new), "the first file never went live"
        assert _wait_for(mark.exists)
        time.sleep(0.5)
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait(timeout=60)
    assert first.read_text() == new and second.read_text() == old
    mark.unlink()
    results, _diffs = sync_files([entries[0], dict(entries[1], validate=None)], _run_command)
    assert [r["action"] for r in results] == ["unchanged", "updated"]
    assert second.read_text() == new


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


def test_full_file_system_is_a_clear_error_and_the_old_file_stays(tiny_fs):
    target = tiny_fs / "zz-middlebury.rc"
    target.write_text("set from = 'old'\n")
    filler = tiny_fs / "filler"
    with filler.open("wb") as handle, pytest.raises(OSError):
        while True:  # until ENOSPC
            handle.write(b"x" * 4096)
            handle.flush()
    with pytest.raises(FileSyncError) as refused:
        sync_files([{"path": str(target), "content": "set from = 'new'\n" * 5000}], _run_command)
    message = str(refused.value)
    assert str(target) in message and "No space left on device" in message, message
    assert target.read_text() == "set from = 'old'\n"
    assert sorted(p.name for p in tiny_fs.iterdir()) == ["filler", "zz-middlebury.rc"], "a temporary copy was left"


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
