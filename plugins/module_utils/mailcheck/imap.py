# Copyright (c) Middlebury College
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""IMAP dialogue (RFC 3501/9051, STARTTLS per RFC 2595/8314)."""

from __future__ import annotations

import re

from . import sasl
from .wire import ProtocolError

_CAPS_CODE = re.compile(r"\[CAPABILITY ([^\]]*)\]", re.IGNORECASE)
_LITERAL = re.compile(r"\{(\d+)\+?\}$")


def parse_capabilities(text):
    """Upper-cased capability atoms from a `* CAPABILITY ...` line or a [CAPABILITY ...] code."""
    match = _CAPS_CODE.search(text)
    if match:
        return match.group(1).upper().split()
    parts = text.split()
    if len(parts) >= 2 and parts[0] == "*" and parts[1].upper() == "CAPABILITY":
        return [p.upper() for p in parts[2:]]
    return None


def mechanisms(caps):
    return [c[5:] for c in caps if c.startswith("AUTH=")]


def auth_before_tls(caps, greeting=""):
    """What a plaintext IMAP connection offers for logging in (must be nothing)."""
    offered = ["AUTH=%s" % m for m in mechanisms(caps)]
    if "LOGINDISABLED" not in caps:
        offered.append("LOGIN command (no LOGINDISABLED)")
    return offered


def password_ways(caps):
    """Normal-password mechanisms usable after TLS; the LOGIN command counts as LOGIN."""
    offered = [m for m in mechanisms(caps) if m in sasl.PASSWORD_MECHANISMS]
    if "LOGINDISABLED" not in caps and "LOGIN" not in offered:
        offered.append("LOGIN")
    return offered


def _quote(text):
    if any(ord(ch) < 0x20 or ord(ch) > 0x7E for ch in text):
        return None
    return '"%s"' % text.replace("\\", "\\\\").replace('"', '\\"')


class Imap:
    protocol = "imap"
    starttls_word = "STARTTLS"

    def __init__(self, conn):
        self.conn = conn
        self.counter = 0

    def _tag(self):
        self.counter += 1
        return "a%d" % self.counter

    def _read_response(self, tag):
        """Lines until the tagged completion: (status, text, untagged lines)."""
        untagged = []
        while True:
            line = self.conn.readline()
            literal = _LITERAL.search(line)
            while literal:  # an untagged reply that carries a literal continues after it
                self.conn.read_exact(int(literal.group(1)))
                line += " " + self.conn.readline()
                literal = _LITERAL.search(line)
            if line.startswith(tag + " "):
                rest = line[len(tag) + 1:]
                status, _sep, text = rest.partition(" ")
                return status.upper(), text, untagged
            untagged.append(line)

    def command(self, text, shown=None):
        tag = self._tag()
        self.conn.send("%s %s" % (tag, text), None if shown is None else "%s %s" % (tag, shown))
        return self._read_response(tag)

    def greeting(self):
        line = self.conn.readline()
        upper = line.upper()
        if upper.startswith("* BYE"):
            raise ProtocolError("the IMAP server refused the connection", line)
        if not (upper.startswith("* OK") or upper.startswith("* PREAUTH")):
            raise ProtocolError("it greeted with %r" % line[:80], line)
        return line, parse_capabilities(line)

    def capabilities(self):
        status, text, untagged = self.command("CAPABILITY")
        if status != "OK":
            raise ProtocolError("CAPABILITY failed: %s %s" % (status, text), text)
        for line in untagged:
            caps = parse_capabilities(line)
            if caps is not None:
                return caps
        return parse_capabilities(text) or []

    def starttls(self):
        status, text, _untagged = self.command("STARTTLS")
        if status != "OK":
            raise ProtocolError("the server advertised STARTTLS but refused it: %s %s" % (status, text), text)

    def login(self, caps, username, password, allowed):
        """(accepted, mechanism, server text). Only ever called on a verified TLS connection."""
        offered = password_ways(caps)
        mechanism = sasl.choose(offered, allowed)
        if mechanism is None:
            return False, None, "none of %s is offered" % ", ".join(allowed)
        if mechanism == "LOGIN" and "AUTH=LOGIN" not in caps:
            return self._login_command(caps, username, password)
        steps = sasl.responses(mechanism, username, password)
        tag = self._tag()
        if mechanism == "PLAIN" and "SASL-IR" in caps:  # one round trip instead of two
            self.conn.send("%s AUTHENTICATE PLAIN %s" % (tag, steps.pop(0)),
                           "%s AUTHENTICATE PLAIN %s" % (tag, sasl.HIDDEN))
        else:
            self.conn.send("%s AUTHENTICATE %s" % (tag, mechanism))
        while True:
            line = self.conn.readline()
            if line.startswith("+"):
                self.conn.send(steps.pop(0) if steps else "*", sasl.HIDDEN)
                continue
            if line.startswith(tag + " "):
                status, _sep, text = line[len(tag) + 1:].partition(" ")
                return status.upper() == "OK", mechanism, text

    def token_login(self, caps, username, token):
        """(accepted, mechanism, server text) of an XOAUTH2/OAUTHBEARER login, proven by a second command:
        Exchange Online can report success for a username that does not match the token."""
        mechanism = sasl.choose_token(mechanisms(caps))
        if mechanism is None:
            return False, None, "no token mechanism is offered"
        response = sasl.token_response(mechanism, username, token)
        tag = self._tag()
        shown = "%s AUTHENTICATE %s %s" % (tag, mechanism, sasl.HIDDEN)
        if "SASL-IR" in caps:
            self.conn.send("%s AUTHENTICATE %s %s" % (tag, mechanism, response), shown)
            pending = []
        else:
            self.conn.send("%s AUTHENTICATE %s" % (tag, mechanism))
            pending = [response]
        challenge = ""
        while True:
            line = self.conn.readline()
            if line.startswith("+"):
                if pending:
                    self.conn.send(pending.pop(), sasl.HIDDEN)
                else:  # the server's error, as a challenge: an empty response ends the exchange
                    challenge = sasl.error_challenge(line)
                    self.conn.send("")
                continue
            if line.startswith(tag + " "):
                status, _sep, text = line[len(tag) + 1:].partition(" ")
                break
        if status.upper() != "OK":
            return False, mechanism, ("%s %s" % (text, challenge)).strip()
        status, after, _untagged = self.command("SELECT INBOX")
        if status != "OK":
            return False, mechanism, "the login was reported as accepted, but SELECT INBOX then failed: %s" % after
        return True, mechanism, text

    def _login_command(self, caps, username, password):
        """LOGIN with quoted strings, or literals for what a quoted string cannot carry (UTF-8)."""
        tag = self._tag()
        shown = "%s LOGIN %s" % (tag, sasl.HIDDEN)
        non_sync = "LITERAL+" in caps or "LITERAL-" in caps  # RFC 7888: no wait for "+"
        line = "%s LOGIN" % tag
        for value in (username, password):
            quoted = _quote(value)
            if quoted is not None:
                line += " " + quoted
                continue
            data = value.encode("utf-8")
            self.conn.send("%s {%d%s}" % (line, len(data), "+" if non_sync else ""), shown)
            if not non_sync:
                reply = self.conn.readline()
                if not reply.startswith("+"):
                    status, _sep, text = reply[len(tag) + 1:].partition(" ")
                    return False, "LOGIN", text or reply
            self.conn.send_literal(data)
            line = ""
        self.conn.send(line, shown)
        status, text, _u = self._read_response(tag)
        return status == "OK", "LOGIN", text

    def quit(self):
        # LOGOUT without waiting for the BYE: the result is known, a round trip is not worth it.
        self.conn.send("%s LOGOUT" % self._tag())
