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
    # Start offline: a server with login_at_startup would otherwise open a password prompt, which
    # blocks the headless session. Tests that talk to the mail stack go online themselves after
    # handing Thunderbird the password in memory.
    "offline.startup_state": 3,
}

# Everything the tests look at, read through Thunderbird's own account manager.
ACCOUNTS_SCRIPT = r"""
const {MailServices} = ChromeUtils.importESModule("resource:///modules/MailServices.sys.mjs");
const am = MailServices.accounts;
const accounts = am.accounts.map(a => {
  const s = a.incomingServer;
  return {key: a.key, server: s.key, type: s.type, host: s.hostname ?? s.hostName, port: s.port,
          socketType: s.socketType, authMethod: s.authMethod, username: s.username,
          prettyName: s.prettyName,
          leaveOnServer: s.type == "pop3" ? s.QueryInterface(Ci.nsIPop3IncomingServer).leaveMessagesOnServer : null,
          identities: a.identities.map(i => ({key: i.key, email: i.email, fullName: i.fullName,
                                              smtpServerKey: i.smtpServerKey}))};
});
// Outgoing servers of other types (an EWS one) have no SMTP host and port.
const smtp = MailServices.outgoingServer.servers.map(s => {
  const q = s.type == "smtp" ? s.QueryInterface(Ci.nsISmtpServer) : null;
  return {key: s.key, type: s.type, host: q ? q.hostname ?? q.hostName : null, port: q ? q.port : null,
          socketType: s.socketType, authMethod: s.authMethod, username: s.username};
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
const smtpKeys = Services.prefs.getCharPref("mail.smtpservers", "");
return {accounts: accounts, smtp: smtp, smtpKeys: smtpKeys,
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


def _session_members(sid):
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry, encoding="utf-8", errors="replace") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == sid:  # fields after "(comm)": state ppid pgrp session ...
            members.append(int(entry))
    return members


def _kill_group(proc):
    """Kill everything this run started. The Popen made a new session; GNU timeout then moves
    Thunderbird into a process group of its own, so the whole session is killed, by PID."""
    for pid in _session_members(proc.pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
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


# Hands Thunderbird the password in memory only (never the login store), goes online and asks the
# IMAP and SMTP servers of one account to verify the login; returns both nsresult codes.
LOGIN_SCRIPT = r"""
const [accountKey, password, done] = arguments;
const {MailServices} = ChromeUtils.importESModule("resource:///modules/MailServices.sys.mjs");
const {setTimeout} = ChromeUtils.importESModule("resource://gre/modules/Timer.sys.mjs");
const account = MailServices.accounts.getAccount(accountKey);
const imap = account.incomingServer;
const smtp = MailServices.outgoingServer.getServerByKey(account.defaultIdentity.smtpServerKey);
imap.password = password;
smtp.password = password;
Services.io.offline = false;
const result = {};
function verifyImap(next) {
  const listener = {
    OnStartRunningUrl() {},
    OnStopRunningUrl(url, status) { result.imap = status; next(); },
    QueryInterface: ChromeUtils.generateQI(["nsIUrlListener"]),
  };
  imap.verifyLogon(listener, null);
}
// nsISmtpServer.verifyLogon of Thunderbird 153 reports success only on `onready`, which the SMTP
// client emits after DATA, never after a bare login: drive Thunderbird's own SmtpClient on the
// role-configured server instead and take `onidle` (authenticated, ready for MAIL FROM).
function verifySmtp(next) {
  const {SmtpClient} = ChromeUtils.importESModule("resource:///modules/SmtpClient.sys.mjs");
  try {
    const client = new SmtpClient(smtp.wrappedJSObject || smtp);
    client.onidle = () => { result.smtp = 0; client.close(); next(); };
    client.onerror = (status, message) => { result.smtp = status; result.smtpError = String(message); next(); };
    client.connect();
  } catch (e) {
    result.smtpError = String(e);
    next();
  }
}
verifyImap(() => verifySmtp(() => done(result)));
setTimeout(() => { result.timedOut = true; done(result); }, 25000);
"""


def _async_probe(script, args, timeout):
    """A probe_fn running one of the asynchronous scripts below with these arguments."""
    def _probe(client):
        return client.async_script(script, args=args, timeout=timeout)
    return _probe


def verify_logins(account_key, password):
    return _async_probe(LOGIN_SCRIPT, [account_key, password], timeout=40)


# What the account wizard would offer for a domain from <install dir>/isp (the role's ISP file).
WIZARD_SCRIPT = r"""
const [domain, done] = arguments;
const {FetchConfig} = ChromeUtils.importESModule("resource:///modules/accountcreation/FetchConfig.sys.mjs");
const server = s => ({type: s.type, host: s.hostname, port: s.port, socketType: s.socketType, auth: s.auth,
                      username: s.username, leaveOnServer: s.leaveMessagesOnServer});
