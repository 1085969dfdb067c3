"""Run the molecule scenarios (extensions/molecule) end to end against the test mail stack.

The stack runs on the host; the scenarios' containers share the host network, so this module
only has to create the mail accounts the scenarios log in with and hand the stack's names,
addresses and CA to molecule through MAIL_CLIENTS_STACK_* variables. Each scenario runs its full
sequence (create ... destroy) and must exit 0 and leave no container behind; its whole output
lands in tests/output/molecule-<scenario>.log.

Two runs on one machine (two checkouts, a developer and CI) must not touch each other: each
session gets its own run id (MAIL_CLIENTS_MOLECULE_RUN, part of every container name, see
extensions/molecule/shared/inventory/lab_pc_vars.yml) and each scenario its own molecule
ephemeral directory (state, inventory, the collection link, the fleet report).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
OUTPUT = REPO / "tests" / "output"
# Mail accounts the scenarios log in as (their inventories name the same logins).
LOGINS = ("labstudent", "alice", "obrien")
# A cold run builds both images first (about 4 minutes) before the scenario itself.
SCENARIO_TIMEOUT = 1800
# Labels shared/create.yml puts on every container (lab_pc_labels in lab_pc_vars.yml).
RUN_LABEL = "org.middlebury.mail-clients.molecule-run"
SCENARIO_LABEL = "org.middlebury.mail-clients.molecule-scenario"
# Run ids this module makes: "<pid of the pytest process>-<random>".
OWN_RUN_ID = re.compile(r"^(\d+)-[0-9a-f]+$")
PODMAN_ENV = dict(os.environ, CONTAINERS_CONF=str(REPO / "tests" / "containers" / "containers.conf"))


def podman(*args):
    return subprocess.run(["podman", *args], env=PODMAN_ENV, capture_output=True, text=True, timeout=300,
                          check=False)


def run_containers(label_filter):
    """{name: labels} of the containers (running or not) that carry the given label (KEY or KEY=VALUE)."""
    proc = podman("ps", "--all", "--filter", "label=%s" % label_filter, "--format", "json")
    assert proc.returncode == 0, "podman ps failed: %s" % proc.stderr
    return {c["Names"][0]: c.get("Labels") or {} for c in json.loads(proc.stdout or "[]")}


def remove_containers(names):
    if names:
        podman("rm", "--force", "--ignore", *sorted(names))


def process_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def prune_dead_runs():
    """Remove containers of earlier sessions of this module whose pytest process is gone.

    A SIGKILLed session never reaches molecule's destroy; its containers have unique names, so
    they never break a later run, but they would keep running forever. Only ids of our own format
    whose process is gone are touched: a live concurrent run's containers are left alone."""
    dead = []
    for name, labels in run_containers(RUN_LABEL).items():
        match = OWN_RUN_ID.match(labels.get(RUN_LABEL, ""))
        if match and not process_alive(int(match.group(1))):
            dead.append(name)
    remove_containers(dead)


@pytest.fixture(scope="module")
def molecule_env(mail_stack):
    prune_dead_runs()
    users = {login: "Pw-%s" % secrets.token_hex(8) for login in LOGINS}
    for login, password in users.items():
        mail_stack.add_user(login, password)
    env = dict(os.environ)
    env.update({
        "PATH": "%s:%s" % (BIN, env.get("PATH", "")),
        "MAIL_CLIENTS_MOLECULE_RUN": "%d-%s" % (os.getpid(), secrets.token_hex(3)),
        "MAIL_CLIENTS_STACK_HOSTS": json.dumps(mail_stack.hosts),
        "MAIL_CLIENTS_STACK_CA": str(mail_stack.ca_path),
        "MAIL_CLIENTS_STACK_USERS": json.dumps(users),
        "MAIL_CLIENTS_STACK_INBOX": json.dumps(list(mail_stack.inbox_subjects)),
        "MAIL_CLIENTS_STACK_FOLDERS": json.dumps(list(mail_stack.folders)),
        "ANSIBLE_FORCE_COLOR": "0",
        "NO_COLOR": "1",
    })
    return env


def run_molecule(args, env, out, timeout):
    """Run molecule in its own process group: on timeout the whole tree (ansible-playbook, podman
    exec ...) is stopped, not just molecule. Returns the exit code, None on timeout."""
    proc = subprocess.Popen([str(BIN / "molecule"), *args], cwd=REPO, env=env, stdout=out,
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        for sig, grace in ((signal.SIGTERM, 30), (signal.SIGKILL, 30)):
            try:
                os.killpg(proc.pid, sig)
                proc.wait(timeout=grace)
                break
            except ProcessLookupError:
                break
            except subprocess.TimeoutExpired:
                continue
        return None


@pytest.mark.timeout(SCENARIO_TIMEOUT + 600)
@pytest.mark.parametrize("scenario", ["lab", "users"])
def test_scenario(scenario, molecule_env):
    run_id = molecule_env["MAIL_CLIENTS_MOLECULE_RUN"]
    ephemeral = tempfile.mkdtemp(prefix="mail-clients-molecule-%s-" % scenario)
    env = dict(molecule_env, MOLECULE_EPHEMERAL_DIRECTORY=ephemeral)
    OUTPUT.mkdir(parents=True, exist_ok=True)
    # Written under a per-run name and renamed at the end: a concurrent run in the same checkout
    # never interleaves its output with ours.
    log = OUTPUT / ("molecule-%s.log" % scenario)
    live_log = OUTPUT / ("molecule-%s.%s.log" % (scenario, run_id))
    try:
        with live_log.open("w") as out:
            rc = run_molecule(["test", "-s", scenario], env, out, SCENARIO_TIMEOUT)
            if rc is None:
                # Killed mid-step: molecule's own destroy-on-failure did not run.
                run_molecule(["destroy", "-s", scenario], env, out, 300)
        os.replace(live_log, log)
        # Whatever happened, no container of this run's scenario may survive it.
        left = run_containers("%s=%s" % (RUN_LABEL, run_id))
        left = {name for name, labels in left.items() if labels.get(SCENARIO_LABEL) == scenario}
        remove_containers(left)
    finally:
        shutil.rmtree(ephemeral, ignore_errors=True)
    tail = "\n".join(log.read_text(errors="replace").splitlines()[-80:])
    assert rc is not None, "molecule test -s %s timed out after %d s; output in %s\n%s" % (
        scenario, SCENARIO_TIMEOUT, log, tail)
    assert rc == 0, "molecule test -s %s failed (rc %d); full output in %s\n%s" % (scenario, rc, log, tail)
    assert not left, "molecule's destroy left containers behind (removed now): %s" % sorted(left)
