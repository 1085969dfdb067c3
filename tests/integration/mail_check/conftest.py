"""Run the mail_check module through Ansible against the real test mail stack (fixture ``mail_stack``).

Every case is one task of ONE playbook run (ansible-playbook start-up is the slow part), registered
and returned; the tests then read the results. The stack's stand-ins are reached with the module's
own ``connect_to`` option, so certificates are verified for the real documented names."""

from __future__ import annotations

import secrets

import pytest
from mail_check_cases import (
    BLACKHOLE_BOUNDS,
    LOGIN_BOUNDS,
    base,
    host_of,
    reset_auth_penalty,
    run_cases,
    starttls_endpoints,
    task,
    with_module_defaults,
)


@pytest.fixture(scope="session")
def proof_user(mail_stack):
    """A user that only the checks of broken TLS are given: it must never reach a server log."""
    login, password = "mcproof", "Proof-" + secrets.token_hex(8)
    mail_stack.add_user(login, password)
    return login, password


@pytest.fixture(scope="session")
def control_user(mail_stack):
    """A user for the good endpoints: proves the logs do record logins over IMAP, POP3 and SMTP."""
    login, password = "mccontrol", "Control-" + secrets.token_hex(8)
    mail_stack.add_user(login, password)
    return login, password


@pytest.fixture(scope="module")
def module_results(mail_stack, control_user, tmp_path_factory):
    """Every case, one playbook, in check mode (the module must behave the same there)."""
    stack = mail_stack
    user, password = next(iter(stack.users.items()))
    good = base(stack)
    tasks = [
        task("documented", good),
        task("documented_login", good, LOGIN_BOUNDS, username=control_user[0], password=control_user[1]),
        # The module's default bounds: Dovecot's late answer to a wrong password must still be "auth".
        task("wrong_password", with_module_defaults(good), username=user, password=password + "-wrong",
             report_only=True),
        task("ipv4_only", good, ip_version="4"),
        task("ipv6_only", good, ip_version="6", report_only=True),
        task("both_families", good, ip_version="both", report_only=True),
        task("account_two", good, account={}, endpoint_set="account"),
        # The stand-ins' certificates are valid for about a year: thresholds above that must fire.
        task("expiry_warning", good, days_warning=5000),
        task("expiry_critical", good, days_warning=6000, days_critical=5000, report_only=True),
        task("expired", base(stack, "expired"), report_only=True),
        task("wrong_name", base(stack, "wrong_name"), report_only=True),
        task("untrusted", base(stack, "untrusted"), report_only=True),
        task("auth_before_tls", base(stack, "auth_before_tls"), report_only=True,
             endpoints=starttls_endpoints(stack, "auth_before_tls")),
        task("no_starttls", base(stack, "no_starttls"), report_only=True,
             endpoints=starttls_endpoints(stack, "no_starttls")),
        task("closed_port", good, report_only=True, endpoints=[
            {"name": "closed", "protocol": "imap", "host": host_of("imap"), "port": stack.closed_port,
             "security": "ssl"}]),
        task("closed_host", base(stack, "closed"), report_only=True),
        task("blackhole", base(stack, "blackhole"), BLACKHOLE_BOUNDS, report_only=True),
        task("unresolvable", good, report_only=True, connect_to={}, endpoints=[
            {"name": "nowhere", "protocol": "imap", "host": "mail-check-test.invalid", "port": 993,
             "security": "ssl"}]),
        task("fails_task", base(stack, "closed")),
    ]
    results = run_cases(tasks, tmp_path_factory.mktemp("cases"))
    reset_auth_penalty(stack)
    return results
