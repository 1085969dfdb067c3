"""mutt and NeoMutt, configured only by the role, against the test mail stack (Dovecot + Postfix on
loopback, with the real server names). The only thing the tests add is the password, typed in on the
command line at run time (`-e "set imap_pass=..."`), since the role never writes one."""

from __future__ import annotations

import re
import subprocess
import uuid

import pytest
from mailstack import LOGIN_LOGGED
from mutt_support import CA_IN_SANDBOX, MUTT_LOGINS, LogTail, Tui, converge, query
from sandbox import Sandbox

LOGIN, RECIPIENT = MUTT_LOGINS
UNSUBSCRIBED = "NotSubscribed"


def _configure(sb, account=None, users=None):
    extra = {"mutt_ca_file": CA_IN_SANDBOX, "mail_clients_account": account or {},
             "mail_clients_users": users or []}
    result = converge(sb, extra)
    assert result.rc == 0, result
    return result


def _dovecot_tls_login(log_text, service, login):
    """Dovecot's login line for `login`: TLS (implicit or after STARTTLS), normal password (PLAIN/LOGIN)."""
    pattern = re.compile(r"%s-login: Info: " % service + LOGIN_LOGGED % login + r", method=(PLAIN|LOGIN),.*\bTLS\b")
    plain = re.compile(r"%s-login: Info: " % service + LOGIN_LOGGED % login + r".*\bsecured\b")
    assert not plain.search(log_text), "a login without TLS:\n" + log_text
    lines = [line for line in log_text.splitlines() if pattern.search(line)]
    assert lines, "no TLS login of %s on %s in the Dovecot log:\n%s" % (login, service, log_text[-3000:])
    return lines


def _create_unsubscribed_folder(stack):
    """A folder that exists on the server but is not subscribed."""
    made = subprocess.run(["doveadm", "-c", str(stack.dovecot_conf), "mailbox", "create", "-u", LOGIN, UNSUBSCRIBED],
                          capture_output=True, text=True, timeout=30, check=False)
    assert made.returncode == 0 or "exists" in made.stderr, made


def _mutt_argv(client, *settings):
    return [client, "-e", "set " + " ".join(settings)]


def _password(stack, login=LOGIN):
    return stack.users[login]


@pytest.mark.parametrize("security", ["ssl", "starttls"])
def test_mutt_lists_inbox_over_imap_tls_and_sees_subscribed_folders(stack, stack_sandbox, tui, security):
    # Only the account's security changes (port derived by the model: 993 or 143); the template is the same.
    users = [{"login": LOGIN, "full_name": "Jane O'Doe"}] if security == "starttls" else None
    _configure(stack_sandbox, {"incoming_security": security}, users)
    got, err = query(stack_sandbox, "mutt", LOGIN, ["folder"])
    scheme = "imaps" if security == "ssl" else "imap"
    assert err == "" and got["folder"].startswith(scheme + "://"), got
    # A folder that exists but is not subscribed must not be listed (imap_list_subscribed).
    _create_unsubscribed_folder(stack)
    log = LogTail(stack.dovecot_log)
    # With STARTTLS, mutt's protocol trace (-d 2, test only) shows the upgrade before the login.
    debug = ["-d", "2"] if security == "starttls" else []
    tui.start(LOGIN, [*_mutt_argv("mutt", "imap_pass='%s'" % _password(stack)), *debug])
    tui.wait_for(*stack.inbox_subjects)
    if debug:
        trace = stack_sandbox.upper("/home/%s/.muttdebug0" % LOGIN).read_text(errors="replace")
        starttls = re.search(r"^.*> a\d+ STARTTLS$", trace, re.M)
        auth = re.search(r"^.*> a\d+ AUTHENTICATE ", trace, re.M)
        assert starttls and auth and starttls.start() < auth.start(), "no STARTTLS before the login in mutt's trace"
    # The folder browser lists the subscribed folders (imap_list_subscribed).
    tui.keys("c")
    tui.wait_for("Open mailbox")
    tui.keys("?")
    screen = tui.wait_for(*[f for f in stack.folders if f != "INBOX"][:2])
    assert UNSUBSCRIBED not in screen, "the browser lists an unsubscribed folder:\n" + screen
    lines = _dovecot_tls_login(log.new(), "imap", LOGIN)
    assert lines


def test_mutt_reads_the_pop3s_spool_and_leaves_the_messages_on_the_server(stack, stack_sandbox, tui):
    _configure(stack_sandbox, {"protocol": "pop3"})
    got, err = query(stack_sandbox, "mutt", LOGIN, ["spoolfile", "pop_delete"])
    assert err == "" and got["spoolfile"].startswith("pops://%s@" % LOGIN) and got["pop_delete"] == "no", got
    before = sorted(stack.message_subjects(LOGIN))
    log = LogTail(stack.dovecot_log)
    tui.start(LOGIN, _mutt_argv("mutt", "pop_pass='%s'" % _password(stack)))
    tui.wait_for(*stack.inbox_subjects)
    # Open a message (mutt fetches it), then quit normally: the session ends with QUIT.
    tui.keys("Enter")
    tui.wait_for("Subject:")
    tui.keys("q")
    tui.keys("q")
    screen = tui.wait_for("CLIENT-EXITED")
    assert "rc=0" in screen, screen
    _dovecot_tls_login(log.new(), "pop3", LOGIN)
    assert sorted(stack.message_subjects(LOGIN)) == before, "POP left fewer messages on the server"


