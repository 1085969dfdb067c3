"""Converge the evolution role in a sandbox, and ask evolution-data-server and Camel what they see."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import stat
from pathlib import Path

from ansible_runner import run_playbook
from sandbox import Sandbox

HERE = Path(__file__).resolve().parent
PROBE = HERE / "eds_probe.py"
SYSTEM_PYTHON = "/usr/bin/python3"
# Programs the probe needs on the host; a missing one is a failure, never a skip.
REQUIRED = ("dbus-run-session", "runuser", "unshare", "update-ca-certificates", "dconf", "gnome-keyring-daemon",
            SYSTEM_PYTHON)
SOURCES = ".config/evolution/sources"
TASK_PREFIX = "middlebury.mail_clients.evolution : "
WRITE_TASK = TASK_PREFIX + ("Install and configure the Evolution sources and dconf files (dconf compiled when one "
                            "changed)")
# What managed_files reports when it compiled the dconf database in the same call.
DCONF_UPDATE = ["dconf", "update"]
# The site.yml way: facts gathered once for all roles, then the role; so the role's own remote work is countable.
PLAY = [{"hosts": "localhost", "gather_facts": False, "tasks": [
    {"name": "Gather the OS family and the package manager",
     "ansible.builtin.setup": {"gather_subset": ["!all", "!min", "distribution", "pkg_mgr"]}},
    {"name": "Run the evolution role", "ansible.builtin.include_role": {"name": "middlebury.mail_clients.evolution"}},
]}]


# A source of the user's own (another account), which the role must never touch.
PERSONAL_SOURCE = """[Data Source]
DisplayName=My own mail
Enabled=true
Parent=

[Mail Account]
BackendName=none
IdentityUid=my-own-identity
"""


def plant_personal_source(sb, login):
    """The user's own ~/.config/evolution/sources/my-own.source, written as the user."""
    proc = sb.run(["runuser", "-u", login, "--", "sh", "-c",
                   "umask 077 && mkdir -p ~/%s && cat > ~/%s/my-own.source" % (SOURCES, SOURCES)],
                  input=PERSONAL_SOURCE)
    assert proc.returncode == 0, proc.stderr
    return user_file(sb, login, "my-own")


def require_tools():
    missing = [tool for tool in REQUIRED if not shutil.which(tool)]
    assert not missing, "missing %s (install tests/apt/evolution.txt)" % ", ".join(missing)


def new_sandbox(tmp_path, mail_stack, users=(), hosts_file=None):
    """A sandbox where the documented names resolve to the stack and its CA is a system CA.

    The CA goes into the sandbox's own /etc/ssl/certs (update-ca-certificates inside the /etc
    overlay): the role's hosts, ports and files stay exactly what a real deployment gets."""
    require_tools()
    sb = Sandbox(tmp_path / "sandbox", hosts_file=hosts_file or (mail_stack.hosts_file if mail_stack else None))
    for login, full_name in users:
        sb.add_user(login, full_name)
    if mail_stack is None:  # tests that never connect
        return sb
    proc = sb.run(["sh", "-c", "mkdir -p /etc/mailstack-ca/no-hooks && cat > /etc/mailstack-ca/mailstack.crt && "
                   "update-ca-certificates --localcertsdir /etc/mailstack-ca --hooksdir /etc/mailstack-ca/no-hooks"],
                  input=Path(mail_stack.ca_path).read_text(), timeout=120)
    assert proc.returncode == 0, proc.stderr
    return sb


def converge(sb, extra_vars=None, check=False, diff=False):
    extra = {"evolution_install": False}
    extra.update(extra_vars or {})
    return run_playbook(PLAY, extra, check=check, diff=diff, sandbox=sb, timeout=300)


def managed_files_result(result):
    """The managed_files task's result (the role's one module call)."""
    found = [res for _name, res in result.task_results() if "changed_paths" in res]
    assert len(found) == 1, result
    return found[0]


_KEYRING_PASSWORDS = {}  # (sandbox, login) -> the login keyring's password
# Inside the D-Bus session: a login keyring unlocked with a password (as PAM does at login), then the probe.
_WITH_KEYRING = """set -e
printf %s "$KEYRING_PASSWORD" | gnome-keyring-daemon --unlock --components=secrets >/dev/null
unset KEYRING_PASSWORD
exec "$@"
"""


