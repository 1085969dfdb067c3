"""Stand-in mail servers that misbehave on purpose, on loopback (tests only).

Each listener runs a small script per connection: lines to send at connect, and what to answer to
every line the client sends. A reply is a list of lines; ``FLOOD`` (alone or as the list's last item)
sends short lines for as long as the client reads them (the way a broken or hostile server fills a
client's memory). Optional implicit TLS with a certificate of the test's own (for hostile certificate subjects).
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import subprocess
import threading
from pathlib import Path

FLOOD = object()


def self_signed(directory: Path, subject: str) -> tuple[Path, Path]:
    """A throwaway self-signed certificate and key; `subject` in openssl -subj form."""
    cert, key = directory / "hostile-cert.pem", directory / "hostile-key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", str(key), "-out", str(cert), "-days", "30", "-subj", subject],
                   capture_output=True, check=True, timeout=60)
    return cert, key


class Listener:
    """One port: `greeting` lines at connect; `answer(line) -> lines | FLOOD | None` (None closes)."""

    def __init__(self, greeting, answer=None, tls=None, flood_line=b"* CAPABILITY IMAP4rev1 X"):
        self.greeting = greeting
        self.answer = answer or (lambda _line: None)
        self.tls = tls
        self.flood_line = flood_line
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def start(self):
        self._thread.start()
        return self

    def close(self):
        self._stop.set()
        with contextlib.suppress(OSError):
            self.sock.close()

    def _serve(self):
        while not self._stop.is_set():
            try:
                conn, _addr = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._talk, args=(conn,), daemon=True).start()

    def _talk(self, conn):
        with contextlib.suppress(OSError, ssl.SSLError, ValueError):
            conn.settimeout(30)
            if self.tls:
                conn = self.tls.wrap_socket(conn, server_side=True)
            reader = conn.makefile("rb")
            self._send(conn, self.greeting)
            while not self._stop.is_set():
                line = reader.readline(65536)
                if not line:
                    break
                reply = self.answer(line.decode("utf-8", "replace").rstrip("\r\n"))
                if reply is None:
                    break
                self._send(conn, reply)
        with contextlib.suppress(OSError):
            conn.close()

    def _send(self, conn, lines):
        for line in [FLOOD] if lines is FLOOD else lines:
            if line is FLOOD:  # until the client hangs up (sendall then fails) or the listener closes
                chunk = (self.flood_line + b"\r\n") * 4096
                while not self._stop.is_set():
                    conn.sendall(chunk)
                return
            conn.sendall((line if isinstance(line, bytes) else line.encode("utf-8")) + b"\r\n")


def tls_context(cert: Path, key: Path) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(cert), str(key))
    return context
