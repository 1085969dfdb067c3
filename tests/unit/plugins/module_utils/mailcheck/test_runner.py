"""Endpoint selection comes from the settings model; summaries count what the results say."""

from __future__ import annotations

import pytest

from ansible_collections.middlebury.mail_clients.plugins.module_utils import account_model as model
from ansible_collections.middlebury.mail_clients.plugins.module_utils.mailcheck import runner


def test_default_endpoints_are_the_documented_four():
    assert runner.select_endpoints(model) == model.documented_endpoints()


def test_account_moves_the_documented_endpoints_or_gives_the_clients_two():
    account = {"incoming_host": "imap.example.org", "smtp_host": "smtp.example.org"}
    four = runner.select_endpoints(model, account=account)
    assert four == model.documented_endpoints(model.normalize_account(account))
    assert {ep["host"] for ep in four} == {"imap.example.org", "smtp.example.org"}
    two = runner.select_endpoints(model, account=account, endpoint_set="account")
    assert two == model.account_endpoints(model.normalize_account(account))


def test_bad_account_is_refused_with_the_field_name():
    with pytest.raises(model.AccountError, match="incoming_security"):
        runner.select_endpoints(model, account={"incoming_security": "none"})


def test_only_filters_and_rejects_unknown_names():
    names = [ep["name"] for ep in model.documented_endpoints()]
    assert [ep["name"] for ep in runner.select_endpoints(model, only=names[-1:])] == names[-1:]
    with pytest.raises(ValueError, match="unknown endpoint"):
        runner.select_endpoints(model, only=["nope"])


def test_explicit_endpoints_are_validated_and_named():
    eps = runner.select_endpoints(model, endpoints=[{"protocol": "smtp", "host": "Smtp.Example.org.", "port": 587,
                                                     "security": "starttls"}])
    assert eps == [{"name": "smtp_starttls_587", "protocol": "smtp", "host": "smtp.example.org", "port": 587,
                    "security": "starttls"}]
    with pytest.raises(ValueError, match="plaintext"):
        runner.select_endpoints(model, endpoints=[{"protocol": "imap", "host": "h", "port": 143, "security": "none"}])
    with pytest.raises(ValueError, match="unique"):
        runner.select_endpoints(model, endpoints=[{"name": "a", "protocol": "imap", "host": "h", "port": 1,
                                                   "security": "ssl"}] * 2)


def test_summary():
    def result(name, status, cls=None, days=None):
        return {"name": name, "ip_version": "any", "status": status, "error_class": cls,
                "certificate": {"days_left": days} if days is not None else None, "timings_ms": {"total": 5.0},
                "tls_ok": cls != "tls_verify"}

    # The expired certificate was rejected: it is a failure, not the fleet's nearest expiry.
    summary = runner.summarize([result("a", "pass", days=40.0), result("b", "warn", days=12.5),
                                result("c", "fail", "refused"), result("d", "fail", "tls_verify", days=-668.0)], 7.0)
    assert summary["status"] == "fail"
    assert (summary["passed"], summary["warned"], summary["failed"]) == (1, 1, 2)
    assert summary["failed_endpoints"] == ["c", "d"] and summary["warned_endpoints"] == ["b"]
    assert summary["error_classes"] == ["refused", "tls_verify"] and summary["min_days_left"] == 12.5


def test_unusable_ca_file_is_an_input_error(tmp_path):
    bad = tmp_path / "ca.pem"
    bad.write_text("not a certificate\n")
    options = {"ca_path": str(bad), "timeout": 1, "deadline": 1}
    with pytest.raises(ValueError, match="no usable CA certificate"):
        runner.run_checks([], options)