def probe(sb, login, uids=(), password=None, send=None, folders=(), rewrite=(), oauth2=None, gsettings=None,
          environment=None, wait_for=None):
    """Run eds_probe.py as `login`, in a fresh D-Bus session with that user's real environment.

    With ``oauth2`` ({"secret_uid", "refresh_token"}) the session gets an unlocked login keyring holding that
    token and the system dconf database (the registry reads an organisation's client ID there); otherwise
    GSettings stay in memory, untouched by the user's or the machine's. ``environment``: more variables for the
    session (as environment.d gives them to a login's services). ``wait_for``: the probe's "await" request (a
    collection's children to wait for)."""
    home = sb.run(["getent", "passwd", login]).stdout.split(":")[5]
    request = {"uids": list(uids), "password": password, "send": send, "folders": list(folders),
               "rewrite": list(rewrite), "oauth2": oauth2, "gsettings": gsettings or {}, "await": wait_for}
    # The result goes to a file of the user's (services the bus starts print to the probe's stdout).
    result_file = "%s/.eds-probe-result-%s.json" % (home, secrets.token_hex(4))
    env = ["HOME=%s" % home, "USER=%s" % login, "LOGNAME=%s" % login, "PATH=/usr/bin:/bin", "LANG=C.UTF-8",
           "EDS_PROBE_RESULT=" + result_file]
    session = ["dbus-run-session", "--"]
    if oauth2 is not None or gsettings:
        runtime = "%s/.run" % home  # the bus and the keyring put their sockets there
        made = sb.run(["install", "-d", "-m", "0700", "-o", login, runtime])
        assert made.returncode == 0, made.stderr
        # The same password at every login of this user: the keyring the first one created unlocks again.
        password = _KEYRING_PASSWORDS.setdefault((str(sb.workdir), login), secrets.token_hex(8))
        env += ["GSETTINGS_BACKEND=dconf", "XDG_RUNTIME_DIR=" + runtime, "KEYRING_PASSWORD=" + password]
        session += ["sh", "-c", _WITH_KEYRING, "keyring"]
    else:
        env.append("GSETTINGS_BACKEND=memory")
    # What the systemd user manager would add from environment.d (the registry and its factories inherit it).
    env += ["%s=%s" % item for item in (environment or {}).items()]
    argv = ["runuser", "-u", login, "--", "env", "-i", *env, "timeout", "90", *session, SYSTEM_PYTHON, "-c",
            PROBE.read_text()]
    proc = sb.run(argv, input=json.dumps(request), timeout=120)
    assert proc.returncode == 0, "probe as %s failed (rc=%s): %s" % (login, proc.returncode, proc.stderr[-3000:])
    written = sb.upper(result_file)
    assert written.is_file(), "probe as %s wrote no result: %r %s" % (login, proc.stdout[-2000:], proc.stderr[-2000:])
    return json.loads(written.read_text(encoding="utf-8"))


def tree_snapshot(root):
    """{relative path: (mode, uid, gid, bytes)} of everything under a host directory."""
    root = Path(root)
    snapshot = {}
    if not root.exists():
        return snapshot
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            st = path.lstat()
            data = path.read_bytes() if stat.S_ISREG(st.st_mode) else None
            snapshot[str(path.relative_to(root))] = (st.st_mode, st.st_uid, st.st_gid, data)
    return snapshot


def user_file(sb, login, uid):
    return sb.upper("/home/%s/%s/%s.source" % (login, SOURCES, uid))


def remote_executions(result):
    """Names of the role's tasks that ran a module on the host."""
    return result.remote_executions(TASK_PREFIX)


def environment_d(sb, directory="/etc/environment.d"):
    """The variables the files in the sandbox's environment.d give a login's services (KEY=VALUE lines)."""
    found = {}
    upper = sb.upper(directory)
    for path in sorted(upper.glob("*.conf")) if upper.is_dir() else []:
        for line in path.read_text().splitlines():
            if line.strip() and not line.startswith("#"):
                key, _sep, value = line.partition("=")
                found[key.strip()] = value.strip()
    return found
