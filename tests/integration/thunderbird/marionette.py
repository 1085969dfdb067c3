"""A minimal Marionette client: just enough to run chrome-context scripts in Thunderbird.

The protocol is length-prefixed JSON over TCP ("<len>:<json>"); commands are
``[0, id, name, params]`` and replies ``[1, id, error, result]``. Writing the 60 lines here
keeps the tests free of the marionette-driver package (and its mozrunner/mozprofile tree),
which would otherwise be one more pin in the lead's requirements.
"""

from __future__ import annotations

import json
import socket
import time


class MarionetteError(RuntimeError):
    """The connection or the session could not be set up (Thunderbird hung or died)."""


class ScriptError(AssertionError):
    """Thunderbird answered with an error: a real failure, never retried."""


class Marionette:
    def __init__(self, port, host="127.0.0.1"):
        self.host = host
        self.port = port
        self.sock = None
        self._next_id = 0

    def connect(self, deadline):
        """Connect, retrying until ``deadline`` (time.monotonic()) while Thunderbird starts up."""
        last = None
        while time.monotonic() < deadline:
            try:
                sock = socket.create_connection((self.host, self.port), timeout=5)
            except OSError as exc:
                last = exc
                time.sleep(0.25)
                continue
            sock.settimeout(max(1.0, deadline - time.monotonic()))
            self.sock = sock
            hello = self._recv()
            if not isinstance(hello, dict) or "marionetteProtocol" not in hello:
                raise MarionetteError("unexpected greeting %r" % (hello,))
            return
        raise MarionetteError("Marionette did not listen on port %d in time: %s" % (self.port, last))

    def _recv(self):
        size = b""
        while not size.endswith(b":"):
            chunk = self.sock.recv(1)
            if not chunk:
                raise MarionetteError("connection closed")
            size += chunk
        length = int(size[:-1])
        data = b""
        while len(data) < length:
            chunk = self.sock.recv(length - len(data))
            if not chunk:
                raise MarionetteError("connection closed")
            data += chunk
        return json.loads(data)

    def command(self, name, params=None, timeout=30):
        self._next_id += 1
        payload = json.dumps([0, self._next_id, name, params or {}]).encode()
        self.sock.settimeout(timeout)
        self.sock.sendall(b"%d:%s" % (len(payload), payload))
        while True:
            reply = self._recv()
            if reply[0] == 1 and reply[1] == self._next_id:
                break
        if reply[2]:
            raise ScriptError("%s failed: %s" % (name, reply[2]))
        return reply[3]

    def start_chrome_session(self, timeout=30):
        self.command("WebDriver:NewSession", {"capabilities": {}}, timeout=timeout)
        self.command("Marionette:SetContext", {"value": "chrome"})

    def _execute(self, command, source, args, timeout):
        # The script timeout is Thunderbird's; the socket waits a little longer for its answer.
        self.command("WebDriver:SetTimeouts", {"script": timeout * 1000})
        result = self.command(command, {"script": source, "args": list(args), "scriptTimeout": timeout * 1000},
                              timeout=timeout + 5)
        return result.get("value") if isinstance(result, dict) else result

    def script(self, source, args=(), timeout=30):
        """Run a chrome-context function body; its return value comes back as JSON."""
        return self._execute("WebDriver:ExecuteScript", source, args, timeout)

    def async_script(self, source, args=(), timeout=30):
        """Like script(), but the body ends by calling ``arguments[arguments.length - 1](value)``."""
        return self._execute("WebDriver:ExecuteAsyncScript", source, args, timeout)

    def close(self):
        if self.sock is not None:
            self.sock.close()
            self.sock = None
