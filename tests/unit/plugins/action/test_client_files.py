"""client_files' controller side: the render cache key is the exact inputs, and the role spec is the one check."""

from __future__ import annotations

import pytest

from ansible_collections.middlebury.mail_clients.plugins.action.client_files import (
    cache_key,
    check_options,
    layout_for,
)
from ansible_collections.middlebury.mail_clients.plugins.module_utils.account_model import AccountError


def test_equal_inputs_share_a_key_and_any_difference_does_not():
    inputs = {"account": {"a": 1}, "check_mode": False, "clients": {"mutt": {"options": {"mutt_ca_file": ""}}}}
    assert cache_key(inputs) == cache_key({"clients": inputs["clients"], "check_mode": False, "account": {"a": 1}})
    for changed in ({**inputs, "check_mode": True}, {**inputs, "account": {"a": 2}},
                    {**inputs, "clients": {"mutt": {"options": {"mutt_ca_file": "/x"}}}}):
        assert cache_key(changed) != cache_key(inputs)


def test_spec_defaults_apply_and_the_shared_account_is_left_to_the_model():
    options = check_options("mutt", {"mail_clients_account": {"auth": "ntlm"}, "unrelated": 1})
    assert options["mutt_clients"] == ["mutt", "neomutt"] and options["mutt_state"] == "present"
    assert "mail_clients_account" not in options and "unrelated" not in options


def test_a_spec_refusal_names_the_option():
    with pytest.raises(AccountError) as refused:
        check_options("thunderbird", {"thunderbird_tls_min": "ssl3"})
    assert refused.value.field == "thunderbird_tls_min"


def test_an_os_family_without_a_layout_gets_debians():
    assert layout_for("mutt", {"os_family": "Debian"}) == layout_for("mutt", {}) == layout_for("mutt", None)


def test_the_oldest_ansible_core_refused_by_the_roles_is_the_one_runtime_yml_requires():
    from pathlib import Path

    import yaml

    from ansible_collections.middlebury.mail_clients.plugins.action import client_files

    runtime = Path(client_files.__file__).resolve().parents[2] / "meta" / "runtime.yml"
    required = yaml.safe_load(runtime.read_text())["requires_ansible"]
    assert required == ">=%d.%d.0" % client_files.OLDEST_ANSIBLE_CORE
