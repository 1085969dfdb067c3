"""MailStack: a throwaway Dovecot + Postfix on loopback standing in for the documented servers.

Layout of one instance (block 127.X.Y from settings.block):
  .2  IMAP/POP3 stand-in (Dovecot)      .3  SMTP stand-in (Postfix)
  .10 and up: negative variants (see NEGATIVE_DOCS), each on the documented ports.
Everything lives in `workdir`; processes are found and stopped by PID only.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import shutil
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

from . import dovecot, hostsns, mailbox, postfix, procs, settings
from .pki import Pki
from .registry import instance_lock, register, registered_instances, registered_workdir, unregister
from .tlsclient import context_for

DEFAULT_USERS = {"jdoe": "Jdoe-Test-Pass_1", "asmith": "Asmith-Test-Pass_2"}
WARMUP_USER = "mailstack-warmup"
MAIL_UID = MAIL_GID = 65534  # nobody:nogroup owns all test mailboxes; only the login name matters to tests
START_TIMEOUT = 15.0
STOP_TIMEOUT = 8.0
_TLS_VARIANTS = ("expired", "wrong_name", "untrusted", "expiring")
_WORKDIR_PARTS = ("pki", "dovecot", "postfix", "run", "mail", "hosts", "state.json", "blackhole.pid", "idp",
                  "exchange")

NEGATIVE_DOCS = {
    "expired": "IMAP 143(STARTTLS)/993, POP3 110(STLS)/995, SMTP 25(STARTTLS): leaf for the real names, "
               "chain to the stack CA, expired yesterday -> 'certificate has expired'",
    "expiring": "same ports: valid leaf that expires in 5 days (for expiry warning thresholds)",
    "wrong_name": "same ports: valid leaf from the stack CA, but for another name -> hostname mismatch",
    "untrusted": "same ports: leaf for the real names from a second CA clients are not given; the chain "
                 "includes that root -> 'self-signed certificate in certificate chain' (verify code 19)",
    "auth_before_tls": "IMAP 143 advertises AUTH=PLAIN/LOGIN (and STARTTLS) before TLS, POP3 110 likewise, "
                       "SMTP 25 offers AUTH before STARTTLS; plaintext logins succeed; good cert on 993/995 "
                       "and after STARTTLS",
    "no_starttls": "IMAP 143, POP3 110 and SMTP 25 without STARTTLS/STLS; plaintext AUTH offered and "
                   "succeeds; nothing on 993/995",
    "blackhole": "IMAP 143/993, POP3 110/995, SMTP 25 accept the TCP connection and never send a byte",
    "closed": "nothing listens on this address (connection refused on every port)",
    "exchange": "behaves as Exchange Online does today (tests/mailstack/exchange.py), for the documented names and "
                "the presets' mail servers: IMAP 993, POP3 995, SMTP 587 STARTTLS; AUTH=PLAIN and XOAUTH2 offered, "
                "password logins refused ('NO Basic authentication is disabled.', SMTP '535 5.7.139 ... basic "
                "authentication is disabled.'), XOAUTH2 with a token from the stack's identity provider accepted",
    "exchange_tenant": "the same, with SMTP AUTH off for the tenant: SMTP '535 5.7.139 ... SmtpClientAuthentication "
                       "is disabled for the Tenant ...' for passwords and tokens alike",
}
_EXCHANGE_VARIANTS = ("exchange", "exchange_tenant")


class MailStackError(RuntimeError):
    """A start/stop problem with a message meant for the person running the tests."""


def registered_stacks() -> list[dict]:
    """Every stack this machine has a registry entry for, with whether it is running."""
    found = []
    for instance in registered_instances():
        workdir = registered_workdir(instance)
        if workdir:
            found.append({"instance": instance, "workdir": str(workdir),
                          "running": MailStack(workdir, instance).is_running()})
    return found


class MailStack:
    """One stack: its addresses, accounts and processes; `start()`/`stop()` are idempotent."""

    def __init__(self, workdir: str | Path, instance: int = 0):
        self.workdir = Path(workdir).resolve()
        self.instance = int(instance)
        settings.block(self.instance)  # validates the range
        self.names = settings.documented()
        self.imap_host_ip = settings.address(self.instance, settings.IMAP_HOST_OFFSET)
        self.smtp_host_ip = settings.address(self.instance, settings.SMTP_HOST_OFFSET)
        self.idp_ip = settings.address(self.instance, settings.IDP_HOST_OFFSET)
        self.closed_port = settings.CLOSED_PORT
        digest = hashlib.sha1(str(self.workdir).encode()).hexdigest()[:8]
        # Dovecot overwrites its children's environment with the process title, so they are found
        # by this title prefix; Postfix and the blackhole carry `marker` in their environment.
        self.dovecot_instance_name = "mailstack%d-%s" % (self.instance, digest)
        self.marker = "%d:%s" % (self.instance, self.workdir)

    # ----- documented values and layout -------------------------------------------------------
    @property
    def ports(self) -> dict:
        n = self.names
        return {"imap": n["imap_port"], "imaps": n["imaps_port"], "pop3": n["pop3_port"],
                "pop3s": n["pop3s_port"], "smtp": n["smtp_port"]}

    @property
    def mail_domain(self) -> str:
        return self.names["mail_domain"]

    @property
    def hosts(self) -> dict:
        """Name -> stand-in address, for clients run through wrap(): the mail servers and every identity
        provider name (the stand-in IdP answers for all of them)."""
        hosts = {self.names["imap_host"]: self.imap_host_ip, self.names["smtp_host"]: self.smtp_host_ip}
        hosts.update(dict.fromkeys(settings.idp_names(), self.idp_ip))
        return hosts

    # ----- the stand-in identity provider ------------------------------------------------------
    @property
    def idp_dir(self) -> Path:
        return self.workdir / "idp"

    @property
    def idp_pid_file(self) -> Path:
        return self.idp_dir / "idp.pid"

    @property
    def exchange_pid_file(self) -> Path:
        return self.workdir / "exchange" / "exchange.pid"

    @property
    def exchange_log(self) -> Path:
        """One JSON line per login attempt at the Exchange-like variants: protocol, mechanism, tls, outcome, user."""
        return self.workdir / "exchange" / "logins.jsonl"

    def exchange_logins(self) -> list:
        if not self.exchange_log.exists():
            return []
        return [json.loads(line) for line in self.exchange_log.read_text().splitlines() if line.strip()]

    @property
    def idp(self) -> dict:
        """Where the stand-in OAuth2 identity provider answers (see tests/mailstack/idp.py for the API)."""
        base = "https://%s" % settings.IDP_NAME
        return {"name": settings.IDP_NAME, "ip": self.idp_ip, "port": settings.IDP_PORT, "issuer": base,
                "names": settings.idp_names(),
                "authorization_endpoint": base + "/authorize", "token_endpoint": base + "/token",
                "device_authorization_endpoint": base + "/devicecode", "revocation_endpoint": base + "/revoke",
                "introspection_endpoint": base + "/introspect", "test_api": base + "/test/",
                "introspection_client": settings.INTROSPECTION_CLIENT}

    def _introspection_secret(self) -> str:
        path = self.idp_dir / "introspection.secret"
        if not path.exists():
            self.idp_dir.mkdir(parents=True, exist_ok=True)
            path.write_text(secrets.token_hex(16))
        return path.read_text().strip()

    def _introspection_url(self) -> str:
        # By address: Dovecot resolves names through the system resolver, which knows no test names.
        secret = self._introspection_secret()
        return "https://%s:%s@%s/introspect" % (settings.INTROSPECTION_CLIENT, secret, self.idp_ip)

    def idp_call(self, path: str, body: dict | None = None, timeout: float = 15.0) -> dict:
        """One call of the identity provider (the test API, or a flow endpoint), by address, over verified TLS."""
        import http.client

        conn = http.client.HTTPSConnection(self.idp_ip, settings.IDP_PORT, timeout=timeout,
                                           context=context_for(settings.IDP_NAME, self.ca_path))
        try:
            data = None if body is None else json.dumps(body)
            headers = {"Host": settings.IDP_NAME}
            if data is not None:
                headers["Content-Type"] = "application/json"
            conn.request("GET" if body is None else "POST", path, body=data, headers=headers)
            response = conn.getresponse()
            payload = response.read()
        finally:
            conn.close()
        result = json.loads(payload or b"{}")
        if response.status >= 400:
            raise MailStackError("identity provider %s answered %d: %s" % (path, response.status, result))
        return result

    def token_grants(self) -> list:
        """(grant_type, client_id) of every request the token endpoint got, oldest first (no token is logged)."""
        return [(grant, client) for grant, client, _scope in self.token_scopes()]

    def token_scopes(self) -> list:
        """(grant_type, client_id, scope asked or None) of every request the token endpoint got, oldest first."""
        return [(e.get("grant_type"), e.get("client_id"), e.get("scope")) for e in self.idp_call("/test/log")["log"]
                if e.get("event") == "token"]

    def graph_requests(self) -> list:
        """(method, path, status) of every request the Microsoft Graph stand-in got, oldest first."""
        return [(e["method"], e["path"], e["status"]) for e in self.idp_call("/test/log")["log"]
                if e.get("event") == "graph"]

    def tokens_for(self, user: str, client_id: str = "mailstack-test", scope: str = "") -> dict:
        """Tokens for `user`, as if they had signed in (the test API): access_token, refresh_token, expires_in,
        and the granted `scope` (clients such as Thunderbird check it against what they need)."""
        return self.idp_call("/test/tokens", {"user": user, "client_id": client_id, "scope": scope})

    @property
    def hosts_file(self) -> Path:
        return self.workdir / "hosts" / "hosts"

    @property
    def hosts_file_presets(self) -> Path:
        """Hosts file that also maps the presets' mail server names to the good Dovecot and Postfix (IMAP 993,
        POP3 995, SMTP 587 STARTTLS), and their identity providers' names to the stand-in one."""
        return self.workdir / "hosts" / "hosts-presets"

    def hosts_file_for(self, variant: str | None = None) -> Path:
        """Hosts file mapping BOTH real names to a negative variant's address (None: the good servers)."""
        if variant is None:
            return self.hosts_file
        self._negative(variant)
        return self.workdir / "hosts" / ("hosts-" + variant)

    @property
    def ca_path(self) -> Path:
        return self.workdir / "pki" / "ca" / "ca.pem"

    @property
    def untrusted_ca_path(self) -> Path:
        """The second CA (signs the `untrusted` variant); never hand it to clients under test."""
        return self.workdir / "pki" / "ca2" / "ca.pem"

    @property
    def dovecot_log(self) -> Path:
        return self.workdir / "dovecot" / "dovecot.log"

    @property
    def postfix_log(self) -> Path:
        return self.workdir / "postfix" / "postfix.log"

    @property
    def dovecot_conf(self) -> Path:
        return dovecot.conf_path(self.workdir)

    @property
    def blackhole_pid_file(self) -> Path:
        return self.workdir / "blackhole.pid"

    @property
    def inbox_subjects(self) -> list[str]:
        return list(mailbox.INBOX_SUBJECTS)

    @property
    def folder_subjects(self) -> dict:
        """Subject of the one seeded message in each seeded folder other than INBOX."""
        return {f: mailbox.folder_subject(f) for f in mailbox.FOLDERS}

    @property
    def folders(self) -> list[str]:
        """Subscribed folders every seeded user has, besides INBOX."""
        return [*mailbox.FOLDERS, *dovecot.SPECIAL_USE]

    def address_of(self, login: str) -> str:
        return "%s@%s" % (login, self.mail_domain)

    @property
    def negatives(self) -> dict:
        good = [self.names["imap_host"], self.names["smtp_host"]]
        all_ports = self.ports
        out = {}
        for name, offset in settings.NEGATIVE_OFFSETS.items():
            ports = dict(all_ports)
            cert_names = good
            ca = self.ca_path
            if name == "no_starttls":
                ports = {k: v for k, v in all_ports.items() if k in ("imap", "pop3", "smtp")}
                cert_names = []
            elif name in ("blackhole", "closed"):
                cert_names = []
            elif name in _EXCHANGE_VARIANTS:
                ports = dict(settings.EXCHANGE_PORTS)
                cert_names = good + settings.preset_mail_names()
            elif name == "wrong_name":
                cert_names = [settings.WRONG_CERT_NAME]
            elif name == "untrusted":
                ca = self.untrusted_ca_path
            entry = {"host_ip": settings.address(self.instance, offset), "ports": ports,
                     "cert_name": cert_names[0] if cert_names else None, "cert_names": cert_names,
                     "signing_ca": str(ca) if cert_names else None, "hosts_file": str(self._variant_hosts_file(name)),
                     "description": NEGATIVE_DOCS[name]}
            if name == "blackhole":
                entry["pid_file"] = str(self.blackhole_pid_file)
            if name in _EXCHANGE_VARIANTS:
                entry["log"] = str(self.exchange_log)
            out[name] = entry
        return out

    def _variant_hosts_file(self, variant: str) -> Path:
        return self.workdir / "hosts" / ("hosts-" + variant)

    def _negative(self, name: str) -> dict:
        if name not in settings.NEGATIVE_OFFSETS:
            raise KeyError("unknown negative variant %r (known: %s)" % (name, ", ".join(settings.NEGATIVE_OFFSETS)))
        return self.negatives[name]

    # ----- users and mailboxes -----------------------------------------------------------------
    @property
    def users_dir(self) -> Path:
        """One Dovecot passwd-file per account (login:{PLAIN}password::::::)."""
        return self.workdir / "dovecot" / "users.d"

    @property
    def users(self) -> dict:
        """login -> password of every test account (the passwd-files are the only record)."""
        accounts = mailbox.read_accounts(self.users_dir)
        accounts.pop(WARMUP_USER, None)
        return accounts

    def _warmup_account(self) -> tuple[str, str]:
        return WARMUP_USER, mailbox.read_accounts(self.users_dir).get(WARMUP_USER, "")

    def add_user(self, name: str, password: str, seed: bool = True) -> None:
        """Add (or re-password) a mail account; in effect for IMAP/POP3/SMTP when this returns."""
        mailbox.check_account(name, password)
        if (self.workdir / "dovecot" / "users").exists() and not self.users_dir.exists():
            raise MailStackError("the stack in %s was started by an older tests/mailstack (single users file); "
                                 "restart it: python3 tests/mailstack stop/start --dir %s --instance %d" % (
                                     self.workdir, self.workdir, self.instance))
        mailbox.write_account(self.users_dir, name, password)
        if seed and not (self.workdir / "mail" / name / "Maildir").exists():
            self.seed_user(name)

    def seed_user(self, name: str) -> None:
        """INBOX with `inbox_subjects`, Personal and Classes (one message each), Sent/Drafts/Trash; all subscribed."""
        mailbox.seed(self.workdir / "mail", name, self.mail_domain, MAIL_UID, MAIL_GID)

    def deliver(self, user: str, subject: str, body: str = "test\n", folder: str = "INBOX", seen: bool = False) -> None:
        """Put a message straight into a user's folder (no SMTP), e.g. to prepare a client test."""
        maildir = self.workdir / "mail" / user / "Maildir"
        data = mailbox.build_message("sender@" + self.mail_domain, self.address_of(user), subject, body)
        mailbox.deliver_file(maildir, folder, data, seen)
        mailbox.chown_tree(self.workdir / "mail" / user, MAIL_UID, MAIL_GID)  # new folders too

    def message_subjects(self, user: str, folder: str = "INBOX") -> list[str]:
        return mailbox.list_subjects(self.workdir / "mail", user, folder)

    def message_count(self, user: str, folder: str = "INBOX") -> int:
        return len(self.message_subjects(user, folder))

    def wait_for_message(self, user: str, subject: str, folder: str = "INBOX", timeout: float = 15.0) -> bool:
        """True once a message with `subject` is in the folder (delivery via Postfix/LMTP is asynchronous)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if subject in self.message_subjects(user, folder):
                return True
            time.sleep(0.05)
        return False

    def doveadm(self, *args: str, timeout: float = 30) -> subprocess.CompletedProcess:
        """`doveadm -c <this stack's dovecot.conf> ARGS`,
        e.g. doveadm("mailbox", "status", "-u", "jdoe", "messages", "INBOX")."""
        return dovecot.doveadm(self.workdir, *args, timeout=timeout)

    # ----- running clients against the stand-ins -----------------------------------------------
    def wrap(self, cmd, variant: str | None = None) -> list[str]:
        """argv prefix: run `cmd` where the real names resolve to the stand-ins (or to a negative variant)."""
        return hostsns.wrap(cmd, self.hosts_file_for(variant))

    def run(self, cmd, variant: str | None = None, **kwargs) -> subprocess.CompletedProcess:
        kwargs.setdefault("timeout", 120)
        kwargs.setdefault("check", False)
        return subprocess.run(self.wrap(cmd, variant), **kwargs)  # pylint: disable=subprocess-run-check

    # ----- processes -------------------------------------------------------------------------------
    def _master_pids(self) -> dict:
        return {"dovecot": procs.read_pidfile(dovecot.pid_path(self.workdir)),
                "postfix": procs.read_pidfile(postfix.pid_path(self.workdir)),
                "blackhole": procs.read_pidfile(self.blackhole_pid_file),
                "idp": procs.read_pidfile(self.idp_pid_file),
                "exchange": procs.read_pidfile(self.exchange_pid_file)}

    def _is_ours(self, pid: int) -> bool:
        cmd = procs.cmdline_of(pid)
        return (procs.environ_of(pid).get(procs.MARKER_VAR) == self.marker
                or cmd.startswith("dovecot-%s/" % self.dovecot_instance_name)
                or (cmd.endswith(" -c " + str(self.dovecot_conf)) and "dovecot" in cmd))

    def processes(self) -> list[int]:
        """PIDs of every live process of this stack (masters, their children, the blackhole)."""
        prefixes = ("dovecot-%s/" % self.dovecot_instance_name, "/usr/sbin/dovecot -c %s" % self.dovecot_conf,
                    "dovecot -c %s" % self.dovecot_conf)
        return procs.scan(prefixes, self.marker)

    def _live_masters(self) -> dict:
        return {name: pid for name, pid in self._master_pids().items()
                if pid and procs.alive(pid) and self._is_ours(pid)}

    def is_running(self) -> bool:
        return len(self._live_masters()) == len(self._master_pids())

    def status(self) -> dict:
        masters = self._live_masters()
        return {
            "running": len(masters) == len(self._master_pids()),
            "instance": self.instance,
            "workdir": str(self.workdir),
            "pids": masters,
            "processes": self.processes(),
            "imap_host_ip": self.imap_host_ip,
            "smtp_host_ip": self.smtp_host_ip,
            "hosts": self.hosts,
            "hosts_file": str(self.hosts_file),
            "ports": self.ports,
            "ca_path": str(self.ca_path),
            "mail_domain": self.mail_domain,
            "users": self.users,
            "inbox_subjects": self.inbox_subjects,
            "folder_subjects": self.folder_subjects,
            "logs": {"dovecot": str(self.dovecot_log), "postfix": str(self.postfix_log)},
            "idp": self.idp,
            "sasl": {"imap_pop3": ["PLAIN", "LOGIN", "XOAUTH2", "OAUTHBEARER"],
                     "smtp": ["PLAIN", "LOGIN", "XOAUTH2", "OAUTHBEARER"], "offered": "after TLS only"},
            "dovecot_conf": str(self.dovecot_conf),
            "negatives": self.negatives,
            "closed_port": self.closed_port,
            "wrap_example": self.wrap(["openssl", "s_client", "-connect",
                                       "%s:%d" % (self.names["imap_host"], self.ports["imaps"])]),
        }

    # ----- start ----------------------------------------------------------------------------------
    def _bindings(self) -> list[tuple[str, int]]:
        """Every (address, port) the stack will listen on."""
        p = self.ports
        out = [(self.imap_host_ip, p[k]) for k in ("imap", "imaps", "pop3", "pop3s")]
        out.append((self.smtp_host_ip, p["smtp"]))
        out.append((self.idp_ip, settings.IDP_PORT))
        for name, neg in self.negatives.items():
            if name != "closed":
                out.extend((neg["host_ip"], port) for port in neg["ports"].values())
        return out

    def _check_workdir_instance(self) -> None:
        """Refuse a workdir that holds a running stack of another instance (its files would be wiped)."""
        try:
            recorded = json.loads((self.workdir / "state.json").read_text())["instance"]
        except (OSError, ValueError, KeyError):
            recorded = None
        if recorded not in (None, self.instance) and MailStack(self.workdir, recorded).is_running():
            raise MailStackError("%s holds a running stack of instance %s; stop it first or use another --dir" % (
                self.workdir, recorded))

    def _preflight(self) -> None:
        other = registered_workdir(self.instance)
        if other and other != self.workdir and MailStack(other, self.instance).is_running():
            raise MailStackError(
                "instance %d is already running from %s; stop it (python3 tests/mailstack stop --dir %s "
                "--instance %d) or pick another --instance" % (self.instance, other, other, self.instance))
        problems = []
        sockets = procs.listening_sockets()
        for ip, port in self._bindings():
            error = _bind_error(ip, port)
            if not error:
                continue
            holders = [(addr, bport, procs.socket_owner(inode))
                       for addr, bport, inode in procs.blockers(ip, port, sockets)]
            if not holders:
                problems.append("port %d: cannot bind %s:%d: %s" % (port, ip, port, error))
            for addr, bport, owner in holders:
                hint = ""
                if any(name in owner for name in ("dovecot", "postfix", "master")):
                    hint = (" - this looks like the distribution's own mail server, started by the package "
                            "install; stop it (doveadm stop / postfix stop) or install with a policy-rc.d that "
                            "exits 101 (tests/tools/apt-install does)")
                problems.append("port %d: %s:%d is already taken by %s%s" % (port, addr, bport, owner, hint))
        if problems:
            raise MailStackError("cannot start the mail stack (instance %d):\n  %s" % (
                self.instance, "\n  ".join(dict.fromkeys(problems))))
        for parent in self.workdir.parents:
            if parent.exists() and not parent.stat().st_mode & 0o001:
                mode = parent.stat().st_mode & 0o777
                raise MailStackError("workdir %s is inside %s (mode %o), which the postfix and dovecot users cannot "
                                     "enter; use a directory under /tmp" % (self.workdir, parent, mode))
        if len(str(self.workdir / "run" / "login" / "imap-login-master")) > 100:
            raise MailStackError("workdir %s is too long for Dovecot's unix sockets (108 bytes); use a shorter "
                                 "--dir" % self.workdir)

    def _clean_workdir(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        # mkdtemp makes 0700; the daemons' users (postfix, dovenull, nobody) must traverse it.
        self.workdir.chmod(0o755)
        for part in _WORKDIR_PARTS:
            path = self.workdir / part
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()

    def _make_pki(self) -> tuple[Path, dict]:
        pki = Pki(self.workdir / "pki")
        pki.dir.mkdir(parents=True)
        good = [self.names["imap_host"], self.names["smtp_host"]]
        pki.make_ca("ca", "Mailstack Test CA %d" % self.instance)
        pki.make_ca("ca2", "Mailstack Untrusted CA %d" % self.instance)
        key = pki.make_leaf_key()
        pki.restrict_key(key)
        chains = {
            "idp": pki.issue("ca", "idp", [*settings.idp_names(), "IP:" + self.idp_ip], -1, 365),
            "exchange": pki.issue("ca", "exchange", [*good, *settings.preset_mail_names()], -1, 365),
            # The good servers also answer for the presets' names (hosts_file_presets): real Dovecot and Postfix
            # behind a preset's configuration, where the Exchange-like variants stand in for Exchange's refusals.
            "good": pki.issue("ca", "good", [*good, *settings.preset_mail_names()], -1, 365),
            "expired": pki.issue("ca", "expired", good, -60, -1),
            "expiring": pki.issue("ca", "expiring", good, -1, 5),
            "wrong_name": pki.issue("ca", "wrong_name", [settings.WRONG_CERT_NAME], -1, 365),
            "untrusted": pki.issue("ca2", "untrusted", good, -1, 365),
        }
        return key, chains

    def _write_configs(self, key: Path, chains: dict) -> None:
        neg = self.negatives
        dv, pf = [], []
        for name in _TLS_VARIANTS:
            ip = neg[name]["host_ip"]
            dv.append({"name": name, "ip": ip, "protocols": ["imap", "imaps", "pop3", "pop3s"],
                       "cert": chains[name], "key": key})
            pf.append({"name": name, "ip": ip, "options": ["smtpd_tls_chain_files=%s,%s" % (key, chains[name])]})
        ip = neg["auth_before_tls"]["host_ip"]
        dv.append({"name": "auth_before_tls", "ip": ip, "protocols": ["imap", "imaps", "pop3", "pop3s"],
                   "cleartext_auth": True})
        pf.append({"name": "auth_before_tls", "ip": ip, "options": ["smtpd_tls_auth_only=no"]})
        ip = neg["no_starttls"]["host_ip"]
        dv.append({"name": "no_starttls", "ip": ip, "protocols": ["imap", "pop3"],
                   "ssl": False, "cleartext_auth": True})
        pf.append({"name": "no_starttls", "ip": ip,
                   "options": ["smtpd_tls_security_level=none", "smtpd_tls_auth_only=no"]})

        for sub in ("dovecot/state", "run", "mail"):
            (self.workdir / sub).mkdir(parents=True, exist_ok=True)
        shutil.chown(self.workdir / "mail", MAIL_UID, MAIL_GID)
        self.dovecot_conf.write_text(dovecot.render(
            workdir=self.workdir, marker=self.marker, imap_ip=self.imap_host_ip,
            ports={k: v for k, v in self.ports.items() if k != "smtp"}, cert=chains["good"], key=key,
            variants=dv, mail_uid=MAIL_UID, mail_gid=MAIL_GID, instance_name=self.dovecot_instance_name,
            introspection_url=self._introspection_url(), ca=self.ca_path, dialect=dovecot.version()))
        dovecot.oauth2_file_path(self.workdir).write_text(dovecot.render_oauth2_file(
            introspection_url=self._introspection_url(), ca=self.ca_path, dialect=dovecot.version()))
        postfix.prepare(self.workdir)
        main_cf, master_cf = postfix.render(
            workdir=self.workdir, marker=self.marker, smtp_ip=self.smtp_host_ip, port=self.ports["smtp"],
            names=self.names, key=key, chain=chains["good"], variants=pf, submission_port=settings.SUBMISSION_PORT)
        postfix.write_conf(self.workdir, main_cf, master_cf)
        for log in (self.dovecot_log, self.postfix_log):
            log.touch()

    def _write_hosts(self) -> None:
        (self.workdir / "hosts").mkdir(exist_ok=True)
        hostsns.write_hosts_file(self.hosts_file, self.hosts)
        by_server = settings.preset_names_by_server()
        hostsns.write_hosts_file(self.hosts_file_presets, dict(
            self.hosts, **dict.fromkeys(by_server["incoming"], self.imap_host_ip),
            **dict.fromkeys(by_server["smtp"], self.smtp_host_ip)))
        mail_names = [self.names["imap_host"], self.names["smtp_host"]]
        for name, neg in self.negatives.items():
            # The mail servers' names go to the variant; the identity provider stays where it is.
            names = mail_names + (settings.preset_mail_names() if name in _EXCHANGE_VARIANTS else [])
            mapping = dict(self.hosts, **dict.fromkeys(names, neg["host_ip"]))
            hostsns.write_hosts_file(self._variant_hosts_file(name), mapping)

    def _start_blackhole(self) -> None:
        neg = self.negatives["blackhole"]
        specs = ["%s:%d" % (neg["host_ip"], port) for port in neg["ports"].values()]
        env = {"PATH": "/usr/bin:/bin", procs.MARKER_VAR: self.marker}
        script = Path(__file__).with_name("blackhole.py")
        proc = subprocess.run([sys.executable, str(script), str(self.blackhole_pid_file), *specs],
                              capture_output=True, text=True, timeout=30, env=env, check=False)
        if proc.returncode:
            raise MailStackError(proc.stderr.strip() or "blackhole failed to start")

    def _start_idp(self, key: Path, chain: Path) -> None:
        config = self.idp_dir / "config.json"
        config.write_text(json.dumps({
            "address": self.idp_ip, "port": settings.IDP_PORT, "cert": str(chain), "key": str(key),
            "pid_file": str(self.idp_pid_file), "routes": settings.preset_endpoint_paths(),
            "graph": settings.graph_settings(),
            "introspection_clients": {settings.INTROSPECTION_CLIENT: self._introspection_secret()}}))
        config.chmod(0o600)
        env = {"PATH": "/usr/bin:/bin", procs.MARKER_VAR: self.marker}
        proc = subprocess.run([sys.executable, str(Path(__file__).with_name("idp.py")), str(config)],
                              capture_output=True, text=True, timeout=30, env=env, check=False)
        if proc.returncode:
            raise MailStackError(proc.stderr.strip() or "the identity provider failed to start")

    def _start_exchange(self, key: Path, chain: Path) -> None:
        directory = self.exchange_pid_file.parent
        directory.mkdir(parents=True, exist_ok=True)
        endpoints = []
        for name, mode in (("exchange", "basic"), ("exchange_tenant", "tenant")):
            address = self.negatives[name]["host_ip"]
            endpoints += [{"address": address, "port": port, "protocol": protocol, "implicit": implicit, "mode": mode}
                          for protocol, port, implicit in (("imap", settings.EXCHANGE_PORTS["imaps"], True),
                                                           ("pop3", settings.EXCHANGE_PORTS["pop3s"], True),
                                                           ("smtp", settings.EXCHANGE_PORTS["submission"], False))]
        config = directory / "config.json"
        config.write_text(json.dumps({
            "endpoints": endpoints, "cert": str(chain), "key": str(key), "ca": str(self.ca_path),
            "pid_file": str(self.exchange_pid_file), "log": str(self.exchange_log),
            "smtp_name": self.names["smtp_host"], "idp_name": settings.IDP_NAME,
            "introspection_url": "https://%s/introspect" % self.idp_ip,
            "introspection_credentials": "%s:%s" % (settings.INTROSPECTION_CLIENT, self._introspection_secret())}))
        config.chmod(0o600)
        env = {"PATH": "/usr/bin:/bin", procs.MARKER_VAR: self.marker}
        proc = subprocess.run([sys.executable, str(Path(__file__).with_name("exchange.py")), str(config)],
                              capture_output=True, text=True, timeout=30, env=env, check=False)
        if proc.returncode:
            raise MailStackError(proc.stderr.strip() or "the Exchange-like stand-in failed to start")

    def _wait_listening(self, deadline: float) -> None:
        wanted = set(self._bindings())
        while True:
            have = {(a, p) for a, p, _inode in procs.listening_sockets()}
            missing = wanted - have
            if not missing:
                return
            if time.monotonic() > deadline or not self.is_running():
                raise MailStackError("not listening after start: %s (see %s and %s)" % (
                    ", ".join("%s:%d" % m for m in sorted(missing)), self.dovecot_log, self.postfix_log))
            time.sleep(0.02)

    def tls_context(self, hostname: str | None = None, cafile: str | Path | None = None) -> ssl.SSLContext:
        """Verifying client context for `hostname` (default: the IMAP name) trusting the stack CA;
        it verifies that name even when imaplib/smtplib connect by IP."""
        return context_for(hostname or self.names["imap_host"], cafile or self.ca_path)

    def _warm_up(self, deadline: float) -> None:
        """One real IMAP login (spawns auth + imap) and one SMTP STARTTLS (spawns smtpd, tlsmgr), so the
        first test's login does not stall. No SMTP AUTH: tests grep the Postfix log for sasl_method."""
        import imaplib
        import smtplib

        login, password = self._warmup_account()
        remaining = max(1.0, deadline - time.monotonic())
        imap = imaplib.IMAP4_SSL(self.imap_host_ip, self.ports["imaps"], ssl_context=self.tls_context(),
                                 timeout=remaining)
        try:
            imap.login(login, password)
            imap.select("INBOX")
        finally:
            imap.logout()
        with smtplib.SMTP(self.smtp_host_ip, self.ports["smtp"], timeout=remaining,
                          local_hostname="warmup.invalid") as smtp:
            smtp.starttls(context=self.tls_context(self.names["smtp_host"]))
            smtp.ehlo()

    def _check_closed(self) -> None:
        closed = self.negatives["closed"]
        probes = [(closed["host_ip"], p) for p in closed["ports"].values()]
        probes += [(self.imap_host_ip, self.closed_port), (self.smtp_host_ip, self.closed_port)]
        for ip, port in probes:
            try:
                socket.create_connection((ip, port), timeout=2).close()
            except ConnectionRefusedError:
                continue
            except OSError as exc:
                raise MailStackError("closed port %s:%d should refuse, got %s" % (ip, port, exc)) from exc
            raise MailStackError("closed port %s:%d accepts connections: something else listens there" % (ip, port))

    def start(self) -> dict:
        """Start (or, if this workdir's stack is already up, reuse) the stack; returns status()."""
        with instance_lock(self.instance):
            if self.is_running():
                return self.status()
            self._check_workdir_instance()
            if any(self._master_pids().values()) and self.processes():
                self._kill_all()  # a half-dead earlier run of this workdir: clear it, then start clean
            self._preflight()
            t0 = time.monotonic()
            deadline = t0 + START_TIMEOUT
            self._clean_workdir()
            try:
                key, chains = self._make_pki()
                self._write_configs(key, chains)
                self._write_hosts()
                for login, password in {**DEFAULT_USERS, WARMUP_USER: secrets.token_hex(12)}.items():
                    mailbox.write_account(self.users_dir, login, password)
                for login in (*DEFAULT_USERS, WARMUP_USER):
                    self.seed_user(login)
                dovecot.start(self.workdir)
                postfix.start(self.workdir)
                self._start_blackhole()
                self._start_idp(key, chains["idp"])
                self._start_exchange(key, chains["exchange"])
                self._wait_listening(deadline)
                self._warm_up(deadline)
                self._check_closed()
            except BaseException as exc:
                self._kill_all()
                if isinstance(exc, (MailStackError, KeyboardInterrupt)):
                    raise
                raise MailStackError("mail stack start failed, everything stopped again: %s" % exc) from exc
            self.start_seconds = round(time.monotonic() - t0, 3)
            (self.workdir / "state.json").write_text(json.dumps(
                {"instance": self.instance, "start_seconds": self.start_seconds}, indent=1))
            register(self.instance, self.workdir)
            return self.status()

    # ----- stop -----------------------------------------------------------------------------------
    def _kill_all(self) -> list[int]:
        """Masters first (by PID file), wait, then whatever of ours is left, by PID. Returns survivors."""
        snapshot = set(self.processes())
        masters = [pid for pid in self._master_pids().values() if pid and procs.alive(pid) and self._is_ours(pid)]
        procs.terminate(masters, timeout=STOP_TIMEOUT)
        leftovers = [pid for pid in snapshot | set(self.processes()) if procs.alive(pid)]
        survivors = procs.terminate(leftovers, timeout=2.0) if leftovers else []
        return survivors

    def _wait_ports_free(self, timeout: float) -> list[str]:
        wanted = set(self._bindings())
        deadline = time.monotonic() + timeout
        while True:
            busy = wanted & {(a, p) for a, p, _inode in procs.listening_sockets()}
            if not busy or time.monotonic() > deadline:
                return ["%s:%d" % b for b in sorted(busy)]
            time.sleep(0.02)

    def stop(self) -> dict:
        """Stop every process of this stack by PID; returns what was stopped. Safe to call twice."""
        with instance_lock(self.instance):
            t0 = time.monotonic()
            before = self.processes()
            survivors = self._kill_all()
            busy = self._wait_ports_free(5.0) if before else []
            unregister(self.instance, self.workdir)
            if survivors or busy:
                raise MailStackError("stop incomplete: processes %s still alive, ports %s still bound" % (
                    survivors, busy))
            return {"stopped": before, "seconds": round(time.monotonic() - t0, 3)}


def _bind_error(ip: str, port: int) -> str:
    """Why ip:port cannot be bound right now ('' if it can): the kernel is the judge of conflicts
    (a wildcard listener blocks us, an IPv6-only one does not)."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    # As the daemons do: connections of an earlier run in TIME_WAIT must not count as "taken".
    probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        probe.bind((ip, port))
    except OSError as exc:
        return exc.strerror or str(exc)
    finally:
        probe.close()
    return ""
