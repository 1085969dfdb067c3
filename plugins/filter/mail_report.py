# Copyright (c) Middlebury College
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Fold the mail_check results of many hosts into one hosts x endpoints report (playbooks/verify.yml)."""

from __future__ import annotations

DOCUMENTATION = r"""
name: mail_report
version_added: 0.1.0
short_description: Fold the mail_check results of many hosts into one fleet report
description:
  - Takes C(hostvars) and a list of hosts, reads each host's registered
    M(middlebury.mail_clients.mail_check) result and returns one hosts x endpoints table with totals and a
    list of problems. Hosts without a result (unreachable) get the status V(unknown).
  - Hosts are sorted worst first (fail, unknown, warn, pass). With
    O(middlebury.mail_clients.mail_check#module:ip_version=both) each family gets its own column (for example
    C(imaps/IPv6)).
options:
  _input:
    description: C(hostvars).
    type: dict
    required: true
  hosts:
    description: The hosts to report on, usually C(ansible_play_hosts_all).
    type: list
    elements: str
    required: true
  var:
    description: Name of the variable the results were registered as.
    type: str
    default: mail_check_result
  generated:
    description: Timestamp text for the report; defaults to now (UTC).
    type: str
"""

EXAMPLES = r"""
- name: Build the report on the controller
  ansible.builtin.set_fact:
    mail_check_report: "{{ hostvars | middlebury.mail_clients.mail_report(ansible_play_hosts_all) }}"
  run_once: true
  delegate_to: localhost
