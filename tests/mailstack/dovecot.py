"""Dovecot: config for the IMAP/POP3 stand-in (and its negative variants), start, PID file."""

from __future__ import annotations

import subprocess
from pathlib import Path

from .procs import MARKER_VAR

# A successful login in Dovecot's log, as a regex with %s for the user: "Login: user=<u>, ..." (2.3),
# "Logged in: user=<u>, ..." (2.4).
LOGIN_LOGGED = r"(?:Login|Logged in): user=<%s>"
# A connection that ended without any login attempt: "Disconnected (no auth attempts in 0 secs)" (2.3, also
# after a failed TLS handshake), "(disconnected before auth was ready ...)"; 2.4 ends such lines with a
# reason code: no_auth_attempts, tls_handshake_not_finished (the client gave up during the handshake) or
# auth_process_not_ready.
NO_LOGIN_LOGGED = (r"no auth attempts|before auth was ready"
                   r"|\((?:no_auth_attempts|tls_handshake_not_finished|auth_process_not_ready)\)")

# Mailboxes every user gets; special-use flags so clients find Sent/Drafts/Trash by role.
SPECIAL_USE = {"Sent": "\\Sent", "Drafts": "\\Drafts", "Trash": "\\Trash"}

# One description of the stand-in, two dialects: Dovecot 2.3 (Debian 12) and 2.4 (Debian 13), whose
# configuration language changed (2.4 refuses 2.3 files). Each dialect names the same few settings.
_DIALECTS = {
    "2.3": {
        "head": "",
        "environment": "import_environment = TZ {marker_var}={marker}\n",
        "cert": "ssl_cert = <{cert}\nssl_key = <{key}",
        # (cleartext logins allowed before TLS, refused)
        "cleartext": ("disable_plaintext_auth = no", "disable_plaintext_auth = yes"),
        "debug": "verbose_ssl = yes\n",
        "mail": "mail_location = maildir:{mail}/%u/Maildir\n",
        # Passwords for PLAIN/LOGIN only: without the filter a token would be checked as a password.
        "passdb": ("passdb {{\n  driver = passwd-file\n  mechanisms = plain login\n"
                   "  args = scheme=PLAIN username_format=%u {users}/%Ln\n}}\n"),
        # Tokens: a passdb that asks the identity provider (RFC 7662 introspection, settings in a file).
        "oauth2": ("passdb {{\n  driver = oauth2\n  mechanisms = xoauth2 oauthbearer\n  args = {oauth2_file}\n}}\n"),
        "oauth2_file": ("introspection_mode = post\nintrospection_url = {introspection_url}\n"
                        "username_attribute = username\nactive_attribute = active\nactive_value = true\n"
                        "tls_ca_cert_file = {ca}\n"),
        # Every test client comes from 127.0.0.1: failed logins must not slow the next test's logins down.
        "penalty": "service anvil {{\n  unix_listener anvil-auth-penalty {{\n    mode = 0\n  }}\n}}\n",
        "userdb": ("userdb {{\n  driver = passwd-file\n  args = username_format=%u {users}/%Ln\n"
                   "  default_fields = home={mail}/%u\n}}\n"),
        "login_format": "%Ln",
        "listen": "address",
    },
    "2.4": {
        "head": "dovecot_config_version = 2.4.0\ndovecot_storage_version = 2.4.0\n",
        "environment": "import_environment {{\n  TZ = %{{env:TZ}}\n  {marker_var} = {marker}\n}}\n",
        "cert": "ssl_server_cert_file = {cert}\nssl_server_key_file = {key}",
        "cleartext": ("auth_allow_cleartext = yes", "auth_allow_cleartext = no"),
        "debug": "",
        "mail": "mail_driver = maildir\nmail_home = {mail}/%{{user}}\nmail_path = {mail}/%{{user}}/Maildir\n",
        "passdb": ("passdb passwd-file {{\n  default_password_scheme = PLAIN\n"
                   "  passwd_file_path = {users}/%{{user | username | lower}}\n}}\n"),
        "userdb": "userdb passwd-file {{\n  passwd_file_path = {users}/%{{user | username | lower}}\n}}\n",
        # 2.4: the token mechanisms use these settings, not a passdb; the CA is an SSL client setting.
        "oauth2": ("oauth2 {{\n  introspection_mode = post\n  introspection_url = {introspection_url}\n"
                   "  username_attribute = username\n  active_attribute = active\n  active_value = true\n"
                   "  ssl_client_ca_file = {ca}\n}}\n"),
        "oauth2_file": "",
        "penalty": "service anvil {{\n  unix_listener anvil-auth-penalty {{\n    mode = 0\n  }}\n}}\n",
        "login_format": "%{{user | username | lower}}",
        "listen": "listen",
    },
}

