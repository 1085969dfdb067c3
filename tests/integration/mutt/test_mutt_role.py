"""mutt role in a sandbox: what mutt and NeoMutt read back, ownership, idempotence, check/diff mode,
refusals and state: absent. The real mail stack is not needed here (see test_mutt_stack.py)."""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
from pathlib import Path

import pytest
from mutt_support import (
    CLIENTS,
    DROPINS,
    HOSTILE_NAMES,
    USER_FILE,
    converge,
    expected,
    query,
    remote_executions,
)
from sandbox import Sandbox

from ansible_collections.middlebury.mail_clients.plugins.module_utils.file_validators import (
    ValidationError,
    validate,
)

QUERIED = ["folder", "spoolfile", "smtp_url", "imap_user", "from", "realname", "record", "ssl_force_tls",
           "ssl_starttls", "hostname", "header_cache"]
ROLE_DIR = Path(__file__).resolve().parents[3] / "roles" / "mutt"


def snapshot(sandbox, tops=("etc", "home")):
    """Every file and directory in the sandbox's upper layers: path -> (mode, uid, sha256)."""
    found = {}
    for top in tops:
        base = sandbox.workdir / "upper" / top
        for root, dirs, files in os.walk(base):
            for name in dirs + files:
                path = Path(root) / name
                st = path.lstat()
                digest = hashlib.sha256(path.read_bytes()).hexdigest() if stat.S_ISREG(st.st_mode) else None
                found[str(path.relative_to(sandbox.workdir / "upper"))] = (st.st_mode, st.st_uid, digest)
    return found


@pytest.fixture
def sb(tmp_path):
    return Sandbox(tmp_path / "sandbox")


def _assert_values(got, want, context):
    for key, value in want.items():
        assert got.get(key) == value, "%s: %s is %r, expected %r" % (context, key, got.get(key), value)


