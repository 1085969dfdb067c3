#!/usr/bin/python3
"""Open the INBOX with mutt or NeoMutt as a login, typing the password at the prompt, like a person.

    read_inbox.py CLIENT LOGIN PASSWORD SUBJECT [SUBJECT...]

Runs the client in a detached tmux session as LOGIN (its own HOME/USER, as after a login, so the
lab-mode username is derived exactly as on a lab PC), answers the password prompt (no password is
stored anywhere), waits until every SUBJECT is on the index screen and prints the screen. Exit 0
only when all subjects were seen. Runs on the managed host (copied by ansible.builtin.script).
"""

from __future__ import annotations

import grp
import os
import pwd
import subprocess
import sys
import time

TIMEOUT = 60


def as_login(login, argv, **kwargs):
    entry = pwd.getpwnam(login)
    env = {"HOME": entry.pw_dir, "USER": login, "LOGNAME": login, "SHELL": entry.pw_shell,
           "PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": os.environ.get("LANG", "C.UTF-8"), "TERM": "xterm-256color"}
    groups = [g.gr_gid for g in grp.getgrall() if login in g.gr_mem]
    return subprocess.run(argv, env=env, cwd=entry.pw_dir, user=entry.pw_uid, group=entry.pw_gid,
                          extra_groups=groups, capture_output=True, text=True, timeout=30, **kwargs)


def screen(login, session):
    return as_login(login, ["tmux", "capture-pane", "-p", "-t", session]).stdout


def wait_for(login, session, predicate, what):
    deadline = time.monotonic() + TIMEOUT
    text = ""
    while time.monotonic() < deadline:
        text = screen(login, session)
        if predicate(text):
            return text
        time.sleep(0.3)
    raise SystemExit("timed out waiting for %s; screen:\n%s" % (what, text))


def main():
    client, login, password, *subjects = sys.argv[1:]
    session = "inbox-%s-%d" % (client, os.getpid())
    started = as_login(login, ["tmux", "new-session", "-d", "-s", session, "-x", "200", "-y", "50", client])
    if started.returncode != 0:
        raise SystemExit("tmux/%s did not start: %s" % (client, started.stderr))
    try:
        wait_for(login, session, lambda s: "assword" in s, "the password prompt")
        as_login(login, ["tmux", "send-keys", "-t", session, "-l", password])
        as_login(login, ["tmux", "send-keys", "-t", session, "Enter"])
        text = wait_for(login, session, lambda s: all(subj in s for subj in subjects), "the INBOX subjects")
        print(text.rstrip())
    finally:
        as_login(login, ["tmux", "kill-session", "-t", session])


if __name__ == "__main__":
    main()
