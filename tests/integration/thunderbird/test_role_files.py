"""The thunderbird role's files: layout, idempotence, check and diff mode, refusals, .cfg logic (in Node.js)."""

from __future__ import annotations

import json
import os
import stat

import pytest
from cfg_runner import run_cfg
from tb_role import (
    AUTH,
    AUTOCONFIG_PATH,
    CFG_PATH,
    ISP_DIR,
    KEYS,
    POLICIES_PATH,
    ROLE,
    SOCKET,
    converge,
    make_sandbox,
    snapshot,
)

from ansible_collections.middlebury.mail_clients.plugins.module_utils.account_model import normalize_account
from ansible_collections.middlebury.mail_clients.plugins.plugin_utils.client_plans.thunderbird import EXTENSION_ID

MODEL = normalize_account({}, [])
ISP_PATH = "%s/%s.xml" % (ISP_DIR, MODEL["mail_domain"])
HOSTILE = ["O'Brien", 'Zoë "Z" Ångström', "`id`", "$(id)", "a;b", "back\\slash"]
S = "mail.server.%s." % KEYS["server"]
I = "mail.identity.%s." % KEYS["identity"]  # noqa: E741 - Thunderbird's own prefix letter
O = "mail.smtpserver.%s." % KEYS["smtp"]  # noqa: E741
ACCOUNTS, SMTPS = "mail.accountmanager.accounts", "mail.smtpservers"
DEFAULT = "mail.accountmanager.defaultaccount"


def remote_executions(result):
    """Names of the role's tasks that ran a module on the host."""
    return result.remote_executions(ROLE + " : ")


def upper_file(sb, path):
    return sb.upper(path)


@pytest.fixture
def lab(tb_sandbox):
    """A lab-mode converge of its own, for tests that change the sandbox further."""
    sb = tb_sandbox()
    result = converge(sb)
    assert result.rc == 0, result
    return sb, result


@pytest.fixture(scope="module")
def lab_shared(tmp_path_factory):
    """One lab-mode converge for the tests that only read its files."""
    sb = make_sandbox(tmp_path_factory.mktemp("tb-files"))
    result = converge(sb)
    assert result.rc == 0, result
    return sb, result


def test_lab_layout_only_system_files_world_readable(lab_shared):
    sb, result = lab_shared
    assert result.changed() == 1
    for path in (AUTOCONFIG_PATH, CFG_PATH, POLICIES_PATH, ISP_PATH):
        st = os.stat(upper_file(sb, path))
        assert stat.S_IMODE(st.st_mode) == 0o644 and st.st_uid == 0, path
    assert not any((sb.workdir / "upper" / "home").iterdir()), "lab mode wrote into /home"
    cfg = upper_file(sb, CFG_PATH).read_text()
    assert cfg.startswith("//") and "managed by Ansible" in cfg.splitlines()[0]
    assert cfg.isascii()
    autoconfig = upper_file(sb, AUTOCONFIG_PATH).read_text()
    assert 'pref("general.config.filename", "%s");' % os.path.basename(CFG_PATH) in autoconfig
    assert 'pref("general.config.obscure_value", 0);' in autoconfig
    policies = json.loads(upper_file(sb, POLICIES_PATH).read_text())["policies"]
    assert policies["PasswordManagerEnabled"] is False
    assert policies["DisableAppUpdate"] is True
    assert policies["SSLVersionMin"] == "tls1.2"
    assert "Certificates" not in policies


