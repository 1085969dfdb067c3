"""Run ansible-playbook from this checkout's venv and read its JSON result.

Tests use this instead of parsing human output: ``stats`` gives changed/failed counts per host
for the idempotence and check-mode assertions, ``tasks`` gives every result (and diff)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

BIN = Path(sys.executable).parent
# Actions that run on the controller only: any other task result is a module executed on the host.
CONTROLLER_ACTIONS = frozenset({"assert", "debug", "fail", "import_tasks", "include_role", "include_tasks",
                                "include_vars", "meta", "set_fact", "validate_argument_spec"})


def is_controller_action(action):
    """True for a controller-only action, named short (set_fact) or in full (ansible.builtin.set_fact)."""
    return str(action).rsplit(".", 1)[-1] in CONTROLLER_ACTIONS


def ansible_env(extra=None):
    env = dict(os.environ)
    env.update({
        "ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.json",
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_RETRY_FILES_ENABLED": "0",
        "ANSIBLE_LOCALHOST_WARNING": "0",
        "ANSIBLE_INVENTORY_UNPARSED_WARNING": "0",
        "ANSIBLE_DEPRECATION_WARNINGS": "0",
        "ANSIBLE_PYTHON_INTERPRETER": "/usr/bin/python3",
        "PATH": "%s:%s" % (BIN, env.get("PATH", "/usr/bin:/bin")),
    })
    env.update(extra or {})
    return env


class PlaybookResult:
    def __init__(self, proc):
        self.rc = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr
        start = proc.stdout.find("{")
        try:
            self.data = json.loads(proc.stdout[start:]) if start >= 0 else {}
        except json.JSONDecodeError:
            self.data = {}

    @property
    def stats(self):
        return self.data.get("stats", {})

    def changed(self, host="localhost"):
        return self.stats.get(host, {}).get("changed", 0)

    def failed(self, host="localhost"):
        stats = self.stats.get(host, {})
        return stats.get("failures", 0) + stats.get("unreachable", 0)

    def task_results(self, host="localhost"):
        """(task name, result) for every task that ran on host, in order."""
        for play in self.data.get("plays", []):
            for task in play.get("tasks", []):
                if host in task.get("hosts", {}):
                    yield task["task"]["name"], task["hosts"][host]

    def changed_tasks(self, host="localhost"):
        return [name for name, res in self.task_results(host) if res.get("changed")]

    def remote_executions(self, prefix="", host="localhost"):
        """Names of the tasks (starting with prefix) that ran a module on host: not skipped, not controller-only."""
        return [name for name, res in self.task_results(host) if name.startswith(prefix) and not res.get("skipped")
                and not is_controller_action(res.get("action", ""))
                # client_files with write: false checks and renders only; its writes return changed_paths.
                and not (str(res.get("action", "")).endswith("client_files") and "changed_paths" not in res)]

    def failure_messages(self, host="localhost"):
        return [res.get("msg", "") for _name, res in self.task_results(host) if res.get("failed")]

    def __repr__(self):
        return "PlaybookResult(rc=%s, stats=%s, failures=%s, stderr=%s)" % (
            self.rc, self.stats, self.failure_messages(), self.stderr[-2000:])


def run_playbook(plays, extra_vars=None, check=False, diff=False, sandbox=None, timeout=600, env=None,
                 args=()):
    """Run plays (a list, or a path) against localhost with the local connection.

    With a sandbox (tests/sandbox.py) the whole run happens inside it, so the roles write
    into the sandbox's /etc and /home."""
    workdir = Path(tempfile.mkdtemp(prefix="mc-play-"))
    if isinstance(plays, (str, Path)) and Path(plays).exists():
        playbook = Path(plays)
    else:
        playbook = workdir / "play.yml"
        playbook.write_text(yaml.safe_dump(plays, sort_keys=False))
    vars_file = workdir / "vars.json"
    vars_file.write_text(json.dumps(extra_vars or {}))
    argv = [str(BIN / "ansible-playbook"), "-i", "localhost,", "-c", "local", "-e", "@%s" % vars_file,
            str(playbook), *args]
    if check:
        argv.append("--check")
    if diff:
        argv.append("--diff")
    if sandbox is not None:
        argv = sandbox.wrap(argv)
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=ansible_env(env),
                          check=False)
    return PlaybookResult(proc)
