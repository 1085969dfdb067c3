"""Start Debian's Thunderbird headless as a given login inside a test sandbox and probe it.

Every run gets a fresh (or a test-seeded) profile directory, sits under ``timeout`` and a
Python-side deadline, and is killed as a whole process group if it does not quit. Thunderbird
153 sometimes hangs while opening the Marionette session of a pre-existing profile (seen in
the research runs); ``probe`` retries that one known hang a bounded number of times.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time

from marionette import Marionette, MarionetteError, ScriptError

TB_TIMEOUT = 90  # seconds a single Thunderbird process may live
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# Test-profile prefs only: they make the run quiet and reachable; none of them touches what the
# role configures (accounts, servers, security).
TEST_PREFS = {
    "mailnews.start_page.enabled": False,
    "mail.shell.checkDefaultClient": False,
    "mail.rights.override": True,
    "datareporting.policy.dataSubmissionEnabled": False,
    "toolkit.telemetry.reportingpolicy.firstRun": False,
    "browser.shell.checkDefaultBrowser": False,
    "mail.provider.suppress_dialog_on_startup": True,
    "mail.spotlight.firstRunDone": True,
    "mail.winsearch.firstRunDone": True,
    "app.update.disabledForTesting": True,
}

# Everything the tests look at, read through Thunderbird's own account manager.
ACCOUNTS_SCRIPT = r"""
const {MailServices} = ChromeUtils.importESModule("resource:///modules/MailServices.sys.mjs");
const am = MailServices.accounts;
const accounts = am.accounts.map(a => {
  const s = a.incomingServer;
  return {key: a.key, server: s.key, type: s.type, host: s.hostName, port: s.port,
          socketType: s.socketType, authMethod: s.authMethod, username: s.username,
          prettyName: s.prettyName,
          identities: a.identities.map(i => ({key: i.key, email: i.email, fullName: i.fullName,
                                              smtpServerKey: i.smtpServerKey}))};
});
const smtp = MailServices.outgoingServer.servers.map(s => {
  const q = s.QueryInterface(Ci.nsISmtpServer);
  return {key: s.key, host: q.hostname, port: q.port, socketType: s.socketType,
          authMethod: s.authMethod, username: s.username};
});
const prefs = {};
for (const name of arguments[0]) {
  const type = Services.prefs.getPrefType(name);
  let value = null;
  if (type == Services.prefs.PREF_STRING) value = Services.prefs.getStringPref(name);
  else if (type == Services.prefs.PREF_INT) value = Services.prefs.getIntPref(name);
  else if (type == Services.prefs.PREF_BOOL) value = Services.prefs.getBoolPref(name);
  prefs[name] = {value: value, locked: Services.prefs.prefIsLocked(name),
                 user: Services.prefs.prefHasUserValue(name)};
}
return {accounts: accounts, smtp: smtp,
        defaultAccount: am.defaultAccount ? am.defaultAccount.key : null,
        policies: Services.policies.status, prefs: prefs};
"""

QUIT_SCRIPT = "Services.startup.quit(Ci.nsIAppStartup.eAttemptQuit); return true;"


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def pref_line(name, value):
    import json

    return "user_pref(%s, %s);\n" % (json.dumps(name), json.dumps(value))


def make_profile(sb, login, name, prefs_js="", extra_prefs=None):
    """Create a profile dir in the login's home inside the sandbox; return its path there."""
    home = "/home/%s" % login
    profile = "%s/%s" % (home, name)
    upper = sb.upper(profile)
    upper.mkdir(parents=True, exist_ok=True)
    if prefs_js:
        (upper / "prefs.js").write_text(prefs_js, encoding="utf-8")
    proc = sb.run(["chown", "-R", "%s:" % login, profile], timeout=30)
    assert proc.returncode == 0, proc.stderr
    return profile


def _write_user_js(sb, login, profile, port, extra_prefs):
    prefs = dict(TEST_PREFS)
    prefs.update(extra_prefs or {})
    prefs["marionette.port"] = port
    upper = sb.upper(profile)
    (upper / "user.js").write_text("".join(pref_line(k, v) for k, v in prefs.items()), encoding="utf-8")
    sb.run(["chown", "%s:" % login, profile + "/user.js"], timeout=30)


def _kill_group(proc):
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)


def run_once(sb, login, profile, probe_fn, extra_prefs=None, env=None):
    """Start Thunderbird, connect Marionette, return probe_fn(marionette), quit cleanly."""
    port = free_port()
    _write_user_js(sb, login, profile, port, extra_prefs)
    home = "/home/%s" % login
    environment = {"HOME": home, "USER": login, "LOGNAME": login, "PATH": PATH, "MOZ_HEADLESS": "1",
                   "LANG": "C.UTF-8", "TMPDIR": "/tmp"}
    environment.update(env or {})
    argv = ["runuser", "-u", login, "--", "env", "-i", *("%s=%s" % kv for kv in environment.items()),
            "timeout", "-k", "5", str(TB_TIMEOUT), "thunderbird", "--headless", "--marionette",
            "--remote-allow-system-access", "--no-remote", "--profile", profile]
    log_path = sb.workdir / ("tb-%s-%d.log" % (login, port))
    with open(log_path, "w", encoding="utf-8") as log:
        proc = subprocess.Popen(sb.wrap(argv), stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    client = Marionette(port)
    try:
        client.connect(time.monotonic() + 45)
        try:
            client.start_chrome_session(timeout=30)
        except (OSError, MarionetteError) as exc:
            raise SessionHang(str(exc)) from exc
        result = probe_fn(client)
        with contextlib.suppress(MarionetteError, ScriptError, OSError):
            client.script(QUIT_SCRIPT, timeout=10)  # the connection may drop while quitting
        client.close()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
        return result, log_path.read_text(encoding="utf-8", errors="replace")
    except BaseException:
        client.close()
        _kill_group(proc)
        raise


class SessionHang(RuntimeError):
    """Thunderbird accepted the Marionette connection but never opened the session."""


def probe(sb, login, profile, probe_fn, extra_prefs=None, env=None, attempts=3):
    """run_once with a bounded retry for Thunderbird's one known hang (the session never opens)."""
    last = None
    for _attempt in range(attempts):
        try:
            return run_once(sb, login, profile, probe_fn, extra_prefs, env)
        except SessionHang as exc:
            last = exc
    raise AssertionError("Thunderbird never opened a Marionette session in %d attempts: %s" % (attempts, last))


def read_accounts(prefs=()):
    """A probe_fn returning accounts, SMTP servers, default account and the named prefs."""
    def _probe(client):
        return client.script(ACCOUNTS_SCRIPT, args=[list(prefs)])
    return _probe