def test_isp_file_offers_the_documented_settings(lab_shared):
    import xml.etree.ElementTree as ET

    sb, _result = lab_shared
    # The role wrote it into the sandbox's overlay of the ISP directory, never into the host's /usr.
    assert not os.path.exists(ISP_PATH), "the role wrote %s on the host" % ISP_PATH
    root = ET.parse(upper_file(sb, ISP_PATH)).getroot()
    provider = root.find("emailProvider")
    assert provider.findtext("domain") == MODEL["mail_domain"]
    incoming = [(s.get("type"), s.findtext("hostname"), int(s.findtext("port")), s.findtext("socketType"),
                 s.findtext("authentication")) for s in provider.findall("incomingServer")]
    assert incoming[0] == (MODEL["incoming"]["protocol"], MODEL["incoming"]["host"], MODEL["incoming"]["port"],
                           "SSL", "password-cleartext")
    assert len(incoming) == 3 and {i[0] for i in incoming} == {"imap", "pop3"}
    pop = next(s for s in provider.findall("incomingServer") if s.get("type") == "pop3")
    assert pop.findtext("pop3/leaveMessagesOnServer") == "true"
    smtp = provider.find("outgoingServer")
    assert (smtp.findtext("hostname"), int(smtp.findtext("port")), smtp.findtext("socketType")) == (
        MODEL["smtp"]["host"], MODEL["smtp"]["port"], "STARTTLS")


def test_second_run_changes_nothing_with_one_remote_execution(lab):
    sb, _first = lab
    again = converge(sb, facts=True)
    assert again.rc == 0, again
    assert again.changed() == 0, again.changed_tasks()
    assert remote_executions(again) == [
        "middlebury.mail_clients.thunderbird : Install and configure Thunderbird's AutoConfig, policies and "
        "account-wizard files"]


def test_check_mode_writes_nothing_and_diff_shows_the_cfg(tb_sandbox):
    sb = tb_sandbox()
    before = snapshot(sb)
    result = converge(sb, check=True, diff=True)
    assert result.rc == 0, result
    assert result.changed() == 1
    assert snapshot(sb) == before
    diffs = [d for _name, res in result.task_results() for d in res.get("diff", []) or []]
    after = {d["after_header"]: d["after"] for d in diffs}
    assert CFG_PATH in after and 'lockPref("signon.rememberSignons", false);' in after[CFG_PATH]


def test_diff_mode_shows_a_changed_full_name(tb_sandbox):
    sb = tb_sandbox()
    users = [{"login": "alice", "full_name": "Alice"}]
    assert converge(sb, {"mail_clients_users": users}).rc == 0
    users[0]["full_name"] = "Alice O'Brien"
    result = converge(sb, {"mail_clients_users": users}, diff=True)
    assert result.rc == 0 and result.changed() == 1
    diffs = [d for _name, res in result.task_results() for d in res.get("diff", []) or []]
    cfg = [d for d in diffs if d["after_header"] == CFG_PATH]
    assert cfg and '"Alice"' in cfg[0]["before"] and '"Alice O\'Brien"' in cfg[0]["after"]


@pytest.mark.parametrize("extra, field", [
    ({"mail_clients_users": [{"login": "bob", "full_name": "Bob\nlockPref(\"x\", 1);"}]},
     "mail_clients_users[0].full_name"),
    ({"mail_clients_users": [{"login": "bob", "full_name": "Tab\there"}]}, "mail_clients_users[0].full_name"),
    ({"mail_clients_account": {"display_name": "Mid\x00dle"}}, "mail_clients_account.display_name"),
    ({"mail_clients_account": {"incoming_security": "none"}}, "mail_clients_account.incoming_security"),
    ({"mail_clients_account": {"auth": "ntlm"}}, "mail_clients_account.auth"),
    ({"mail_clients_account": {"incoming_port": "99x"}}, "mail_clients_account.incoming_port"),
    ({"mail_clients_users": [{"login": "-rf"}]}, "mail_clients_users[0].login"),
    ({"thunderbird_ca_certificates": ["relative/ca.pem"]}, "thunderbird_ca_certificates"),
    ({"thunderbird_tls_min": "ssl3"}, "thunderbird_tls_min"),
])
def test_bad_input_is_refused_naming_the_field_and_nothing_is_written(tb_sandbox, extra, field):
    sb = tb_sandbox()
    before = snapshot(sb)
    result = converge(sb, extra)
    assert result.rc != 0
    messages = " ".join(result.failure_messages())
    assert field in messages, messages
    assert snapshot(sb) == before