FetchConfig.fromDisk(domain, new AbortController().signal).then(
  c => done({incoming: [c.incoming, ...c.incomingAlternatives].map(server), outgoing: server(c.outgoing)}),
  e => done({error: String(e)}));
"""


def wizard_config(domain):
    return _async_probe(WIZARD_SCRIPT, [domain], timeout=20)


# Real work with the role's account, after LOGIN_SCRIPT handed over the password in the same run:
# list the folders Thunderbird shows (subscribed only), read the INBOX subjects, and send one
# message through the configured SMTP server with Thunderbird's own SMTP client.
WORK_SCRIPT = r"""
const [accountKey, subject, done] = arguments;
const {MailServices} = ChromeUtils.importESModule("resource:///modules/MailServices.sys.mjs");
const {SmtpClient} = ChromeUtils.importESModule("resource:///modules/SmtpClient.sys.mjs");
const {setTimeout} = ChromeUtils.importESModule("resource://gre/modules/Timer.sys.mjs");
const account = MailServices.accounts.getAccount(accountKey);
const server = account.incomingServer;
const identity = account.defaultIdentity;
const result = {};
server.performExpand(null);
const deadline = Date.now() + 30000;
function readFolders(next) {
  const inbox = server.rootFolder.getFolderWithFlags(Ci.nsMsgFolderFlags.Inbox);
  if (inbox && inbox.getTotalMessages(false) > 0 || Date.now() > deadline) {
    // The server's names (140 shows the INBOX as "Inbox", 153 as "INBOX").
    result.folders = server.rootFolder.descendants.map(f => {
      try { return f.QueryInterface(Ci.nsIMsgImapMailFolder).onlineName; } catch (e) { return f.name; }
    });
    result.inbox = inbox ? [...inbox.messages].map(h => h.mime2DecodedSubject) : null;
    next();
    return;
  }
  if (inbox) { try { inbox.updateFolder(null); } catch (e) {} }
  setTimeout(() => readFolders(next), 500);
}
function send(next) {
  const smtp = MailServices.outgoingServer.getServerByKey(identity.smtpServerKey);
  const client = new SmtpClient(smtp.wrappedJSObject || smtp);
  const data = "From: " + identity.email + "\r\nTo: " + identity.email + "\r\nSubject: " + subject +
    "\r\nMessage-ID: <" + Date.now() + ".tbtest@" + (server.hostname ?? server.hostName) + ">\r\nDate: " +
    new Date().toUTCString() +
    "\r\n\r\nSent by Thunderbird through the SMTP server the role configured.\r\n";
  let started = false;
  client.onidle = () => {
    if (started) { return; }
    started = true;
    client.useEnvelope({from: identity.email, to: [identity.email], size: data.length});
  };
  client.onready = () => { client.end(data); };
  client.ondone = () => { result.sent = true; client.close(); next(); };
  client.onerror = (status, message) => { result.sendError = status + " " + message; next(); };
  client.connect();
}
readFolders(() => send(() => done(result)));
"""


def do_work(account_key, subject):
    return _async_probe(WORK_SCRIPT, [account_key, subject], timeout=60)
