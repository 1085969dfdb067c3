"""Helpers for the mutt role tests: run the role in a sandbox, read values back with the real clients.

Expected values are derived from the collection's account model, never restated here."""

from __future__ import annotations

import shlex
import subprocess
import time

from ansible_runner import run_playbook
from mutt_versions import query_exit_ok

from ansible_collections.middlebury.mail_clients.plugins.module_utils.account_model import normalize_account

# Where the sandbox gets the stack's CA: a department with an internal CA would ship it the same way and
# point mutt_ca_file at it.
CA_IN_SANDBOX = "/etc/ssl/middlebury-test-ca.pem"


# Mail accounts of our own on the shared stack (seeded INBOX, Personal, Classes, Sent...), so that no
# other test's use of the default accounts can disturb what these tests expect to see.
MUTT_LOGINS = ("muttjane", "muttbob")


ROLE = "middlebury.mail_clients.mutt"
CLIENTS = ("mutt", "neomutt")
DROPINS = {"mutt": "/etc/Muttrc.d/zz-middlebury.rc", "neomutt": "/etc/neomuttrc.d/zz-middlebury.rc"}
USER_FILE = ".config/mutt/middlebury.rc"
# The contract's hostile full names.
HOSTILE_NAMES = ["O'Brien", 'Zoë "Z" Ångström', "`id`", "$(id)", "a;b", "back\\slash"]
# NeoMutt -Q prints its new names.
NEOMUTT_NAMES = {"real_name": "realname", "spool_file": "spoolfile"}


def play(gather=False):
    """One play running the role (the site.yml way: facts gathered once, then the role included)."""
    tasks = []
    if gather:
        tasks.append({"name": "Gather the OS family and the package manager", "ansible.builtin.setup": {
            "gather_subset": ["!all", "!min", "distribution", "pkg_mgr"]}})
    tasks.append({"name": "Run the mutt role", "ansible.builtin.include_role": {"name": ROLE}})
    return [{"hosts": "localhost", "gather_facts": False, "tasks": tasks}]


def converge(sandbox, extra=None, check=False, diff=False, gather=False):
    """Run the role inside the sandbox; mutt_install is false unless asked (the packages are installed)."""
    extra_vars = {"mutt_install": False}
    extra_vars.update(extra or {})
    return run_playbook(play(gather), extra_vars, check=check, diff=diff, sandbox=sandbox)


def remote_executions(result):
    """Names of the role's tasks that ran a module on the host."""
    return result.remote_executions(ROLE + " : ")


def _unescape(raw):
    """A value from -Q output: mutt `name="v"`, `name=v`, `name is set`; NeoMutt `set name = "v"`."""
    raw = raw.strip()
    if not (raw.startswith('"') and raw.endswith('"')):
        return raw
    out, chars = [], iter(raw[1:-1])
    for char in chars:
        out.append(next(chars, "") if char == "\\" else char)
    return "".join(out)


def parse_query(text):
    values = {}
    for line in text.splitlines():
        if line.endswith(" is set") or line.endswith(" is unset"):
            name, _sep, state = line.rpartition(" is ")
            values[name.strip()] = "yes" if state == "set" else "no"
            continue
        if line.startswith("set ") and " = " in line:
            name, _sep, raw = line[4:].partition(" = ")
        elif "=" in line:
            name, _sep, raw = line.partition("=")
        else:
            continue
        name = NEOMUTT_NAMES.get(name.strip(), name.strip())
        values[name] = _unescape(raw)
    return values


def query(sandbox, client, login, names, rcfile=None, clean_env=True):
    """Values of `names` as `client` reads them when `login` starts it (full system config, or -n -F rcfile).

    Returns (values, stderr). With clean_env the client runs under `env -i` plus HOME/PATH/LANG only, so
    $USER and $LOGNAME are unset (the lab case the role must survive)."""
    argv = [client]
    if rcfile:
        argv += ["-n", "-F", rcfile]
    for name in names:
        argv += ["-Q", name]
    home = "$(getent passwd %s | cut -d: -f6)" % shlex.quote(login)
    env = "env -i HOME=%s PATH=/usr/bin:/bin LANG=C.UTF-8 TERM=dumb" % home if clean_env else "env"
    script = "cd / && runuser -u %s -- %s %s" % (shlex.quote(login), env, " ".join(shlex.quote(a) for a in argv))
    proc = sandbox.sh(script, timeout=60)
    assert query_exit_ok(client, proc.returncode), (client, login, proc.stdout, proc.stderr)
    values = parse_query(proc.stdout)
    folder = values.get("folder", "")
    # mutt prints mailbox paths relative to $folder ("=INBOX"); compare the full URL.
    for key in ("spoolfile", "record", "postponed", "trash"):
        if key in values and values[key][:1] in ("=", "+"):
            values[key] = folder + values[key][1:]
    return values, proc.stderr


