"""The fleet report for hundreds of hosts, as a helpdesk opens it: the verdict first and large, a summary grouped
by problem, the table with a modern-auth column; checked in headless Chromium at 480 px wide with 300 hosts."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from ansible_collections.middlebury.mail_clients.plugins.filter.mail_report import mail_report
from ansible_collections.middlebury.mail_clients.plugins.filter.mail_report_html import mail_report_html

pytestmark = pytest.mark.timeout(300)
TEMPLATE = Path(__file__).resolve().parents[3] / "playbooks" / "templates" / "mail_report.html.j2"
ENDPOINTS = ("imaps", "pop3s", "smtp_starttls")
# Headless Chromium's window is at least 500 px wide: the page is held to 480 px by its root element instead (the
# narrow-screen rules apply below 600 px either way). Then the script reports the layout into the title, for
# --dump-dom to carry out.
MEASURE = """<style>html { width: 480px; }</style><script>
window.addEventListener("load", function () {
  var v = document.getElementById("verdict").getBoundingClientRect();
  // The body's content width against its box: only a scroll container (the table's) may hold wider content.
  document.title = "MEASURED " + JSON.stringify({page: document.body.scrollWidth, viewport: document.body.clientWidth,
    bodyRight: document.body.getBoundingClientRect().right,
    columns: Array.from(document.querySelectorAll("#matrix thead th")).slice(0, 2).map(function (th) {
      return th.getBoundingClientRect().width; }), verdictTop: v.top, verdictRight: v.right, verdictFont:
    parseFloat(getComputedStyle(document.getElementById("verdict")).fontSize),
    rows: document.querySelectorAll("#matrix tbody tr").length});
});
</script>"""


def _endpoint(name, status="pass", code=None, login=None, offered=("PLAIN", "XOAUTH2")):
    findings = [{"code": code, "severity": "fail", "class": "tls_verify", "message": "%s here" % code}] if code else []
    return {"name": name, "protocol": name[:4], "host": "mail.example.edu", "port": 993, "security": "ssl",
            "status": status, "error_class": "tls_verify" if code else None, "message": "m", "findings": findings,
            "timings_ms": {"total": 40}, "certificate": {"days_left": 300},
            "tls": {"verified": not code, "version": "TLSv1.3"},
            "auth": {"attempted": login is not None, "success": login, "mechanism": "XOAUTH2"},
            "sasl": {"before_tls": None, "after_tls": list(offered)}}


def _fleet(size=300):
    hostvars, hosts = {}, []
    for n in range(size):
        host = "lab-pc-%03d.classrooms.example.edu" % n
        hosts.append(host)
        if n in (17, 18, 19, 40, 41, 42):
            eps = [_endpoint(e, "fail", "cert_untrusted") for e in ENDPOINTS]
            status = "fail"
        elif n in (100, 101, 102):
            hostvars[host] = {"mail_check_result": {"unreachable": True, "msg": "ssh: connect to host %s port 22: "
                                                    "Connection timed out" % host}}
            continue
        elif n == 200:
            eps = [_endpoint("imaps", "fail", "basic_auth_disabled"), *[_endpoint(e) for e in ENDPOINTS[1:]]]
            status = "fail"
        else:
            eps = [_endpoint(e, login=True) for e in ENDPOINTS]
            status = "pass"
        hostvars[host] = {"mail_check_result": {"endpoints": eps, "summary": {"status": status}}}
    return hostvars, hosts


@pytest.fixture(scope="module")
def report():
    hostvars, hosts = _fleet()
    return mail_report(hostvars, hosts, generated="2026-12-01 12:00:00 UTC")


def test_the_verdict_and_the_summary_grouped_by_problem(report):
    assert report["verdict"] == "10 of 300 hosts need attention"
    groups = {g["problem"]: g for g in report["groups"]}
    assert report["groups"][0]["problem"] == "pass" and groups["pass"]["count"] == 290
    assert groups["certificate not trusted"]["count"] == 6
    assert groups["certificate not trusted"]["hosts"][0] == "lab-pc-017.classrooms.example.edu"
    assert groups["could not be reached"]["count"] == 3
    assert groups["password logins switched off (use OAuth2)"]["count"] == 1


def test_the_modern_auth_column(report):
    by_host = {h["host"]: h["modern_auth"] for h in report["hosts"]}
    expected = {"offered": True, "login": True, "basic_auth_disabled": False}
    assert by_host["lab-pc-000.classrooms.example.edu"] == expected
    assert by_host["lab-pc-200.classrooms.example.edu"]["basic_auth_disabled"] is True
    assert by_host["lab-pc-100.classrooms.example.edu"] is None


def test_the_page_at_480_px_with_300_hosts_in_chromium(report, tmp_path):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    assert chromium, "Debian's chromium package is required (tests/apt/mail_check.txt)"
    html = mail_report_html(report, TEMPLATE.read_text())
    summary = html.split('id="summary"', 1)[1].split("</ul>", 1)[0]
    assert "6 hosts</strong>: certificate not trusted (lab-pc-017" in summary and "1 more" in summary
    assert "290 hosts</strong> pass" in summary and "3 hosts</strong>: could not be reached" in summary
    page = tmp_path / "report.html"
    page.write_text(html.replace("</body>", MEASURE + "</body>"))
    args = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--user-data-dir=%s" % (tmp_path / "chromium"), "--window-size=480,900"]
    dom = subprocess.run([*args, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120,
                         check=False)
    assert dom.returncode == 0, dom.stderr[-2000:]
    measured = json.loads(re.search(r"MEASURED (\{.*?\})</title>", dom.stdout).group(1))
    assert measured["rows"] == 300
    assert measured["page"] <= measured["viewport"] and measured["bodyRight"] <= 480, measured
    assert measured["verdictTop"] < 120 and measured["verdictRight"] <= 480, measured
    assert measured["verdictFont"] >= 20, "the verdict is large"
    assert min(measured["columns"]) >= 100, "the host and modern-auth columns stay readable: %s" % measured
    shot = tmp_path / "report-480.png"
    taken = subprocess.run([*args, "--screenshot=%s" % shot, page.as_uri()], capture_output=True, text=True,
                           timeout=120, check=False)
    assert taken.returncode == 0 and shot.stat().st_size > 10_000, taken.stderr[-2000:]
