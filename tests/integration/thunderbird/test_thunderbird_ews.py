"""The Exchange Web Services option (thunderbird_ews) in the real Thunderbird 153: the account the role defines
loads as an EWS account with OAuth2, its outgoing server is the EWS one, and with the tenant's app the server
reports the per-host override. No EWS server is needed: Thunderbird starts offline and is only read. The run
warns that Exchange Online blocks EWS and ends it; switching back to IMAP leaves one account of ours."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
import tb_harness as tb
from cfg_runner import run_cfg
from tb_role import CFG_PATH, KEYS, converge, make_sandbox, own_accounts, seeded_own_accounts

from ansible_collections.middlebury.mail_clients.plugins.module_utils.account_model import EWS_END, normalize_account
from ansible_collections.middlebury.mail_clients.plugins.plugin_utils.client_plans import thunderbird as plan

APP = "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0"
TENANT = "example.onmicrosoft.com"
ACCOUNT = {"provider": "microsoft365", "oauth2": {"client_id": APP, "tenant": TENANT}}
MODEL = normalize_account(ACCOUNT)
EWS = plan.EWS_KEYS
EWS_HOST = urlsplit(MODEL["ews"]["url"]).hostname

pytestmark = pytest.mark.timeout(600)

# Our EWS account as Thunderbird loaded it, its outgoing server, and what the server says of the override.
READ_EWS = r"""
const [accountKey, smtpKey] = arguments;
const {MailServices} = ChromeUtils.importESModule("resource:///modules/MailServices.sys.mjs");
const account = MailServices.accounts.getAccount(accountKey);
if (!account) { return {missing: true, accounts: MailServices.accounts.accounts.map(a => a.key)}; }
const s = account.incomingServer;
const result = {type: s.type, host: s.hostname, authMethod: s.authMethod, username: s.username,
                ewsUrl: s.getStringValue("ews_url"), email: account.defaultIdentity.email,
                identitySmtp: account.defaultIdentity.smtpServerKey};
try {
  result.override = s.QueryInterface(Ci.IExchangeIncomingServer).exchangeOverrideOAuthDetails;
} catch (e) { result.overrideError = String(e); }
const out = MailServices.outgoingServer.servers.find(x => x.key == smtpKey);
result.outgoing = out ? {type: out.type, serverURI: out.serverURI.spec, authMethod: out.authMethod,
                         username: out.username} : null;
