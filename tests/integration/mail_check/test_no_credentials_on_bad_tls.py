"""Proof from the servers' own logs: when TLS verification fails, the password is never sent.

The checks of the expired, wrong-name and untrusted stand-ins get a user that exists nowhere else;
Dovecot (auth_verbose) names every user that tries to log in, Postfix counts AUTH commands per
session. The same check with good TLS must show up in both logs, or the proof proves nothing."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from ansible_runner import run_playbook
from mail_check_cases import LOGIN_BOUNDS, base, task
from mailstack import LOGIN_LOGGED, NO_LOGIN_LOGGED

pytestmark = pytest.mark.timeout(300)
BAD_TLS = ("expired", "wrong_name", "untrusted")


def _size(path):
    return Path(path).stat().st_size


def _since(path, offset):
    with open(path, "rb") as handle:
        handle.seek(offset)
        return handle.read().decode("utf-8", "replace")


def _wait_for(path, offset, pattern, count, timeout=10.0):
    """Postfix logs through postlogd, a moment after the session ended: wait for the lines."""
    end = time.monotonic() + timeout
    while True:
        text = _since(path, offset)
        if len(re.findall(pattern, text)) >= count or time.monotonic() > end:
            return text
        time.sleep(0.1)


def _run(stack, tasks):
    offsets = (_size(stack.dovecot_log), _size(stack.postfix_log))
    result = run_playbook([{"hosts": "localhost", "gather_facts": False, "tasks": tasks}], timeout=200)
    return result, offsets


def test_credentials_never_sent_when_tls_verification_fails(mail_stack, proof_user, control_user):
    stack = mail_stack
    login, password = proof_user
    tasks = [task(case, base(stack, case), username=login, password=password, report_only=True)
             for case in BAD_TLS]
    result, (dove_at, post_at) = _run(stack, tasks)
    found = dict(result.task_results())
    for case in BAD_TLS:
        for ep in found[case]["endpoints"]:
            assert ep["error_class"] == "tls_verify" and ep["auth"]["attempted"] is False, ep["message"]
            assert password not in str(ep)
    # One SMTP session per variant, plus the one that describes the rejected certificate.
    postfix = _wait_for(stack.postfix_log, post_at, r"disconnect from", 2 * len(BAD_TLS))
    dovecot = _since(stack.dovecot_log, dove_at)

    assert login not in dovecot, "a login was attempted over unverified TLS:\n" + dovecot
    for case in BAD_TLS:
        ip = stack.negatives[case]["host_ip"]
        # The server itself says so for every connection we made to the variant.
        ours = [line for line in dovecot.splitlines() if "lip=%s," % ip in line]
        assert ours, "no Dovecot log line for %s (%s): wrong log?" % (case, ip)
        assert all(re.search(NO_LOGIN_LOGGED, line) for line in ours), "\n".join(ours)
    sessions = re.findall(r"disconnect from .*", postfix)
    assert len(sessions) >= 2 * len(BAD_TLS), postfix
    assert not [s for s in sessions if " auth=" in s], sessions


def test_control_a_login_over_good_tls_does_show_in_both_logs(mail_stack, control_user):
    stack = mail_stack
    login, password = control_user
    good = task("good", base(stack), LOGIN_BOUNDS, username=login, password=password)
    result, (dove_at, post_at) = _run(stack, [good])
    assert not dict(result.task_results())["good"].get("failed"), result
    postfix = _wait_for(stack.postfix_log, post_at, r" auth=1", 1)
    dovecot = _since(stack.dovecot_log, dove_at)
    assert re.search(r"imap-login: Info: " + LOGIN_LOGGED % login, dovecot), dovecot
    assert re.search(r"pop3-login: Info: " + LOGIN_LOGGED % login, dovecot), dovecot
    assert re.search(r"disconnect from .* auth=1 ", postfix), postfix
