"""The start contract of the stack's own servers (blackhole.py, idp.py, exchange.py): the caller binds first, then
detach() forks; the parent writes the child's PID to ``pid_file`` and exits 0, so a start that returned is listening."""

from __future__ import annotations

import os


def detach(pid_file: str) -> None:
    """Return in the detached child (its own session, stdio on /dev/null); the parent exits."""
    pid = os.fork()
    if pid:
        with open(pid_file + ".tmp", "w") as fh:
            fh.write("%d\n" % pid)
        os.replace(pid_file + ".tmp", pid_file)
        os._exit(0)
    os.setsid()
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
