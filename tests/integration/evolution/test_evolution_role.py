"""The evolution role, proven by evolution-data-server's own registry and by Camel talking to the stack.

Every check converges the real role in a sandbox (the host's /etc and /home stay untouched), then
runs evolution-source-registry as the user under test and reads what it loaded through GObject
introspection; Camel then connects with exactly those sources. Expected values come from the
collection's account model, never restated here.
"""

from __future__ import annotations

import re
import secrets
import time
from pathlib import Path

import pytest
from evolution_support import (
    DCONF_UPDATE,
    SOURCES,
    WRITE_TASK,
    converge,
    managed_files_result,
    new_sandbox,
    plant_personal_source,
    probe,
    remote_executions,
    tree_snapshot,
    user_file,
)

from ansible_collections.middlebury.mail_clients.plugins.module_utils.account_model import normalize_account

HOSTILE = ["O'Brien", 'Zoë "Z" Ångström', "`id`", "$(id)", "a;b", "back\\slash"]
# Camel's vocabulary (not documented values): what each security / protocol must become.
NICKS = {"ssl": "ssl-on-alternate-port", "starttls": "starttls-on-standard-port"}
BACKENDS = {"imap": "imapx", "pop3": "pop"}
UID = {"imap": "middlebury-imap", "pop3": "middlebury-pop"}
TEMPLATES = "/etc/xdg/evolution-data-server/autoconfig"


@pytest.fixture(scope="module")
def stack_logins(mail_stack):
    """Mail accounts of our own on the shared stack: login -> password."""
    logins = {}
    for login in ("evojane", "evoraj", "evolab"):
        if login not in mail_stack.users:
            mail_stack.add_user(login, "Evo-%s-%s" % (login, secrets.token_hex(6)))
        logins[login] = mail_stack.users[login]
    return logins


def _uid_of(sb, login):
    return int(sb.run(["id", "-u", login]).stdout)


def _assert_account(seen, account, protocol_uid, login, person):
    """The registry's view of our three sources equals what the model says."""
    assert seen["not_loaded"] == [], seen["not_loaded"]
    sources = seen["sources"]
    incoming, smtp = account["incoming"], account["smtp"]
    acct = sources[protocol_uid]
    assert acct["backend"] == BACKENDS[incoming["protocol"]]
    assert acct["name"] == account["display_name"]
    assert acct["auth"] == {"host": incoming["host"], "port": incoming["port"], "user": person["username"],
                            "method": "none", "remember_password": account["save_password"]}
    # The effective Camel settings: a misspelt nick would show up here as STARTTLS, a missing group as none.
    assert acct["camel"]["security-method"] == NICKS[incoming["security"]]
    if incoming["protocol"] == "imap":
        assert acct["camel"]["use-subscriptions"] is account["imap_subscriptions"]
        assert acct["camel"]["check-all"] is False
        folders = account["folders"]
        assert (acct["camel"]["use-real-trash-path"], acct["camel"]["real-trash-path"]) == (True, folders["trash"])
        assert (acct["camel"]["use-real-junk-path"], acct["camel"]["real-junk-path"]) == (True, folders["junk"])
    else:
        assert acct["camel"]["keep-on-server"] is True and acct["camel"]["delete-after-days"] == 0
    identity = sources[acct["identity"]]
    assert identity["parent"] == protocol_uid
    assert identity["address"] == person["email"]
    assert identity["full_name"] == person["full_name"]
    transport = sources[identity["transport"]]
    assert transport["parent"] == protocol_uid and transport["backend"] == "smtp"
    assert transport["auth"]["host"] == smtp["host"] and transport["auth"]["port"] == smtp["port"]
    assert transport["auth"]["user"] == person["username"]
    assert transport["auth"]["method"] in ("LOGIN", "PLAIN")  # never none: that would send no AUTH at all
    assert transport["camel"]["security-method"] == NICKS[smtp["security"]]


