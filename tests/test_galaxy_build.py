"""What another department gets: the built tarball installs offline and works, docs included."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml
from ansible_runner import BIN, ansible_env, run_playbook

REPO = Path(__file__).resolve().parent.parent
ROLES = sorted(p.name for p in (REPO / "roles").iterdir() if (p / "meta" / "argument_specs.yml").exists()) \
    if (REPO / "roles").is_dir() else []


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """Build the collection and install the tarball into an empty collections path."""
    build = tmp_path_factory.mktemp("build")
    proc = subprocess.run([BIN / "ansible-galaxy", "collection", "build", str(REPO), "--output-path", str(build)],
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    version = yaml.safe_load((REPO / "galaxy.yml").read_text())["version"]
    tarball = build / ("middlebury-mail_clients-%s.tar.gz" % version)
    assert tarball.exists(), list(build.iterdir())
    dest = tmp_path_factory.mktemp("collections")
    # Only the fresh path may be configured, or galaxy sees this checkout as "already installed".
    proc = subprocess.run([BIN / "ansible-galaxy", "collection", "install", str(tarball), "-p", str(dest)],
                          capture_output=True, text=True, timeout=300, check=False,
                          env=ansible_env({"ANSIBLE_COLLECTIONS_PATH": str(dest)}))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    root = dest / "ansible_collections" / "middlebury" / "mail_clients"
    assert (root / "MANIFEST.json").exists()
    return {"tarball": tarball, "path": dest, "root": root}


def _doc(installed, *args):
    env = ansible_env({"ANSIBLE_COLLECTIONS_PATH": str(installed["path"])})
    proc = subprocess.run([BIN / "ansible-doc", *args], capture_output=True, text=True, timeout=120, env=env,
                          check=False)
    assert proc.returncode == 0, proc.stderr
    assert "WARNING" not in proc.stderr.upper() or "ERROR" not in proc.stderr.upper(), proc.stderr
    return proc.stdout


def test_tarball_leaves_out_what_is_not_content(installed):
    root = installed["root"]
    for unwanted in (".venv", ".git", "Makefile", ".ci", "tests/output", "mk"):
        assert not (root / unwanted).exists(), unwanted
    for wanted in ("plugins/module_utils/account_model.py", "README.md", "meta/runtime.yml"):
        assert (root / wanted).exists(), wanted


def test_filter_docs_are_complete(installed):
    text = _doc(installed, "-t", "filter", "middlebury.mail_clients.mail_account")
    for expected in ("incoming_security", "NTLM", "lab mode", "EXAMPLES", "RETURN"):
        assert expected.lower() in text.lower(), expected


def test_module_docs(installed):
    text = _doc(installed, "middlebury.mail_clients.managed_files")
    assert "validate" in text and "check_mode" in text


@pytest.mark.parametrize("role", ROLES)
def test_role_docs_show_the_shared_interface(installed, role):
    text = _doc(installed, "-t", "role", "middlebury.mail_clients.%s" % role)
    assert "mail_clients_account" in text and "mail_clients_users" in text


def test_a_playbook_runs_from_the_installed_copy(installed, tmp_path):
    target = tmp_path / "out"
    play = [{"hosts": "localhost", "gather_facts": False, "tasks": [{
        "name": "Use the installed collection",
        "middlebury.mail_clients.managed_files": {"files": [{
            "path": str(target), "content": "{{ ({} | middlebury.mail_clients.mail_account).incoming.host }}"}]},
    }]}]
    result = run_playbook(play, env={"ANSIBLE_COLLECTIONS_PATH": str(installed["path"])})
    assert result.rc == 0, result
    assert target.read_text() == "mail.middlebury.edu"
