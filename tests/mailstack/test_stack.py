"""The test mail stack itself: documented endpoints, login, delivery, negative variants, lifecycle.

Stdlib clients only (ssl, imaplib, poplib, smtplib), plus openssl s_client and mutt through
`wrap()` to prove the real names resolve to the stand-ins.
"""

from __future__ import annotations

import datetime as dt
import imaplib
import poplib
import re
import shutil
import smtplib
import socket
import ssl
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import pytest

from .claims import claim_free_instance, release
from .dovecot import LOGIN_LOGGED
from .stack import MailStack, MailStackError

TIMEOUT = 10


def _imap_host(stack):
    return stack.names["imap_host"]


def _smtp_host(stack):
    return stack.names["smtp_host"]


# ----- the four documented endpoints ---------------------------------------------------------------


def _running(pid):
    """A live, non-zombie process; one that vanishes while we look is not running."""
    try:
        return "zombie" not in Path("/proc/%d/status" % pid).read_text()
    except FileNotFoundError:
        return False


def test_stack_is_up_and_reports_itself(mail_stack):
    status = mail_stack.status()
    assert status["running"] is True
    assert set(status["pids"]) == {"dovecot", "postfix", "blackhole", "idp", "exchange"}
    assert Path(status["ca_path"]).is_file()
    idp_names = status["idp"]["names"]
    assert status["hosts"] == {_imap_host(mail_stack): mail_stack.imap_host_ip,
                               _smtp_host(mail_stack): mail_stack.smtp_host_ip,
                               **dict.fromkeys(idp_names, mail_stack.idp_ip)}
    assert not mail_stack.imap_host_ip.startswith("127.0.0.")
    assert "%s %s" % (mail_stack.imap_host_ip, _imap_host(mail_stack)) in Path(status["hosts_file"]).read_text()
    assert set(status["users"]) >= {"jdoe", "asmith"}


