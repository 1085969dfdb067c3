"""Dovecot: config for the IMAP/POP3 stand-in (and its negative variants), start, PID file."""

from __future__ import annotations

import subprocess
from pathlib import Path

from .procs import MARKER_VAR

# Mailboxes every user gets; special-use flags so clients find Sent/Drafts/Trash by role.
SPECIAL_USE = {"Sent": "\\Sent", "Drafts": "\\Drafts", "Trash": "\\Trash"}

_TEMPLATE = """\
# Throwaway test server written by tests/mailstack; never a system config.
instance_name = {instance_name}
base_dir = {run}
state_dir = {state}
protocols = imap pop3 lmtp
listen = {imap_ip}
log_path = {log}
info_log_path = {log}
# The marker lets `stop` find children (anvil, log, auth) that outlive the master, by PID.
import_environment = TZ {marker_var}={marker}
verbose_ssl = yes
auth_verbose = yes
ssl = yes
ssl_cert = <{cert}
ssl_key = <{key}
ssl_min_protocol = TLSv1.2
disable_plaintext_auth = yes
auth_mechanisms = plain login
first_valid_uid = 1
mail_uid = {mail_uid}
mail_gid = {mail_gid}
mail_location = maildir:{mail}/%u/Maildir
# One passwd-file per account: a new account is a new file, which Dovecot opens on first use, so it
# works at once (a changed file is only re-read when a second has passed since the last check).
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {users}/%Ln
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {users}/%Ln
  default_fields = home={mail}/%u
}}
namespace inbox {{
  inbox = yes
  separator = /
{special_use}}}
service auth {{
  # Spawned at start, not on the first login: a cold auth process makes the first LOGIN stall.
  process_min_avail = 1
  unix_listener auth-postfix {{
    mode = 0666
  }}
}}
protocol lmtp {{
  # Postfix hands over user@domain; accounts are bare logins (as for IMAP/POP3/SMTP AUTH).
  auth_username_format = %Ln
}}
service lmtp {{
  unix_listener lmtp {{
    mode = 0666
  }}
}}
service imap-login {{
  process_min_avail = 1
{imap_listeners}}}
service pop3-login {{
  process_min_avail = 1
{pop3_listeners}}}
{local_blocks}"""


def _listener(name: str, address: str, port: int, implicit_tls: bool) -> str:
    lines = ["  inet_listener %s {" % name, "    address = %s" % address, "    port = %d" % port]
    if implicit_tls:
        lines.append("    ssl = yes")
    lines.append("  }")
    return "\n".join(lines) + "\n"


def render(*, workdir: Path, instance_name: str, marker: str, imap_ip: str, ports: dict, cert: Path, key: Path,
           variants: list[dict], mail_uid: int, mail_gid: int) -> str:
    """dovecot.conf text.

    `ports` maps imap/imaps/pop3/pop3s to port numbers. Each variant is a dict with `name`, `ip`,
    `protocols` (subset of the port keys) and `settings` (lines for a `local <ip> {}` block).
    """
    imap, pop3 = [], []
    endpoints = [("main", imap_ip, list(ports))] + [(v["name"], v["ip"], v["protocols"]) for v in variants]
    for label, ip, protos in endpoints:
        for proto in protos:
            target = imap if proto.startswith("imap") else pop3
            # The main endpoint reuses Dovecot's built-in listener names; other names would leave
            # the built-in listeners binding `listen` too and clash with ours.
            name = proto if label == "main" else "%s_%s" % (proto, label)
            target.append(_listener(name, ip, ports[proto], proto.endswith("s")))
    local_blocks = ""
    for v in variants:
        if v["settings"]:
            body = "".join("  %s\n" % line for line in v["settings"])
            local_blocks += "local %s {\n%s}\n" % (v["ip"], body)
    special = "".join(
        "  mailbox %s {\n    special_use = %s\n  }\n" % (name, flag) for name, flag in SPECIAL_USE.items())
    d = workdir / "dovecot"
    return _TEMPLATE.format(
        instance_name=instance_name, run=workdir / "run", state=d / "state", imap_ip=imap_ip,
        log=d / "dovecot.log", marker_var=MARKER_VAR, marker=marker, cert=cert, key=key,
        mail_uid=mail_uid, mail_gid=mail_gid, mail=workdir / "mail", users=d / "users.d",
        special_use=special, imap_listeners="".join(imap), pop3_listeners="".join(pop3), local_blocks=local_blocks)


def conf_path(workdir: Path) -> Path:
    return workdir / "dovecot" / "dovecot.conf"


def pid_path(workdir: Path) -> Path:
    return workdir / "run" / "master.pid"


def start(workdir: Path) -> None:
    """Start the master; it forks and writes run/master.pid itself."""
    out = workdir / "dovecot" / "start.out"
    # Output to a file, not a pipe: the forked master keeps the pipe open and run() would wait for it.
    with out.open("w") as fh:
        proc = subprocess.run(["dovecot", "-c", str(conf_path(workdir))], stdin=subprocess.DEVNULL, stdout=fh,
                              stderr=subprocess.STDOUT, timeout=30, check=False)
    if proc.returncode:
        raise RuntimeError("dovecot failed to start: %s (log: %s)" % (
            out.read_text(errors="replace").strip(), workdir / "dovecot" / "dovecot.log"))


def doveadm(workdir: Path, *args: str, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run(["doveadm", "-c", str(conf_path(workdir)), *args], capture_output=True, text=True,
                          timeout=timeout, check=False)
