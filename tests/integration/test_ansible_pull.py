"""Lab PCs that configure themselves: the lab_pull role's timer and service, and ansible-pull from a local git
repository laid out as the README says (local.yml importing middlebury.mail_clients.pull, the collection vendored
under collections/ with an ansible.cfg naming it, the lab's variables in group_vars). Inside the test sandbox
(the host's /etc, /var/lib and Thunderbird's directories overlaid), as root, as systemd would run it: the
service's own ExecStart line, twice at once. The first converges lab mode, the second waits for the first's lock
and then changes nothing."""

from __future__ import annotations

import datetime
import re
import shlex
import subprocess
from pathlib import Path

import pytest
import yaml
from ansible_runner import BIN, ansible_env, run_playbook
from sandbox import Sandbox

from ansible_collections.middlebury.mail_clients.plugins.plugin_utils.client_plans import mutt, thunderbird

REPO = Path(__file__).resolve().parents[2]
UNITS = "/etc/systemd/system"
PULL_DIR = "/var/lib/mail-clients-pull"
LOCK = "/var/lib/mail-clients-pull.lock"
TB = thunderbird.LAYOUTS["Debian"]
VENDORED_PLAY = "Configure the mail clients (the lab repository's copy)"
LAB_VARS = {"mutt_install": False, "thunderbird_install": False, "evolution_install": False}

pytestmark = pytest.mark.timeout(900)

# Both runs in one sandbox (one mount namespace): the second starts once the first holds the lock.
TWO_RUNS = r"""
set -u
lock=$1; shift
"$@" >/var/lib/run1.log 2>&1 &
first=$!
tries=0
while flock -n "$lock" true; do
  tries=$((tries + 1)); [ "$tries" -lt 1200 ] || { echo "run 1 never took the lock" >&2; exit 99; }
  sleep 0.1
done
"$@" >/var/lib/run2.log 2>&1; echo $? >/var/lib/run2.rc
wait "$first"; echo $? >/var/lib/run1.rc
date +%s >/var/lib/run1.waited
"""


def _git(repo, *args):
    proc = subprocess.run(["git", "-C", str(repo), "-c", "user.name=Lab Admin", "-c", "user.email=lab@example.org",
                           *args], capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def _lab_repository(tmp_path, tarball):
    """The lab's repository as the README describes it, with the built collection vendored."""
    repo = tmp_path / "lab-repo"
    (repo / "group_vars").mkdir(parents=True)
    proc = subprocess.run([BIN / "ansible-galaxy", "collection", "install", str(tarball),
                           "-p", str(repo / "collections")], capture_output=True, text=True, timeout=300,
                          check=False, env=ansible_env({"ANSIBLE_COLLECTIONS_PATH": str(repo / "collections")}))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # Marked, so that the run shows it used this copy and not the checkout under test.
    site = repo / "collections" / "ansible_collections" / "middlebury" / "mail_clients" / "playbooks" / "site.yml"
    site.write_text(site.read_text().replace("- name: Configure the mail clients\n", "- name: %s\n" % VENDORED_PLAY))
    (repo / "ansible.cfg").write_text("[defaults]\ncollections_path = ./collections\n")
    (repo / "local.yml").write_text("---\n- name: This lab PC\n  ansible.builtin.import_playbook: "
                                    "middlebury.mail_clients.pull\n")
    (repo / "group_vars" / "all.yml").write_text(yaml.safe_dump(LAB_VARS))
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "lab PCs")
    return repo


def _started_at(log):
    found = re.search(r"Starting Ansible Pull at (\S+ \S+)", log)
    assert found, log[-2000:]
    return datetime.datetime.strptime(found.group(1), "%Y-%m-%d %H:%M:%S").timestamp()


def _recap(log):
    found = re.search(r"^localhost\s+: ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", log, re.M)
    assert found, log[-3000:]
    return dict(zip(("ok", "changed", "unreachable", "failed"), map(int, found.groups())))


