"""Helpers of the thunderbird role tests: the role's own paths, a sandbox that also covers the ISP
directory, converge and login-probe helpers. (Not in conftest.py: every test directory has one, and
`from conftest import` would pick whichever was imported first.)"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import tb_harness as tb
from ansible_runner import run_playbook
from tb_releases import HOST

from ansible_collections.middlebury.mail_clients.plugins.plugin_utils.client_plans import thunderbird as plan

HERE = Path(__file__).resolve().parent

ROLE_DIR = HERE.parents[2] / "roles" / "thunderbird"
ROLE = "middlebury.mail_clients.thunderbird"
# The plan's own paths (its Debian layout): tests never restate them.
LAYOUT = plan.LAYOUTS["Debian"]
CFG_DIR = LAYOUT["cfg_dir"]
CFG_PATH = "%s/%s" % (CFG_DIR, plan.CFG_NAME)
AUTOCONFIG_PATH = "%s/autoconfig.js" % LAYOUT["pref_dir"]
POLICIES_PATH = LAYOUT["policies_path"]
ISP_DIR = LAYOUT["isp_dir"]
KEYS = plan.KEYS
SOCKET = plan.SOCKET_TYPE
AUTH = plan.AUTH_METHOD


# The account-wizard file and the .cfg live under /usr (<install dir>/isp, the install dir), which the
# base sandbox does not cover: every sandbox that converges this role overlays them too, or the role
# would write into the host's /usr.
OVERLAYS = (ISP_DIR, CFG_DIR)
# Where the test mail stack's CA goes inside a sandbox (the role's thunderbird_ca_certificates).
CA_IN_SANDBOX = "/etc/ssl/mailstack-test-ca.pem"


def make_sandbox(workdir, hosts_file=None, release=HOST):
    """The team sandbox plus the overlay over Thunderbird's ISP directory (with another ``release``: its trees)."""
    return release.sandbox(workdir, hosts_file=hosts_file, extra_overlays=OVERLAYS)


def stack_box(workdir, mail_stack, hosts_file, extra_vars=None, release=HOST):
    """A sandbox converged to talk to the test mail stack through ``hosts_file``: the stack's CA is
    installed in it and trusted through the role's own thunderbird_ca_certificates option."""
    sb = make_sandbox(workdir, hosts_file=hosts_file, release=release)
    ca = sb.upper(CA_IN_SANDBOX)
    ca.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(mail_stack.ca_path, ca)
    ca.chmod(0o644)
    result = converge(sb, {"thunderbird_ca_certificates": [CA_IN_SANDBOX], **(extra_vars or {})})
    assert result.rc == 0, result
    return sb


def probe_login(mail_stack, sb, login, password, profile_name, prefs, extra_prefs=None):
    """Start Thunderbird as a new sandbox login with a fresh profile, read the accounts (and the
    named prefs) and let it log in to the stack with ``password``, handed over in memory only.

    Returns (accounts, logins, what Dovecot logged meanwhile)."""
    sb.add_user(login)
    mark = mail_stack.dovecot_log.stat().st_size

    def probe(client):
        return tb.read_accounts(prefs)(client), tb.verify_logins(KEYS["account"], password)(client)

    profile = tb.make_profile(sb, login, profile_name)
    (accounts, logins), _log = tb.probe(sb, login, profile, probe, extra_prefs=extra_prefs)
    return accounts, logins, mail_stack.dovecot_log.read_text(errors="replace")[mark:]


def role_play(facts=False):
    """A play running the role; with facts, gathered the site.yml way (the OS family and the package manager)."""
    play = {"hosts": "localhost", "gather_facts": facts, "roles": [{"role": ROLE}]}
    if facts:
        play["gather_subset"] = ["!all", "!min", "distribution", "pkg_mgr"]
    return [play]


def converge(sb, extra_vars=None, check=False, diff=False, facts=False):
    """Run the role inside the sandbox; Thunderbird is already installed on the test machine."""
    variables = {"thunderbird_install": False}
    variables.update(extra_vars or {})
    return run_playbook(role_play(facts), variables, check=check, diff=diff, sandbox=sb)


def snapshot(sb):
    """Every file the sandbox has written on top of the host, with its content."""
    files = {}
    for root, _dirs, names in os.walk(sb.workdir / "upper"):
        for name in names:
            path = Path(root) / name
            files[str(path.relative_to(sb.workdir))] = path.read_bytes() if not path.is_symlink() else b"->"
    return files


def seeded_own_accounts():
    """Two accounts of the user's own (IMAP and POP3), one SMTP server, the second account default."""
    prefs = {
        "mail.accountmanager.accounts": "account1,account2",
        "mail.accountmanager.defaultaccount": "account2",
        "mail.account.account1.server": "server1", "mail.account.account1.identities": "id1",
        "mail.account.account2.server": "server2", "mail.account.account2.identities": "id2",
        "mail.account.lastKey": 2,
        "mail.server.server1.type": "imap", "mail.server.server1.hostname": "imap.example.org",
        "mail.server.server1.userName": "own1", "mail.server.server1.port": 993,
        "mail.server.server1.socketType": 3, "mail.server.server1.login_at_startup": False,
        "mail.server.server2.type": "pop3", "mail.server.server2.hostname": "pop.example.net",
        "mail.server.server2.userName": "own2", "mail.server.server2.port": 995,
        "mail.server.server2.socketType": 3, "mail.server.server2.login_at_startup": False,
        "mail.identity.id1.useremail": "own1@example.org", "mail.identity.id1.fullName": "Own One",
        "mail.identity.id1.smtpServer": "smtp1", "mail.identity.id1.valid": True,
        "mail.identity.id2.useremail": "own2@example.net", "mail.identity.id2.fullName": "Own Two",
        "mail.identity.id2.valid": True,
        "mail.smtpservers": "smtp1", "mail.smtp.defaultserver": "smtp1",
        "mail.smtpserver.smtp1.hostname": "smtp.example.org", "mail.smtpserver.smtp1.port": 587,
        "mail.smtpserver.smtp1.try_ssl": 2, "mail.smtpserver.smtp1.username": "own1",
    }
    return "".join(tb.pref_line(name, value) for name, value in prefs.items())


def own_accounts(result):
    return [(a["key"], a["host"], a["username"]) for a in result["accounts"]
            if a["key"] in ("account1", "account2")]
