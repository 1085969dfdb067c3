"""A TCP server that accepts connections and never says a word (for client timeout tests).

Run as a script: `python3 blackhole.py PIDFILE IP:PORT...`. It binds every port first (a taken
port fails the start with a message naming it), then detaches; the parent writes the child's PID
to PIDFILE and exits 0 only once the child is listening.
"""

from __future__ import annotations

import selectors
import socket
import sys

from detach import detach  # run as a script: this directory is on sys.path

MAX_HELD = 512  # oldest silent connection is dropped beyond this, so a runaway client cannot exhaust fds


def _bind(spec: str) -> socket.socket:
    host, _sep, port = spec.rpartition(":")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, int(port)))
    except OSError as exc:
        sys.exit("blackhole: cannot bind %s: %s" % (spec, exc.strerror))
    sock.listen(64)
    return sock


def _serve(listeners: list[socket.socket]) -> None:
    sel = selectors.DefaultSelector()
    for sock in listeners:
        sel.register(sock, selectors.EVENT_READ)
    held: list[socket.socket] = []
    while True:
        for key, _events in sel.select():
            try:
                conn, _addr = key.fileobj.accept()
            except OSError:
                continue
            held.append(conn)  # kept open, never read, never answered
            if len(held) > MAX_HELD:
                held.pop(0).close()


def main(argv: list[str]) -> None:
    pidfile, specs = argv[0], argv[1:]
    listeners = [_bind(spec) for spec in specs]
    detach(pidfile)
    _serve(listeners)


if __name__ == "__main__":
    main(sys.argv[1:])
