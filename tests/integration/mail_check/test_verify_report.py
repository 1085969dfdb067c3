"""playbooks/verify.yml on a small fleet (a good host, a host whose servers have an expired
certificate, an unreachable host), then the HTML report opened in headless Chromium."""

from __future__ import annotations

import json
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
import yaml
from ansible_runner import run_playbook
from mail_check_cases import connect_to

from ansible_collections.middlebury.mail_clients.plugins.module_utils import account_model

pytestmark = pytest.mark.timeout(400)
PLAYBOOK = Path(__file__).resolve().parents[3] / "playbooks" / "verify.yml"
DOCUMENTED = [ep["name"] for ep in account_model.documented_endpoints()]


class _Rows(HTMLParser):
    """data-host rows and their data-endpoint cells, as Chromium rendered them."""

    def __init__(self):
        super().__init__()
        self.rows = {}
        self.order = []
        self.totals = {}
        self._row = None
        self._total = None
        self.external = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for key in ("src", "href"):
            if attrs.get(key, "").startswith(("http:", "https:", "//")):
                self.external.append(attrs[key])
        if tag == "tr" and "data-host" in attrs:
            self._row = attrs["data-host"]
            self.rows[self._row] = {"status": attrs["data-status"], "cells": {}}
            self.order.append(self._row)
        elif tag == "td" and self._row and "data-endpoint" in attrs:
            self.rows[self._row]["cells"][attrs["data-endpoint"]] = attrs["data-status"]
        elif tag == "span" and "data-total" in attrs:
            self._total = attrs["data-total"]

    def handle_endtag(self, tag):
        if tag == "tr":
            self._row = None

    def handle_data(self, data):
        if self._total:
            self.totals[self._total] = int(data.split()[0])
            self._total = None


@pytest.fixture(scope="module")
def fleet_report(mail_stack, tmp_path_factory):
    work = tmp_path_factory.mktemp("verify")
    local = {"ansible_connection": "local", "ansible_python_interpreter": "/usr/bin/python3"}
    inventory = {"all": {"children": {"lab": {
        "hosts": {
            "lab-good": dict(local, mail_check_connect_to=connect_to(mail_stack)),
            "lab-expired": dict(local, mail_check_connect_to=connect_to(mail_stack, "expired")),
            # Nothing listens on port 1: the host is unreachable and must show up without a result.
            "lab-ghost": {"ansible_connection": "ssh", "ansible_host": "127.0.0.1", "ansible_port": 1,
                          "ansible_ssh_retries": 0},
        },
        "vars": {"mail_check_ca_path": str(mail_stack.ca_path), "mail_check_timeout": 10, "mail_check_deadline": 20},
    }}}}
    (work / "inventory.yml").write_text(yaml.safe_dump(inventory))
    out = work / "report"
    result = run_playbook(PLAYBOOK, extra_vars={"mail_check_hosts": "lab", "mail_check_report_dir": str(out)},
                          args=("-i", str(work / "inventory.yml")), timeout=300)
    return result, out


def test_verify_playbook_fails_only_the_broken_host(fleet_report):
    result, out = fleet_report
    assert result.stats["lab-good"]["failures"] == 0 and result.stats["lab-good"]["unreachable"] == 0
    assert result.stats["lab-expired"]["failures"] == 1
    assert result.stats["lab-ghost"]["unreachable"] == 1
    assert result.rc != 0
    printed = [msg for host in ("lab-good", "lab-expired") for name, res in result.task_results(host)
               if name == "Say where the report is" for msg in res["msg"]]
    assert any(str(out / "mail_check.html") in line for line in printed), printed


def test_json_report(fleet_report):
    _result, out = fleet_report
    report = json.loads((out / "mail_check.json").read_text())
    assert [c["label"] for c in report["columns"]] == DOCUMENTED
    assert report["totals"] == {"hosts": 3, "pass": 1, "warn": 0, "fail": 1, "unknown": 1}
    assert [h["host"] for h in report["hosts"]] == ["lab-expired", "lab-ghost", "lab-good"]
    assert {p["error_class"] for p in report["problems"] if p["host"] == "lab-expired"} == {"tls_verify"}
    ghost = next(h for h in report["hosts"] if h["host"] == "lab-ghost")
    assert "nothing listens on its SSH port" in ghost["error"], ghost
    good = next(h for h in report["hosts"] if h["host"] == "lab-good")
    assert all(c["days_left"] > 30 and c["latency_ms"] > 0 for c in good["cells"].values())


def test_html_report_renders_in_chromium(fleet_report, tmp_path):
    _result, out = fleet_report
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    assert chromium, "Debian's chromium package is required (tests/apt/mail_check.txt)"
    proc = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--user-data-dir=%s" % tmp_path,
                           "--dump-dom", (out / "mail_check.html").as_uri()],
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    page = _Rows()
    page.feed(proc.stdout)
    assert page.order == ["lab-expired", "lab-ghost", "lab-good"]
    assert page.rows["lab-good"] == {"status": "pass", "cells": dict.fromkeys(DOCUMENTED, "pass")}
    assert page.rows["lab-expired"] == {"status": "fail", "cells": dict.fromkeys(DOCUMENTED, "fail")}
    assert page.rows["lab-ghost"]["status"] == "unknown"
    assert page.totals == {"hosts": 3, "pass": 1, "warn": 0, "fail": 1, "unknown": 1}
    assert page.external == [], "the report must be self-contained"
    assert "certificate for" in proc.stdout and "expired" in proc.stdout
