"""A throwaway CA and a scripted mail server on 127.0.0.1, for dialogues the real stack cannot produce
(NTLM-only SMTP, data injected after STARTTLS, a stalled resolver)."""

from __future__ import annotations

import contextlib
import socket
import ssl
import subprocess
import threading
from pathlib import Path

import pytest

NAME = "mail.unit.test"


def _openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=30)


@pytest.fixture(scope="session")
def pki(tmp_path_factory):
    """CA + leaf for NAME (and a second, unrelated CA) made with the openssl CLI."""
    d = tmp_path_factory.mktemp("pki")
    for ca in ("ca", "other"):
        _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
                 "%s.key" % ca, "-out", "%s.pem" % ca, "-days", "400", "-subj", "/CN=Unit %s" % ca,
                 "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign", cwd=d)
    _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "leaf.key",
             "-out", "leaf.csr", "-subj", "/CN=%s" % NAME, cwd=d)
    (d / "ext.cnf").write_text("basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n"
                               "extendedKeyUsage=serverAuth\nsubjectAltName=DNS:%s\n" % NAME)
    _openssl("x509", "-req", "-in", "leaf.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
             "-out", "leaf.pem", "-days", "200", "-extfile", "ext.cnf", cwd=d)
    return {"ca": str(d / "ca.pem"), "other_ca": str(d / "other.pem"), "cert": str(d / "leaf.pem"),
            "key": str(d / "leaf.key")}


class Scripted:
    """One connection, one script: ("send", bytes) | ("expect", prefix) | ("tls", None) | ("hang", None)."""

    def __init__(self, pki, script, implicit=False, max_tls=None):
        self.script = script
        self.received = []
        self.errors = []
        self.ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.ctx.load_cert_chain(pki["cert"], pki["key"])
        if max_tls:
            self.ctx.maximum_version = max_tls
        self.implicit = implicit
        self.listener = socket.create_server(("127.0.0.1", 0))
        # Short: a test whose client never connects (stalled DNS) must not wait long for it.
        self.listener.settimeout(5)
        self.port = self.listener.getsockname()[1]
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        conn = None
        try:
            conn, _addr = self.listener.accept()
            conn.settimeout(10)
            if self.implicit:
                conn = self.ctx.wrap_socket(conn, server_side=True)
            reader = conn.makefile("rb")
            for kind, data in self.script:
                if kind == "send":
                    conn.sendall(data)
                elif kind == "expect":
                    line = reader.readline().decode().rstrip("\r\n")
                    self.received.append(line)
                    if not line.startswith(data):
                        self.errors.append("expected %r, got %r" % (data, line))
                        return
                elif kind == "tls":
                    conn = self.ctx.wrap_socket(conn, server_side=True)
                    reader = conn.makefile("rb")
                elif kind == "hang":
                    self.done.wait(10)
            # Whatever else the client sends (it must never be credentials the script did not expect).
            conn.settimeout(1)
            while True:
                line = reader.readline()
                if not line:
                    break
                self.received.append(line.decode("utf-8", "replace").rstrip("\r\n"))
        except (OSError, ssl.SSLError) as exc:
            self.errors.append(repr(exc))
        finally:
            if conn is not None:
                conn.close()
            self.listener.close()

    def finish(self):
        self.done.set()
        # A client that never connected (stalled DNS, IPv6 only) must not keep accept() waiting.
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)
        self.thread.join(15)
        return self.received


@pytest.fixture
def scripted(pki):
    servers = []

    def make(script, implicit=False, max_tls=None):
        server = Scripted(pki, script, implicit, max_tls)
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.finish()


@pytest.fixture
def check(pki):
    """Run the engine on one endpoint at the scripted server; returns the single result."""
    from ansible_collections.middlebury.mail_clients.plugins.module_utils.mailcheck import runner

    def run(server, protocol, security, **options):
        opts = {"ca_path": pki["ca"], "connect_to": {NAME: "127.0.0.1"}, "timeout": 15, "deadline": 30,
                "ip_version": "any", "min_tls_version": "TLSv1.2", "x509_strict": False, "username": None,
                "password": None, "auth_mechanisms": ["PLAIN", "LOGIN"], "days_warning": 30,
                "days_critical": 7, "ehlo_name": "client.unit.test"}
        opts.update(options)
        endpoint = {"name": "ep", "protocol": protocol, "host": NAME, "port": server.port, "security": security}
        results, _summary = runner.run_checks([endpoint], opts)
        server.finish()
        return results[0]

    return run


__all__ = ["NAME", "Path"]
