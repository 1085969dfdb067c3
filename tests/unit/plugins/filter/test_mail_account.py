"""The filters are thin: they hand over to the model and turn its errors into filter errors."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.middlebury.mail_clients.plugins.filter import mail_endpoints as endpoints_plugin
from ansible_collections.middlebury.mail_clients.plugins.filter.mail_account import FilterModule, mail_account
from ansible_collections.middlebury.mail_clients.plugins.filter.mail_endpoints import mail_endpoints


def test_filters_registered():
    # One filter per file, named after it: ansible-doc and the importer list each once, with its docs.
    assert set(FilterModule().filters()) == {"mail_account"}
    assert set(endpoints_plugin.FilterModule().filters()) == {"mail_endpoints"}


def test_mail_account_defaults_and_users():
    account = mail_account({}, [{"login": "alice"}])
    assert account["users"][0]["email"] == "alice@middlebury.edu"
    assert mail_account(None)["lab_mode"] is True


def test_mail_account_error_names_the_field():
    with pytest.raises(AnsibleFilterError, match=r"mail_clients_users\[0\]\.full_name"):
        mail_account({}, [{"login": "alice", "full_name": "a\x07"}])


def test_mail_endpoints_from_description_or_normalised():
    assert [e["port"] for e in mail_endpoints({})] == [993, 143, 995, 25]
    normalized = mail_account({"protocol": "pop3"})
    assert [e["port"] for e in mail_endpoints(normalized, "account")] == [995, 25]
    with pytest.raises(AnsibleFilterError, match="which"):
        mail_endpoints({}, "all")
    with pytest.raises(AnsibleFilterError, match="incoming_port"):
        mail_endpoints({"incoming_port": -1})
