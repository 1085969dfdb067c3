"""Process and socket facts from /proc: PID files, our marked processes, who holds a port.

Everything is by PID. Our daemons carry MAILSTACK_ID=<marker> in their environment (Dovecot and
Postfix pass it on through import_environment), which finds children that outlive their master.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import struct
import time
from pathlib import Path

MARKER_VAR = "MAILSTACK_ID"
_LISTEN = "0A"


def read_pidfile(path: Path) -> int | None:
    try:
        text = Path(path).read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def alive(pid: int | None) -> bool:
    """True for a live process (a zombie counts as gone: it holds no ports and does nothing)."""
    if not pid:
        return False
    try:
        stat = Path("/proc/%d/stat" % pid).read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def environ_of(pid: int) -> dict:
    try:
        raw = Path("/proc/%d/environ" % pid).read_bytes()
    except OSError:
        return {}
    pairs = (item.split(b"=", 1) for item in raw.split(b"\0") if b"=" in item)
    return {k.decode(errors="replace"): v.decode(errors="replace") for k, v in pairs}


def cmdline_of(pid: int) -> str:
    try:
        return Path("/proc/%d/cmdline" % pid).read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def _all_pids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def marked_pids(marker: str) -> list[int]:
    """Live processes whose environment carries our marker."""
    return sorted(pid for pid in _all_pids() if pid != os.getpid() and alive(pid)
                  and environ_of(pid).get(MARKER_VAR) == marker)


def _postfix_programs() -> frozenset:
    try:
        return frozenset(os.listdir("/usr/lib/postfix/sbin"))
    except OSError:
        return frozenset({"master", "smtpd", "pickup", "qmgr", "tlsmgr", "postlogd", "lmtp", "cleanup"})


_POSTFIX_PROGRAMS = _postfix_programs()


def scan(dovecot_prefixes: tuple[str, ...], marker: str) -> list[int]:
    """One pass over /proc (reads are slow under gVisor): processes whose title starts with one of
    `dovecot_prefixes`, plus Postfix daemons and Python scripts whose environment carries `marker`."""
    found = []
    me = os.getpid()
    for pid in _all_pids():
        if pid == me:
            continue
        cmd = cmdline_of(pid)  # empty for zombies and kernel threads
        if not cmd:
            continue
        if cmd.startswith(dovecot_prefixes):
            found.append(pid)
            continue
        argv0 = os.path.basename(cmd.split(" ", 1)[0])
        if (argv0 in _POSTFIX_PROGRAMS or argv0.startswith("python")) and environ_of(pid).get(MARKER_VAR) == marker:
            found.append(pid)
    return sorted(found)


def signal_pids(pids, sig) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def reap(pids) -> None:
    """Collect zombies that happen to be our own children (e.g. the blackhole started by this process)."""
    for pid in pids:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)


def wait_gone(pids, timeout: float) -> list[int]:
    """Wait until none of `pids` is alive; returns those still alive at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        reap(pids)
        left = [pid for pid in pids if alive(pid)]
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.02)


def terminate(pids, timeout: float = 5.0) -> list[int]:
    """SIGTERM, wait, then SIGKILL what is left; returns PIDs that survived even that."""
    pids = [pid for pid in pids if alive(pid)]
    signal_pids(pids, signal.SIGTERM)
    left = wait_gone(pids, timeout)
    if left:
        signal_pids(left, signal.SIGKILL)
        left = wait_gone(left, 2.0)
    return left


def _decode_v4(hexaddr: str) -> str:
    return socket.inet_ntoa(struct.pack("<I", int(hexaddr, 16)))


def _decode_v6(hexaddr: str) -> str:
    raw = bytes.fromhex(hexaddr)
    packed = b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4))
    return socket.inet_ntop(socket.AF_INET6, packed)


def listening_sockets() -> list[tuple[str, int, int]]:
    """(address, port, inode) of every TCP socket in LISTEN state, IPv4 and IPv6."""
    found = []
    for name, decode in (("tcp", _decode_v4), ("tcp6", _decode_v6)):
        try:
            lines = Path("/proc/net/" + name).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) < 10 or fields[3] != _LISTEN:
                continue
            hexaddr, hexport = fields[1].split(":")
            found.append((decode(hexaddr), int(hexport, 16), int(fields[9])))
    return found


def is_listening(ip: str, port: int, sockets=None) -> bool:
    return any(a == ip and p == port for a, p, _inode in (sockets if sockets is not None else listening_sockets()))


def blockers(ip: str, port: int, sockets=None) -> list[tuple[str, int, int]]:
    """Listening sockets that would stop us binding ip:port (same address or a wildcard)."""
    wild = {"0.0.0.0", "::", "::ffff:0.0.0.0", "::ffff:" + ip}
    sockets = sockets if sockets is not None else listening_sockets()
    return [s for s in sockets if s[1] == port and (s[0] == ip or s[0] in wild)]


def socket_owner(inode: int) -> str:
    """'name (pid N: cmdline)' of a process holding socket `inode`, or 'unknown process'."""
    target = "socket:[%d]" % inode
    for pid in _all_pids():
        fd_dir = "/proc/%d/fd" % pid
        try:
            fds = os.listdir(fd_dir)
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(os.path.join(fd_dir, fd)) == target:
                    return "pid %d: %s" % (pid, cmdline_of(pid) or "?")
            except OSError:
                continue
    return "unknown process"