@pytest.mark.parametrize("content", [
    "// first line\nlockPref(\"a\", \"unterminated);\n",
    "// first line\n(function () { undefinedFunction(); })();\n",
    # AutoConfig skips the first line, so code that starts there breaks the rest.
    "(function () {\n})();\n",
])
def test_the_node_run_of_the_cfg_fails_on_a_broken_file(tmp_path, content):
    """No validator runs on the lab PCs for the .cfg (no Node.js there): it is correct by construction (every
    value through js_literal) and proven here, in Node.js, and in the real Thunderbird. This proves the Node.js
    run used by the tests below can fail."""
    cfg = tmp_path / "broken.cfg"
    cfg.write_text(content)
    with pytest.raises(AssertionError):
        run_cfg(cfg, "jdoe")


# --- The .cfg's logic, run in Node.js against a model of the pref API ------------------------------

def test_cfg_fresh_profile_gets_the_account_as_default(lab_shared):
    sb, _result = lab_shared
    run = run_cfg(upper_file(sb, CFG_PATH), "jdoe")
    assert run.items(ACCOUNTS) == [KEYS["account"]]
    assert run.items(SMTPS) == [KEYS["smtp"]]
    assert run.value(DEFAULT) == KEYS["account"]
    assert run.value(S + "hostname") == MODEL["incoming"]["host"]
    assert run.value(S + "port") == MODEL["incoming"]["port"]
    assert run.value(S + "socketType") == SOCKET[MODEL["incoming"]["security"]]
    assert run.value(S + "authMethod") == AUTH["password"]
    assert run.value(S + "userName") == "jdoe"
    assert run.value(S + "using_subscription") is True
    junk = "imap://jdoe@%s/%s" % (MODEL["incoming"]["host"], MODEL["folders"]["junk"])
    assert run.value(S + "spamActionTargetFolder") == junk
    assert run.value(I + "useremail") == "jdoe@" + MODEL["mail_domain"]
    assert run.value(O + "hostname") == MODEL["smtp"]["host"]
    assert run.value(O + "port") == MODEL["smtp"]["port"]
    assert run.value(O + "try_ssl") == SOCKET[MODEL["smtp"]["security"]]
    # Lab machines: the security-relevant server settings are locked, the password is never saved.
    assert {S + "hostname", S + "port", S + "socketType", S + "authMethod", O + "hostname", O + "port",
            O + "try_ssl", O + "authMethod", "signon.rememberSignons"} <= run.locked
    assert run.value("signon.rememberSignons") is False
    # Only the lists and the default account are user values (written to prefs.js).
    assert set(run.user) == {ACCOUNTS, SMTPS, DEFAULT}


def test_cfg_appends_to_the_users_own_lists_and_keeps_the_default(lab_shared):
    sb, _result = lab_shared
    own = {ACCOUNTS: "account1,account2", SMTPS: "smtp1", DEFAULT: "account2"}
    run = run_cfg(upper_file(sb, CFG_PATH), "jdoe", own)
    assert run.items(ACCOUNTS) == ["account1", "account2", KEYS["account"]]
    assert run.items(SMTPS) == ["smtp1", KEYS["smtp"]]
    assert run.value(DEFAULT) == "account2"
    again = run_cfg(upper_file(sb, CFG_PATH), "jdoe", run.user)
    assert again.user == run.user


@pytest.mark.parametrize("env", [{"USER": "root"}, {"USER": ""}, {}])
def test_cfg_skips_root_and_an_unknown_user(lab_shared, env):
    sb, _result = lab_shared
    run = run_cfg(upper_file(sb, CFG_PATH), None, {ACCOUNTS: "account1"}, env=env)
    assert run.items(ACCOUNTS) == ["account1"]
    assert not any(k.startswith(S) or k.startswith(I) for k in run.defaults)


def test_cfg_strips_a_realm_and_falls_back_to_logname(lab_shared):
    sb, _result = lab_shared
    assert run_cfg(upper_file(sb, CFG_PATH), "jdoe@MIDD.EXAMPLE").value(S + "userName") == "jdoe"
    assert run_cfg(upper_file(sb, CFG_PATH), None, env={"LOGNAME": "asmith"}).value(S + "userName") == "asmith"


