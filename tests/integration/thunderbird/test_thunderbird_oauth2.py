"""Thunderbird with OAuth2, configured only by the role with the Microsoft 365 preset and the tenant's own app: the
role's provider extension (force-installed by policy from a local file) registers the app, and Thunderbird
redeems a refresh token at the stand-in identity provider itself, then logs in to Dovecot and sends through
Postfix with XOAUTH2. The preset's names are mapped inside the sandbox to the stack (hosts_file_presets); the
refresh token is seeded through Marionette into the profile's login store, as the sign-in would leave it
(oauth-test-recipes.md), so the test needs no browser."""

from __future__ import annotations

import io
import json
import re
import uuid
import zipfile

import pytest
import tb_harness as tb
from mailstack import LOGIN_LOGGED
from tb_releases import HOST
from tb_role import KEYS, LAYOUT, POLICIES_PATH, converge, own_accounts, seeded_own_accounts, stack_box

from ansible_collections.middlebury.mail_clients.plugins.module_utils.account_model import normalize_account
from ansible_collections.middlebury.mail_clients.plugins.plugin_utils.client_plans import thunderbird as plan

APP = "tb-role-oauth-test"
ACCOUNT = {"provider": "microsoft365", "oauth2": {"client_id": APP}}
MODEL = normalize_account(ACCOUNT)
EXTENSION_PATH = "%s/%s" % (LAYOUT["cfg_dir"], plan.EXTENSION_FILE)

pytestmark = pytest.mark.timeout(900)

# How long the scripts wait for the provider extension to register the app (seen at 1-2 s on an idle machine; a
# busy shared one may take far longer, and a passing run waits only as long as it takes).
REGISTER_MS = 45000
# Seeds the refresh token as Thunderbird's own sign-in stores it (origin oauth://<issuer>, the scopes as realm),
# once the provider extension has registered the app for the IMAP host. Thunderbird keeps one OAuth2 object per
# account from its start on, so the token is redeemed in the next run.
SEED = r"""
const [issuer, scope, username, refreshToken, imapHost, done] = arguments;
const {OAuth2Providers} = ChromeUtils.importESModule("resource:///modules/OAuth2Providers.sys.mjs");
const {setTimeout} = ChromeUtils.importESModule("resource://gre/modules/Timer.sys.mjs");
const result = {version: Services.appinfo.version};
const deadline = Date.now() + REGISTER_MS;
function registered() {
  const details = OAuth2Providers.getHostnameDetails(imapHost, "imap");
  if ((details && details.issuer == issuer) || Date.now() > deadline) {
    result.provider = details ? {issuer: details.issuer, scopes: details.requiredScopes} : null;
    const issuerDetails = details ? OAuth2Providers.getIssuerDetails(details.issuer) : null;
    result.clientId = issuerDetails ? issuerDetails.clientId : null;
    const login = Cc["@mozilla.org/login-manager/loginInfo;1"].createInstance(Ci.nsILoginInfo);
    login.init("oauth://" + issuer, null, scope, username, refreshToken, "", "");
    Services.logins.addLoginAsync(login).then(async () => {
      result.stored = (await Services.logins.searchLoginsAsync({origin: "oauth://" + issuer})).length;
      done(result);
    }, e => { result.error = String(e); done(result); });
    return;
  }
  setTimeout(registered, 250);
}
registered();
""".replace("REGISTER_MS", str(REGISTER_MS))

# Goes online and has Thunderbird log in to IMAP with what it has (the stored refresh token).
LOGIN = r"""
const [accountKey, issuer, done] = arguments;
const {MailServices} = ChromeUtils.importESModule("resource:///modules/MailServices.sys.mjs");
const {OAuth2Providers} = ChromeUtils.importESModule("resource:///modules/OAuth2Providers.sys.mjs");
const {setTimeout} = ChromeUtils.importESModule("resource://gre/modules/Timer.sys.mjs");
const result = {};
const imap = MailServices.accounts.getAccount(accountKey).incomingServer;
const deadline = Date.now() + REGISTER_MS;
function go() {
  // (140 calls it hostName.)
  const details = OAuth2Providers.getHostnameDetails(imap.hostname ?? imap.hostName, "imap");
  if (!(details && details.issuer == issuer) && Date.now() < deadline) {
    setTimeout(go, 250);  // the extension registers the app a second or two after the start
    return;
  }
  result.registeredAfterMs = REGISTER_MS - (deadline - Date.now());
  Services.io.offline = false;
  imap.verifyLogon({
    OnStartRunningUrl() {},
    OnStopRunningUrl(url, status) { result.imap = status; done(result); },
    QueryInterface: ChromeUtils.generateQI(["nsIUrlListener"]),
  }, null);
}
go();
setTimeout(() => { result.timedOut = true; done(result); }, REGISTER_MS + 30000);
""".replace("REGISTER_MS", str(REGISTER_MS))


