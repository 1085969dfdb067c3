"""playbooks/site.yml on several lab PCs: hosts with the same inputs share one render (client_files' cache), a
host whose inputs differ gets exactly its own files, and a host that cannot be reached stops nobody else.
Three lab PCs on the local connection, in check and diff mode inside a sandbox, so the files each host would
get are read from the write's diff."""

from __future__ import annotations

from pathlib import Path

import yaml
from ansible_runner import run_playbook
from sandbox import Sandbox

SITE = Path(__file__).resolve().parents[2] / "playbooks" / "site.yml"
WRITE = "Install the clients and write every client's files in one module call"
MUTT_ONLY = {"mail_clients_become": False, "mutt_install": False, "mail_clients_thunderbird": False,
             "mail_clients_evolution": False}


def _inventory(tmp_path, hosts):
    inventory = tmp_path / "inventory.yml"
    inventory.write_text(yaml.safe_dump({"lab": {"hosts": hosts, "vars": {
        "ansible_connection": "local", "ansible_python_interpreter": "/usr/bin/python3"}}}))
    return inventory


def _written(result, host):
    (diffs,) = [res["diff"] for name, res in result.task_results(host) if name.startswith(WRITE)]
    return {d["after_header"]: d["after"] for d in diffs if d.get("after")}


def test_hosts_with_other_inputs_get_their_own_files_and_equal_ones_share_a_render(tmp_path):
    inventory = _inventory(tmp_path, {"pc1": {}, "pc2": {"mutt_ca_file": "/etc/ssl/pc2-only.pem"}, "pc3": {}})
    # One fork: the hosts run in order, so which render is reused is certain.
    result = run_playbook(SITE, dict(MUTT_ONLY, mail_clients_hosts="lab"), check=True, diff=True,
                          sandbox=Sandbox(tmp_path / "sb"), args=("-i", str(inventory), "-f", "1"))
    assert result.rc == 0, result
    files = {host: _written(result, host) for host in ("pc1", "pc2", "pc3")}
    for host, by_path in files.items():
        assert any(path.endswith("/Muttrc.d/zz-middlebury.rc") for path in by_path), (host, list(by_path))
    assert all("pc2-only.pem" in text for text in files["pc2"].values())
    assert not any("pc2-only.pem" in text for host in ("pc1", "pc3") for text in files[host].values())
    assert files["pc1"] == files["pc3"]
    # Two distinct inputs, two renders: pc3 reuses pc1's.
    renders = {host: res["render"] for host in ("pc1", "pc2", "pc3")
               for name, res in result.task_results(host) if name.startswith(WRITE)}
    assert renders == {"pc1": "own", "pc2": "own", "pc3": "shared"}, renders


def test_a_host_that_cannot_be_reached_does_not_stop_the_others(tmp_path):
    # The first host is down: nothing listens on its SSH port.
    ghost = {"ansible_connection": "ssh", "ansible_host": "127.0.0.1", "ansible_port": 1, "ansible_ssh_retries": 0}
    inventory = _inventory(tmp_path, {"pc0-down": ghost, "pc1": {}, "pc2": {}})
    result = run_playbook(SITE, dict(MUTT_ONLY, mail_clients_hosts="lab"), check=True, diff=True,
                          sandbox=Sandbox(tmp_path / "sb"), args=("-i", str(inventory)))
    assert result.stats["pc0-down"]["unreachable"] == 1, result
    for host in ("pc1", "pc2"):
        assert result.stats[host]["failures"] == 0 and result.stats[host]["unreachable"] == 0, result
        assert any(path.endswith("/Muttrc.d/zz-middlebury.rc") for path in _written(result, host)), host


def test_a_refused_host_stops_only_itself(tmp_path):
    inventory = _inventory(tmp_path, {"pc0-bad": {"mail_clients_account": {"auth": "ntlm"}}, "pc1": {}})
    result = run_playbook(SITE, dict(MUTT_ONLY, mail_clients_hosts="lab"), check=True, diff=True,
                          sandbox=Sandbox(tmp_path / "sb"), args=("-i", str(inventory)))
    assert result.stats["pc0-bad"]["failures"] == 1, result
    assert result.stats["pc1"]["failures"] == 0, result
    assert _written(result, "pc1")
