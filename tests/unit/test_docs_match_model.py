"""The README table and every role's argument spec follow the settings model."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from ansible_collections.middlebury.mail_clients.plugins.action.client_files import PLANS
from ansible_collections.middlebury.mail_clients.plugins.module_utils.account_model import (
    ACCOUNT_KEYS,
    DOCUMENTED,
    FOLDER_ROLES,
    OAUTH2_KEYS,
    PORTS,
    PROVIDERS,
    USER_KEYS,
)

REPO = Path(__file__).resolve().parents[2]
# The client roles (one plan each); the lab_pull role configures no client and shares no account.
ROLES = sorted(PLANS)


def _readme_table():
    text = (REPO / "README.md").read_text()
    block = text.split("<!-- settings-table", 1)[1].split("\n\n", 1)[0]
    return {row.split("|")[1].strip(): row.split("|")[2].strip()
            for row in block.splitlines() if row.startswith("| ") and "---" not in row}


def test_readme_settings_table_matches_the_model():
    table = _readme_table()
    imap = table["incoming, IMAP (recommended)"]
    assert "`%s`" % DOCUMENTED["incoming_host"] in imap
    assert "port %d with SSL/TLS" % PORTS[("imap", "ssl")] in imap
    assert "%d with STARTTLS" % PORTS[("imap", "starttls")] in imap
    assert "port %d with SSL/TLS" % PORTS[("pop3", "ssl")] in table["incoming, POP3"]
    assert "left on the server" in table["incoming, POP3"] and DOCUMENTED["pop_leave_on_server"]
    smtp = table["outgoing, SMTP"]
    assert "`%s`, port %d with STARTTLS" % (DOCUMENTED["smtp_host"], DOCUMENTED["smtp_port"]) in smtp
    assert DOCUMENTED["smtp_security"] == "starttls" and DOCUMENTED["protocol"] == "imap"
    assert "not saved" in table["passwords"] and DOCUMENTED["save_password"] is False
    assert "normal password" in table["authentication"] and DOCUMENTED["auth"] == "password"
    assert "@%s" % DOCUMENTED["mail_domain"] in table["addresses"]


def _shared_specs(role):
    specs = yaml.safe_load((REPO / "roles" / role / "meta" / "argument_specs.yml").read_text())
    return specs["argument_specs"]["main"]["options"]


@pytest.mark.parametrize("role", ROLES)
def test_role_argument_specs_declare_the_whole_model(role):
    options = _shared_specs(role)
    account = options["mail_clients_account"]
    assert account["type"] == "dict"
    assert set(account["options"]) == set(ACCOUNT_KEYS)
    assert set(account["options"]["folders"]["options"]) == set(FOLDER_ROLES)
    assert set(account["options"]["oauth2"]["options"]) == set(OAUTH2_KEYS)
    users = options["mail_clients_users"]
    assert users["type"] == "list" and users["elements"] == "dict"
    assert set(users["options"]) == set(USER_KEYS)
    assert users["options"]["login"].get("required") is True


def test_shared_specs_identical_in_every_role():
    assert ROLES == ["evolution", "mutt", "thunderbird"]
    first = {k: v for k, v in _shared_specs(ROLES[0]).items() if k.startswith("mail_clients_")}
    for role in ROLES[1:]:
        assert {k: v for k, v in _shared_specs(role).items() if k.startswith("mail_clients_")} == first, role


@pytest.mark.parametrize("role", ROLES)
def test_the_account_options_documented_defaults_are_the_models(role):
    """ansible-doc shows each fixed default (not null); they are the documented settings, never restated by hand."""
    account = _shared_specs(role)["mail_clients_account"]["options"]
    given = {key: spec["default"] for key, spec in account.items() if "default" in spec}
    assert given.pop("provider") == PROVIDERS[0]
    assert given == {key: DOCUMENTED[key] for key in given} and len(given) >= 10, given
    folders = {key: spec["default"] for key, spec in account["folders"]["options"].items()}
    assert folders == DOCUMENTED["folders"]
    # Derived defaults (ports, the label, the app) stay without one: their text says how they are derived.
    assert not {"incoming_port", "smtp_port", "display_name"} & set(given)