def test_cfg_named_users_hostile_names_exact_and_others_get_nothing(tb_sandbox):
    sb = tb_sandbox()
    users = [{"login": "u%d" % n, "full_name": name} for n, name in enumerate(HOSTILE)]
    users += [{"login": "__proto__", "username": "proto.user", "email": "p@example.org", "full_name": "P"},
              {"login": "constructor", "full_name": "C"}]
    result = converge(sb, {"mail_clients_users": users})
    assert result.rc == 0, result
    assert not any((sb.workdir / "upper" / "home").iterdir()), "named users: profiles are not touched"
    cfg = upper_file(sb, CFG_PATH)
    for n, name in enumerate(HOSTILE):
        run = run_cfg(cfg, "u%d" % n)
        assert run.value(I + "fullName") == name
        assert run.value(I + "useremail") == "u%d@%s" % (n, MODEL["mail_domain"])
        assert run.value(S + "userName") == "u%d" % n
        # Named users may change their server settings: nothing is locked but the password saving.
        assert run.locked == {"signon.rememberSignons"}
    proto = run_cfg(cfg, "__proto__")
    assert (proto.value(S + "userName"), proto.value(I + "useremail")) == ("proto.user", "p@example.org")
    assert run_cfg(cfg, "constructor").value(I + "fullName") == "C"
    for stranger in ("nobody", "toString", "hasOwnProperty", "root"):
        assert run_cfg(cfg, stranger).items(ACCOUNTS) == []
    policies = json.loads(upper_file(sb, POLICIES_PATH).read_text())["policies"]
    assert policies["OfferToSaveLogins"] is False and "PasswordManagerEnabled" not in policies


def test_cfg_unlisted_user_loses_a_stale_account(tb_sandbox):
    sb = tb_sandbox()
    assert converge(sb, {"mail_clients_users": [{"login": "alice"}]}).rc == 0
    stale = {ACCOUNTS: "account1,%s" % KEYS["account"], SMTPS: "%s,smtp1" % KEYS["smtp"],
             DEFAULT: KEYS["account"], S + "directory-rel": "[ProfD]ImapMail/x",
             "mail.smtp.defaultserver": KEYS["smtp"]}
    run = run_cfg(upper_file(sb, CFG_PATH), "bob", stale)
    assert run.user == {ACCOUNTS: "account1", SMTPS: "smtp1"}


def test_state_absent_leaves_only_a_cleanup_cfg_then_nothing(lab):
    sb, _result = lab
    result = converge(sb, {"thunderbird_state": "absent"})
    assert result.rc == 0 and result.changed() == 1, result
    # The policies keep only the block that takes our provider extension out of profiles that have it.
    assert json.loads(upper_file(sb, POLICIES_PATH).read_text()) == {
        "policies": {"ExtensionSettings": {EXTENSION_ID: {"installation_mode": "blocked"}}}}
    assert upper_file(sb, ISP_PATH).exists() is False
    used = {ACCOUNTS: "account1,%s" % KEYS["account"], SMTPS: "smtp1,%s" % KEYS["smtp"], DEFAULT: "account1",
            S + "directory-rel": "[ProfD]ImapMail/mail", "mail.smtp.defaultserver": KEYS["smtp"]}
    run = run_cfg(upper_file(sb, CFG_PATH), "jdoe", used)
    assert run.user == {ACCOUNTS: "account1", SMTPS: "smtp1", DEFAULT: "account1"}
    assert not any(k.startswith(S) for k in run.defaults)
    assert converge(sb, {"thunderbird_state": "absent"}).changed() == 0
    gone = converge(sb, {"thunderbird_state": "absent", "thunderbird_cleanup_profiles": False})
    assert gone.rc == 0 and gone.changed() == 1
    for path in (AUTOCONFIG_PATH, CFG_PATH, POLICIES_PATH, ISP_PATH):
        assert not upper_file(sb, path).exists(), path


