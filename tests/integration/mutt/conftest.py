"""Fixtures for the mutt tests: the mail stack, a sandbox that
resolves the real server names to it and trusts its CA, and a tmux driver for the clients' TUI."""

from __future__ import annotations

import secrets
import shlex
import subprocess
import time

import pytest
from sandbox import Sandbox

# Where the sandbox gets the stack's CA: a department with an internal CA would ship it the same way and
# point mutt_ca_file at it.
CA_IN_SANDBOX = "/etc/ssl/middlebury-test-ca.pem"


# Mail accounts of our own on the shared stack (seeded INBOX, Personal, Classes, Sent...), so that no
# other test's use of the default accounts can disturb what these tests expect to see.
MUTT_LOGINS = ("muttjane", "muttbob")


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


class Tui:
    """One client in a tmux pane on a private socket, started inside the sandbox as a login."""

    def __init__(self, sandbox, socket):
        self.sandbox = sandbox
        self.socket = str(socket)

    def _tmux(self, *args, timeout=15):
        return subprocess.run(["tmux", "-S", self.socket, *args], capture_output=True, text=True,
                              timeout=timeout, check=False)

    def start(self, login, argv):
        inner = ["runuser", "-u", login, "--", "env", "-i", "HOME=/home/%s" % login, "TERM=xterm",
                 "PATH=/usr/bin:/bin", "LANG=C.UTF-8", *argv]
        # The pane stays a while after the client exits, so its last words can be read.
        command = "%s; echo CLIENT-EXITED rc=$?; sleep 60" % shlex.join(self.sandbox.wrap(inner))
        proc = self._tmux("new-session", "-d", "-x", "160", "-y", "40", command)
        assert proc.returncode == 0, proc

    def screen(self):
        return self._tmux("capture-pane", "-p").stdout

    def wait_for(self, *texts, timeout=30.0):
        """Poll the screen until every text is on it; fail with the screen otherwise."""
        deadline = time.monotonic() + timeout
        screen = ""
        while time.monotonic() < deadline:
            screen = self.screen()
            if all(text in screen for text in texts):
                return screen
            time.sleep(0.2)
        raise AssertionError("not on screen after %.0fs: %r\n%s" % (timeout, texts, screen))

    def keys(self, *keys):
        assert self._tmux("send-keys", *keys).returncode == 0

    def close(self):
        self._tmux("kill-server")


@pytest.fixture
def tui(stack_sandbox, tmp_path):
    driver = Tui(stack_sandbox, tmp_path / "tmux.sock")
    yield driver
    driver.close()
