"""Run the molecule scenarios (extensions/molecule) end to end against the test mail stack.

The stack runs on the host; the scenarios' containers share the host network, so this module
only has to create the mail accounts the scenarios log in with and hand the stack's names,
addresses and CA to molecule through MAIL_CLIENTS_STACK_* variables. Each scenario runs its full
sequence (create ... destroy) and must exit 0; its whole output lands in tests/output/.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
OUTPUT = REPO / "tests" / "output"
# Mail accounts the scenarios log in as (their inventories name the same logins).
LOGINS = ("labstudent", "alice", "obrien")
# A cold run builds both images first (about 4 minutes) before the scenario itself.
SCENARIO_TIMEOUT = 1800


@pytest.fixture(scope="module")
def molecule_env(mail_stack):
    users = {login: "Pw-%s" % secrets.token_hex(8) for login in LOGINS}
    for login, password in users.items():
        mail_stack.add_user(login, password)
    env = dict(os.environ)
    env.update({
        "PATH": "%s:%s" % (BIN, env.get("PATH", "")),
        "MAIL_CLIENTS_STACK_HOSTS": json.dumps(mail_stack.hosts),
        "MAIL_CLIENTS_STACK_CA": str(mail_stack.ca_path),
        "MAIL_CLIENTS_STACK_USERS": json.dumps(users),
        "MAIL_CLIENTS_STACK_INBOX": json.dumps(list(mail_stack.inbox_subjects)),
        "MAIL_CLIENTS_STACK_FOLDERS": json.dumps(list(mail_stack.folders)),
        "ANSIBLE_FORCE_COLOR": "0",
        "NO_COLOR": "1",
    })
    return env


@pytest.mark.timeout(SCENARIO_TIMEOUT + 60)
@pytest.mark.parametrize("scenario", ["lab", "users"])
def test_scenario(scenario, molecule_env):
    OUTPUT.mkdir(parents=True, exist_ok=True)
    log = OUTPUT / ("molecule-%s.log" % scenario)
    with log.open("w") as out:
        try:
            proc = subprocess.run([str(BIN / "molecule"), "test", "-s", scenario], cwd=REPO, env=molecule_env,
                                  stdout=out, stderr=subprocess.STDOUT, timeout=SCENARIO_TIMEOUT, check=False)
        except subprocess.TimeoutExpired:
            subprocess.run([str(BIN / "molecule"), "destroy", "-s", scenario], cwd=REPO, env=molecule_env,
                           capture_output=True, timeout=300, check=False)
            pytest.fail("molecule test -s %s timed out after %d s; output in %s" % (scenario, SCENARIO_TIMEOUT, log))
    tail = "\n".join(log.read_text(errors="replace").splitlines()[-80:])
    assert proc.returncode == 0, "molecule test -s %s failed (rc %d); full output in %s\n%s" % (
        scenario, proc.returncode, log, tail)