def test_isp_file_follows_the_domain_and_offers_only_what_was_declared(tb_sandbox):
    import xml.etree.ElementTree as ET

    sb = tb_sandbox()
    theirs = upper_file(sb, "%s/other.example.xml" % ISP_DIR)
    theirs.parent.mkdir(parents=True, exist_ok=True)
    theirs.write_text("<clientConfig/>\n")
    dept = {"mail_domain": "physics.example.edu", "incoming_host": "pop.physics.example.edu", "protocol": "pop3",
            "smtp_host": "smtp.physics.example.edu", "smtp_port": 587}
    assert converge(sb, {"mail_clients_account": dept}).rc == 0
    dept_file = upper_file(sb, "%s/physics.example.edu.xml" % ISP_DIR)
    provider = ET.parse(dept_file).getroot().find("emailProvider")
    offered = [(s.get("type"), s.findtext("hostname"), s.findtext("port")) for s in provider.iter("incomingServer")]
    assert offered == [("pop3", "pop.physics.example.edu", "995")], "a POP-only department gets no IMAP"
    assert "Middlebury" not in dept_file.read_text()
    # The department moves to the college's settings: its old file goes, the one that is not ours stays.
    assert converge(sb).rc == 0
    assert not dept_file.exists() and upper_file(sb, ISP_PATH).exists()
    assert theirs.read_text() == "<clientConfig/>\n"
    assert converge(sb, {"thunderbird_state": "absent"}).rc == 0
    assert not upper_file(sb, ISP_PATH).exists() and theirs.exists()


def test_options_reach_policies_and_lock(tb_sandbox):
    sb = tb_sandbox()
    result = converge(sb, {"thunderbird_ca_certificates": ["/etc/ssl/dept-ca.pem"], "thunderbird_tls_min": "tls1.3",
                           "thunderbird_lock_server_settings": False, "thunderbird_isp_file": False,
                           "thunderbird_extra_policies": {"DisableTelemetry": True},
                           "mail_clients_account": {"protocol": "pop3", "save_password": True}})
    assert result.rc == 0, result
    policies = json.loads(upper_file(sb, POLICIES_PATH).read_text())["policies"]
    assert policies["Certificates"] == {"Install": ["/etc/ssl/dept-ca.pem"]}
    assert policies["SSLVersionMin"] == "tls1.3" and policies["DisableTelemetry"] is True
    assert not upper_file(sb, ISP_PATH).exists()
    run = run_cfg(upper_file(sb, CFG_PATH), "jdoe")
    pop = normalize_account({"protocol": "pop3"})
    assert run.value(S + "type") == "pop3" and run.value(S + "port") == pop["incoming"]["port"]
    assert run.value(S + "leave_on_server") is True
    # save_password true: neither the .cfg nor the policies stop Thunderbird from saving it.
    assert run.locked == set() and "signon.rememberSignons" not in run.defaults
    assert not {"PasswordManagerEnabled", "OfferToSaveLogins", "OfferToSaveLoginsDefault"} & set(policies)


def test_install_on_a_host_that_has_the_packages_changes_nothing(lab):
    """thunderbird_install installs within the role's one task (Thunderbird only: no Node.js), and changes nothing
    on a host that has it."""
    sb, _first = lab
    again = converge(sb, {"thunderbird_install": True}, facts=True)
    assert again.rc == 0, again
    assert again.changed() == 0, again.changed_tasks()
    (task,) = [res for _name, res in again.task_results() if "install" in res]
    assert task["install"] == {"packages": ["thunderbird"], "changed": False}, task["install"]


def test_named_users_can_be_locked_and_oauth2_maps_to_thunderbirds_method(tb_sandbox):
    import xml.etree.ElementTree as ET

    sb = tb_sandbox()
    result = converge(sb, {"mail_clients_users": [{"login": "alice"}], "thunderbird_lock_server_settings": True,
                           "mail_clients_account": {"provider": "microsoft365"}})
    assert result.rc == 0, result
    run = run_cfg(upper_file(sb, CFG_PATH), "alice")
    assert {S + "hostname", S + "socketType", S + "authMethod", O + "try_ssl"} <= run.locked
    assert run.value(S + "authMethod") == AUTH["oauth2"] and run.value(O + "authMethod") == AUTH["oauth2"]
    root = ET.parse(upper_file(sb, ISP_PATH)).getroot()
    assert {a.text for a in root.iter("authentication")} == {"OAuth2"}
