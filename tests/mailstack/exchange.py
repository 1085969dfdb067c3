"""A stand-in for Exchange Online's IMAP, POP3 and SMTP as they behave today, for what no real server here can
produce: password logins switched off, and OAuth2 (XOAUTH2) the only way in.

Faithful to the replies in the project's reference notes (modern-auth.md 1.4): the greetings, the capabilities
(AUTH=PLAIN still advertised, XOAUTH2 but no OAUTHBEARER), `NO Basic authentication is disabled.` for an IMAP
password login, SMTP `535 5.7.139 ... basic authentication is disabled.` or, in the tenant mode, `535 5.7.139 ...
SmtpClientAuthentication is disabled for the Tenant ...` (OAuth2 refused too), and a token for another user
accepted at AUTHENTICATE but refused at the next command. Tokens are checked with the stand-in identity provider
(RFC 7662 introspection). POP3's refusal of a password is the classic, ambiguous Exchange text.

Every login attempt is logged (one JSON line: protocol, mechanism, whether TLS was on, the outcome; never a
secret), so tests can show that nothing arrived before TLS.

Run as a script: `python3 exchange.py CONFIG.json` (binds, detaches, writes its PID file once listening).
"""

from __future__ import annotations

import base64
import contextlib
import json
import socket
import ssl
import sys
import threading
import time
import urllib.request

from detach import detach  # run as a script: this directory is on sys.path

IMAP_CAPS = "IMAP4 IMAP4rev1 AUTH=PLAIN AUTH=XOAUTH2 SASL-IR UIDPLUS MOVE ID UNSELECT CHILDREN IDLE NAMESPACE LITERAL+"
SMTP_TEXT = {
    "basic": "535 5.7.139 Authentication unsuccessful, basic authentication is disabled.",
    "tenant": "535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant. "
              "Visit https://aka.ms/smtp_auth_disabled for more information.",
}
SMTP_EXTENSIONS = ["SIZE 157286400", "PIPELINING", "DSN", "ENHANCEDSTATUSCODES"]
IDLE_TIMEOUT = 30


class Session:
    def __init__(self, conn, config, log, tls):
        self.sock = conn
        self.config = config
        self.log = log
        self.tls = tls
        self.reader = conn.makefile("rb")

    def send(self, text):
        self.sock.sendall((text + "\r\n").encode())

    def line(self):
        data = self.reader.readline(65536)
        if not data:
            raise EOFError
        return data.decode("utf-8", "replace").rstrip("\r\n")

    def start_tls(self):
        self.reader.close()
        self.sock = self.config["context"].wrap_socket(self.sock, server_side=True)
        self.reader = self.sock.makefile("rb")
        self.tls = True

    def note(self, protocol, mechanism, outcome, user=None):
        self.log({"protocol": protocol, "mechanism": mechanism, "tls": self.tls, "outcome": outcome, "user": user})

    def token_user(self, response):
        """(the user named in an XOAUTH2 response, the provider's user for its token or None)."""
        try:
            text = base64.b64decode(response, validate=True).decode()
        except ValueError:
            return None, None
        fields = dict(part.split("=", 1) for part in text.split("\x01") if "=" in part)
        named = fields.get("user")
        token = fields.get("auth", "")[len("Bearer "):] if fields.get("auth", "").startswith("Bearer ") else ""
        return named, introspect(self.config, token) if token else None


def introspect(config, token):
    """The user the identity provider says the token is for, or None (inactive, or the provider is down)."""
    request = urllib.request.Request(config["introspection_url"], data=("token=" + token).encode(), headers={
        "Authorization": "Basic " + base64.b64encode(config["introspection_credentials"].encode()).decode(),
        "Host": config["idp_name"], "Content-Type": "application/x-www-form-urlencoded"})
    try:
        with urllib.request.urlopen(request, timeout=10, context=config["idp_context"]) as response:
            info = json.load(response)
    except (OSError, ValueError):
        return None
    return info.get("username") if info.get("active") else None


