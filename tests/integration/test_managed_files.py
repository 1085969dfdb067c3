"""managed_files through Ansible, in a sandbox with real unix users."""

from __future__ import annotations

import os

import pytest
from ansible_runner import run_playbook
from sandbox import Sandbox


def _play(files):
    return [{"hosts": "localhost", "gather_facts": False,
             "tasks": [{"name": "Ship files", "middlebury.mail_clients.managed_files": {"files": files}}]}]


@pytest.fixture
def sandbox(tmp_path):
    box = Sandbox(tmp_path / "sandbox")
    box.add_user("mfalice")
    return box


def test_home_files_are_owned_by_the_user(sandbox):
    files = [{"path": "~mfalice/.config/mc/test.rc", "content": "x\n"}]
    result = run_playbook(_play(files), sandbox=sandbox)
    assert result.rc == 0, result
    assert result.changed() == 1
    listing = sandbox.sh("stat -c '%U %a %n' /home/mfalice/.config /home/mfalice/.config/mc "
                         "/home/mfalice/.config/mc/test.rc").stdout.split("\n")
    assert listing[:3] == ["mfalice 700 /home/mfalice/.config", "mfalice 700 /home/mfalice/.config/mc",
                           "mfalice 600 /home/mfalice/.config/mc/test.rc"]
    again = run_playbook(_play(files), sandbox=sandbox)
    assert again.rc == 0 and again.changed() == 0, again


def test_a_planted_symlink_cannot_redirect_the_write(sandbox):
    # The user points the directory we write into at a root-owned place.
    sandbox.sh("runuser -u mfalice -- ln -s /etc/mc-victim /home/mfalice/.config && mkdir -p /etc/mc-victim")
    result = run_playbook(_play([{"path": "~mfalice/.config/mc.rc", "content": "x\n"}]), sandbox=sandbox)
    assert result.rc != 0
    assert "Permission denied" in " ".join(result.failure_messages()), result
    assert not os.path.exists(sandbox.upper("/etc/mc-victim/mc.rc"))


def test_check_and_diff_mode(sandbox):
    files = [{"path": "/etc/mc-test/a.conf", "content": "hello\n"}]
    check = run_playbook(_play(files), sandbox=sandbox, check=True, diff=True)
    assert check.rc == 0 and check.changed() == 1, check
    diff = next(res for _name, res in check.task_results())["diff"]
    assert diff[0]["after"] == "hello\n"
    assert not os.path.exists(sandbox.upper("/etc/mc-test/a.conf"))
    real = run_playbook(_play(files), sandbox=sandbox)
    assert real.rc == 0 and real.changed() == 1
    assert sandbox.upper("/etc/mc-test/a.conf").read_text() == "hello\n"