"""

RETURN = r"""
_value:
  description:
    - C(generated), C(status) (worst of all), C(verdict) (that in one sentence), C(groups) (the hosts grouped
      by problem, largest first, each with C(problem) in plain words, C(status), C(count) and C(hosts)),
      C(columns) (one per endpoint label, with C(protocol), C(host), C(port), C(security)), C(hosts) (each with
      C(host), C(status), C(error), C(summary), C(modern_auth) (C(offered), C(login), C(basic_auth_disabled)) and
      C(cells) keyed by endpoint label; a cell has C(status), C(error_class), C(message), C(latency_ms),
      C(timings_ms), C(days_left), C(not_after), C(tls_version), C(address), C(login), C(mechanism), C(codes)
      (its failing and warning findings), C(oauth_offered)), C(totals), C(problems), C(min_days_left),
      C(max_latency_ms) and C(results) (each host's full module result).
  type: dict
"""

import datetime

from ansible.errors import AnsibleFilterError

STATUS_ORDER = {"fail": 0, "unknown": 1, "warn": 2, "pass": 3}
TOKEN_MECHANISMS = ("XOAUTH2", "OAUTHBEARER")
# The summary's words for the findings a fleet most often has (other codes: their own name, spelled out).
PROBLEM_WORDS = {
    "cert_untrusted": "certificate not trusted",
    "cert_expired": "certificate expired",
    "cert_not_yet_valid": "certificate not valid yet (check the clock)",
    "cert_name_mismatch": "certificate for another name",
    "cert_expiry_critical": "certificate expires within days",
    "cert_expiry_warning": "certificate expires soon",
    "login_failed": "login refused",
    "basic_auth_disabled": "password logins switched off (use OAuth2)",
    "smtp_auth_disabled": "SMTP AUTH switched off for the tenant",
    "oauth_rejected": "OAuth2 token refused",
    "no_oauth_mechanism": "no OAuth2 login offered",
    "no_password_mechanism": "no normal-password login offered",
    "auth_before_tls": "login offered before TLS",
    "starttls_missing": "no STARTTLS",
    "dns_failed": "name does not resolve",
    "connection_refused": "connection refused",
    "timeout": "no answer in time",
    "greeting_timeout": "no answer in time",
}
UNREACHABLE = "could not be reached"


def _label(endpoint):
    family = endpoint.get("ip_version")
    return endpoint["name"] + ("/IPv%s" % family if family in ("4", "6") else "")


def _cell(endpoint):
    cert = endpoint.get("certificate") or {}
    tls = endpoint.get("tls") or {}
    auth = endpoint.get("auth") or {}
    return {
        "status": endpoint.get("status", "unknown"),
        "error_class": endpoint.get("error_class"),
        "message": endpoint.get("message", ""),
        "latency_ms": (endpoint.get("timings_ms") or {}).get("total"),
        "timings_ms": endpoint.get("timings_ms") or {},
        "days_left": cert.get("days_left"),
        "verified": bool(tls.get("verified")),
        "not_after": cert.get("not_after"),
        "tls_version": tls.get("version"),
        "address": endpoint.get("address"),
        "login": auth.get("success") if auth.get("attempted") else None,
        "mechanism": auth.get("mechanism"),
        "codes": [f.get("code") for f in endpoint.get("findings") or [] if f.get("severity") in ("fail", "warn")],
        "oauth_offered": any(m in TOKEN_MECHANISMS for m in ((endpoint.get("sasl") or {}).get("after_tls") or [])),
    }


def modern_auth(cells):
    """One host's modern-auth state: OAuth2 offered after TLS, a token login's outcome, basic auth switched off."""
    if not cells:
        return None
    tokens = [c["login"] for c in cells.values() if c["mechanism"] in TOKEN_MECHANISMS and c["login"] is not None]
    return {"offered": any(c["oauth_offered"] for c in cells.values()),
            "login": None if not tokens else all(tokens),
            "basic_auth_disabled": any(code in ("basic_auth_disabled", "smtp_auth_disabled")
                                       for c in cells.values() for code in c["codes"])}


def problem_words(code):
    return PROBLEM_WORDS.get(code) or (code or "problem").replace("_", " ")


def summary_groups(entries):
    """Hosts grouped by problem, largest group first: [{"problem", "status", "count", "hosts"}]; the passing
    hosts are one group. A host with two problems is in both groups."""
    groups = {}
    for entry in entries:
        if entry["status"] == "unknown":
            keys = [(UNREACHABLE, "unknown")]
        else:
            keys = [(problem_words(code), cell["status"]) for cell in entry["cells"].values() for code in cell["codes"]]
            if not keys:
                keys = [("pass", "pass")]
        for problem, status in dict.fromkeys(keys):
            group = groups.setdefault(problem, {"problem": problem, "status": status, "hosts": []})
            if entry["host"] not in group["hosts"]:
                group["hosts"].append(entry["host"])
    ordered = sorted(groups.values(), key=lambda g: (g["problem"] != "pass", -len(g["hosts"]), g["problem"]))
    for group in ordered:
        group["count"] = len(group["hosts"])
    return ordered


# What Ansible's connection errors mean, in the helpdesk's words (first match wins); the raw text is kept
# as the entry's detail.
_UNREACHABLE_WORDS = (
    ("could not resolve hostname", "its name does not resolve: check the inventory's host name or the DNS"),
    ("name or service not known", "its name does not resolve: check the inventory's host name or the DNS"),
    ("connection refused", "it answers, but nothing listens on its SSH port (the SSH service is stopped, or "
                           "the port in the inventory is wrong)"),
    ("timed out", "it did not answer in time: it is switched off, asleep or unplugged, or a firewall drops SSH"),
    ("no route to host", "there is no network route to it: it is off the network or the address is wrong"),
    ("network is unreachable", "there is no network route to it: it is off the network or the address is wrong"),
    ("permission denied", "it refused our SSH login: check the user and the SSH key in the inventory"),
    ("host key verification failed", "its SSH host key changed or is unknown: check that it is the right "
                                     "machine, then update known_hosts"),
    ("connection reset", "it dropped the connection (it was shutting down, or it is overloaded)"),
    ("connection closed", "it dropped the connection (it was shutting down, or it is overloaded)"),
)


def plain_reason(result):
    """Why a host has no result, in plain words (Ansible's own message is technical)."""
    raw = str(result.get("msg") or "") if isinstance(result, dict) else ""
    lowered = raw.lower()
    for needle, words in _UNREACHABLE_WORDS:
        if needle in lowered:
            return "could not be reached: %s" % words
    if isinstance(result, dict) and result.get("unreachable"):
        return "could not be reached (see the detail for Ansible's message)"
    return "no result: the check did not run on this host"


def _host_entry(host, result):
    if not isinstance(result, dict) or "endpoints" not in result:
        detail = str(result.get("msg") or "") if isinstance(result, dict) else ""
        return {"host": host, "status": "unknown", "error": plain_reason(result), "detail": detail or None,
                "cells": {}, "summary": None, "modern_auth": None}, []
    cells = {}
    order = []
    for endpoint in result["endpoints"]:
        label = _label(endpoint)
        cells[label] = _cell(endpoint)
        order.append((label, endpoint))
    summary = result.get("summary") or {}
    return {"host": host, "status": summary.get("status", "unknown"), "error": None, "detail": None,
            "cells": cells, "summary": summary, "modern_auth": modern_auth(cells)}, order


def mail_report(hostvars, hosts, var="mail_check_result", generated=None):
    """hostvars + host names -> {generated, columns, hosts, totals, problems, results}."""
    if not isinstance(hosts, (list, tuple)):
        raise AnsibleFilterError("mail_report: the host list must be a list, got %s" % type(hosts).__name__)
    columns = {}
    entries = []
    raw = {}
    for host in hosts:
        try:
            result = hostvars[host].get(var)
        except (KeyError, AttributeError):
            result = None
        entry, order = _host_entry(host, result)
        entries.append(entry)
        raw[host] = result if isinstance(result, dict) else None
        for label, endpoint in order:
            columns.setdefault(label, {"label": label, "name": endpoint.get("name"),
                                       "protocol": endpoint.get("protocol"), "host": endpoint.get("host"),
                                       "port": endpoint.get("port"), "security": endpoint.get("security")})
    entries.sort(key=lambda e: (STATUS_ORDER.get(e["status"], 1), e["host"]))
    totals = {"hosts": len(entries), "pass": 0, "warn": 0, "fail": 0, "unknown": 0}
    problems = []
    for entry in entries:
        totals[entry["status"] if entry["status"] in totals else "unknown"] += 1
        if entry["error"]:
            problems.append({"host": entry["host"], "endpoint": None, "status": "unknown", "error_class": None,
                             "message": entry["error"]})
        for label, cell in entry["cells"].items():
            if cell["status"] in ("fail", "warn"):
                problems.append({"host": entry["host"], "endpoint": label, "status": cell["status"],
                                 "error_class": cell["error_class"], "message": cell["message"]})
    days = [c["days_left"] for e in entries for c in e["cells"].values()
            if c["verified"] and c["days_left"] is not None]
    latencies = [c["latency_ms"] for e in entries for c in e["cells"].values() if c["latency_ms"] is not None]
    status = "fail" if totals["fail"] else "unknown" if totals["unknown"] else "warn" if totals["warn"] else "pass"
    return {
        "generated": generated or datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"),
        "columns": list(columns.values()),
        "hosts": entries,
        "totals": totals,
        "status": status,
        "verdict": _verdict(status, totals),
        "groups": summary_groups(entries),
        "problems": problems,
        "min_days_left": min(days) if days else None,
        "max_latency_ms": max(latencies) if latencies else None,
        "results": raw,
    }


def _verdict(status, totals):
    if status == "pass":
        return "All %d host%s pass" % (totals["hosts"], "" if totals["hosts"] == 1 else "s")
    bad = totals["fail"] + totals["unknown"]
    if not bad:
        return "%d of %d hosts pass, %d with warnings" % (totals["pass"], totals["hosts"], totals["warn"])
    return "%d of %d host%s need attention" % (bad, totals["hosts"], "" if totals["hosts"] == 1 else "s")


class FilterModule:
    def filters(self):
        return {"mail_report": mail_report}
