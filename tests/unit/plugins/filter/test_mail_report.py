"""The fleet report: hosts x endpoints folding, worst-first order, and an HTML page that escapes
everything a server (or an inventory) can put into it."""

from __future__ import annotations

from pathlib import Path

import pytest

from ansible_collections.middlebury.mail_clients.plugins.filter.mail_report import mail_report
from ansible_collections.middlebury.mail_clients.plugins.filter.mail_report_html import mail_report_html

TEMPLATE = Path(__file__).resolve().parents[4] / "playbooks" / "templates" / "mail_report.html.j2"
HOSTILE = '<script>alert("x")</script>&'


def _endpoint(name, status, cls=None, message="OK", days=100.0, family="any"):
    return {"name": name, "protocol": "imap", "host": "mail.example.org", "port": 993, "security": "ssl",
            "ip_version": family, "status": status, "error_class": cls, "message": message,
            "timings_ms": {"total": 12.5}, "certificate": {"days_left": days, "not_after": "2030-01-01T00:00:00Z"},
            "tls": {"version": "TLSv1.3", "verified": cls != "tls_verify"},
            "auth": {"attempted": True, "success": status == "pass"},
            "address": "192.0.2.1"}


def _result(*endpoints):
    worst = "fail" if any(e["status"] == "fail" for e in endpoints) else "pass"
    return {"endpoints": list(endpoints), "summary": {"status": worst}}


HOSTVARS = {
    "good": {"mail_check_result": _result(_endpoint("imaps", "pass"), _endpoint("smtp", "pass", days=5.0))},
    "bad": {"mail_check_result": _result(_endpoint("imaps", "fail", "refused", HOSTILE), _endpoint("smtp", "pass"))},
    "gone": {"mail_check_result": {"unreachable": True,
                                   "msg": "ssh: connect to host 10.0.0.9 port 22: Connection refused"}},
    "never": {},
}


def test_report_folds_hosts_and_sorts_worst_first():
    report = mail_report(HOSTVARS, ["good", "bad", "gone", "never"], generated="now")
    assert [h["host"] for h in report["hosts"]] == ["bad", "gone", "never", "good"]
    assert [c["label"] for c in report["columns"]] == ["imaps", "smtp"]
    assert report["totals"] == {"hosts": 4, "pass": 1, "warn": 0, "fail": 1, "unknown": 2}
    assert report["status"] == "fail" and report["min_days_left"] == 5.0 and report["max_latency_ms"] == 12.5
    assert report["problems"][0] == {"host": "bad", "endpoint": "imaps", "status": "fail", "error_class": "refused",
                                     "message": HOSTILE}
    gone = next(h for h in report["hosts"] if h["host"] == "gone")
    assert gone["error"].startswith("could not be reached:") and "ssh:" not in gone["error"]
    assert "nothing listens on its SSH port" in gone["error"] and "Connection refused" in gone["detail"]


@pytest.mark.parametrize(("msg", "words"), [
    ("Failed to connect to the host via ssh: ssh: connect to host 10.0.0.7 port 22: Connection timed out",
     "switched off"),
    ("Failed to connect to the host via ssh: ssh: Could not resolve hostname lab-pc-99: Name or service not known",
     "name does not resolve"),
    ("Failed to connect to the host via ssh: root@10.0.0.7: Permission denied (publickey).", "refused our SSH login"),
    ("Data could not be sent to remote host \"10.0.0.7\". Connection reset by peer", "dropped the connection"),
])
def test_unreachable_hosts_are_described_in_plain_words(msg, words):
    report = mail_report({"h": {"mail_check_result": {"unreachable": True, "msg": msg}}}, ["h"])
    (host,) = report["hosts"]
    assert words in host["error"] and "ssh:" not in host["error"] and host["detail"] == msg


def test_fewest_days_count_verified_certificates_only():
    hostvars = {"h": {"mail_check_result": _result(_endpoint("imaps", "fail", "tls_verify", days=-668.0),
                                                   _endpoint("smtp", "pass", days=40.0))}}
    assert mail_report(hostvars, ["h"])["min_days_left"] == 40.0


def test_each_address_family_gets_its_own_column():
    hostvars = {"h": {"mail_check_result": _result(_endpoint("imaps", "pass", family="4"),
                                                   _endpoint("imaps", "fail", "dns", family="6"))}}
    report = mail_report(hostvars, ["h"])
    assert [c["label"] for c in report["columns"]] == ["imaps/IPv4", "imaps/IPv6"]


def test_html_escapes_server_text():
    html = mail_report_html(mail_report(HOSTVARS, ["good", "bad", "gone"]), TEMPLATE.read_text())
    assert "<script>" not in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;&amp;" in html
    assert 'data-host="bad" data-status="fail"' in html