def expected(account=None, users=None, login=None, user_index=None, ca_file=None):
    """The values the role must produce, from the model: for a lab `login`, or for users[user_index]."""
    acc = normalize_account(account or {}, users or [])
    inc, smtp = acc["incoming"], acc["smtp"]
    if user_index is None:
        username, email, realname = login, "%s@%s" % (login, acc["mail_domain"]), None
    else:
        user = acc["users"][user_index]
        username, email, realname = user["username"], user["email"], user["full_name"] or None
    url_user = username.replace("@", "%40")
    sscheme = "smtps" if smtp["security"] == "ssl" else "smtp"
    values = {
        "smtp_url": "%s://%s@%s:%d/" % (sscheme, url_user, smtp["host"], smtp["port"]),
        "from": email,
        "ssl_force_tls": "yes",
        "ssl_starttls": "yes",
        "hostname": acc["mail_domain"],
    }
    if inc["protocol"] == "imap":
        scheme = "imaps" if inc["security"] == "ssl" else "imap"
        folder = "%s://%s:%d/" % (scheme, inc["host"], inc["port"])
        values.update(folder=folder, spoolfile=folder + "INBOX", imap_user=username,
                      record=folder + acc["folders"]["sent"])
    else:
        scheme = "pops" if inc["security"] == "ssl" else "pop"
        values.update(spoolfile="%s://%s@%s:%d/" % (scheme, url_user, inc["host"], inc["port"]),
                      pop_user=username, pop_delete="no")
    if realname is not None:
        values["realname"] = realname
    if ca_file:
        values["ssl_ca_certificates_file"] = ca_file
    return values


class LogTail:
    """What a server log gained since this object was made."""

    def __init__(self, path):
        self.path = path
        self.offset = path.stat().st_size if path.exists() else 0

    def new(self):
        with open(self.path, "rb") as handle:
            handle.seek(self.offset)
            return handle.read().decode("utf-8", "replace")


class Tui:
    """One client in a tmux pane on a private socket, started inside the sandbox as a login."""

    def __init__(self, sandbox, socket):
        self.sandbox = sandbox
        self.socket = str(socket)

    def _tmux(self, *args, timeout=15):
        return subprocess.run(["tmux", "-S", self.socket, *args], capture_output=True, text=True,
                              timeout=timeout, check=False)

    def start(self, login, argv):
        inner = ["runuser", "-u", login, "--", "env", "-i", "HOME=/home/%s" % login, "TERM=xterm",
                 "PATH=/usr/bin:/bin", "LANG=C.UTF-8", *argv]
        # The pane stays a while after the client exits, so its last words can be read.
        command = "%s; echo CLIENT-EXITED rc=$?; sleep 60" % shlex.join(self.sandbox.wrap(inner))
        proc = self._tmux("new-session", "-d", "-x", "160", "-y", "40", command)
        assert proc.returncode == 0, proc

    def screen(self):
        return self._tmux("capture-pane", "-p").stdout

    def wait_for(self, *texts, timeout=30.0):
        """Poll the screen until every text is on it; fail with the screen otherwise."""
        deadline = time.monotonic() + timeout
        screen = ""
        while time.monotonic() < deadline:
            screen = self.screen()
            if all(text in screen for text in texts):
                return screen
            time.sleep(0.2)
        raise AssertionError("not on screen after %.0fs: %r\n%s" % (timeout, texts, screen))

    def keys(self, *keys):
        assert self._tmux("send-keys", *keys).returncode == 0

    def close(self):
        self._tmux("kill-server")
