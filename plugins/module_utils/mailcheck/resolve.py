# Copyright (c) Middlebury College
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Name resolution with a bound, the connect_to override, and address-family selection."""

from __future__ import annotations

import ipaddress
import socket
import threading

FAMILIES = {"4": socket.AF_INET, "6": socket.AF_INET6}
FAMILY_NAMES = {socket.AF_INET: "4", socket.AF_INET6: "6"}


class ResolveError(Exception):
    """No usable address. ``kind`` is nxdomain, timeout, failure or no_family."""

    def __init__(self, kind, message):
        super().__init__(message)
        self.kind = kind


def parse_connect_to(mapping):
    """{'name:port' or 'name': 'address'} -> {(name, port or None): address}.

    Like curl --resolve: the TCP connection goes to the address, while SNI and certificate
    verification still use the name, so a stand-in or one node of a cluster can be checked."""
    parsed = {}
    for key, address in (mapping or {}).items():
        key = str(key).strip().lower()
        name, port = key, None
        head, sep, tail = key.rpartition(":")
        if sep and tail.isdigit() and head:
            name, port = head, int(tail)
            if not 0 < port < 65536:
                raise ValueError("connect_to key %r: port out of range" % key)
        if not name or not address or not isinstance(address, str):
            raise ValueError("connect_to entry %r: expected 'name[:port]: address'" % key)
        parsed[(name.rstrip("."), port)] = address.strip().strip("[]")
    return parsed


def override_for(connect_to, host, port):
    """The connect_to address for host:port; an exact port wins over a port-less entry."""
    host = host.lower().rstrip(".")
    return connect_to.get((host, port)) or connect_to.get((host, None))


def is_ip_literal(text):
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


class Resolver:
    """getaddrinfo has no timeout: run it in a daemon thread and stop waiting at the bound.

    Lookups are shared: three endpoints on one host cost one query, and the abandoned thread of
    a stalled resolver is not multiplied."""

    def __init__(self):
        self._lock = threading.Lock()
        self._lookups = {}

    def _start(self, host):
        with self._lock:
            entry = self._lookups.get(host)
            if entry is None:
                entry = {"done": threading.Event(), "result": None, "error": None}
                self._lookups[host] = entry
                thread = threading.Thread(target=self._run, args=(host, entry), daemon=True)
                thread.start()
            return entry

    @staticmethod
    def _run(host, entry):
        try:
            entry["result"] = socket.getaddrinfo(host, None, socket.AF_UNSPEC, socket.SOCK_STREAM)
        except socket.gaierror as exc:
            entry["error"] = exc
        except (OSError, UnicodeError) as exc:
            entry["error"] = exc
        finally:
            entry["done"].set()

    def lookup(self, host, timeout):
        """Addresses of host in resolver order, as (family, address) pairs without duplicates."""
        entry = self._start(host)
        if not entry["done"].wait(max(timeout, 0)):
            raise ResolveError("timeout", "no DNS answer for %s within %.1f s" % (host, timeout))
        exc = entry["error"]
        if exc is not None:
            if isinstance(exc, socket.gaierror) and exc.errno in (socket.EAI_NONAME, getattr(socket, "EAI_NODATA", -5)):
                raise ResolveError("nxdomain", "%s does not exist in DNS (%s)" % (host, exc.strerror or exc))
            if isinstance(exc, socket.gaierror) and exc.errno == socket.EAI_AGAIN:
                raise ResolveError("timeout", "the DNS server did not answer for %s (%s)" % (host, exc.strerror or exc))
            raise ResolveError("failure", "DNS lookup of %s failed: %s" % (host, exc))
        seen = []
        for family, _type, _proto, _canon, sockaddr in entry["result"]:
            if family in FAMILY_NAMES and (family, sockaddr[0]) not in seen:
                seen.append((family, sockaddr[0]))
        return seen


def pick(addresses, ip_version, host):
    """Keep the addresses of the wanted family ('4', '6'; anything else keeps all)."""
    if ip_version in FAMILIES:
        wanted = FAMILIES[ip_version]
        kept = [pair for pair in addresses if pair[0] == wanted]
        if not kept:
            raise ResolveError("no_family", "%s has no IPv%s address" % (host, ip_version))
        return kept
    if not addresses:
        raise ResolveError("nxdomain", "%s has no address" % host)
    return addresses


def literal_addresses(address):
    """An IP literal from connect_to, as the single (family, address) pair."""
    ip = ipaddress.ip_address(address)
    return [(socket.AF_INET6 if ip.version == 6 else socket.AF_INET, str(ip))]
