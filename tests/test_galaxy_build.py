"""What another department gets: the built tarball installs offline and works, docs included."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml
from ansible_runner import BIN, ansible_env, run_playbook

REPO = Path(__file__).resolve().parent.parent
ROLES = sorted(p.name for p in (REPO / "roles").iterdir() if (p / "meta" / "argument_specs.yml").exists()) \
    if (REPO / "roles").is_dir() else []


@pytest.fixture(scope="module")
def installed(tmp_path_factory, collection_tarball):
    """The built tarball, installed into an empty collections path."""
    tarball = collection_tarball
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
    if role == "lab_pull":  # configures no client: its own options
        assert "lab_pull_url" in text and "RandomizedDelaySec" in text
        return
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


# Automation Hub's checks and ansible-builder: their own venv (`make venv-importer`, part of `make deps`).
IMPORTER_BIN = REPO / ".venv-importer" / "bin"
IMPORTER_CONFIG = """[galaxy-importer]
RUN_ANSIBLE_TEST = False
RUN_ANSIBLE_LINT = True
CHECK_REQUIRED_TAGS = True
CHECK_RUNTIME_YAML = True
"""


def _importer_tool(name):
    tool = IMPORTER_BIN / name
    assert tool.exists(), "%s is missing: `make venv-importer` (part of `make deps`) installs it" % tool
    return tool


def test_galaxy_importer_with_required_tags_lists_each_plugin_once_with_docs(installed, tmp_path):
    """What Automation Hub runs on an upload (ansible-test sanity runs on its own, `make sanity`)."""
    config = tmp_path / "galaxy-importer.cfg"
    config.write_text(IMPORTER_CONFIG)
    env = dict(ansible_env(), GALAXY_IMPORTER_CONFIG=str(config), PATH="%s:/usr/bin:/bin" % IMPORTER_BIN)
    env.pop("ANSIBLE_COLLECTIONS_PATH", None)
    proc = subprocess.run([_importer_tool("python"), "-m", "galaxy_importer.main", str(installed["tarball"])],
                          capture_output=True, text=True, timeout=900, check=False, cwd=tmp_path, env=env)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0 and "Importer processing completed successfully" in output, output[-4000:]
    assert not [line for line in output.splitlines() if "WARNING" in line or "ERROR" in line], output[-4000:]
    loaded = [line.split(" ", 2)[2] for line in output.splitlines() if line.startswith("Loading filter ")]
    filters = sorted(p.stem for p in (REPO / "plugins" / "filter").glob("*.py"))
    # One line per filter (no phantom from a file named otherwise, no second one from a docs file).
    assert loaded == filters, loaded
    documented = json_docs(installed, "filter")
    assert sorted(documented) == ["middlebury.mail_clients." + name for name in filters]


def json_docs(installed, plugin_type):
    env = ansible_env({"ANSIBLE_COLLECTIONS_PATH": str(installed["path"])})
    proc = subprocess.run([BIN / "ansible-doc", "-t", plugin_type, "--json", "-l", "middlebury.mail_clients"],
                          capture_output=True, text=True, timeout=120, env=env, check=False)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_ansible_builder_creates_the_execution_environments_build_context(installed, tmp_path):
    """The EE definition gives a build context (building it needs the base image's registry, which CI lacks), and
    ansible-builder reads the collection's own meta/execution-environment.yml from the installed copy."""
    context = tmp_path / "context"
    definition = REPO / "ee" / "execution-environment.yml"
    proc = subprocess.run([_importer_tool("ansible-builder"), "create", "-f", str(definition), "-c", str(context)],
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    containerfile = (context / "Containerfile").read_text()
    assert "ansible-galaxy collection install" in containerfile and "EE_BASE_IMAGE" in containerfile
    wanted = yaml.safe_load((context / "_build" / "requirements.yml").read_text())
    assert {"name": "middlebury.mail_clients"} in wanted["collections"], wanted
    proc = subprocess.run([_importer_tool("ansible-builder"), "introspect", str(installed["path"])],
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # What meta/execution-environment.yml declares: nothing beyond ansible-core, on either side.
    assert yaml.safe_load(proc.stdout.split("---", 1)[1]) == {"python": [], "system": []}, proc.stdout
