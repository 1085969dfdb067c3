"""Fixtures for the mutt tests: the mail stack, a sandbox that
resolves the real server names to it and trusts its CA, and a tmux driver for the clients' TUI."""

from __future__ import annotations

import secrets
import shlex

import pytest
from mutt_support import CA_IN_SANDBOX, MUTT_LOGINS, Tui
from sandbox import Sandbox


@pytest.fixture
def stack(mail_stack):
    """The session's test mail stack (tests/mailstack/pytest_plugin.py), with our two accounts."""
    for login in MUTT_LOGINS:
        if login not in mail_stack.users:
            mail_stack.add_user(login, "Mutt-Test-Pass_%s" % secrets.token_hex(6))
    return mail_stack


@pytest.fixture
def stack_sandbox(stack, tmp_path):
    """A sandbox where mail.middlebury.edu/ssmtp.middlebury.edu are the stack, with its mail users as logins."""
    sb = Sandbox(tmp_path / "sandbox", hosts_file=stack.hosts_file)
    proc = sb.sh("install -m 0644 %s %s" % (shlex.quote(str(stack.ca_path)), CA_IN_SANDBOX))
    assert proc.returncode == 0, proc
    for login in MUTT_LOGINS:
        sb.add_user(login, login.title())
    return sb


@pytest.fixture
def tui(stack_sandbox, tmp_path):
    driver = Tui(stack_sandbox, tmp_path / "tmux.sock")
    yield driver
    driver.close()