def imap(session):
    session.send("* OK The Microsoft Exchange IMAP4 service is ready. [TQBOADIAUABSADAANQBDAEEAMAAwADEA]")
    user_ok = None  # None: not logged in; True: the token's user; False: authenticated, "but not connected"
    while True:
        line = session.line()
        tag, _sep, rest = line.partition(" ")
        command, _sep, args = rest.partition(" ")
        command = command.upper()
        if command == "CAPABILITY":
            session.send("* CAPABILITY " + IMAP_CAPS)
            session.send("%s OK CAPABILITY completed." % tag)
        elif command == "LOGIN" or (command == "AUTHENTICATE" and args.upper().startswith("PLAIN")):
            if command == "AUTHENTICATE" and len(args.split()) == 1:
                session.send("+ ")
                session.line()
            session.note("imap", "LOGIN" if command == "LOGIN" else "PLAIN", "basic_auth_disabled")
            session.send("%s NO Basic authentication is disabled." % tag)
        elif command == "AUTHENTICATE" and args.upper().startswith("XOAUTH2"):
            parts = args.split()
            if len(parts) == 1:
                session.send("+ ")
                parts.append(session.line())
            named, user = session.token_user(parts[1])
            if user is None:
                session.note("imap", "XOAUTH2", "refused", named)
                session.send("%s NO AUTHENTICATE failed." % tag)
            else:
                user_ok = user == named
                session.note("imap", "XOAUTH2", "ok" if user_ok else "mismatch", named)
                session.send("%s OK AUTHENTICATE completed." % tag)
        elif command == "AUTHENTICATE":
            session.send("%s NO The specified authentication package is not supported." % tag)
        elif command in ("SELECT", "EXAMINE", "LIST", "STATUS") and user_ok is False:
            session.send("%s BAD User is authenticated but not connected." % tag)
        elif command == "SELECT" and user_ok:
            session.send("* 0 EXISTS")
            session.send("%s OK [READ-WRITE] SELECT completed." % tag)
        elif command == "NOOP":
            session.send("%s OK NOOP completed." % tag)
        elif command == "LOGOUT":
            session.send("* BYE Microsoft Exchange Server IMAP4 server signing off.")
            session.send("%s OK LOGOUT completed." % tag)
            return
        else:
            session.send("%s BAD Command Argument Error. 11" % tag)


def pop3(session):
    session.send("+OK The Microsoft Exchange POP3 service is ready. [TQBOADIAUABSADAANQBDAEEAMAAwADEA]")
    logged_in = False
    while True:
        words = session.line().split()
        command = words[0].upper() if words else ""
        if command == "CAPA":
            session.send("+OK")
            for capability in ("TOP", "UIDL", "SASL PLAIN XOAUTH2", "USER", "."):
                session.send(capability)
        elif command == "USER":
            session.send("+OK")
        elif command == "PASS" or (command == "AUTH" and words[1:2] == ["PLAIN"]):
            if command == "AUTH" and len(words) == 2:
                session.send("+ ")
                session.line()
            session.note("pop3", "USER" if command == "PASS" else "PLAIN", "basic_auth_disabled")
            session.send("-ERR Logon failure: unknown user name or bad password.")
        elif command == "AUTH" and words[1:2] == ["XOAUTH2"]:
            # Exchange wants the command and the response on two lines.
            session.send("+ ")
            named, user = session.token_user(session.line())
            logged_in = user is not None and user == named
            session.note("pop3", "XOAUTH2", "ok" if logged_in else "refused", named)
            session.send("+OK User successfully authenticated." if logged_in
                         else "-ERR Authentication failure: unknown user name or bad password.")
        elif command == "STAT" and logged_in:
            session.send("+OK 0 0")
        elif command == "QUIT":
            session.send("+OK Microsoft Exchange Server POP3 server signing off.")
            return
        else:
            session.send("-ERR Protocol error. 14")


