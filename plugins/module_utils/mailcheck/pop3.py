# Copyright (c) Middlebury College
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""POP3 dialogue (RFC 1939, CAPA RFC 2449, STLS RFC 2595, AUTH RFC 5034)."""

from __future__ import annotations

import re

from . import sasl
from .wire import ProtocolError

_APOP = re.compile(r"<[^<>@\s]+@[^<>\s]+>")


def mechanisms(caps):
    for line in caps:
        words = line.split()
        if words and words[0] == "SASL":
            return words[1:]
    return []


def _has(caps, keyword):
    return any(line.split()[:1] == [keyword] for line in caps)


def auth_before_tls(caps, greeting=""):
    offered = ["SASL %s" % m for m in mechanisms(caps)]
    if _has(caps, "USER"):
        offered.append("USER/PASS")
    if _APOP.search(greeting or ""):
        offered.append("APOP")
    return offered


def password_ways(caps):
    """SASL PLAIN/LOGIN after STLS; USER/PASS counts as LOGIN (it is what clients call normal password)."""
    offered = [m for m in mechanisms(caps) if m in sasl.PASSWORD_MECHANISMS]
    if _has(caps, "USER") and "LOGIN" not in offered:
        offered.append("LOGIN")
    return offered


class Pop3:
    protocol = "pop3"
    starttls_word = "STLS"

    def __init__(self, conn):
        self.conn = conn

    def _status(self, what):
        line = self.conn.readline()
        return line.startswith("+OK"), line

    def greeting(self):
        ok, line = self._status("greeting")
        if not ok:
            raise ProtocolError("the POP3 server refused the connection (greeting %r)" % line[:80], line)
        return line, None

    def capabilities(self):
        self.conn.send("CAPA")
        ok, line = self._status("CAPA")
        if not ok:
            return []  # CAPA is optional (RFC 2449); without it nothing is advertised
        caps = []
        while True:
            line = self.conn.readline()
            if line == ".":
                return caps
            caps.append((line[1:] if line.startswith("..") else line).upper())

    def starttls(self):
        self.conn.send("STLS")
        ok, line = self._status("STLS")
        if not ok:
            raise ProtocolError("the server advertised STLS but refused it: %s" % line, line)

    def login(self, caps, username, password, allowed):
        offered = password_ways(caps)
        mechanism = sasl.choose(offered, allowed)
        if mechanism is None:
            return False, None, "none of %s is offered" % ", ".join(allowed)
        if mechanism == "LOGIN" and "LOGIN" not in mechanisms(caps):
            if any(ch in username + password for ch in "\r\n"):
                return False, "USER", "credentials with line breaks cannot be sent"
            self.conn.send("USER %s" % username, "USER " + sasl.HIDDEN)
            ok, line = self._status("USER")
            if ok:
                self.conn.send("PASS %s" % password, "PASS " + sasl.HIDDEN)
                ok, line = self._status("PASS")
            return ok, "USER", line
        steps = sasl.responses(mechanism, username, password)
        if mechanism == "PLAIN":  # RFC 5034 allows the initial response
            self.conn.send("AUTH PLAIN %s" % steps.pop(0), "AUTH PLAIN " + sasl.HIDDEN)
        else:
            self.conn.send("AUTH %s" % mechanism)
        while True:
            line = self.conn.readline()
            if line.startswith("+ ") or line == "+":
                self.conn.send(steps.pop(0) if steps else "*", sasl.HIDDEN)
                continue
            return line.startswith("+OK"), mechanism, line

    def token_login(self, caps, username, token):
        """XOAUTH2/OAUTHBEARER as Exchange Online wants it (the command, then the response on its own line),
        proven by STAT."""
        mechanism = sasl.choose_token(mechanisms(caps))
        if mechanism is None:
            return False, None, "no token mechanism is offered"
        self.conn.send("AUTH %s" % mechanism)
        pending = [sasl.token_response(mechanism, username, token)]
        challenge = ""
        while True:
            line = self.conn.readline()
            if line.startswith("+ ") or line == "+":
                if pending:
                    self.conn.send(pending.pop(), sasl.HIDDEN)
                else:
                    challenge = sasl.error_challenge(line)
                    self.conn.send("")
                continue
            break
        if not line.startswith("+OK"):
            return False, mechanism, ("%s %s" % (line, challenge)).strip()
        self.conn.send("STAT")
        ok, after = self._status("STAT")
        if not ok:
            return False, mechanism, "the login was reported as accepted, but STAT then failed: %s" % after
        return True, mechanism, line

    def quit(self):
        self.conn.send("QUIT")
