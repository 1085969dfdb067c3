"""Postfix: config for the SMTP submission stand-in (and its negative variants), start, PID file.

It runs from a private config_directory (`postfix -c DIR`), delivers @<mail domain> over LMTP
into Dovecot's mailboxes and has no route anywhere else.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

from .procs import MARKER_VAR

_MAIN_CF = """\
# Throwaway test server written by tests/mailstack; never a system config.
compatibility_level = 3.6
queue_directory = {spool}
data_directory = {data}
mail_owner = postfix
setgid_group = postdrop
myhostname = {smtp_host}
mydomain = {domain}
myorigin = $mydomain
mydestination =
# Postfix insists that inet_interfaces exist on an interface, and 127.X.Y.Z (Z>1) need not (gVisor's lo
# has only 127.0.0.1); the listeners bind their own addresses from master.cf.
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = {smtp_ip}/32
maillog_file = {log}
# postlogd refuses a maillog_file outside these prefixes.
maillog_file_prefixes = {workdir}
# The marker lets `stop` find every process of ours by PID, even one that outlives the master.
import_environment = MAIL_CONFIG MAIL_DEBUG MAIL_LOGTAG TZ LANG=C POSTLOG_SERVICE POSTLOG_HOSTNAME {marker_var}={marker}
alias_maps =
alias_database =
local_recipient_maps =
biff = no
append_dot_mydomain = no
# No mail leaves this machine: everything but the mail domain goes to error(8).
local_transport = error:local delivery is disabled in the test stack
default_transport = error:no external delivery from the test stack
relay_transport = error:no external delivery from the test stack
virtual_mailbox_domains = {domain}
virtual_transport = lmtp:unix:{lmtp}
smtpd_banner = $myhostname ESMTP
smtpd_tls_chain_files = {key}, {chain}
smtpd_tls_security_level = may
smtpd_tls_auth_only = yes
smtpd_tls_protocols = >=TLSv1.2
# 1 = one "TLS connection established" line per session, which tests grep for.
smtpd_tls_loglevel = 1
smtpd_tls_received_header = yes
smtpd_sasl_auth_enable = yes
smtpd_sasl_type = dovecot
smtpd_sasl_path = {auth}
# OAuth2 tokens as long as Entra's arrive on the AUTH line (NeoMutt XOAUTH2, mutt OAUTHBEARER): the default 2048
# would cut them ("Invalid base64 data in initial response").
line_length_limit = 8192
smtpd_sasl_security_options = noanonymous
smtpd_relay_restrictions = permit_sasl_authenticated, reject_unauth_destination
smtpd_recipient_restrictions = permit_sasl_authenticated, reject
smtp_tls_security_level = none
"""

# chroot column "n" everywhere: a chroot would need copies of the sockets and /etc files.
_MASTER_SERVICES = """\
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""


def conf_dir(workdir: Path) -> Path:
    return workdir / "postfix" / "conf"


def pid_path(workdir: Path) -> Path:
    return workdir / "postfix" / "spool" / "pid" / "master.pid"


def render(*, workdir: Path, marker: str, smtp_ip: str, port: int, names: dict, key: Path, chain: Path,
           variants: list[dict], submission_port: int | None = None) -> tuple[str, str]:
    """(main.cf, master.cf). Each variant: dict(name, ip, options=[main.cf overrides for its smtpd]).
    submission_port: a second listener of the good server, TLS required before anything (as on port 587 of the
    presets' providers)."""
    d = workdir / "postfix"
    main = _MAIN_CF.format(
        spool=d / "spool", data=d / "data", smtp_host=names["smtp_host"], domain=names["mail_domain"],
        smtp_ip=smtp_ip, log=d / "postfix.log",
        workdir=workdir, marker_var=MARKER_VAR, marker=marker, lmtp=workdir / "run" / "lmtp",
        key=key, chain=chain, auth=workdir / "run" / "auth-postfix")
    listeners = ["%s:%d inet n - n - - smtpd" % (smtp_ip, port)]
    if submission_port:
        listeners.append("%s:%d inet n - n - - smtpd -o smtpd_tls_security_level=encrypt" % (smtp_ip, submission_port))
    for v in variants:
        opts = "".join(" -o %s" % opt for opt in v["options"])
        listeners.append("%s:%d inet n - n - - smtpd%s" % (v["ip"], port, opts))
    return main, "\n".join(listeners) + "\n" + _MASTER_SERVICES


# Queue layout from /etc/postfix/postfix-files: (name, owner is mail_owner, group postdrop, mode).
_QUEUE_DIRS = [(name, True, False, 0o700) for name in (
    "active", "bounce", "corrupt", "defer", "deferred", "flush", "hold", "incoming", "private", "saved", "trace")]
_QUEUE_DIRS += [("maildrop", True, True, 0o730), ("public", True, True, 0o710), ("pid", False, False, 0o755)]


def write_conf(workdir: Path, main_cf: str, master_cf: str) -> None:
    """Write main.cf/master.cf dated a few seconds back: Postfix re-reads a config file whose mtime is
    not yet in the past, sleeping 0.3 s each time (2+ s for a freshly written file)."""
    past = time.time() - 5
    for name, text in (("main.cf", main_cf), ("master.cf", master_cf)):
        path = conf_dir(workdir) / name
        path.write_text(text)
        os.utime(path, (past, past))


def prepare(workdir: Path) -> None:
    """Create the queue as `postfix check` would, and ask `postfix start` to skip its checks:
    they take ~2.5 s, more than the rest of the stack start together."""
    d = workdir / "postfix"
    for sub in ("conf", "spool", "data"):
        (d / sub).mkdir(parents=True, exist_ok=True)
    shutil.chown(d / "data", "postfix", "postfix")
    os.chmod(d / "data", 0o700)
    spool = d / "spool"
    os.chmod(spool, 0o755)
    for name, postfix_owned, postdrop, mode in _QUEUE_DIRS:
        path = spool / name
        path.mkdir(exist_ok=True)
        shutil.chown(path, "postfix" if postfix_owned else "root", "postdrop" if postdrop else "root")
        os.chmod(path, mode)
    (spool / "quick-start").touch()


def _postfix(workdir: Path, action: str, timeout: float = 60) -> tuple[int, str]:
    """(returncode, output). Without a TTY `postfix` reports most errors only to the maillog."""
    env = {k: v for k, v in os.environ.items() if k != "MAIL_CONFIG"}
    out = workdir / "postfix" / ("%s.out" % action)
    # Output to a file, not a pipe: the forked master would keep a pipe open and run() would wait for it.
    with out.open("w") as fh:
        proc = subprocess.run(["postfix", "-c", str(conf_dir(workdir)), action], stdin=subprocess.DEVNULL,
                              stdout=fh, stderr=subprocess.STDOUT, timeout=timeout, env=env, check=False)
    return proc.returncode, out.read_text(errors="replace")


def start(workdir: Path) -> None:
    """`postfix start` creates missing queue directories, then `master -w` forks and writes the PID file."""
    rc, output = _postfix(workdir, "start")
    if rc:
        log = workdir / "postfix" / "postfix.log"
        tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
        raise RuntimeError("postfix failed to start (rc %d): %s %s" % (rc, output.strip(), tail.strip()))