def test_lab_mode_every_login_gets_the_account_from_root_owned_drop_ins(sb):
    sb.add_user("labstudent", "Lab Student")
    homes_before = snapshot(sb, ("home",))
    result = converge(sb)
    assert result.rc == 0, result
    assert snapshot(sb, ("home",)) == homes_before, "lab mode wrote into a home directory"
    for client, path in DROPINS.items():
        st = sb.upper(path).stat()
        assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (0, 0o644)
        text = sb.upper(path).read_text()
        assert "_pass" not in text, "a password variable in %s" % path
        assert ("mailboxes" in text) == (client == "mutt"), "NeoMutt must not parse an IMAP mailboxes line"
    want = expected(login="labstudent")
    for client in CLIENTS:
        # The drop-in alone (-n -F), and the whole system configuration as the client reads it at login;
        # env -i: $USER and $LOGNAME unset, the login comes from `id -un`.
        for rcfile in (DROPINS[client], None):
            got, err = query(sb, client, "labstudent", QUERIED, rcfile=rcfile)
            assert err == "", err
            _assert_values(got, want, "%s %s" % (client, rcfile or "system config"))
    # The caches work at the first start: both directories exist, private, and header_cache points there.
    cache = sb.upper("/home/labstudent/.cache/mutt")
    for sub in ("headers", "bodies"):
        st = (cache / sub).stat()
        assert stat.S_ISDIR(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o700
    assert got["header_cache"].rstrip("/") in ("~/.cache/mutt/headers", "/home/labstudent/.cache/mutt/headers")


def _named_users():
    users = [{"login": "named%d" % i, "full_name": name} for i, name in enumerate(HOSTILE_NAMES)]
    users.append({"login": "fq", "username": "fq.user@middlebury.edu", "email": "Fq.User+mutt@middlebury.edu"})
    return users


def test_named_users_get_their_own_file_with_hostile_names_byte_exact(sb):
    users = _named_users()
    for user in users:
        sb.add_user(user["login"], "GECOS name")
    sb.add_user("bystander")
    result = converge(sb, {"mail_clients_users": users})
    assert result.rc == 0, result
    for index, user in enumerate(users):
        rcfile = "/home/%s/%s" % (user["login"], USER_FILE)
        assert "_pass" not in sb.upper(rcfile).read_text(), "a password variable in %s" % rcfile
        st = sb.upper(rcfile).stat()
        uid = int(sb.sh("id -u %s" % user["login"]).stdout)
        assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (uid, 0o600)
        want = expected(users=users, user_index=index)
        for client in CLIENTS:
            for path in (rcfile, None):
                got, err = query(sb, client, user["login"], QUERIED, rcfile=path)
                assert err == "", err
                _assert_values(got, want, "%s %s for %s" % (client, path or "system config", user["login"]))
    # Somebody not listed gets nothing from the role: the clients' own defaults.
    for client in CLIENTS:
        got, err = query(sb, client, "bystander", ["folder", "smtp_url"])
        assert err == "" and got["smtp_url"] == "" and "middlebury" not in got["folder"], got


def test_existing_user_config_is_byte_identical_and_still_wins_then_absent_removes_only_ours(sb):
    sb.add_user("jdoe")
    sb.add_user("zoe")
    own_muttrc = "# my own\nset realname = 'My Own Name'\nset editor = \"vim +':8'\"\nset signature = ~/.sig\n"
    own_xdg = "set sort = threads\n"
    # Written byte-exact through Python, owned by the users, as they would have it.
    for login, rel, text in (("jdoe", ".muttrc", own_muttrc), ("zoe", ".config/mutt/muttrc", own_xdg)):
        path = sb.upper("/home/%s/%s" % (login, rel))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        sb.sh("chown -R %s: /home/%s && chmod 640 /home/%s/%s" % (login, login, login, rel), check=True)
    before = {p: (sb.upper(p).read_bytes(), sb.upper(p).stat().st_mode)
              for p in ("/home/jdoe/.muttrc", "/home/zoe/.config/mutt/muttrc")}
    debian_dropins = sorted(os.listdir("/etc/Muttrc.d")), sorted(os.listdir("/etc/neomuttrc.d"))
    users = [{"login": "jdoe", "full_name": "Jane Doe"}, {"login": "zoe", "full_name": 'Zoë "Z" Ångström'}]

    def unchanged():
        for path, (data, mode) in before.items():
            assert sb.upper(path).read_bytes() == data and sb.upper(path).stat().st_mode == mode, path

    assert converge(sb, {"mail_clients_users": users}).rc == 0
    unchanged()
    for client in CLIENTS:
        got, err = query(sb, client, "jdoe", ["realname", "folder", "imap_user"])
        assert err == ""
        # Their own setting wins over ours (their file is read after the drop-in); the account is there.
        assert got["realname"] == "My Own Name" and got["imap_user"] == "jdoe", got
        got, err = query(sb, client, "zoe", ["realname", "imap_user"])
        assert err == "" and got["realname"] == 'Zoë "Z" Ångström', got

    result = converge(sb, {"mail_clients_users": users, "mutt_state": "absent"})
    assert result.rc == 0 and result.changed() == 1, result
    unchanged()
    for path in [*DROPINS.values(), "/home/jdoe/" + USER_FILE, "/home/zoe/" + USER_FILE]:
        assert sb.sh("test -e %s" % path).returncode != 0, "%s still there after absent" % path
    listing = sb.sh("ls /etc/Muttrc.d; echo --; ls /etc/neomuttrc.d").stdout.split("--")
    assert (sorted(listing[0].split()), sorted(listing[1].split())) == debian_dropins
    again = converge(sb, {"mail_clients_users": users, "mutt_state": "absent"})
    assert again.rc == 0 and again.changed() == 0, again


def test_second_run_changes_nothing_with_one_remote_execution(sb):
    sb.add_user("jdoe")
    extra = {"mail_clients_users": [{"login": "jdoe", "full_name": "O'Brien"}]}
    first = converge(sb, extra, gather=True)
    assert first.rc == 0 and first.changed() == 1, first
    second = converge(sb, extra, gather=True)
    assert second.rc == 0 and second.changed() == 0, second
    assert len(remote_executions(second)) == 1, remote_executions(second)
    # With the install: still one task, and the installed packages are not reported as changed.
    third = converge(sb, dict(extra, mutt_install=True), gather=True)
    assert third.rc == 0 and third.changed() == 0, third
    (task,) = [res for _name, res in third.task_results() if "install" in res]
    assert task["install"] == {"packages": ["mutt", "neomutt"], "changed": False}, task["install"]


def test_check_mode_writes_nothing_and_diff_mode_shows_the_change(sb):
    sb.add_user("jdoe")
    users = [{"login": "jdoe", "full_name": "Before"}]
    before = snapshot(sb)
    checked = converge(sb, {"mail_clients_users": users}, check=True)
    assert checked.rc == 0 and checked.changed() == 1, checked
    assert snapshot(sb) == before, "check mode wrote something"
    assert converge(sb, {"mail_clients_users": users}).rc == 0
    written = snapshot(sb)
    users = [{"login": "jdoe", "full_name": "After $(id)"}]
    diffed = converge(sb, {"mail_clients_users": users}, check=True, diff=True)
    assert diffed.rc == 0 and diffed.changed() == 1, diffed
    assert snapshot(sb) == written
    diffs = [d for _name, res in diffed.task_results() for d in res.get("diff", [])]
    assert any("set realname = 'Before'" in d["before"] and "set realname = 'After $(id)'" in d["after"]
               for d in diffs), diffs


@pytest.mark.parametrize(("extra", "field"), [
    ({"mail_clients_users": [{"login": "jdoe", "full_name": "Eve\nset smtp_url='smtp://evil'"}]},
     "mail_clients_users[0].full_name"),
    ({"mail_clients_users": [{"login": "jdoe", "full_name": "NUL\x00"}]}, "mail_clients_users[0].full_name"),
    ({"mail_clients_account": {"incoming_security": "none"}}, "mail_clients_account.incoming_security"),
    ({"mail_clients_account": {"auth": "ntlm"}}, "mail_clients_account.auth"),
    ({"mail_clients_account": {"folders": {"sent": "Sent\rItems"}}}, "mail_clients_account.folders.sent"),
    ({"mail_clients_account": {"auth": "oauth2"}}, "mutt_oauth_refresh_command"),
    ({"mail_clients_account": {"auth": "oauth2"}, "mutt_oauth_refresh_command": "get-token\n!rm"},
     "mutt_oauth_refresh_command"),
    ({"mutt_clients": ["elm"]}, "mutt_clients"),
    ({"mutt_ca_file": "relative/ca.pem"}, "mutt_ca_file"),
    ({"mutt_ca_file": "/etc/ssl/ca\x1b.pem"}, "mutt_ca_file"),
])
def test_bad_input_is_refused_naming_the_field_and_nothing_is_written(sb, extra, field):
    sb.add_user("jdoe")
    before = snapshot(sb)
    result = converge(sb, extra)
    assert result.rc != 0, result
    messages = " ".join(result.failure_messages())
    assert field in messages, messages
    assert snapshot(sb) == before


def test_the_muttrc_validator_judges_stderr_and_leaves_nothing_behind(tmp_path, monkeypatch):
    """managed_files' built-in muttrc validator, with the real clients."""
    monkeypatch.setenv("HOME", str(tmp_path / "realhome"))
    good = tmp_path / "good.rc"
    good.write_text("set folder = 'imaps://mail.example.edu:993/'\n"
                    "set header_cache = \"`cd ~ && mkdir -p .cache/mutt/headers && echo ~/.cache/mutt/headers/`\"\n")
    bad = tmp_path / "bad.rc"
    bad.write_text("set folder = 'imaps://mail.example.edu:993/'\nset real_name = 'mutt 2 does not know this'\n")

    def run_command(argv, cwd=None, environ_update=None):
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False, cwd=cwd,
                              env={"PATH": "/usr/bin:/bin", **(environ_update or {})})
        return proc.returncode, proc.stdout, proc.stderr

    def check(path, *clients, missing_ok=False):
        validate({"name": "muttrc", "clients": list(clients), "missing_ok": missing_ok}, str(path), run_command)

    check(good, "mutt", "neomutt")
    assert not (tmp_path / "realhome").exists(), "validation created files in the real home"
    with pytest.raises(ValidationError, match="real_name"):
        check(bad, "mutt")
    with pytest.raises(ValidationError, match="neomutt is not installed"):
        monkeypatch.setenv("PATH", str(tmp_path / "empty"))
        check(good, "neomutt")
    # Check mode with mutt_install: the client would be installed first, so its absence is no error.
    check(good, "neomutt", missing_ok=True)
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    with pytest.raises(ValidationError, match="clients must be"):
        check(good, "elm")


@pytest.mark.parametrize("protocol", ["imap", "pop3"])
def test_oauth2_and_pop3_variants_pass_both_clients_validation(sb, protocol):
    sb.add_user("jdoe")
    extra = {"mail_clients_account": {"auth": "oauth2", "protocol": protocol},
             "mutt_oauth_refresh_command": "/usr/share/doc/mutt/examples/mutt_oauth2.py '~/.cache/tok en'",
             "mail_clients_users": [{"login": "jdoe"}]}
    result = converge(sb, extra)
    assert result.rc == 0, result
    for client in ("mutt", "neomutt"):
        got, err = query(sb, client, "jdoe", ["smtp_authenticators", "smtp_oauth_refresh_command"])
        assert err == "", err
        assert got["smtp_authenticators"] == "oauthbearer:xoauth2", got
        assert got["smtp_oauth_refresh_command"] == extra["mutt_oauth_refresh_command"], got