def _send(stack, sb, client, login, subject):
    argv = ["runuser", "-u", login, "--", "env", "-i", "HOME=/home/%s" % login, "PATH=/usr/bin:/bin",
            "LANG=C.UTF-8", client, "-e",
            "set smtp_pass='%s' imap_pass='%s'" % (_password(stack, login), _password(stack, login)),
            "-s", subject, stack.address_of(RECIPIENT)]
    proc = sb.run(argv, input="sent by %s through the role's configuration\n" % client, timeout=90)
    assert proc.returncode == 0, proc
    return proc


@pytest.mark.parametrize("mode", ["lab", "named"])
def test_mutt_sends_through_starttls_with_auth_and_the_message_arrives(stack, stack_sandbox, mode):
    users = [{"login": LOGIN, "full_name": 'Zoë "Z" O\'Brien $(id)'}] if mode == "named" else None
    _configure(stack_sandbox, users=users)
    subject = "mutt-%s-%s" % (mode, uuid.uuid4().hex[:10])
    log = LogTail(stack.postfix_log)
    proc = _send(stack, stack_sandbox, "mutt", LOGIN, subject)
    assert "failed" not in proc.stderr.lower(), proc.stderr
    assert stack.wait_for_message(RECIPIENT, subject), "the message did not arrive in %s's INBOX" % RECIPIENT
    # mutt's Fcc went to the IMAP Sent folder over TLS too.
    assert stack.wait_for_message(LOGIN, subject, folder="Sent"), "no copy in Sent"
    text = log.new()
    assert re.search(r"TLS connection established from .*\[%s\]" % re.escape("127.0.0.1"), text) or \
        "TLS connection established" in text, text[-3000:]
    assert re.search(r"sasl_method=(PLAIN|LOGIN), sasl_username=%s\b" % LOGIN, text), text[-3000:]


def test_neomutt_reads_imaps_and_sends_through_starttls_with_auth(stack, stack_sandbox, tui):
    _configure(stack_sandbox, users=[{"login": LOGIN, "full_name": "a;b back\\slash"}])
    log = LogTail(stack.dovecot_log)
    tui.start(LOGIN, _mutt_argv("neomutt", "imap_pass='%s'" % _password(stack)))
    tui.wait_for(*stack.inbox_subjects)
    _dovecot_tls_login(log.new(), "imap", LOGIN)
    tui.close()
    subject = "neomutt-%s" % uuid.uuid4().hex[:10]
    plog = LogTail(stack.postfix_log)
    _send(stack, stack_sandbox, "neomutt", LOGIN, subject)
    assert stack.wait_for_message(RECIPIENT, subject), "the message did not arrive in %s's INBOX" % RECIPIENT
    text = plog.new()
    assert "TLS connection established" in text, text[-3000:]
    assert re.search(r"sasl_method=(PLAIN|LOGIN), sasl_username=%s\b" % LOGIN, text), text[-3000:]


def test_no_plaintext_fallback_when_the_server_offers_no_starttls(stack, tmp_path):
    """A server (or a man in the middle) that offers no STARTTLS but accepts plaintext AUTH: mutt, configured
    only by the role, must neither log in to IMAP on 143 nor authenticate to SMTP on 25."""
    sb = Sandbox(tmp_path / "sandbox", hosts_file=stack.hosts_file_for("no_starttls"))
    assert sb.sh("install -m 0644 %s %s" % (stack.ca_path, CA_IN_SANDBOX)).returncode == 0
    for login in MUTT_LOGINS:
        sb.add_user(login)
    _configure(sb, {"incoming_security": "starttls"})
    dovecot, postfix = LogTail(stack.dovecot_log), LogTail(stack.postfix_log)
    subject = "plaintext-%s" % uuid.uuid4().hex[:10]
    password = _password(stack)
    argv = ["runuser", "-u", LOGIN, "--", "env", "-i", "HOME=/home/%s" % LOGIN, "PATH=/usr/bin:/bin",
            "mutt", "-e", "set smtp_pass='%s' imap_pass='%s'" % (password, password),
            "-s", subject, stack.address_of(RECIPIENT)]
    sent = sb.run(argv, input="must not leave\n", timeout=90)
    # ssl_force_tls: mutt asks for STARTTLS although it is not offered, and gives up when it is refused.
    assert sent.returncode != 0 and "Could not send" in sent.stdout, sent
    tui = Tui(sb, tmp_path / "tmux.sock")
    try:
        tui.start(LOGIN, _mutt_argv("mutt", "imap_pass='%s'" % password))
        # mutt's words when ssl_force_tls meets an IMAP server without STARTTLS.
        screen = tui.wait_for("Encrypted connection unavailable", "(no mailbox)", timeout=30)
        assert not any(s in screen for s in stack.inbox_subjects), screen
    finally:
        tui.close()
    assert not re.search(LOGIN_LOGGED % LOGIN, dovecot.new()), "logged in without TLS"
    smtp_log = postfix.new()
    assert "sasl_username=%s" % LOGIN not in smtp_log, "authenticated without TLS"
    assert re.search(r"disconnect from .* starttls=0/1 ", smtp_log) and " auth=" not in smtp_log, smtp_log[-2000:]
    assert not stack.wait_for_message(RECIPIENT, subject, timeout=3)


def test_without_imap_subscriptions_the_browser_lists_every_folder(stack, stack_sandbox, tui):
    # The counter-test of the subscribed-only listing above: the same browser, imap_subscriptions false.
    _configure(stack_sandbox, {"imap_subscriptions": False})
    _create_unsubscribed_folder(stack)
    tui.start(LOGIN, _mutt_argv("mutt", "imap_pass='%s'" % _password(stack)))
    tui.wait_for(*stack.inbox_subjects)
    tui.keys("c")
    tui.wait_for("Open mailbox")
    tui.keys("?")
    tui.wait_for(UNSUBSCRIBED, *[f for f in stack.folders if f != "INBOX"][:2])