def _wait_for(mail_stack, login, subject, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if subject in mail_stack.message_subjects(login, "INBOX"):
            return True
        time.sleep(0.2)
    return False


def test_named_users_registry_lists_our_account_and_camel_reads_and_sends(tmp_path, mail_stack, stack_logins):
    people = [
        {"login": "evojane", "full_name": HOSTILE[1]},
        {"login": "evoraj", "full_name": HOSTILE[0]},
        {"login": "evoh2", "full_name": HOSTILE[2], "username": "h2.mail", "email": "h2@example.org"},
        {"login": "evoh3", "full_name": HOSTILE[3]},
        {"login": "evoh4", "full_name": HOSTILE[4]},
        {"login": "evoh5", "full_name": HOSTILE[5]},
    ]
    sb = new_sandbox(tmp_path, mail_stack, [(p["login"], "") for p in people])
    personal = plant_personal_source(sb, "evojane")
    personal_before = personal.read_bytes()

    result = converge(sb, {"mail_clients_users": people})
    assert result.rc == 0, result
    assert result.changed() == 1 and remote_executions(result) == [WRITE_TASK], result

    account = normalize_account({}, people)
    for person in account["users"]:
        login = person["login"]
        uid = _uid_of(sb, login)
        # The registry exits (and Evolution, Calendar, Contacts stop) if these are not the user's.
        for rel in (".config", ".config/evolution", SOURCES):
            st = sb.upper("/home/%s/%s" % (login, rel)).stat()
            assert (st.st_uid, st.st_mode & 0o077) == (uid, 0), (login, rel)
        for suffix in ("", "-identity", "-transport"):
            st = user_file(sb, login, UID["imap"] + suffix).stat()
            assert (st.st_uid, st.st_mode & 0o777) == (uid, 0o600)
        seen = probe(sb, login)
        _assert_account(seen, account, UID["imap"], login, person)

    # The user's own source: still loaded by EDS and byte-identical.
    assert personal.read_bytes() == personal_before
    assert "my-own" in probe(sb, "evojane")["sources"]
    # The registry has rewritten every file with its own escaping of the hostile names: still no change.
    again = converge(sb, {"mail_clients_users": people})
    assert again.rc == 0 and again.changed() == 0, again

    # Camel with the sources EDS loaded: IMAPS read, subscriptions, SMTP STARTTLS + AUTH send.
    subject = "evolution role %s" % secrets.token_hex(4)
    seen = probe(sb, "evojane", uids=[UID["imap"]], password=stack_logins["evojane"], folders=mail_stack.folders,
                 send={"to": "evoraj@%s" % account["mail_domain"], "subject": subject})
    camel = seen["camel"][UID["imap"]]
    assert camel["store"] == "ok", camel
    assert camel["inbox_subjects"] == sorted(mail_stack.message_subjects("evojane", "INBOX"))
    assert camel["inbox_subjects"], "the stack seeds every INBOX"
    assert camel["subscribed"], "no subscribed folder seen"
    assert camel["send"] == "ok", camel
    assert _wait_for(mail_stack, "evoraj", subject), "the message sent by Camel never arrived"
    # The servers saw TLS and a normal password (the role's SMTP default is LOGIN; IMAP uses LOGIN/PLAIN).
    postfix_log = Path(mail_stack.postfix_log).read_text(errors="replace")
    assert "sasl_method=LOGIN, sasl_username=evojane" in postfix_log
    dovecot_log = Path(mail_stack.dovecot_log).read_text(errors="replace")
    assert any("user=<evojane>" in line and "TLS" in line and re.search(r"method=(PLAIN|LOGIN)\b", line)
               for line in dovecot_log.splitlines()), "no TLS normal-password IMAP login for evojane"


def test_imap_starttls_and_pop3s_from_the_same_role(tmp_path, mail_stack, stack_logins):
    people = [{"login": "evojane", "full_name": "Jane Evo"}]
    sb = new_sandbox(tmp_path, mail_stack, [("evojane", "")])

    starttls = {"incoming_security": "starttls"}
    result = converge(sb, {"mail_clients_users": people, "mail_clients_account": starttls})
    assert result.rc == 0, result
    account = normalize_account(starttls, people)
    seen = probe(sb, "evojane", uids=[UID["imap"]], password=stack_logins["evojane"])
    _assert_account(seen, account, UID["imap"], "evojane", account["users"][0])
    assert seen["camel"][UID["imap"]]["store"] == "ok", seen["camel"]

    pop = {"protocol": "pop3"}
    before = mail_stack.message_subjects("evojane", "INBOX")
    result = converge(sb, {"mail_clients_users": people, "mail_clients_account": pop})
    assert result.rc == 0, result
    actions = {Path(f["path"]).name: f["action"] for f in managed_files_result(result)["files"]
               if not f["path"].startswith(TEMPLATES)}
    # Switching protocol removes the other protocol's sources (ours) instead of leaving two accounts.
    assert actions["middlebury-imap.source"] == "removed" and actions["middlebury-pop.source"] == "created"
    account = normalize_account(pop, people)
    seen = probe(sb, "evojane", uids=[UID["pop3"]], password=stack_logins["evojane"])
    _assert_account(seen, account, UID["pop3"], "evojane", account["users"][0])
    assert UID["imap"] not in seen["sources"]
    camel = seen["camel"][UID["pop3"]]
    assert camel["store"] == "ok" and camel["inbox_subjects"] == sorted(before), camel
    # Leave mail on the server.
    assert mail_stack.message_subjects("evojane", "INBOX") == before


def test_lab_mode_autoconfig_for_every_login_and_system_dconf(tmp_path, mail_stack, stack_logins):
    gecos = HOSTILE[1]
    sb = new_sandbox(tmp_path, mail_stack, [("evolab", gecos)])
    mail_settings = {"image-loading-policy": "'never'", "trash-empty-on-exit": True}
    # The label is free text in a template EDS copies raw: our escaping must survive that copy.
    label = {"display_name": "Zoë's \"Mail\"; back\\slash $(id) `id`"}
    dconf = {"evolution_dconf_settings": {"org/gnome/evolution/mail": mail_settings},
             "evolution_dconf_locks": ["/org/gnome/evolution/mail/image-loading-policy"],
             "mail_clients_account": label}
    result = converge(sb, dconf)
    assert result.rc == 0, result
    assert managed_files_result(result)["after_change"] == [DCONF_UPDATE], managed_files_result(result)

    # Root-owned, world-readable templates; nothing written in any home directory.
    for suffix in ("", "-identity", "-transport"):
        st = sb.upper("%s/%s%s.source" % (TEMPLATES, UID["imap"], suffix)).stat()
        assert (st.st_uid, st.st_mode & 0o777) == (0, 0o644)
    assert sb.upper(TEMPLATES).stat().st_mode & 0o777 == 0o755
    assert not sb.upper("/home/evolab/.config").exists()

    # The system dconf database is compiled and read by users.
    read = sb.run(["runuser", "-u", "evolab", "--", "dconf", "read", "/org/gnome/evolution/mail/image-loading-policy"])
    assert read.stdout.strip() == "'never'", read

    # At login the user's registry copies the templates, expanding ${USER} and ${REALNAME}.
    account = normalize_account(label, [])
    person = {"username": "evolab", "email": "evolab@%s" % account["mail_domain"], "full_name": gecos}
    subject = "evolution lab %s" % secrets.token_hex(4)
    seen = probe(sb, "evolab", uids=[UID["imap"]], password=stack_logins["evolab"],
                 send={"to": "evoraj@%s" % account["mail_domain"], "subject": subject})
    _assert_account(seen, account, UID["imap"], "evolab", person)
    assert seen["camel"][UID["imap"]]["store"] == "ok" and seen["camel"][UID["imap"]]["send"] == "ok", seen["camel"]
    assert _wait_for(mail_stack, "evoraj", subject)
    assert "[Autoconfig]" in user_file(sb, "evolab", UID["imap"]).read_text()

    # Second run: nothing changes, one remote module execution, no dconf update.
    again = converge(sb, dconf)
    assert again.rc == 0 and again.changed() == 0, again
    assert len(remote_executions(again)) == 1, remote_executions(again)
    assert managed_files_result(again)["after_change"] == []

    # Absent: templates and dconf files go; at the next login EDS drops the copied account.
    gone = converge(sb, dict(dconf, evolution_state="absent"))
    assert gone.rc == 0, gone
    assert managed_files_result(gone)["after_change"] == [DCONF_UPDATE], managed_files_result(gone)
    assert not sb.upper("%s/%s.source" % (TEMPLATES, UID["imap"])).exists()
    read = sb.run(["runuser", "-u", "evolab", "--", "dconf", "read", "/org/gnome/evolution/mail/image-loading-policy"])
    assert read.stdout.strip() == "", read
    assert UID["imap"] not in probe(sb, "evolab")["sources"]


def test_idempotent_check_and_diff_then_absent_removes_only_ours(tmp_path, mail_stack):
    people = [{"login": "evojane", "full_name": "Jane Evo"}]
    sb = new_sandbox(tmp_path, mail_stack, [("evojane", "")])
    personal = plant_personal_source(sb, "evojane")
    personal_before = personal.read_bytes()
    home, etc = sb.upper("/home"), sb.upper("/etc")
    before = (tree_snapshot(home), tree_snapshot(etc))

    check = converge(sb, {"mail_clients_users": people}, check=True, diff=True)
    assert check.rc == 0 and check.changed() == 1, check
    assert (tree_snapshot(home), tree_snapshot(etc)) == before, "check mode wrote something"

    first = converge(sb, {"mail_clients_users": people}, diff=True)
    assert first.rc == 0 and first.changed() == 1, first
    diffs = managed_files_result(first)["diff"]
    assert any(d["after_header"].endswith("/%s.source" % UID["imap"]) and "Method=ssl-on-alternate-port" in d["after"]
               for d in diffs), diffs

    # The registry loads (and rewrites, adding keys of its own) our files, and Evolution writes every property
    # back after any edit in its account editor; neither is a change for us.
    written = user_file(sb, "evojane", UID["imap"]).read_bytes()
    probe(sb, "evojane")
    assert user_file(sb, "evojane", UID["imap"]).read_bytes() != written, "EDS no longer rewrites: simplify"
    ours = [UID["imap"] + suffix for suffix in ("", "-identity", "-transport")]
    probe(sb, "evojane", rewrite=ours)
    assert "MarkSeenTimeout=" in user_file(sb, "evojane", UID["imap"]).read_text(), "the full rewrite did not happen"
    second = converge(sb, {"mail_clients_users": people})
    assert second.rc == 0 and second.changed() == 0, second
    assert len(remote_executions(second)) == 1, remote_executions(second)
    assert converge(sb, {"mail_clients_users": people}, check=True).changed() == 0

    gone = converge(sb, {"mail_clients_users": people, "evolution_state": "absent"})
    assert gone.rc == 0 and gone.changed() == 1, gone
    for suffix in ("", "-identity", "-transport"):
        assert not user_file(sb, "evojane", UID["imap"] + suffix).exists()
    assert personal.read_bytes() == personal_before
    assert sb.upper("/home/evojane/%s" % SOURCES).stat().st_uid == _uid_of(sb, "evojane")
    assert "my-own" in probe(sb, "evojane")["sources"]
    assert converge(sb, {"mail_clients_users": people, "evolution_state": "absent"}).changed() == 0


@pytest.mark.parametrize(("extra", "field"), [
    ({"mail_clients_users": [{"login": "evojane", "full_name": "Jane\nBcc: x"}]}, "mail_clients_users[0].full_name"),
    ({"mail_clients_users": [{"login": "evojane"}], "mail_clients_account": {"auth": "oauth2"}},
     "mail_clients_account.auth"),
    ({"mail_clients_account": {"display_name": "Mail of ${HOME}"}}, "mail_clients_account.display_name"),
    ({"evolution_uid_prefix": "Bad Prefix"}, "evolution_uid_prefix"),
    ({"evolution_dconf_settings": {"org/gnome/evolution/mail": {"image-loading-policy": "'a'\n[x]"}}},
     "evolution_dconf_settings"),
    # Passes the controller checks; GLib's own GVariant parser refuses it on the target before it goes live.
    ({"evolution_dconf_settings": {"org/gnome/evolution/mail": {"image-loading-policy": "never"}}},
     "is not a GVariant value"),
])
def test_bad_input_is_refused_naming_the_field_and_nothing_is_written(tmp_path, extra, field):
    sb = new_sandbox(tmp_path, None, [("evojane", "")])
    before = (tree_snapshot(sb.upper("/home")), tree_snapshot(sb.upper("/etc")))
    result = converge(sb, extra)
    assert result.rc != 0
    assert any(field in message for message in result.failure_messages()), result.failure_messages()
    assert (tree_snapshot(sb.upper("/home")), tree_snapshot(sb.upper("/etc"))) == before
