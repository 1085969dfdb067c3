"""The module through Ansible (check mode) against the real Dovecot/Postfix stand-ins: every case
of issue 3, each with its finding and error class."""

from __future__ import annotations

import pytest
from mail_check_cases import BLACKHOLE_BOUNDS, DEADLINE

from ansible_collections.middlebury.mail_clients.plugins.module_utils import account_model

pytestmark = pytest.mark.timeout(400)
DOCUMENTED = [ep["name"] for ep in account_model.documented_endpoints()]


def _by_name(result):
    return {ep["name"]: ep for ep in result["endpoints"]}


def _codes(endpoint):
    return [f["code"] for f in endpoint["findings"]]


def test_documented_endpoints_pass_with_the_test_ca(module_results):
    result = module_results["documented"]
    assert not result.get("failed"), result.get("msg")
    assert result["changed"] is False
    eps = _by_name(result)
    assert list(eps) == DOCUMENTED
    for ep in eps.values():
        assert ep["status"] == "pass", ep["message"]
        assert ep["tls"]["verified"] and ep["tls"]["version"] in ("TLSv1.2", "TLSv1.3") and ep["tls"]["cipher"]
        assert ep["certificate"]["days_left"] > 30 and ep["host"] in ep["certificate"]["sans"]
        chain = ep["certificate"]["chain"]
        assert len(chain) >= 2 and ep["certificate"]["chain_min_days_left"] == min(c["days_left"] for c in chain)
        assert {"dns", "tcp", "tls", "greeting", "total"} <= set(ep["timings_ms"])
        assert ep["auth"]["attempted"] is False and {"PLAIN", "LOGIN"} <= set(ep["auth"]["offered"])
    assert eps["imap_starttls"]["capabilities"]["before_tls"] and "LOGINDISABLED" in eps["imap_starttls"][
        "capabilities"]["before_tls"]
    assert "STARTTLS" in eps["smtp_starttls"]["capabilities"]["before_tls"]
    assert result["summary"]["status"] == "pass" and result["summary"]["passed"] == 4


def test_documented_endpoints_pass_with_a_login(module_results, control_user):
    result = module_results["documented_login"]
    assert not result.get("failed"), result.get("msg")
    for ep in result["endpoints"]:
        assert ep["status"] == "pass", ep["message"]
        assert ep["auth"]["attempted"] and ep["auth"]["success"] and ep["auth"]["mechanism"] in ("PLAIN", "LOGIN")
        assert "auth" in ep["timings_ms"]
        # no_log: the password is masked everywhere in the returned data
        assert control_user[1] not in str(ep)


def test_wrong_password_is_auth_not_connectivity(module_results):
    for ep in module_results["wrong_password"]["endpoints"]:
        assert ep["status"] == "fail" and ep["error_class"] == "auth" and _codes(ep) == ["login_failed"]
        assert ep["reachable"] and ep["tls_ok"] and ep["auth"]["success"] is False


@pytest.mark.parametrize(("case", "code"), [
    ("expired", "cert_expired"), ("wrong_name", "cert_name_mismatch"), ("untrusted", "cert_untrusted")])
def test_certificate_problems(module_results, case, code):
    for ep in module_results[case]["endpoints"]:
        assert ep["status"] == "fail" and ep["error_class"] == "tls_verify", ep["message"]
        assert _codes(ep) == [code]
        assert ep["tls"]["verified"] is False and ep["failed_phase"] == "tls"
        # What the server presented is still described, for the helpdesk.
        assert ep["certificate"]["verified"] is False and ep["certificate"]["sha256"]
    ep = module_results[case]["endpoints"][0]
    if case == "expired":
        assert ep["certificate"]["days_left"] < 0
    if case == "wrong_name":
        assert ep["host"] not in ep["certificate"]["sans"]


