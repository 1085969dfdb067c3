# Copyright (c) Middlebury College
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Print an OAuth2 access token for mutt and NeoMutt (their *_oauth_refresh_command), for the account the
mutt role configured. Installed by the role (which puts the interpreter line on top); Python 3 standard library.

The first run signs in with the device-authorization flow (RFC 8628): it shows an address and a code on the
terminal, which works on a lab PC and over SSH. The refresh token is then kept in the user's own file
(XDG state directory, file 0600, directory 0700); later runs refresh without asking. Refreshes are serialised
with a lock, so that parallel clients never present a rotated refresh token twice (providers revoke the whole
family when they see that). An access token is handed out only while it stays valid for MARGIN seconds more:
mutt never retries after a rejected token.

    mail-clients-oauth2 --config FILE [--user ADDRESS]   print an access token (sign in first if needed)
    mail-clients-oauth2 --forget                          remove this user's tokens (e.g. at logout)

Exit status 0 with the token on stdout; otherwise 1 and a message in plain language on stderr.
"""

import argparse
import contextlib
import email.utils
import errno
import fcntl
import json
import os
import pwd
import select
import socket
import ssl
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

MARGIN = 60  # seconds an access token must still be valid for to be handed out
HTTP_TIMEOUT = 15
LOCK_WAIT = 960  # a device sign-in in another client may hold the lock this long
CLOCK_SKEW = 300
PAUSE = 120  # seconds a failure waits for a key on the terminal
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
STATE_NAME = "mail-clients"
TOKEN_FILE = "oauth2-token.json"
CONFIG_KEYS = ("issuer", "client_id", "token_endpoint", "device_authorization_endpoint", "scopes")
# Entra ID's codes for "nobody allowed this app" (AADSTS65001 and the like); RFC names for the rest.
CONSENT_MARKERS = ("consent_required", "interaction_required", "AADSTS65001", "AADSTS65004", "AADSTS90094")


class Failure(Exception):
    """What to tell the user, in their terms."""


def state_dir():
    """$XDG_STATE_HOME/mail-clients, else ~/.local/state/mail-clients with ~ from the passwd entry (as the
    drop-ins find users' files: an unset or foreign $HOME must not point elsewhere)."""
    base = os.environ.get("XDG_STATE_HOME", "")
    if not os.path.isabs(base):
        base = os.path.join(pwd.getpwuid(os.getuid()).pw_dir, ".local", "state")
    return os.path.join(base, STATE_NAME)


def load_config(path):
    try:
        with open(path, encoding="utf-8") as handle:
            config = json.load(handle)
    except (OSError, ValueError) as exc:
        raise Failure("cannot read the mail sign-in settings %s (%s): ask IT to run the mail setup again"
                      % (path, exc)) from exc
    missing = [key for key in CONFIG_KEYS if not config.get(key)]
    if missing:
        raise Failure("the mail sign-in settings %s lack %s" % (path, ", ".join(missing)))
    return config


# ----- the user's token file ---------------------------------------------------------------------------------
def _private_dir(path):
    os.makedirs(path, mode=0o700, exist_ok=True)
    info = os.lstat(path)
    if info.st_uid != os.getuid() or info.st_mode & 0o077:
        raise Failure("%s must be yours alone (mode 0700): fix it, or remove it to sign in anew" % path)


def read_tokens(path, config):
    """The stored tokens, or None when there are none for this provider and app."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            return None
        raise Failure("cannot read your mail sign-in %s: %s" % (path, exc.strerror)) from exc
    with os.fdopen(fd, encoding="utf-8") as handle:
        info = os.fstat(handle.fileno())
        if info.st_uid != os.getuid() or info.st_mode & 0o077:
            raise Failure("%s is readable by others: run with --forget and sign in again" % path)
        try:
            tokens = json.load(handle)
        except ValueError:
            return None
    same = all(tokens.get(key) == config[key] for key in ("issuer", "client_id"))
    return tokens if same and isinstance(tokens, dict) else None


def write_tokens(path, tokens):
    """Atomically, mode 0600 from the start (mkstemp), so no reader ever sees half a file or a wider mode."""
    fd, temporary = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".token-")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(tokens, handle)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


@contextlib.contextmanager
def locked(directory):
    with open(os.path.join(directory, "oauth2-token.lock"), "a", encoding="utf-8") as lock:
        deadline = time.monotonic() + LOCK_WAIT
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise Failure("another mail program has been signing in for %d minutes: finish or close it"
                                  % (LOCK_WAIT // 60)) from None
                time.sleep(0.1)
        yield


# ----- the provider --------------------------------------------------------------------------------------
def _context(config):
    context = ssl.create_default_context(cafile=config.get("ca_file") or None)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def _clock_note(headers):
    """' (and this computer's clock is N minutes off)' when the server's Date says so."""
    try:
        server = email.utils.parsedate_to_datetime(headers.get("Date")).timestamp()
    except (TypeError, ValueError, AttributeError):
        return ""
    skew = time.time() - server
    if abs(skew) < CLOCK_SKEW:
        return ""
    return "; this computer's clock is %d minutes %s: fix the clock" % (round(abs(skew) / 60),
                                                                        "fast" if skew > 0 else "slow")


def post(config, url, form):
    """(HTTP status, JSON body, clock note) of a form POST; Failure for what is not the provider's answer."""
    host = urllib.parse.urlsplit(url).hostname
    request = urllib.request.Request(url, data=urllib.parse.urlencode(form).encode(), method="POST",
                                     headers={"Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT, context=_context(config)) as response:
            status, headers, raw = response.status, response.headers, response.read()
    except urllib.error.HTTPError as exc:
        status, headers, raw = exc.code, exc.headers, exc.read()
    except urllib.error.URLError as exc:
        reason = exc.reason
        if isinstance(reason, ssl.SSLCertVerificationError) and reason.verify_code in (9, 10):
            raise Failure("the sign-in service %s has a certificate that is not valid at this computer's time (%s):"
                          " check the clock" % (host, time.strftime("%Y-%m-%d %H:%M %Z"))) from exc
        if isinstance(reason, ssl.SSLError):
            raise Failure("the sign-in service %s could not be verified (%s): a proxy or a wrong CA?"
                          % (host, getattr(reason, "verify_message", None) or reason)) from exc
        raise Failure("cannot reach the sign-in service %s (%s): is the network up?" % (host, reason)) from exc
    except (socket.timeout, TimeoutError, ConnectionError) as exc:
        raise Failure("the sign-in service %s did not answer (%s): is the network up?" % (host, exc)) from exc
    try:
        body = json.loads(raw.decode("utf-8"))
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    if status >= 500 or (status >= 400 and "error" not in body):
        raise Failure("the sign-in service %s answered HTTP %d: try again later" % (host, status))
    return status, body, _clock_note(headers)


def explain(config, body, note):
    """A provider's error answer, in the user's terms."""
    error = str(body.get("error", ""))
    description = str(body.get("error_description", ""))
    if any(marker in error or marker in description for marker in CONSENT_MARKERS):
        return ("this mail program is not allowed to read your mail yet: ask IT to grant consent (an administrator"
                " consent in Microsoft 365) for the app with client ID %s and the permissions %s%s"
                % (config["client_id"], " ".join(config["scopes"]), note))
    if error == "invalid_grant":
        return ("your mail sign-in has expired or was revoked (for example after a password change, or by IT)."
                " Start the mail program again to sign in anew%s" % note)
    if error in ("invalid_client", "unauthorized_client") or "AADSTS7000112" in description:
        return ("the sign-in service does not accept this mail program (client ID %s): ask IT to check the app"
                " registration (a public client, with the device-code flow allowed)%s" % (config["client_id"], note))
    return "the sign-in service refused: %s %s%s" % (error, description[:200], note)


def _tokens(config, body, old=None):
    """What is kept from a token answer (a rotated refresh token replaces the old one)."""
    if not body.get("access_token"):
        raise Failure("the sign-in service sent no access token")
    refresh = body.get("refresh_token") or (old or {}).get("refresh_token")
    return {"issuer": config["issuer"], "client_id": config["client_id"], "refresh_token": refresh,
            "access_token": body["access_token"],
            "expires_at": int(time.time()) + int(body.get("expires_in") or 0)}


def client(config):
    """How the app identifies itself at the token endpoint (a desktop app's secret is no secret: RFC 8252)."""
    fields = {"client_id": config["client_id"]}
    if config.get("client_secret"):
        fields["client_secret"] = config["client_secret"]
    return fields


def refresh(config, tokens):
    form = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"], **client(config)}
    status, body, note = post(config, config["token_endpoint"], form)
    if status != 200:
        return None, explain(config, body, note)
    return _tokens(config, body, tokens), None


def _terminal(mode="w"):
    """Where the person is: the controlling terminal (stdout belongs to mutt), else stderr when it is a terminal
    (su -c and runuser start a new session: no controlling terminal, though mutt's screen is right there)."""
    try:
        return open("/dev/tty", mode, encoding="utf-8")
    except OSError:
        pass
    if sys.stderr.isatty() and (mode == "w" or sys.stdin.isatty()):
        return open(os.dup(sys.stderr.fileno()), "w", encoding="utf-8")
    return None


def _keep_on_screen(message):
    """A failure stays on the person's terminal until they press a key (or PAUSE passes): mutt repaints its
    screen over whatever a command prints, and then says only "Command returned empty string"."""
    tty = _terminal("r+")
    if tty is None:
        return
    with tty:
        keys = tty.fileno() if tty.readable() else sys.stdin.fileno()
        if not os.path.samestat(os.fstat(tty.fileno()), os.fstat(sys.stderr.fileno())):
            tty.write("\r\nmail sign-in: %s\r\n" % message)
        tty.write("  Press a key to go back to the mail program.\r\n")
        tty.flush()
        if select.select([keys], [], [], PAUSE)[0]:
            os.read(keys, 64)


def sign_in(config, user):
    """The device-authorization flow: show the address and the code, wait for the person."""
    tty = _terminal()
    if tty is None:
        raise Failure("you are not signed in to your mail yet, and there is no terminal to sign in on: run"
                      " mutt once in a terminal")
    with tty:
        form = {"client_id": config["client_id"], "scope": " ".join(config["scopes"])}
        status, body, note = post(config, config["device_authorization_endpoint"], form)
        if status != 200 or not body.get("device_code"):
            raise Failure(explain(config, body, note))
        address = body.get("verification_uri") or body.get("verification_url")  # Google says _url
        tty.write("\r\n  Sign in to your mail%s: open %s\r\n  and enter the code %s\r\n  (waiting up to %d minutes)"
                  "\r\n" % (" as %s" % user if user else "", address, body["user_code"],
                            int(body.get("expires_in", 900)) // 60))
        tty.flush()
        interval = max(1, int(body.get("interval") or 5))
        deadline = time.monotonic() + int(body.get("expires_in") or 900)
        form = {"grant_type": DEVICE_GRANT, "device_code": body["device_code"], **client(config)}
        while time.monotonic() < deadline:
            time.sleep(interval)
            status, answer, note = post(config, config["token_endpoint"], form)
            if status == 200:
                tty.write("  Signed in.\r\n")
                return _tokens(config, answer)
            error = answer.get("error")
            if error == "authorization_pending":
                continue
            if error == "slow_down":
                interval += 5
                continue
            if error in ("access_denied", "authorization_declined"):
                raise Failure("the sign-in was declined at %s" % address)
            if error in ("expired_token", "code_expired"):
                break
            raise Failure(explain(config, answer, note))
        raise Failure("the sign-in code expired before it was entered: start the mail program again")


def access_token(config, user):
    directory = state_dir()
    _private_dir(directory)
    path = os.path.join(directory, TOKEN_FILE)
    with locked(directory):
        tokens = read_tokens(path, config)
        if tokens and tokens.get("access_token") and tokens.get("expires_at", 0) - time.time() > MARGIN:
            return tokens["access_token"]
        if tokens and tokens.get("refresh_token"):
            fresh, problem = refresh(config, tokens)
            if fresh is None:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)  # spent: the next start signs in again
                raise Failure(problem)
        else:
            fresh = sign_in(config, user)
        write_tokens(path, fresh)
        return fresh["access_token"]


def forget():
    path = os.path.join(state_dir(), TOKEN_FILE)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", help="the sign-in settings the mutt role wrote (needed unless --forget)")
    parser.add_argument("--user", default="", help="the mail address to sign in as (shown, not enforced)")
    parser.add_argument("--forget", action="store_true", help="remove this user's tokens")
    args = parser.parse_args(argv)
    if not (args.forget or args.config):
        parser.error("--config is required")
    try:
        if args.forget:
            forget()
            return 0
        token = access_token(load_config(args.config), args.user)
    except Failure as exc:
        sys.stderr.write("mail sign-in: %s%s" % (exc, "\r\n" if sys.stderr.isatty() else "\n"))
        sys.stderr.flush()
        _keep_on_screen(exc)
        return 1
    except OSError as exc:  # the user's own files: a full disk, a read-only home
        sys.stderr.write("mail sign-in: %s\n" % exc)
        return 1
    sys.stdout.write(token + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
