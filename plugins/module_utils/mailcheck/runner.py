# Copyright (c) Middlebury College
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Which endpoints to check, all of them at once under one deadline, and the summary.

The runner is the entry of the mail_check engine (this package), which probes IMAP/POP3/SMTP endpoints over
verified TLS and judges what they offer. Split by domain: ``clock`` (deadlines, phase timings), ``resolve``
(bounded DNS, connect_to), ``connect`` (TCP), ``tls`` (contexts, certificate facts), ``wire`` (line I/O),
``imap``/``pop3``/``smtp`` (dialogues), ``findings`` (classes and helpdesk messages), ``probe`` (one endpoint)
and this module (all endpoints concurrently, summary). Standard library only; ``cryptography`` is used when
present to describe a certificate that failed verification. (The package's __init__.py stays empty, as
ansible-test 2.16's empty-init check requires.)
"""

from __future__ import annotations

import ssl
import threading
import time

from . import findings
from .clock import Deadline, ms
from .probe import Probe
from .resolve import Resolver, parse_connect_to
from .tls import verified_context

PROTOCOLS = ("imap", "pop3", "smtp")
SECURITIES = ("ssl", "starttls")
# Threads finish on their own by the deadline (every step is bounded); this is slack for the
# bookkeeping after the last step, not extra network time.
GRACE = 0.5


def select_endpoints(model, endpoints=None, account=None, endpoint_set="documented", only=None):
    """The endpoint list: explicit endpoints, else from an account description, else the documented four.

    ``model`` is the collection's account_model module: the one place the documented values live."""
    if endpoints:
        chosen = [_check_endpoint(ep, i) for i, ep in enumerate(endpoints)]
    elif account is not None:
        normalized = model.normalize_account(account)
        chosen = (model.account_endpoints(normalized) if endpoint_set == "account"
                  else model.documented_endpoints(normalized))
    else:
        chosen = model.documented_endpoints()
    names = [ep["name"] for ep in chosen]
    if len(set(names)) != len(names):
        raise ValueError("endpoint names must be unique, got %s" % ", ".join(names))
    if only:
        unknown = sorted(set(only) - set(names))
        if unknown:
            raise ValueError("only: unknown endpoint(s) %s; known: %s" % (", ".join(unknown), ", ".join(names)))
        chosen = [ep for ep in chosen if ep["name"] in only]
    return chosen


def _check_endpoint(ep, index):
    where = "endpoints[%d]" % index
    missing = [k for k in ("protocol", "host", "port", "security") if ep.get(k) in (None, "")]
    if missing:
        raise ValueError("%s: missing %s" % (where, ", ".join(missing)))
    protocol = str(ep["protocol"]).lower()
    security = str(ep["security"]).lower()
    if protocol not in PROTOCOLS:
        raise ValueError("%s.protocol must be one of %s" % (where, ", ".join(PROTOCOLS)))
    if security not in SECURITIES:
        raise ValueError("%s.security must be one of %s (plaintext is never checked: the password would "
                         "travel in clear)" % (where, ", ".join(SECURITIES)))
    port = int(ep["port"])
    if not 0 < port < 65536:
        raise ValueError("%s.port out of range" % where)
    name = ep.get("name") or "%s_%s_%d" % (protocol, security, port)
    return {"name": name, "protocol": protocol, "host": str(ep["host"]).lower().rstrip("."), "port": port,
            "security": security}


def _families(ip_version):
    return ["4", "6"] if ip_version == "both" else [ip_version]


def run_checks(endpoints, options):
    """Check every endpoint (per address family) concurrently; (results, summary)."""
    started = time.perf_counter()
    for key in ("username", "password"):
        if any(ch in (options.get(key) or "") for ch in "\0\r\n"):
            raise ValueError("%s must not contain NUL, CR or LF: no mail protocol can carry them" % key)
    connect_to = parse_connect_to(options.get("connect_to"))
    try:
        context = verified_context(options.get("ca_path"), options.get("min_tls_version", "TLSv1.2"),
                                   options.get("x509_strict", False))
    except (ssl.SSLError, OSError) as exc:
        raise ValueError("ca_path %s: no usable CA certificate in it (%s)" % (options.get("ca_path"), exc)) from None
    deadline = Deadline(options["deadline"], options["timeout"])
    resolver = Resolver()
    jobs = []
    for endpoint in endpoints:
        for family in _families(options.get("ip_version", "any")):
            opts = dict(options, connect_to=connect_to, family=family)
            opts.setdefault("dns_timeout", options["timeout"])
            probe = Probe(endpoint, opts, resolver, deadline, context)
            slot = {"probe": probe, "result": None}
            thread = threading.Thread(target=_run_into, args=(slot,), daemon=True)
            slot["thread"] = thread
            jobs.append(slot)
    for slot in jobs:
        slot["thread"].start()
    for slot in jobs:
        slot["thread"].join(max(deadline.remaining(), 0) + GRACE)
    results = [slot["result"] or _overdue(slot["probe"], options["deadline"]) for slot in jobs]
    return results, summarize(results, ms(time.perf_counter() - started))


def _run_into(slot):
    slot["result"] = slot["probe"].run()


def _overdue(probe, seconds):
    """A probe still running at the deadline: report it as a timeout in the phase it was in."""
    result = dict(probe.result)
    item = findings.finding("deadline", "fail", "timeout",
                            "%s:%s did not finish within the overall deadline of %s s (stuck in %s)."
                            % (probe.endpoint["host"], probe.endpoint["port"], seconds, probe.phase))
    result.update({"status": "fail", "error_class": "timeout", "message": item["message"], "findings": [item],
                   "failed_phase": probe.phase, "timings_ms": probe.timings.as_dict(), "transcript": [],
                   "reachable": False, "tls_ok": False})
    return result


def summarize(results, wall_ms):
    counts = {"pass": 0, "warn": 0, "fail": 0}
    for result in results:
        counts[result["status"]] += 1
    # Verified certificates only: a rejected one (expired, untrusted) is a failure of its own, not a countdown.
    days = [r["certificate"]["days_left"] for r in results
            if r.get("tls_ok") and r.get("certificate") and r["certificate"].get("days_left") is not None]
    status = "fail" if counts["fail"] else "warn" if counts["warn"] else "pass"
    failed = [_label(r) for r in results if r["status"] == "fail"]
    return {
        "status": status, "total": len(results), "passed": counts["pass"], "warned": counts["warn"],
        "failed": counts["fail"], "failed_endpoints": failed,
        "warned_endpoints": [_label(r) for r in results if r["status"] == "warn"],
        "error_classes": sorted({r["error_class"] for r in results if r.get("error_class")}),
        "min_days_left": min(days) if days else None, "wall_ms": wall_ms,
        "slowest_ms": max([r["timings_ms"].get("total", 0) for r in results] or [0]),
    }


def _label(result):
    family = result.get("ip_version")
    return result["name"] + ("/IPv%s" % family if family in ("4", "6") else "")
