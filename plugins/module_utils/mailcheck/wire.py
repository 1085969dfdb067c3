# Copyright (c) Middlebury College
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Line-oriented I/O over a socket that may be upgraded to TLS half-way (STARTTLS/STLS).

Hand-written rather than imaplib/poplib/smtplib: those default to an unverified TLS context, call
getfqdn() (reverse DNS that can stall), and hide bytes the server sent after its STARTTLS reply,
which is exactly what a checker has to see (CVE-2011-0411 style command injection)."""

from __future__ import annotations

import contextlib

MAX_LINE = 64 * 1024
# One reply (a greeting, or everything up to the completion of one command): real servers send a few
# lines (Exchange's EHLO about ten); a server sending more is broken or hostile, and the probe must
# keep its memory bounded whatever it sends.
MAX_REPLY_LINES = 500
MAX_REPLY_BYTES = 256 * 1024
TRANSCRIPT_LINES = 60


class ProtocolError(Exception):
    """The server said something a mail client would not accept."""

    def __init__(self, message, reply=None):
        super().__init__(message)
        self.reply = reply


class ServerClosed(ProtocolError):
    """The server closed the connection when a reply was due."""


class ReplyFlood(ProtocolError):
    """The server sent more lines or bytes in one reply than any mail server does."""


class LineConn:
    """A socket plus read buffer; each blocking call is bounded by the shared deadline."""

    def __init__(self, sock, deadline):
        self.sock = sock
        self.deadline = deadline
        self.buf = b""
        self.transcript = []
        self._reply_lines = self._reply_bytes = 0
        # None: the deadline's step timeout; the login sets a longer wait (servers delay failures).
        self.reply_timeout = None

    def _log(self, direction, text):
        if len(self.transcript) < TRANSCRIPT_LINES:
            self.transcript.append("%s %s" % (direction, text[:300]))

    def _fill(self):
        self.sock.settimeout(self.deadline.step(self.reply_timeout))
        chunk = self.sock.recv(16384)
        if not chunk:
            raise ServerClosed("the server closed the connection")
        self.buf += chunk
        if len(self.buf) > MAX_LINE:
            raise ProtocolError("the server sent more than %d bytes without a line end" % MAX_LINE)

    def _count(self, size):
        self._reply_lines += 1
        self._reply_bytes += size
        if self._reply_lines > MAX_REPLY_LINES or self._reply_bytes > MAX_REPLY_BYTES:
            raise ReplyFlood("it floods its replies (more than %d lines or %d KiB in one reply)"
                             % (MAX_REPLY_LINES, MAX_REPLY_BYTES // 1024))

    def readline(self):
        while b"\n" not in self.buf:
            self._fill()
        line, _sep, self.buf = self.buf.partition(b"\n")
        self._count(len(line) + 1)
        text = line.rstrip(b"\r").decode("utf-8", "replace")
        self._log("S:", text)
        return text

    def read_exact(self, size):
        """IMAP literals: exactly size bytes, not logged."""
        self._count(size)
        while len(self.buf) < size:
            self._fill()
        data, self.buf = self.buf[:size], self.buf[size:]
        return data

    def send(self, text, shown=None):
        """Send one command line; ``shown`` replaces it in the transcript (credentials)."""
        self.send_pipelined([text], [shown])

    def send_pipelined(self, texts, shown=None):
        """Command lines in one write (RFC 2920): the server reads them together and answers them together,
        where two writes could each wait for the other side's delayed ACK."""
        for text, seen in zip(texts, shown or [None] * len(texts)):
            if "\r" in text or "\n" in text:
                raise ValueError("refusing to send a line with CR or LF in it")
            self._log("C:", text if seen is None else seen)
        self._reply_lines = self._reply_bytes = 0  # new commands, new replies
        self.sock.settimeout(self.deadline.step())
        self.sock.sendall(b"".join(text.encode("utf-8") + b"\r\n" for text in texts))

    def send_literal(self, data):
        """IMAP literal bytes (credentials): never logged, no line end of their own."""
        self.sock.settimeout(self.deadline.step())
        self.sock.sendall(data)

    def pending(self):
        """Bytes already received and not read; after a STARTTLS reply there must be none."""
        return len(self.buf)

    def start_tls(self, context, server_hostname):
        """Upgrade in place. Anything still buffered was sent in plaintext: drop it, report it."""
        leftover = self.buf
        self.buf = b""
        self.sock.settimeout(self.deadline.step())
        self.sock = context.wrap_socket(self.sock, server_hostname=server_hostname)
        return leftover

    def close(self):
        with contextlib.suppress(OSError):
            self.sock.close()