return result;
"""


def _read_ews(client):
    return client.script(READ_EWS, args=[EWS["account"], EWS["smtp"]]), tb.read_accounts()(client)


def test_the_ews_option_loads_an_ews_account_with_the_tenants_override_and_warns(tmp_path):
    login = "tbews"
    sb = make_sandbox(tmp_path / "box")
    result = converge(sb, {"mail_clients_account": ACCOUNT, "thunderbird_ews": True})
    assert result.rc == 0, result
    # The run says what Microsoft does to EWS, with the date.
    said = result.stdout + result.stderr
    assert "thunderbird_ews: Exchange Online blocks Exchange Web Services" in said, said[-3000:]
    assert EWS_END in said
    # EWS brings the app in its own override: no provider extension.
    assert not sb.upper("%s/%s" % (plan.LAYOUTS["Debian"]["cfg_dir"], plan.EXTENSION_FILE)).exists()

    sb.add_user(login, "Tb Ews")
    profile = tb.make_profile(sb, login, "ews", prefs_js=seeded_own_accounts())
    address = "%s@%s" % (login, MODEL["mail_domain"])
    (ews, accounts), _log = tb.probe(sb, login, profile, _read_ews)
    assert ews == {"type": "ews", "host": EWS_HOST, "authMethod": plan.AUTH_METHOD["oauth2"],
                   "username": address, "ewsUrl": MODEL["ews"]["url"], "email": address,
                   "identitySmtp": EWS["smtp"], "override": True,
                   "outgoing": {"type": "ews", "serverURI": MODEL["ews"]["url"],
                                "authMethod": plan.AUTH_METHOD["oauth2"], "username": address}}, ews
    # The user's own accounts first, their default kept; one account of ours.
    assert [a["key"] for a in accounts["accounts"]] == ["account1", "account2", EWS["account"]], accounts
    assert accounts["defaultAccount"] == "account2"
    assert own_accounts(accounts) == [("account1", "imap.example.org", "own1"), ("account2", "pop.example.net", "own2")]

    # Back to IMAP and SMTP: the EWS account goes, the IMAP one comes, the user's stay.
    result = converge(sb, {"mail_clients_account": ACCOUNT, "thunderbird_ews": False})
    assert result.rc == 0 and "thunderbird_ews:" not in result.stdout + result.stderr, result
    (ews, accounts), _log = tb.probe(sb, login, profile, _read_ews)
    assert ews.get("missing"), ews
    assert [a["key"] for a in accounts["accounts"]] == ["account1", "account2", KEYS["account"]], accounts
    assert EWS["smtp"] not in accounts["smtpKeys"].split(",") and accounts["defaultAccount"] == "account2"


def test_without_the_tenants_app_the_ews_account_uses_thunderbirds_registration(tmp_path):
    login = "tbewsbuiltin"
    sb = make_sandbox(tmp_path / "box")
    result = converge(sb, {"mail_clients_account": {"provider": "microsoft365"}, "thunderbird_ews": True})
    assert result.rc == 0, result
    sb.add_user(login)
    profile = tb.make_profile(sb, login, "ews")
    (ews, _accounts), _log = tb.probe(sb, login, profile, _read_ews)
    assert ews["type"] == "ews" and ews["override"] is False, ews


def test_the_cfg_moves_a_profile_between_the_imap_and_the_ews_account(tmp_path):
    """The switch in the .cfg, in the pref-API model: one of our two accounts at a time, the default follows."""
    sb = make_sandbox(tmp_path / "box")
    assert converge(sb, {"mail_clients_account": ACCOUNT}).rc == 0
    imap = run_cfg(sb.upper(CFG_PATH), "jdoe")
    assert imap.items("mail.accountmanager.accounts") == [KEYS["account"]]
    assert converge(sb, {"mail_clients_account": ACCOUNT, "thunderbird_ews": True}).rc == 0
    ews = run_cfg(sb.upper(CFG_PATH), "jdoe", prefs=imap.user)
    assert ews.items("mail.accountmanager.accounts") == [EWS["account"]]
    assert ews.items("mail.smtpservers") == [EWS["smtp"]]
    assert ews.value("mail.accountmanager.defaultaccount") == EWS["account"]
    details = "mail.ews.server.details.%s." % EWS_HOST
    assert ews.value(details + "applicationId") == APP and ews.value(details + "tenant") == TENANT
    assert ews.value(details + "useCustomDetails") is True
    assert ews.value(details + "endpointHost") == urlsplit(MODEL["oauth2"]["token_endpoint"]).hostname
    assert ews.value(details + "oauthScopes") == " ".join(MODEL["ews"]["scopes"])
    # Lab mode locks what users must not change.
    assert {"mail.server.%s.ews_url" % EWS["server"], details + "applicationId"} <= ews.locked


def test_thunderbird_140_still_starts_with_the_ews_option_and_keeps_the_users_accounts(
        tmp_path, thunderbird_140_release):
    """140 ships EWS switched off: the option is not for it, but a PC that runs it by mistake still starts."""
    login = "tbews140"
    sb = make_sandbox(tmp_path / "box", release=thunderbird_140_release)
    assert converge(sb, {"mail_clients_account": ACCOUNT, "thunderbird_ews": True}).rc == 0
    sb.add_user(login)
    profile = tb.make_profile(sb, login, "ews", prefs_js=seeded_own_accounts())
    for _start in range(2):
        accounts, _log = tb.probe(sb, login, profile, tb.read_accounts(["extensions.lastAppVersion"]),
                                  env=thunderbird_140_release.env)
        assert accounts["prefs"]["extensions.lastAppVersion"]["value"] == thunderbird_140_release.version
        assert own_accounts(accounts) == [("account1", "imap.example.org", "own1"),
                                          ("account2", "pop.example.net", "own2")]
        assert accounts["defaultAccount"] == "account2"