def smtp(session, mode):
    host = session.config["smtp_name"]
    session.send("220 %s Microsoft ESMTP MAIL Service ready at %s" % (host, time.strftime("%a, %d %b %Y %H:%M:%S +0000",
                                                                                          time.gmtime())))
    authenticated = False
    while True:
        line = session.line()
        command = line.split(" ", 1)[0].upper()
        if command in ("EHLO", "HELO"):
            extensions = SMTP_EXTENSIONS + (["AUTH LOGIN XOAUTH2"] if session.tls else ["STARTTLS"])
            lines = ["%s Hello [127.0.0.1]" % host, *extensions, "8BITMIME", "SMTPUTF8"]
            for index, text in enumerate(lines):
                session.send("250%s%s" % ("-" if index < len(lines) - 1 else " ", text))
        elif command == "STARTTLS" and not session.tls:
            session.send("220 2.0.0 SMTP server ready")
            session.start_tls()
        elif command == "AUTH" and not session.tls:
            session.note("smtp", line.split()[1].upper() if len(line.split()) > 1 else "", "refused_before_tls")
            session.send("504 5.7.4 Unrecognized authentication type")
        elif command == "AUTH":
            words = line.split()
            mechanism = words[1].upper() if len(words) > 1 else ""
            if mechanism == "LOGIN":
                session.send("334 VXNlcm5hbWU6")
                session.line()
                session.send("334 UGFzc3dvcmQ6")
                session.line()
                session.note("smtp", "LOGIN", "%s_disabled" % mode)
                session.send(SMTP_TEXT[mode])
            elif mechanism == "XOAUTH2":
                if len(words) > 2:
                    response = words[2]
                else:
                    session.send("334 ")
                    response = session.line()
                named, user = session.token_user(response)
                if mode == "tenant":
                    session.note("smtp", "XOAUTH2", "tenant_disabled", named)
                    session.send(SMTP_TEXT["tenant"])
                elif user is not None and user == named:
                    authenticated = True
                    session.note("smtp", "XOAUTH2", "ok", named)
                    session.send("235 2.7.0 Authentication successful")
                else:
                    session.note("smtp", "XOAUTH2", "refused", named)
                    session.send("535 5.7.3 Authentication unsuccessful")
            else:
                session.send("504 5.7.4 Unrecognized authentication type")
        elif command == "MAIL":
            session.send("250 2.1.0 Sender OK" if authenticated
                         else "530 5.7.57 Client not authenticated to send mail.")
        elif command == "RSET":
            session.send("250 2.0.0 Resetting")
        elif command == "NOOP":
            session.send("250 2.0.0 OK")
        elif command == "QUIT":
            session.send("221 2.0.0 Service closing transmission channel")
            return
        else:
            session.send("500 5.3.3 Unrecognized command")


def serve(listener, config, log, protocol, implicit, mode):
    while True:
        conn, _addr = listener.accept()
        threading.Thread(target=_session, args=(conn, config, log, protocol, implicit, mode), daemon=True).start()


def _session(conn, config, log, protocol, implicit, mode):
    conn.settimeout(IDLE_TIMEOUT)
    try:
        if implicit:
            conn = config["context"].wrap_socket(conn, server_side=True)
        session = Session(conn, config, log, implicit)
        if protocol == "imap":
            imap(session)
        elif protocol == "pop3":
            pop3(session)
        else:
            smtp(session, mode)
    except (EOFError, OSError, ssl.SSLError, IndexError):
        pass
    finally:
        with contextlib.suppress(OSError):
            conn.close()


def main(argv):
    with open(argv[0], encoding="utf-8") as handle:
        config = json.load(handle)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(config["cert"], config["key"])
    idp_context = ssl.create_default_context(cafile=config["ca"])
    idp_context.check_hostname = True
    config.update(context=context, idp_context=idp_context)
    lock = threading.Lock()

    def log(event):
        with lock, open(config["log"], "a", encoding="utf-8") as out:
            out.write(json.dumps(dict(event, at=round(time.time(), 3))) + "\n")

    listeners = []
    for endpoint in config["endpoints"]:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((endpoint["address"], endpoint["port"]))
        except OSError as exc:
            sys.exit("exchange: cannot bind %s:%d: %s" % (endpoint["address"], endpoint["port"], exc.strerror))
        sock.listen(32)
        listeners.append((sock, endpoint))
    detach(config["pid_file"])
    threads = [threading.Thread(target=serve, args=(sock, config, log, ep["protocol"], ep["implicit"], ep["mode"]),
                                daemon=True) for sock, ep in listeners]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


if __name__ == "__main__":
    main(sys.argv[1:])