def test_auth_offered_before_tls(module_results):
    eps = _by_name(module_results["auth_before_tls"])
    for ep in eps.values():
        assert ep["status"] == "fail" and ep["error_class"] == "policy", ep["message"]
        assert "auth_before_tls" in _codes(ep)
    assert any(o.startswith("AUTH") for o in eps["smtp_starttls"]["findings"][0]["offered"])


def test_no_starttls(module_results):
    for ep in module_results["no_starttls"]["endpoints"]:
        assert ep["status"] == "fail" and ep["error_class"] == "policy"
        assert _codes(ep)[0] == "starttls_missing"
        assert ep["tls"] is None


@pytest.mark.parametrize("case", ["closed_port", "closed_host"])
def test_refused(module_results, case):
    for ep in module_results[case]["endpoints"]:
        assert ep["status"] == "fail" and ep["error_class"] == "refused" and ep["failed_phase"] == "tcp"


def test_port_that_never_answers_times_out_within_the_deadline(module_results):
    result = module_results["blackhole"]
    for ep in result["endpoints"]:
        assert ep["error_class"] == "timeout" and ep["reachable"], ep["message"]
        assert ep["failed_phase"] in ("greeting", "tls")
    # Cut at the deadline (4 s), not at the 60 s step timeout; 2 s of room for a busy machine.
    assert result["summary"]["wall_ms"] < (BLACKHOLE_BOUNDS["deadline"] + 2) * 1000


def test_unresolvable_name(module_results):
    (ep,) = module_results["unresolvable"]["endpoints"]
    assert ep["error_class"] == "dns" and ep["failed_phase"] == "dns"
    assert ep["timings_ms"]["total"] < (DEADLINE + 1) * 1000


def test_ip_version(module_results):
    assert all(ep["family"] == "4" for ep in module_results["ipv4_only"]["endpoints"])
    # The stand-ins are IPv4 only: asking for IPv6 must say so, not fall back silently.
    for ep in module_results["ipv6_only"]["endpoints"]:
        assert ep["error_class"] == "dns" and _codes(ep) == ["dns_no_family"]


def test_both_families_give_one_result_each(module_results):
    eps = module_results["both_families"]["endpoints"]
    assert [(ep["name"], ep["ip_version"]) for ep in eps] == [(n, f) for n in DOCUMENTED for f in ("4", "6")]
    assert all(ep["status"] == "pass" for ep in eps if ep["ip_version"] == "4")
    assert all(ep["error_class"] == "dns" for ep in eps if ep["ip_version"] == "6")
    assert module_results["both_families"]["summary"]["failed_endpoints"] == [n + "/IPv6" for n in DOCUMENTED]


def test_expiry_thresholds_against_the_real_certificates(module_results):
    warned = module_results["expiry_warning"]
    assert not warned.get("failed") and warned["summary"]["status"] == "warn"
    # The leaf and the CA above it (whole chain, unlike check_imap -D) each get a finding.
    for ep in warned["endpoints"]:
        assert set(_codes(ep)) == {"cert_expiry_warning"}
        assert any("chain" in f["message"] for f in ep["findings"]), ep["findings"]
    for ep in module_results["expiry_critical"]["endpoints"]:
        assert ep["error_class"] == "cert_expiry" and set(_codes(ep)) == {"cert_expiry_critical"}


def test_account_description_gives_the_clients_endpoints(module_results):
    names = [ep["name"] for ep in module_results["account_two"]["endpoints"]]
    assert names == [ep["name"] for ep in account_model.account_endpoints(account_model.normalize_account())]


def test_task_fails_unless_report_only(module_results):
    assert module_results["fails_task"]["failed"] is True
    assert "refused" in module_results["fails_task"]["msg"]
    assert not module_results["closed_host"].get("failed")
    stats = module_results["run"].stats
    assert sum(host["changed"] for host in stats.values()) == 0
    assert sum(host.get("ignored", 0) for host in stats.values()) == 1  # only fails_task failed (ignored)