def test_the_tenants_app_signs_in_through_the_roles_provider_extension_and_logs_in_with_xoauth2(
        tmp_path, mail_stack, tb_release):
    login = "tboauth" + tb_release.version.split(".")[0]
    mail_stack.add_user(login, "Tb-OAuth-Pass_3")
    sb = stack_box(tmp_path / "box", mail_stack, mail_stack.hosts_file_presets, {"mail_clients_account": ACCOUNT},
                   release=tb_release)
    # What the role wrote: the policy names the local extension, whose manifest is the account's app.
    policies = json.loads(sb.upper(POLICIES_PATH).read_text())["policies"]
    setting = policies["ExtensionSettings"][plan.EXTENSION_ID]
    assert setting == {"installation_mode": "force_installed", "install_url": "file://" + EXTENSION_PATH}
    manifest = json.loads(zipfile.ZipFile(io.BytesIO(sb.upper(EXTENSION_PATH).read_bytes())).read("manifest.json"))
    provider = manifest["oauth_provider"]
    assert provider["clientId"] == APP and provider["issuer"] == plan.extension_issuer(MODEL)
    assert provider["tokenEndpoint"] == MODEL["oauth2"]["token_endpoint"]
    assert set(provider["hostnames"]) == {MODEL["incoming"]["host"], MODEL["smtp"]["host"]}

    sb.add_user(login, "Tb OAuth")
    username = mail_stack.address_of(login)
    seeded = mail_stack.tokens_for(login, client_id=APP, scope=" ".join(MODEL["oauth2"]["scopes"]))["refresh_token"]
    before = len(mail_stack.token_grants())
    dovecot_mark = mail_stack.dovecot_log.stat().st_size
    postfix_mark = mail_stack.postfix_log.stat().st_size
    subject = "tb-oauth2-%s" % uuid.uuid4().hex[:10]

    def seed(client):
        return client.async_script(SEED, args=[
            plan.extension_issuer(MODEL), " ".join(MODEL["oauth2"]["scopes"]), username, seeded,
            MODEL["incoming"]["host"]], timeout=REGISTER_MS // 1000 + 20)

    def login_and_work(client):
        logged_in = client.async_script(LOGIN, args=[KEYS["account"], plan.extension_issuer(MODEL)],
                                        timeout=REGISTER_MS // 1000 + 50)
        if logged_in.get("imap") != 0:
            return logged_in, None, None
        return logged_in, tb.do_work(KEYS["account"], subject)(client), tb.read_accounts()(client)

    profile = tb.make_profile(sb, login, "oauth")
    stored, _log = tb.probe(sb, login, profile, seed, env=tb_release.env)
    assert tb_release is HOST or stored["version"] == tb_release.version, stored
    assert stored.get("provider") == {"issuer": plan.extension_issuer(MODEL),
                                      "scopes": " ".join(MODEL["oauth2"]["scopes"])}, stored
    assert stored.get("clientId") == APP and stored.get("stored") == 1, stored
    (logged_in, work, accounts), log = tb.probe(sb, login, profile, login_and_work, env=tb_release.env)
    assert logged_in.get("imap") == 0, (logged_in, [line for line in log.splitlines() if "oauth" in line.lower()][-20:])
    assert ("refresh_token", APP) in mail_stack.token_grants()[before:], mail_stack.token_grants()[before:]
    dovecot = mail_stack.dovecot_log.read_text(errors="replace")[dovecot_mark:]
    assert re.search(r"imap-login: Info: " + LOGIN_LOGGED % login + r", method=XOAUTH2,.*\bTLS\b", dovecot), \
        dovecot[-3000:]
    # The INBOX and a subscribed folder, then a message through Postfix with the same app's token.
    assert work and "INBOX" in work["folders"] and "Personal" in work["folders"], work
    assert work.get("sent"), work
    assert mail_stack.wait_for_message(login, subject), "the message did not arrive"
    postfix = mail_stack.postfix_log.read_text(errors="replace")[postfix_mark:]
    assert re.search(r"sasl_method=XOAUTH2, sasl_username=%s\b" % login, postfix), postfix[-3000:]
    ours = [a for a in accounts["accounts"] if a["key"] == KEYS["account"]]
    assert ours and ours[0]["authMethod"] == plan.AUTH_METHOD["oauth2"] and ours[0]["username"] == username


# What is left of the provider extension in a profile: the add-on, and the provider it registers.
LEFT = r"""
const [id, host, done] = arguments;
const {AddonManager} = ChromeUtils.importESModule("resource://gre/modules/AddonManager.sys.mjs");
const {OAuth2Providers} = ChromeUtils.importESModule("resource:///modules/OAuth2Providers.sys.mjs");
const {setTimeout} = ChromeUtils.importESModule("resource://gre/modules/Timer.sys.mjs");
setTimeout(() => AddonManager.getAddonByID(id).then(addon => {
  const details = OAuth2Providers.getHostnameDetails(host, "imap");
  done({addon: addon ? {active: addon.isActive} : null, issuer: details ? details.issuer : null,
        version: Services.appinfo.version});
}), 4000);
"""


def mail_accounts(accounts):
    """The account keys in order, without the Local Folders account (type none) that 140 adds, once, at the end
    of a profile that has none (153 does not)."""
    types = [a["type"] for a in accounts["accounts"]]
    assert "none" not in types[:-1], accounts["accounts"]
    return [a["key"] for a in accounts["accounts"] if a["type"] != "none"]


def test_a_users_own_accounts_stay_and_absent_takes_our_account_and_the_extension_out(
        tmp_path, mail_stack, tb_release):
    login = "tboauthgone"
    sb = stack_box(tmp_path / "box", mail_stack, mail_stack.hosts_file_presets, {"mail_clients_account": ACCOUNT},
                   release=tb_release)
    sb.add_user(login, "Tb Gone")
    profile = tb.make_profile(sb, login, "gone", prefs_js=seeded_own_accounts())
    own = [("account1", "imap.example.org", "own1"), ("account2", "pop.example.net", "own2")]

    def left(client):
        return (client.async_script(LEFT, args=[plan.EXTENSION_ID, MODEL["incoming"]["host"]], timeout=30),
                tb.read_accounts()(client))

    # Two starts: the user's accounts first, in order, their default kept; ours once, with OAuth2.
    for _start in range(2):
        (installed, accounts), _log = tb.probe(sb, login, profile, left, env=tb_release.env)
        assert tb_release is HOST or installed.pop("version") == tb_release.version, installed
        installed.pop("version", None)
        assert installed == {"addon": {"active": True}, "issuer": plan.extension_issuer(MODEL)}, installed
        keys = mail_accounts(accounts)
        assert keys == ["account1", "account2", KEYS["account"]] and accounts["defaultAccount"] == "account2", keys
        assert own_accounts(accounts) == own
        assert next(a for a in accounts["accounts"] if a["key"] == KEYS["account"])["authMethod"] == \
            plan.AUTH_METHOD["oauth2"]

    result = converge(sb, {"thunderbird_state": "absent", "mail_clients_account": ACCOUNT})
    assert result.rc == 0, result
    # Removing the policy would leave the add-on installed and its provider registered: the cleanup blocks it.
    assert json.loads(sb.upper(POLICIES_PATH).read_text()) == {
        "policies": {"ExtensionSettings": {plan.EXTENSION_ID: {"installation_mode": "blocked"}}}}
    assert not sb.upper(EXTENSION_PATH).exists()
    (gone, accounts), _log = tb.probe(sb, login, profile, left, env=tb_release.env)
    assert gone["issuer"] != plan.extension_issuer(MODEL), gone
    assert gone["addon"] is None or not gone["addon"]["active"], gone
    assert mail_accounts(accounts) == ["account1", "account2"]
    assert own_accounts(accounts) == own and accounts["defaultAccount"] == "account2"
