# Copyright (c) Middlebury College
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The SASL mechanisms a mail client uses: the two "normal password" ones (RFC 4616 PLAIN, and the de-facto
LOGIN), and the two that carry an OAuth2 access token (Google's and Microsoft's XOAUTH2, RFC 7628 OAUTHBEARER)."""

from __future__ import annotations

import base64

# What "normal password" means in Thunderbird/Evolution/mutt: PLAIN or LOGIN over TLS.
PASSWORD_MECHANISMS = ("PLAIN", "LOGIN")
# Exchange Online offers XOAUTH2 only; Dovecot both. XOAUTH2 first: it is what every client sends there.
TOKEN_MECHANISMS = ("XOAUTH2", "OAUTHBEARER")
HIDDEN = "<credentials hidden>"


def b64(data):
    if isinstance(data, str):
        data = data.encode("utf-8")
    return base64.b64encode(data).decode("ascii")


def responses(mechanism, username, password):
    """The client responses of one exchange, in order (already base64)."""
    if "\0" in username or "\0" in password:
        raise ValueError("username and password must not contain NUL characters")
    if mechanism == "PLAIN":
        return [b64("\0%s\0%s" % (username, password))]
    if mechanism == "LOGIN":
        return [b64(username), b64(password)]
    raise ValueError("unsupported mechanism %s" % mechanism)


def token_response(mechanism, username, token):
    """The one client response that carries an access token (already base64)."""
    if any(ch in username + token for ch in "\0\x01\r\n") or ("," in username and mechanism == "OAUTHBEARER"):
        raise ValueError("the username and the token must not contain control characters")
    if mechanism == "XOAUTH2":
        return b64("user=%s\x01auth=Bearer %s\x01\x01" % (username, token))
    if mechanism == "OAUTHBEARER":
        return b64("n,a=%s,\x01auth=Bearer %s\x01\x01" % (username, token))
    raise ValueError("unsupported mechanism %s" % mechanism)


def choose_token(offered):
    """The token mechanism to use: XOAUTH2 when offered, else OAUTHBEARER, else None."""
    offered = [m.upper() for m in offered]
    return next((m for m in TOKEN_MECHANISMS if m in offered), None)


def error_challenge(line):
    """The JSON error a server sends as a continuation after a refused token ('' when there is none)."""
    data = line.split(" ", 1)[1] if " " in line else ""
    try:
        return base64.b64decode(data, validate=True).decode("utf-8", "replace")[:200]
    except ValueError:
        return ""


def choose(offered, allowed):
    """The first mechanism of ``allowed`` (the user's order) that the server offers."""
    offered = [m.upper() for m in offered]
    for mechanism in allowed:
        if mechanism.upper() in offered and mechanism.upper() in PASSWORD_MECHANISMS:
            return mechanism.upper()
    return None
