"""playbooks/site.yml renders once for every host with the same inputs, and separately for a host whose
inputs differ: each host must still get exactly its own files. Three lab PCs on the local connection, in
check and diff mode inside a sandbox, so the files each host would get are read from the write's diff."""

from __future__ import annotations

from pathlib import Path

import yaml
from ansible_runner import run_playbook
from sandbox import Sandbox

SITE = Path(__file__).resolve().parents[2] / "playbooks" / "site.yml"
RENDER = "Render the drop-ins and the named users' files"
OWN_RENDER = "Check and render the files of the hosts whose inputs differ"
WRITE = "Write every client's files in one module call"


def test_hosts_with_other_inputs_get_their_own_files(tmp_path):
    inventory = tmp_path / "inventory.yml"
    inventory.write_text(yaml.safe_dump({"lab": {
        "hosts": {"pc1": {}, "pc2": {"mutt_ca_file": "/etc/ssl/pc2-only.pem"}, "pc3": {}},
        "vars": {"ansible_connection": "local", "ansible_python_interpreter": "/usr/bin/python3"}}}))
    result = run_playbook(SITE, {"mail_clients_hosts": "lab", "mail_clients_become": False, "mutt_install": False,
                                 "mail_clients_thunderbird": False, "mail_clients_evolution": False},
                          check=True, diff=True, sandbox=Sandbox(tmp_path / "sb"), args=("-i", str(inventory)))
    assert result.rc == 0, result

    def ran(host, prefix):
        return [name for name, res in result.task_results(host) if prefix in name and not res.get("skipped")]

    def written(host):
        (diffs,) = [res["diff"] for name, res in result.task_results(host) if name.startswith(WRITE)]
        return {d["after_header"]: d["after"] for d in diffs if d.get("after")}

    files = {host: written(host) for host in ("pc1", "pc2", "pc3")}
    for host, by_path in files.items():
        assert any(path.endswith("/Muttrc.d/zz-middlebury.rc") for path in by_path), (host, list(by_path))
    assert all("pc2-only.pem" in text for text in files["pc2"].values())
    assert not any("pc2-only.pem" in text for host in ("pc1", "pc3") for text in files[host].values())
    assert files["pc1"] == files["pc3"]
    # Rendered once for pc1 and pc3 (on the first host), once more for pc2 alone.
    assert ran("pc1", RENDER) and not ran("pc3", RENDER) and ran("pc2", RENDER)
    assert ran("pc2", OWN_RENDER) and not ran("pc1", OWN_RENDER) and not ran("pc3", OWN_RENDER)


def test_a_host_that_cannot_be_reached_does_not_stop_the_others(tmp_path):
    # The first host (the one run_once renders on) is down: nothing listens on its SSH port.
    inventory = tmp_path / "inventory.yml"
    ghost = {"ansible_connection": "ssh", "ansible_host": "127.0.0.1", "ansible_port": 1, "ansible_ssh_retries": 0}
    inventory.write_text(yaml.safe_dump({"lab": {
        "hosts": {"pc0-down": ghost, "pc1": {}, "pc2": {}},
        "vars": {"ansible_connection": "local", "ansible_python_interpreter": "/usr/bin/python3"}}}))
    result = run_playbook(SITE, {"mail_clients_hosts": "lab", "mail_clients_become": False, "mutt_install": False,
                                 "mail_clients_thunderbird": False, "mail_clients_evolution": False},
                          check=True, diff=True, sandbox=Sandbox(tmp_path / "sb"), args=("-i", str(inventory)))
    assert result.stats["pc0-down"]["unreachable"] == 1, result
    for host in ("pc1", "pc2"):
        assert result.stats[host]["failures"] == 0 and result.stats[host]["unreachable"] == 0, result
        (diffs,) = [res["diff"] for name, res in result.task_results(host) if name.startswith(WRITE)]
        assert any(d["after_header"].endswith("/Muttrc.d/zz-middlebury.rc") for d in diffs), host