def test_the_timer_runs_ansible_pull_one_at_a_time_and_the_lab_converges_then_stays(tmp_path, collection_tarball):
    repo = _lab_repository(tmp_path, collection_tarball)
    sb = Sandbox(tmp_path / "pc", extra_overlays=(TB["cfg_dir"], TB["isp_dir"], "/var/lib"))
    role = [{"hosts": "localhost", "gather_facts": False, "roles": [{"role": "middlebury.mail_clients.lab_pull"}]}]
    settings = {"lab_pull_url": "file://%s" % repo, "lab_pull_directory": PULL_DIR, "lab_pull_lock_file": LOCK,
                "lab_pull_command": str(BIN / "ansible-pull"), "lab_pull_start_now": False}
    result = run_playbook(role, settings, sandbox=sb)
    assert result.rc == 0, result
    again = run_playbook(role, settings, sandbox=sb)
    assert again.rc == 0 and again.changed() == 0, again

    timer = sb.upper(UNITS + "/mail-clients-pull.timer").read_text()
    assert re.search(r"^RandomizedDelaySec=15min$", timer, re.M) and re.search(r"^OnBootSec=5min$", timer, re.M)
    assert re.search(r"^OnCalendar=hourly$", timer, re.M) and "WantedBy=timers.target" in timer
    wants = sb.upper(UNITS + "/timers.target.wants/mail-clients-pull.timer")
    assert wants.is_symlink() and str(wants.readlink()) == "../mail-clients-pull.timer"
    service = sb.upper(UNITS + "/mail-clients-pull.service").read_text()
    (exec_start,) = re.findall(r"^ExecStart=(.*)$", service, re.M)
    argv = shlex.split(exec_start)
    assert argv[:4] == ["/usr/bin/flock", "--wait", "3600", LOCK], argv

    # As systemd runs it (root, no inventory, no collections path but the repository's), twice at once.
    env = {"PATH": "%s:/usr/sbin:/usr/bin:/sbin:/bin" % BIN, "HOME": "/root", "LANG": "C.UTF-8"}
    proc = sb.run(["sh", "-c", TWO_RUNS, "two-runs", LOCK, *argv], timeout=800, env=env)
    assert proc.returncode == 0, proc.stderr
    logs = {n: sb.upper("/var/lib/run%d.log" % n).read_text(errors="replace") for n in (1, 2)}
    rcs = {n: int(sb.upper("/var/lib/run%d.rc" % n).read_text()) for n in (1, 2)}
    assert rcs == {1: 0, 2: 0}, (rcs, logs[1][-3000:], logs[2][-3000:])
    first, second = _recap(logs[1]), _recap(logs[2])
    assert first["failed"] == 0 and first["changed"] == 1, logs[1][-3000:]
    # The second waited for the first (it started ansible-pull only after the first had finished) and then
    # found nothing to change.
    assert _started_at(logs[2]) >= _started_at(logs[1])
    assert second == dict(first, changed=0), logs[2][-3000:]
    assert "PLAY [%s]" % VENDORED_PLAY in logs[1], logs[1][-3000:]

    # Lab mode, from the vendored collection: every client's files are there.
    layout = mutt.LAYOUTS["Debian"]
    assert sb.upper("%s/%s" % (layout["dropin_dirs"]["mutt"], layout["dropin_name"])).exists()
    assert sb.upper("%s/%s" % (TB["cfg_dir"], thunderbird.CFG_NAME)).exists()
    assert sb.upper(TB["pref_dir"] + "/autoconfig.js").exists()
    assert list(sb.upper("/etc/xdg/evolution-data-server/autoconfig").glob("*-imap.source"))

    # absent: the units and the enablement go; the checkout stays.
    gone = run_playbook(role, dict(settings, lab_pull_state="absent"), sandbox=sb)
    assert gone.rc == 0, gone
    assert not sb.upper(UNITS + "/mail-clients-pull.service").exists()
    assert not sb.upper(UNITS + "/timers.target.wants/mail-clients-pull.timer").is_symlink()
    assert sb.upper(PULL_DIR + "/local.yml").exists()


@pytest.mark.parametrize(("name", "value"), [("lab_pull_url", "file:///srv/lab repo"),
                                             ("lab_pull_url", "https://example.org/%h.git"),
                                             ("lab_pull_branch", "main; rm -rf /"),
                                             ("lab_pull_directory", "relative/dir"),
                                             ("lab_pull_url", "")])
def test_values_a_unit_cannot_carry_are_refused_naming_the_variable(tmp_path, name, value):
    sb = Sandbox(tmp_path / "pc")
    role = [{"hosts": "localhost", "gather_facts": False, "roles": [{"role": "middlebury.mail_clients.lab_pull"}]}]
    settings = {"lab_pull_url": "https://git.example.org/lab.git", "lab_pull_start_now": False, name: value}
    result = run_playbook(role, settings, sandbox=sb)
    assert result.rc != 0 and any(msg.startswith(name + ":") for msg in result.failure_messages()), result
    assert not sb.upper(UNITS + "/mail-clients-pull.service").exists()
