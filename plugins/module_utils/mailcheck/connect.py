# Copyright (c) Middlebury College
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""TCP connect to each candidate address in turn, each attempt bounded by the deadline."""

from __future__ import annotations

import socket
import time

from .clock import ms


class ConnectFailed(Exception):
    """Every address failed; ``attempts`` lists them, ``last`` is the last exception."""

    def __init__(self, attempts, last):
        super().__init__(str(last))
        self.attempts = attempts
        self.last = last


def tcp_connect(addresses, port, deadline):
    """(socket, attempts). Tries addresses in order, like create_connection, but reports each.

    Happy-eyeballs racing is left out on purpose: a checker must show a broken IPv6 path, not
    hide it behind a working IPv4 one (ip_version 'both' checks each family)."""
    attempts = []
    last = None
    for family, address in addresses:
        sock = socket.socket(family, socket.SOCK_STREAM)
        # A dialogue of short lines: pipelined commands must not wait for the ACK of the one before (Nagle).
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        begin = time.perf_counter()
        try:
            sock.settimeout(deadline.step())
            sock.connect((address, port))
        except OSError as exc:
            sock.close()
            attempts.append({"address": address, "ms": ms(time.perf_counter() - begin),
                             "error": str(exc) or type(exc).__name__})
            last = exc
            continue
        attempts.append({"address": address, "ms": ms(time.perf_counter() - begin), "error": None})
        return sock, attempts
    raise ConnectFailed(attempts, last)
