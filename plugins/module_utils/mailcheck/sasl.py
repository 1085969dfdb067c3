# Copyright (c) Middlebury College
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The two "normal password" SASL mechanisms (RFC 4616 PLAIN, and the de-facto LOGIN)."""

from __future__ import annotations

import base64

# What "normal password" means in Thunderbird/Evolution/mutt: PLAIN or LOGIN over TLS.
PASSWORD_MECHANISMS = ("PLAIN", "LOGIN")
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


def choose(offered, allowed):
    """The first mechanism of ``allowed`` (the user's order) that the server offers."""
    offered = [m.upper() for m in offered]
    for mechanism in allowed:
        if mechanism.upper() in offered and mechanism.upper() in PASSWORD_MECHANISMS:
            return mechanism.upper()
    return None