_TEMPLATE = """\
{head}# Throwaway test server written by tests/mailstack; never a system config.
instance_name = {instance_name}
base_dir = {run}
state_dir = {state}
protocols = imap pop3 lmtp
listen = {imap_ip}
log_path = {log}
info_log_path = {log}
# The marker lets `stop` find children (anvil, log, auth) that outlive the master, by PID.
{environment}{debug}auth_verbose = yes
# Accounts are bare logins; a preset's username, the mail address (login@domain), is the same account.
auth_username_format = {login_format}
ssl = yes
{cert}
ssl_min_protocol = TLSv1.2
{cleartext}
auth_mechanisms = plain login xoauth2 oauthbearer
first_valid_uid = 1
mail_uid = {mail_uid}
mail_gid = {mail_gid}
{mail}# One passwd-file per account: a new account is a new file, which Dovecot opens on first use, so it
# works at once (a changed file is only re-read when a second has passed since the last check).
{passdb}{oauth2}{userdb}{penalty}namespace inbox {{
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
  auth_username_format = {login_format}
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


def version() -> str:
    """The installed Dovecot's dialect, "2.3" or "2.4" (`dovecot --version` prints e.g. 2.4.1-4 (7d8c0e5759))."""
    out = subprocess.run(["dovecot", "--version"], capture_output=True, text=True, timeout=30, check=True).stdout
    major_minor = ".".join(out.split()[0].split(".")[:2])
    if major_minor not in _DIALECTS:
        raise RuntimeError("Dovecot %s: the test stack speaks %s only" % (out.strip(), " and ".join(_DIALECTS)))
    return major_minor


def _listener(name: str, address: str, port: int, implicit_tls: bool, listen_key: str) -> str:
    lines = ["  inet_listener %s {" % name, "    %s = %s" % (listen_key, address), "    port = %d" % port]
    if implicit_tls:
        lines.append("    ssl = yes")
    lines.append("  }")
    return "\n".join(lines) + "\n"


def _variant_settings(variant: dict, dialect: dict) -> list[str]:
    """A variant's differences from the main endpoint: its own certificate chain, cleartext logins
    allowed before TLS, or no TLS at all."""
    lines = []
    if variant.get("cert"):
        lines += dialect["cert"].format(cert=variant["cert"], key=variant["key"]).splitlines()
    if variant.get("ssl") is False:
        lines.append("ssl = no")
    if variant.get("cleartext_auth"):
        lines.append(dialect["cleartext"][0])
    return lines


def oauth2_file_path(workdir: Path) -> Path:
    return workdir / "dovecot" / "dovecot-oauth2.conf.ext"


def render(*, workdir: Path, instance_name: str, marker: str, imap_ip: str, ports: dict, cert: Path, key: Path,
           variants: list[dict], mail_uid: int, mail_gid: int, introspection_url: str, ca: Path,
           dialect: str = "2.3") -> str:
    """dovecot.conf text in the given dialect ("2.3" or "2.4").

    `ports` maps imap/imaps/pop3/pop3s to port numbers. Each variant is a dict with `name`, `ip`,
    `protocols` (subset of the port keys) and what differs from the main endpoint: `cert` and `key`
    (its own chain), `cleartext_auth` (True: logins allowed before TLS), `ssl` (False: no TLS).
    """
    words = _DIALECTS[dialect]
    imap, pop3 = [], []
    endpoints = [("main", imap_ip, list(ports))] + [(v["name"], v["ip"], v["protocols"]) for v in variants]
    for label, ip, protos in endpoints:
        for proto in protos:
            target = imap if proto.startswith("imap") else pop3
            # The main endpoint reuses Dovecot's built-in listener names; other names would leave
            # the built-in listeners binding `listen` too and clash with ours.
            name = proto if label == "main" else "%s_%s" % (proto, label)
            target.append(_listener(name, ip, ports[proto], proto.endswith("s"), words["listen"]))
    local_blocks = ""
    for v in variants:
        lines = _variant_settings(v, words)
        if lines:
            local_blocks += "local %s {\n%s}\n" % (v["ip"], "".join("  %s\n" % line for line in lines))
    special = "".join(
        "  mailbox %s {\n    special_use = %s\n  }\n" % (name, flag) for name, flag in SPECIAL_USE.items())
    d = workdir / "dovecot"
    users, mail = d / "users.d", workdir / "mail"
    fill = {"marker_var": MARKER_VAR, "marker": marker, "mail": mail, "users": users,
            "oauth2_file": oauth2_file_path(workdir), "introspection_url": introspection_url, "ca": ca}
    pieces = {name: text.format(**fill) for name, text in words.items()
              if name in ("environment", "mail", "passdb", "userdb", "login_format", "oauth2", "penalty")}
    return _TEMPLATE.format(
        head=words["head"], debug=words["debug"], cert=words["cert"].format(cert=cert, key=key),
        cleartext=words["cleartext"][1],
        instance_name=instance_name, run=workdir / "run", state=d / "state", imap_ip=imap_ip,
        log=d / "dovecot.log", mail_uid=mail_uid, mail_gid=mail_gid,
        special_use=special, imap_listeners="".join(imap), pop3_listeners="".join(pop3), local_blocks=local_blocks,
        **pieces)


def render_oauth2_file(*, introspection_url: str, ca: Path, dialect: str = "2.3") -> str:
    """The 2.3 oauth2 passdb's settings file ('' for 2.4, which has them in dovecot.conf)."""
    return _DIALECTS[dialect]["oauth2_file"].format(introspection_url=introspection_url, ca=ca)


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