def test_imaps_993_verifies_real_name_and_logs_in(mail_stack):
    user, password = "jdoe", mail_stack.users["jdoe"]
    with imaplib.IMAP4_SSL(mail_stack.imap_host_ip, mail_stack.ports["imaps"], ssl_context=mail_stack.tls_context(),
                           timeout=TIMEOUT) as imap:
        cert = imap.sock.getpeercert()
        assert ("DNS", _imap_host(mail_stack)) in cert["subjectAltName"]
        imap.login(user, password)
        typ, data = imap.select("INBOX", readonly=True)
        assert typ == "OK" and int(data[0]) == len(mail_stack.inbox_subjects)
        typ, data = imap.fetch("1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        subjects = [part[1].decode().split(":", 1)[1].strip() for part in data if isinstance(part, tuple)]
        assert sorted(subjects) == sorted(mail_stack.inbox_subjects)  # IMAP UID order follows readdir()
        typ, listing = imap.lsub()
        subscribed = {line.decode().rsplit(" ", 1)[1].strip('"') for line in listing}
        assert subscribed >= {"Personal", "Classes", "Sent", "Drafts", "Trash"}
        typ, data = imap.select("Personal", readonly=True)
        assert typ == "OK" and int(data[0]) == 1


def test_imap_143_starttls_hides_login_until_tls(mail_stack):
    with imaplib.IMAP4(mail_stack.imap_host_ip, mail_stack.ports["imap"], timeout=TIMEOUT) as imap:
        caps = imap.capabilities
        assert "STARTTLS" in caps and "LOGINDISABLED" in caps
        assert not [c for c in caps if c.startswith("AUTH=")]
        imap.starttls(ssl_context=mail_stack.tls_context())
        assert "AUTH=PLAIN" in imap.capabilities and "LOGINDISABLED" not in imap.capabilities
        imap.login("asmith", mail_stack.users["asmith"])
    log = mail_stack.dovecot_log.read_text()
    assert re.search(LOGIN_LOGGED % "asmith" + ", method=PLAIN", log), log
    assert any("user=<asmith>, method=PLAIN" in line and "TLS" in line for line in log.splitlines())


def test_pop3s_995_verifies_and_logs_in(mail_stack):
    pop = poplib.POP3_SSL(mail_stack.imap_host_ip, mail_stack.ports["pop3s"], context=mail_stack.tls_context(),
                          timeout=TIMEOUT)
    try:
        pop.user("asmith")
        pop.pass_(mail_stack.users["asmith"])
        count, _size = pop.stat()
        assert count >= len(mail_stack.inbox_subjects)
    finally:
        pop.quit()


def test_pop3_110_offers_stls(mail_stack):
    pop = poplib.POP3(mail_stack.imap_host_ip, mail_stack.ports["pop3"], timeout=TIMEOUT)
    try:
        assert "STLS" in pop.capa()
        pop.stls(context=mail_stack.tls_context())
        pop.user("jdoe")
        pop.pass_(mail_stack.users["jdoe"])
    finally:
        pop.quit()


def test_smtp_25_starttls_auth_and_delivery_to_inbox(mail_stack):
    subject = "stack delivery %s" % uuid.uuid4().hex[:8]
    sender, rcpt = mail_stack.address_of("jdoe"), mail_stack.address_of("asmith")
    message = "From: %s\r\nTo: %s\r\nSubject: %s\r\n\r\nhello\r\n" % (sender, rcpt, subject)
    with smtplib.SMTP(mail_stack.smtp_host_ip, mail_stack.ports["smtp"], timeout=TIMEOUT) as smtp:
        smtp.ehlo("client.invalid")
        assert smtp.has_extn("starttls") and not smtp.has_extn("auth")
        smtp.starttls(context=mail_stack.tls_context(_smtp_host(mail_stack)))
        smtp.ehlo("client.invalid")
        assert "PLAIN" in smtp.esmtp_features["auth"].split()
        smtp.login("jdoe", mail_stack.users["jdoe"])
        smtp.sendmail(sender, [rcpt], message)
    assert mail_stack.wait_for_message("asmith", subject), mail_stack.postfix_log.read_text()[-2000:]
    log = mail_stack.postfix_log.read_text()
    assert "sasl_method=PLAIN, sasl_username=jdoe" in log
    assert "TLS connection established" in log


def test_smtp_refuses_unauthenticated_relay(mail_stack):
    with smtplib.SMTP(mail_stack.smtp_host_ip, mail_stack.ports["smtp"], timeout=TIMEOUT) as smtp:
        smtp.starttls(context=mail_stack.tls_context(_smtp_host(mail_stack)))
        smtp.ehlo("client.invalid")
        smtp.mail("someone@example.org")
        code, _msg = smtp.rcpt(mail_stack.address_of("jdoe"))
        assert code >= 500


def test_add_user_at_runtime(mail_stack):
    t0 = time.monotonic()
    mail_stack.add_user("mclab1", "Lab-Pass_9")
    assert time.monotonic() - t0 < 1.0  # a new account needs no wait for Dovecot's reload
    assert mail_stack.users["mclab1"] == "Lab-Pass_9"
    assert sorted(mail_stack.message_subjects("mclab1")) == sorted(mail_stack.inbox_subjects)
    assert mail_stack.message_subjects("mclab1", "Classes") == [mail_stack.folder_subjects["Classes"]]
    with imaplib.IMAP4_SSL(mail_stack.imap_host_ip, mail_stack.ports["imaps"], ssl_context=mail_stack.tls_context(),
                           timeout=TIMEOUT) as imap:
        imap.login("mclab1", "Lab-Pass_9")
        _typ, data = imap.select("INBOX")
        assert int(data[0]) == len(mail_stack.inbox_subjects)


def test_add_user_again_changes_the_password(mail_stack):
    mail_stack.add_user("mclab2", "First-Pass_1")
    with imaplib.IMAP4_SSL(mail_stack.imap_host_ip, mail_stack.ports["imaps"], ssl_context=mail_stack.tls_context(),
                           timeout=TIMEOUT) as imap:
        imap.login("mclab2", "First-Pass_1")
    mail_stack.add_user("mclab2", "Other-Pass_2")  # same length: only the forced mtime tells Dovecot
    with imaplib.IMAP4_SSL(mail_stack.imap_host_ip, mail_stack.ports["imaps"], ssl_context=mail_stack.tls_context(),
                           timeout=TIMEOUT) as imap, pytest.raises(imaplib.IMAP4.error):
        imap.login("mclab2", "First-Pass_1")
    with imaplib.IMAP4_SSL(mail_stack.imap_host_ip, mail_stack.ports["imaps"], ssl_context=mail_stack.tls_context(),
                           timeout=TIMEOUT) as imap:
        imap.login("mclab2", "Other-Pass_2")


# ----- clients by the real names through wrap() ------------------------------------------------

def test_openssl_s_client_by_real_names(mail_stack):
    ca = str(mail_stack.ca_path)
    cases = [(_imap_host(mail_stack), mail_stack.ports["imaps"], []),
             (_imap_host(mail_stack), mail_stack.ports["imap"], ["-starttls", "imap"]),
             (_imap_host(mail_stack), mail_stack.ports["pop3s"], []),
             (_smtp_host(mail_stack), mail_stack.ports["smtp"], ["-starttls", "smtp"])]
    for name, port, extra in cases:
        cmd = ["openssl", "s_client", "-connect", "%s:%d" % (name, port), "-servername", name, "-CAfile", ca,
               "-verify_return_error", "-verify_hostname", name, "-brief", *extra]
        proc = mail_stack.run(cmd, input="", capture_output=True, text=True, timeout=30)
        assert proc.returncode == 0, (cmd, proc.stderr)
        assert "Verification: OK" in proc.stderr
        assert "%s:%d" % (name, port) not in proc.stderr or "connect:errno" not in proc.stderr


def test_hosts_file_does_not_leak_to_host(mail_stack):
    inside = mail_stack.run(["getent", "hosts", _imap_host(mail_stack)], capture_output=True, text=True)
    assert inside.stdout.split()[0] == mail_stack.imap_host_ip
    assert _imap_host(mail_stack) not in Path("/etc/hosts").read_text()


def _muttrc(stack, home: Path, user: str) -> Path:
    rc = home / "muttrc"
    rc.write_text("\n".join([
        'set ssl_ca_certificates_file = "%s"' % stack.ca_path,
        "set ssl_force_tls = yes",
        "set ssl_starttls = yes",
        'set smtp_url = "smtp://%s@%s:%d/"' % (user, stack.names["smtp_host"], stack.ports["smtp"]),
        'set smtp_pass = "%s"' % stack.users[user],
        'set from = "%s"' % stack.address_of(user),
        'set hostname = "%s"' % stack.mail_domain,
        'set record = ""',
        "",
    ]))
    return rc


def test_mutt_sends_by_real_name_and_refuses_wrong_name(mail_stack, tmp_path):
    rc = _muttrc(mail_stack, tmp_path, "jdoe")
    subject = "mutt via wrap %s" % uuid.uuid4().hex[:8]
    env = {"HOME": str(tmp_path), "PATH": "/usr/bin:/bin", "TERM": "dumb"}
    cmd = ["mutt", "-n", "-F", str(rc), "-s", subject, mail_stack.address_of("asmith")]
    proc = mail_stack.run(cmd, input="body\n", capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert mail_stack.wait_for_message("asmith", subject)
    bad = mail_stack.run([*cmd[:-2], "should not arrive", mail_stack.address_of("asmith")], variant="wrong_name",
                         input="body\n", capture_output=True, text=True, env=env, timeout=60)
    assert bad.returncode != 0
    assert "should not arrive" not in mail_stack.message_subjects("asmith")


# ----- negative variants --------------------------------------------------------------------------

def _tls_error(stack, variant: str, port_key: str, cafile=None) -> str:
    neg = stack.negatives[variant]
    ctx = stack.tls_context(_imap_host(stack), cafile)
    with socket.create_connection((neg["host_ip"], neg["ports"][port_key]), timeout=TIMEOUT) as raw:
        try:
            with ctx.wrap_socket(raw):
                return ""
        except ssl.SSLCertVerificationError as exc:
            return exc.verify_message


def _smtp_tls_error(stack, variant: str) -> str:
    neg = stack.negatives[variant]
    with smtplib.SMTP(neg["host_ip"], neg["ports"]["smtp"], timeout=TIMEOUT) as smtp:
        try:
            smtp.starttls(context=stack.tls_context(_smtp_host(stack)))
        except ssl.SSLCertVerificationError as exc:
            return exc.verify_message
    return ""


def test_negative_expired(mail_stack):
    for key in ("imaps", "pop3s"):
        assert _tls_error(mail_stack, "expired", key) == "certificate has expired"
    assert _smtp_tls_error(mail_stack, "expired") == "certificate has expired"
    neg = mail_stack.negatives["expired"]
    imap = imaplib.IMAP4(neg["host_ip"], neg["ports"]["imap"], timeout=TIMEOUT)
    with pytest.raises(ssl.SSLCertVerificationError, match="certificate has expired"):
        imap.starttls(ssl_context=mail_stack.tls_context())  # the failed handshake closes the socket


def test_negative_expiring_is_valid_but_short_lived(mail_stack):
    neg = mail_stack.negatives["expiring"]
    with socket.create_connection((neg["host_ip"], neg["ports"]["imaps"]), timeout=TIMEOUT) as raw, \
            mail_stack.tls_context().wrap_socket(raw) as tls:
        not_after = ssl.cert_time_to_seconds(tls.getpeercert()["notAfter"])
    days = (not_after - time.time()) / 86400
    assert 4 < days < 6


def test_negative_wrong_name(mail_stack):
    assert mail_stack.negatives["wrong_name"]["cert_name"] != _imap_host(mail_stack)
    assert "Hostname mismatch" in _tls_error(mail_stack, "wrong_name", "imaps")
    assert "Hostname mismatch" in _smtp_tls_error(mail_stack, "wrong_name")


def test_negative_untrusted(mail_stack):
    # The server sends its whole chain, root included, as a private-CA server typically does (code 19).
    assert _tls_error(mail_stack, "untrusted", "imaps") == "self-signed certificate in certificate chain"
    assert _smtp_tls_error(mail_stack, "untrusted") == "self-signed certificate in certificate chain"
    # Otherwise a good certificate: trusting the second CA makes it verify.
    assert _tls_error(mail_stack, "untrusted", "imaps", mail_stack.negatives["untrusted"]["signing_ca"]) == ""


def test_negative_auth_before_tls(mail_stack):
    neg = mail_stack.negatives["auth_before_tls"]
    with imaplib.IMAP4(neg["host_ip"], neg["ports"]["imap"], timeout=TIMEOUT) as imap:
        assert "AUTH=PLAIN" in imap.capabilities and "LOGINDISABLED" not in imap.capabilities
        assert "STARTTLS" in imap.capabilities
    with smtplib.SMTP(neg["host_ip"], neg["ports"]["smtp"], timeout=TIMEOUT) as smtp:
        smtp.ehlo("client.invalid")
        assert smtp.has_extn("auth") and smtp.has_extn("starttls")


def test_negative_no_starttls(mail_stack):
    neg = mail_stack.negatives["no_starttls"]
    assert "imaps" not in neg["ports"]
    with imaplib.IMAP4(neg["host_ip"], neg["ports"]["imap"], timeout=TIMEOUT) as imap:
        assert "STARTTLS" not in imap.capabilities
    with smtplib.SMTP(neg["host_ip"], neg["ports"]["smtp"], timeout=TIMEOUT) as smtp:
        smtp.ehlo("client.invalid")
        assert not smtp.has_extn("starttls")
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((neg["host_ip"], mail_stack.ports["imaps"]), timeout=TIMEOUT)


def test_negative_blackhole(mail_stack):
    neg = mail_stack.negatives["blackhole"]
    pid = int(Path(neg["pid_file"]).read_text())
    assert pid in mail_stack.processes()
    for port in neg["ports"].values():
        with socket.create_connection((neg["host_ip"], port), timeout=TIMEOUT) as sock:
            sock.settimeout(0.3)
            with pytest.raises(TimeoutError):
                sock.recv(1)


def test_negative_closed(mail_stack):
    neg = mail_stack.negatives["closed"]
    targets = [(neg["host_ip"], p) for p in neg["ports"].values()]
    targets.append((mail_stack.imap_host_ip, mail_stack.closed_port))
    for target in targets:
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(target, timeout=TIMEOUT)


# ----- lifecycle ---------------------------------------------------------------------------------

def test_second_start_same_workdir_reuses(mail_stack):
    again = MailStack(mail_stack.workdir, mail_stack.instance)
    before = mail_stack.status()["pids"]
    assert again.start()["pids"] == before


def test_second_start_same_instance_other_dir_fails_cleanly(mail_stack, tmp_path):
    other = MailStack(tmp_path / "other", mail_stack.instance)
    with pytest.raises(MailStackError, match="already running"):
        other.start()
    assert other.processes() == []
    assert mail_stack.is_running()


def test_other_instance_in_running_dir_is_refused(mail_stack):
    with pytest.raises(MailStackError, match="holds a running stack of instance %d" % mail_stack.instance):
        MailStack(mail_stack.workdir, mail_stack.instance + 5000).start()
    assert mail_stack.is_running()


@pytest.fixture
def spare_instance():
    instance = claim_free_instance(first=1000, last=1999)
    yield instance
    release(instance)


def test_taken_port_is_named(spare_instance, tmp_path):
    stack = MailStack(tmp_path / "s", spare_instance)
    squatter = socket.socket()
    squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # an earlier test's TIME_WAIT is no squatter
    squatter.bind((stack.imap_host_ip, stack.ports["imaps"]))
    squatter.listen()
    try:
        with pytest.raises(MailStackError, match=r"port %d: %s:%d is already taken" % (
                stack.ports["imaps"], stack.imap_host_ip.replace(".", r"\."), stack.ports["imaps"])):
            stack.start()
        assert stack.processes() == []
    finally:
        squatter.close()


def test_failed_start_leaves_nothing_behind(spare_instance, monkeypatch):
    workdir = Path(tempfile.mkdtemp(prefix="mailstack-f-"))
    stack = MailStack(workdir, spare_instance)

    def broken_warm_up(deadline):
        raise OSError("simulated failure after the daemons started")

    monkeypatch.setattr(stack, "_warm_up", broken_warm_up)
    try:
        with pytest.raises(MailStackError, match="everything stopped again: simulated failure"):
            stack.start()
        assert stack.processes() == []
        assert not stack.is_running()
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection((stack.imap_host_ip, stack.ports["imaps"]), timeout=TIMEOUT)
    finally:
        stack.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def test_stop_leaves_no_process_and_frees_ports(spare_instance):
    workdir = Path(tempfile.mkdtemp(prefix="mailstack-t-"))
    stack = MailStack(workdir, spare_instance)
    try:
        t0 = time.monotonic()
        status = stack.start()
        started = time.monotonic() - t0
        pids = status["processes"]
        assert len(pids) >= 5 and set(status["pids"].values()) <= set(pids)
        t0 = time.monotonic()
        result = stack.stop()
        stopped = time.monotonic() - t0
        assert set(pids) <= set(result["stopped"])
        for pid in pids:
            assert not _running(pid), pid
        for port in stack.ports.values():
            for ip in (stack.imap_host_ip, stack.smtp_host_ip):
                with pytest.raises(ConnectionRefusedError):
                    socket.create_connection((ip, port), timeout=TIMEOUT)
        assert stack.stop()["stopped"] == []  # a second stop is harmless
        assert not stack.is_running()
        assert started < 10 and stopped < 10, (started, stopped)
    finally:
        stack.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def test_cli_status_and_expired_cert_dates(mail_stack):
    proc = subprocess.run(["python3", str(Path(__file__).parent), "status", "--dir", str(mail_stack.workdir),
                           "--instance", str(mail_stack.instance)], capture_output=True, text=True, timeout=60,
                          check=False)
    assert proc.returncode == 0, proc.stderr
    assert '"running": true' in proc.stdout
    expired = mail_stack.workdir / "pki" / "expired.pem"
    out = subprocess.run(["openssl", "x509", "-in", str(expired), "-noout", "-enddate"], capture_output=True,
                         text=True, timeout=30, check=True).stdout
    end = dt.datetime.strptime(out.strip().split("=", 1)[1], "%b %d %H:%M:%S %Y %Z").replace(tzinfo=dt.timezone.utc)
    assert end < dt.datetime.now(dt.timezone.utc)
