# Copyright (c) Middlebury College
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""SMTP submission dialogue (RFC 5321, STARTTLS RFC 3207, AUTH RFC 4954)."""

from __future__ import annotations

from . import sasl
from .wire import ProtocolError


def parse_ehlo(lines):
    """EHLO reply lines (after the first) -> upper-case keyword lines, e.g. 'AUTH PLAIN LOGIN'."""
    return [line.upper().replace("AUTH=", "AUTH ", 1) if line.upper().startswith("AUTH=") else line.upper()
            for line in lines]


def mechanisms(caps):
    mechs = []
    for line in caps:
        words = line.split()
        if words and words[0] == "AUTH":
            mechs.extend(w for w in words[1:] if w not in mechs)
    return mechs


def auth_before_tls(caps, greeting=""):
    offered = ["AUTH %s" % m for m in mechanisms(caps)]
    if not offered and any(c.split()[:1] == ["AUTH"] for c in caps):
        offered = ["AUTH"]
    return offered


def password_ways(caps):
    return [m for m in mechanisms(caps) if m in sasl.PASSWORD_MECHANISMS]


class Smtp:
    protocol = "smtp"
    starttls_word = "STARTTLS"

    def __init__(self, conn, ehlo_name):
        self.conn = conn
        self.ehlo_name = ehlo_name

    def reply(self):
        """(code, [text lines]) of one possibly multi-line reply."""
        texts = []
        while True:
            line = self.conn.readline()
            if len(line) < 3 or not line[:3].isdigit():
                raise ProtocolError("it replied %r" % line[:80], line)
            texts.append(line[4:])
            if line[3:4] != "-":
                return int(line[:3]), texts

    def greeting(self):
        code, texts = self.reply()
        if code != 220:
            raise ProtocolError("the SMTP server refused the connection: %d %s" % (code, " ".join(texts)), texts[0])
        return "%d %s" % (code, texts[-1]), None

    def capabilities(self):
        self.conn.send("EHLO %s" % self.ehlo_name)
        code, texts = self.reply()
        if code != 250:
            raise ProtocolError("the server rejected EHLO: %d %s" % (code, " ".join(texts)), texts[0])
        return parse_ehlo(texts[1:])

    def starttls(self):
        self.conn.send("STARTTLS")
        code, texts = self.reply()
        if code != 220:
            raise ProtocolError("the server advertised STARTTLS but refused it: %d %s" % (code, " ".join(texts)),
                                texts[0])

    def login(self, caps, username, password, allowed):
        mechanism = sasl.choose(password_ways(caps), allowed)
        if mechanism is None:
            return False, None, "none of %s is offered" % ", ".join(allowed)
        steps = sasl.responses(mechanism, username, password)
        if mechanism == "PLAIN":  # RFC 4954 initial response: one round trip
            self.conn.send("AUTH PLAIN %s" % steps.pop(0), "AUTH PLAIN " + sasl.HIDDEN)
        else:
            self.conn.send("AUTH %s" % mechanism)
        while True:
            code, texts = self.reply()
            if code == 334:
                self.conn.send(steps.pop(0) if steps else "*", sasl.HIDDEN)
                continue
            return code == 235, mechanism, "%d %s" % (code, " ".join(texts))

    def token_login(self, caps, username, token):
        """AUTH XOAUTH2/OAUTHBEARER with the initial response, proven by MAIL FROM (then RSET)."""
        mechanism = sasl.choose_token(mechanisms(caps))
        if mechanism is None:
            return False, None, "no token mechanism is offered"
        response = sasl.token_response(mechanism, username, token)
        self.conn.send("AUTH %s %s" % (mechanism, response), "AUTH %s %s" % (mechanism, sasl.HIDDEN))
        challenge = ""
        while True:
            code, texts = self.reply()
            if code == 334:  # the error, as a challenge: an empty response ends the exchange
                challenge = sasl.error_challenge("334 " + " ".join(texts))
                self.conn.send("")
                continue
            break
        text = "%d %s" % (code, " ".join(texts))
        if code != 235:
            return False, mechanism, ("%s %s" % (text, challenge)).strip()
        mail_from = "MAIL FROM:<%s>" % (username if "@" in username else "")
        if "PIPELINING" in caps:  # RFC 2920: MAIL and RSET may go together, one round trip for both
            self.conn.send_pipelined([mail_from, "RSET"])
            after, after_texts = self.reply()
            self.reply()
        else:
            self.conn.send(mail_from)
            after, after_texts = self.reply()
            self.conn.send("RSET")
            self.reply()
        if after != 250:
            return False, mechanism, "the login was reported as accepted, but MAIL FROM then failed: %d %s" % (
                after, " ".join(after_texts))
        return True, mechanism, text

    def quit(self):
        self.conn.send("QUIT")
