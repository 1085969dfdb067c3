"""Provider presets: what each fills, that every value stays overridable and validated, and that the model file
is the only place their host names are written."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from ansible_collections.middlebury.mail_clients.plugins.module_utils import account_model as model

REPO = Path(__file__).resolve().parents[4]
MODEL_FILE = "plugins/module_utils/account_model.py"


@pytest.mark.parametrize("provider", sorted(model.PRESETS))
def test_a_preset_fills_servers_oauth2_folders_and_the_address_as_username(provider):
    preset = model.PRESETS[provider]
    account = model.normalize_account({"provider": provider}, [{"login": "jdoe"}])
    assert account["provider"] == provider and account["auth"] == "oauth2"
    assert account["incoming"] == {"protocol": "imap", "host": preset["incoming_hosts"]["imap"], "port": 993,
                                   "security": "ssl"}
    assert account["smtp"] == {"host": preset["smtp_host"], "port": 587, "security": "starttls"}
    assert account["folders"] == preset["folders"]
    assert account["username_format"] == "email"
    assert account["users"][0]["username"] == account["users"][0]["email"] == "jdoe@middlebury.edu"
    oauth2 = account["oauth2"]
    assert oauth2["client_id"] is None and oauth2["scopes"] == preset["oauth2"]["scopes"]
    assert all(oauth2[key].startswith("https://") for key in
               ("authorization_endpoint", "token_endpoint", "device_authorization_endpoint"))


def test_pop3_with_a_preset_uses_its_pop_host_and_port():
    for provider, preset in model.PRESETS.items():
        incoming = model.normalize_account({"provider": provider, "protocol": "pop3"})["incoming"]
        assert incoming == {"protocol": "pop3", "host": preset["incoming_hosts"]["pop3"], "port": 995,
                            "security": "ssl"}


def test_microsoft_tenant_goes_into_every_endpoint():
    oauth2 = model.normalize_account({"provider": "microsoft365", "oauth2": {"tenant": "contoso.example"}})["oauth2"]
    for key in ("authorization_endpoint", "token_endpoint", "device_authorization_endpoint"):
        assert "/contoso.example/" in oauth2[key]
    assert oauth2["tenant"] == "contoso.example"


def test_every_value_a_preset_fills_can_be_overridden_and_is_validated():
    account = model.normalize_account({
        "provider": "microsoft365", "incoming_host": "imap.example.edu", "smtp_host": "smtp.example.edu",
        "smtp_port": 2525, "folders": {"junk": "Spam"},
        "oauth2": {"client_id": "0f0e-11", "scopes": "a b", "token_endpoint": "https://idp.example.edu/t"}},
        [{"login": "jdoe", "username": "jdoe"}])
    assert account["incoming"]["host"] == "imap.example.edu" and account["smtp"]["port"] == 2525
    assert account["folders"]["junk"] == "Spam" and account["folders"]["sent"] == "Sent Items"
    assert account["oauth2"]["client_id"] == "0f0e-11" and account["oauth2"]["scopes"] == ["a", "b"]
    assert account["oauth2"]["token_endpoint"] == "https://idp.example.edu/t"
    assert account["users"][0]["username"] == "jdoe"
    with pytest.raises(model.AccountError, match=r"^mail_clients_account\.smtp_port:"):
        model.normalize_account({"provider": "google", "smtp_port": 0})
    with pytest.raises(model.AccountError, match=r"^mail_clients_account\.auth:"):
        model.normalize_account({"provider": "microsoft365", "auth": "ntlm"})


def test_the_documented_settings_stay_the_default():
    account = model.normalize_account({})
    assert account["provider"] == "documented" and account["auth"] == "password" and account["oauth2"] is None
    assert account["incoming"]["host"] == model.DOCUMENTED["incoming_host"]
    assert account["username_format"] == "login"


def test_an_identity_provider_of_ones_own():
    oauth2 = model.normalize_account({"auth": "oauth2", "oauth2": {
        "token_endpoint": "https://sso.example.edu:8443/realms/x/token", "scopes": ["email"]}})["oauth2"]
    assert oauth2["issuer"] == "sso.example.edu" and oauth2["authorization_endpoint"] is None


def _preset_hosts():
    hosts = set()
    for preset in model.PRESETS.values():
        hosts.update(preset["incoming_hosts"].values())
        hosts.add(preset["smtp_host"])
        hosts.add(preset["oauth2"]["issuer"])
        for key in ("authorization_endpoint", "token_endpoint", "device_authorization_endpoint"):
            hosts.add(preset["oauth2"][key].split("/")[2])
        if "ews" in preset:
            hosts.add(preset["ews"]["url"].split("/")[2])
        if "graph" in preset:
            hosts.add(preset["graph"]["host"])
    return sorted(hosts)


def test_no_preset_host_name_outside_the_model_file():
    hosts = _preset_hosts()
    assert len(hosts) >= 8  # the list is not empty by accident
    found = subprocess.run(["git", "grep", "-l", "-F", *[arg for h in hosts for arg in ("-e", h)]], cwd=REPO,
                           capture_output=True, text=True, timeout=60, check=False)
    assert found.returncode in (0, 1), found.stderr
    assert found.stdout.split() == [MODEL_FILE], found.stdout
