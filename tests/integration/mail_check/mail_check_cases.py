"""Helpers shared by the mail_check integration tests (imported by name: keep the name unique)."""

from __future__ import annotations

import yaml
from ansible_runner import run_playbook

from ansible_collections.middlebury.mail_clients.plugins.module_utils import account_model
from ansible_collections.middlebury.mail_clients.plugins.module_utils.mailcheck import runner
from ansible_collections.middlebury.mail_clients.plugins.modules import mail_check

MODULE = "middlebury.mail_clients.mail_check"
# Parallel module runs; more than the cores, since most of a run is waiting (deadlines, Dovecot's
# delay for a wrong password).
FORKS = 8
# Bounds with room for a busy machine (CI is shared): a step that has to succeed gets 10 s. The module's
# own default deadline.
TIMEOUT = 10.0
DEADLINE = 20.0
# The blackhole case proves that the deadline cuts a step short: a step timeout far beyond it.
BLACKHOLE_BOUNDS = {"timeout": 60.0, "deadline": 4.0}
# Every login: Dovecot answers a wrong password only after auth_failure_delay (2 s), and its per-IP
# auth penalty then delays every later login from 127.0.0.1, doubling up to 15 s. The login cases run
# concurrently with the wrong-password case, so they get room too.
LOGIN_BOUNDS = {"timeout": 17, "deadline": 20}


def host_of(protocol):
    """The documented server name for a protocol, from the settings model."""
    return {ep["protocol"]: ep["host"] for ep in account_model.documented_endpoints()}[protocol]


def connect_to(stack, variant=None):
    """The documented names -> the main stand-ins, or -> one negative variant's address."""
    names = {ep["host"] for ep in account_model.documented_endpoints()}
    if variant is None:
        return {name: stack.hosts[name] for name in names}
    return dict.fromkeys(names, stack.negatives[variant]["host_ip"])


def starttls_endpoints(stack, variant):
    """IMAP/POP3/SMTP with STARTTLS on the variant's plaintext ports (POP3 110 is not documented)."""
    ports = stack.negatives[variant]["ports"]
    return [{"name": "%s_starttls" % proto, "protocol": proto, "host": host_of(proto), "port": ports[proto],
             "security": "starttls"} for proto in ("imap", "pop3", "smtp")]


def task(name, *bases, **args):
    """A mail_check task registered as ``name``: option dicts merged left to right, then keywords."""
    merged = {}
    for part in bases:
        merged.update(part)
    merged.update(args)
    return {"name": name, MODULE: merged, "register": name, "ignore_errors": True}


def with_module_defaults(options):
    """The options without timeout and deadline: the module's defaults apply."""
    return {k: v for k, v in options.items() if k not in ("timeout", "deadline")}


def base(stack, variant=None):
    return {"ca_path": str(stack.ca_path), "connect_to": connect_to(stack, variant), "timeout": TIMEOUT,
            "deadline": DEADLINE}


def reset_auth_penalty(stack):
    """One good login from 127.0.0.1 clears Dovecot's auth penalty after our wrong-password case,
    so the next test of the session (another team's client test) is not delayed by it."""
    user, password = next(iter(stack.users.items()))
    endpoints = runner.select_endpoints(account_model, only=["imaps"])
    options = {**base(stack), **LOGIN_BOUNDS, "username": user, "password": password, "ip_version": "any",
               "min_tls_version": "TLSv1.2", "x509_strict": False, "auth_mechanisms": ["PLAIN"], "days_warning": 0,
               "days_critical": 0, "ehlo_name": None}
    results, _summary = runner.run_checks(endpoints, options)
    assert results[0]["auth"]["success"], results[0]["message"]


def run_cases(tasks, workdir, forks=FORKS):
    """Each case is an inventory host running the same task with its own options, so the cases run
    in parallel (forks) instead of one after another: the module start-up is most of their time."""
    hosts = {"case-" + t["name"]: {"ansible_connection": "local", "mail_check_case": t[MODULE]} for t in tasks}
    (workdir / "cases.yml").write_text(yaml.safe_dump({"all": {"children": {"cases": {"hosts": hosts}}}}))
    options = {name: "{{ mail_check_case.%s | default(omit) }}" % name for name in mail_check.ARGUMENT_SPEC}
    play = [{"hosts": "cases", "gather_facts": False,
             "tasks": [{"name": "case", MODULE: options, "register": "case", "ignore_errors": True}]}]
    result = run_playbook(play, check=True, timeout=300, args=("-i", str(workdir / "cases.yml"), "-f", str(forks)))
    found = {t["name"]: dict(result.task_results("case-" + t["name"])).get("case") for t in tasks}
    assert all(found.values()), result
    return {"run": result, **found}
