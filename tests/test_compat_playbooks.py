"""The collection's playbooks and roles as people run them, on whichever ansible-core runs this suite (`make compat`
runs it on every claimed line): site.yml in lab mode and for named users, each role on its own (idempotent), and
verify.yml against the test mail stack. Inside the test sandbox; installs off (the clients are on this machine)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from ansible_runner import run_playbook
from sandbox import Sandbox

from ansible_collections.middlebury.mail_clients.plugins.module_utils import account_model
from ansible_collections.middlebury.mail_clients.plugins.plugin_utils.client_plans import evolution, mutt, thunderbird

REPO = Path(__file__).resolve().parent.parent
SITE = REPO / "playbooks" / "site.yml"
VERIFY = REPO / "playbooks" / "verify.yml"
TB = thunderbird.LAYOUTS["Debian"]
MUTT = mutt.LAYOUTS["Debian"]
EVOLUTION_TEMPLATES = "/etc/xdg/evolution-data-server/autoconfig"
INSTALLS_OFF = {"mutt_install": False, "thunderbird_install": False, "evolution_install": False,
                "mail_clients_become": False}

pytestmark = pytest.mark.timeout(600)


def _sandbox(tmp_path, users=()):
    sb = Sandbox(tmp_path / "pc", extra_overlays=(TB["cfg_dir"], TB["isp_dir"]))
    for login in users:
        sb.add_user(login)
    return sb


def _lab_files_are_there(sb):
    # The policies are JSON (before 2.19 the renderer once wrote them as a Python repr).
    policies = json.loads(sb.upper(TB["policies_path"]).read_text())
    assert policies["policies"]["SSLVersionMin"] == "tls1.2", policies
    assert sb.upper("%s/%s" % (TB["cfg_dir"], thunderbird.CFG_NAME)).read_text().startswith("// managed by Ansible")
    for client in ("mutt", "neomutt"):
        text = sb.upper("%s/%s" % (MUTT["dropin_dirs"][client], MUTT["dropin_name"])).read_text()
        assert account_model.DOCUMENTED["incoming_host"] in text
    uid = evolution.source_uids("middlebury", "imap")["account"]
    assert "[Autoconfig]" in sb.upper("%s/%s.source" % (EVOLUTION_TEMPLATES, uid)).read_text()


def test_site_in_lab_mode(tmp_path):
    sb = _sandbox(tmp_path)
    result = run_playbook(SITE, INSTALLS_OFF, sandbox=sb, args=("-i", "localhost,", "-e", "mail_clients_hosts=all"))
    assert result.rc == 0 and result.changed() == 1, result
    _lab_files_are_there(sb)


def test_site_for_named_users(tmp_path):
    people = [{"login": "compatann", "full_name": "Ann O'Neil"}, {"login": "compatbo"}]
    sb = _sandbox(tmp_path, [p["login"] for p in people])
    result = run_playbook(SITE, dict(INSTALLS_OFF, mail_clients_users=people), sandbox=sb,
                          args=("-i", "localhost,", "-e", "mail_clients_hosts=all"))
    assert result.rc == 0, result
    uid = evolution.source_uids("middlebury", "imap")["account"]
    for person in people:
        home = "/home/%s" % person["login"]
        assert sb.upper("%s/%s" % (home, MUTT["user_file"])).exists()
        source = sb.upper("%s/%s/%s.source" % (home, evolution.LAYOUTS["Debian"]["user_sources_dir"], uid))
        assert "User=%s" % person["login"] in source.read_text()
    assert "Ann O'Neil" in sb.upper("%s/%s" % (TB["cfg_dir"], thunderbird.CFG_NAME)).read_text()


def test_each_role_on_its_own_twice(tmp_path):
    sb = _sandbox(tmp_path)
    names = ("thunderbird", "evolution", "mutt")
    roles = [{"hosts": "localhost", "gather_facts": False,
              "roles": [{"role": "middlebury.mail_clients.%s" % name} for name in names]}]
    result = run_playbook(roles, INSTALLS_OFF, sandbox=sb)
    assert result.rc == 0 and result.changed() == 3, result
    _lab_files_are_there(sb)
    again = run_playbook(roles, INSTALLS_OFF, sandbox=sb)
    assert again.rc == 0 and again.changed() == 0, again


def test_verify_against_the_test_stack(tmp_path, mail_stack):
    names = {ep["host"] for ep in account_model.documented_endpoints()}
    out = tmp_path / "report"
    local = {"ansible_connection": "local", "ansible_python_interpreter": "/usr/bin/python3"}
    inventory = tmp_path / "inventory.json"
    inventory.write_text(json.dumps({"all": {"hosts": {"lab-pc": dict(
        local, mail_check_connect_to={name: mail_stack.hosts[name] for name in names})}, "vars": {
        "mail_check_ca_path": str(mail_stack.ca_path), "mail_check_timeout": 10, "mail_check_deadline": 20}}}))
    result = run_playbook(VERIFY, {"mail_check_report_dir": str(out), "mail_check_hosts": "lab-pc"},
                          args=("-i", str(inventory)), timeout=300)
    assert result.rc == 0, (result.stats, [(h, result.failure_messages(h)) for h in result.stats])
    report = json.loads((out / "mail_check.json").read_text())
    assert report["totals"]["pass"] == 1 and report["totals"]["hosts"] == 1, report["totals"]
