# Copyright (c) Middlebury College
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""One overall deadline shared by every step, and per-phase timings in milliseconds."""

from __future__ import annotations

import contextlib
import socket
import time


class DeadlineExceeded(socket.timeout):
    """The overall deadline ran out before a step could start.

    A subclass of socket.timeout so that it is classified like any other timeout."""


class Deadline:
    """Threads cannot be killed, so every blocking call gets min(step timeout, time left)."""

    def __init__(self, seconds, step_timeout):
        self.end = time.monotonic() + seconds
        self.step_timeout = step_timeout

    def remaining(self):
        return self.end - time.monotonic()

    def step(self, timeout=None):
        left = self.remaining()
        if left <= 0:
            raise DeadlineExceeded("overall deadline exceeded")
        return min(self.step_timeout if timeout is None else timeout, left)


def ms(seconds):
    return round(seconds * 1000.0, 1)


class Timings:
    """Phase name -> milliseconds; a phase run twice (never, today) would add up."""

    def __init__(self):
        self.start = time.perf_counter()
        self.phases = {}

    @contextlib.contextmanager
    def phase(self, name):
        begin = time.perf_counter()
        try:
            yield
        finally:
            self.phases[name] = round(self.phases.get(name, 0.0) + ms(time.perf_counter() - begin), 1)

    def as_dict(self):
        out = dict(self.phases)
        out["total"] = ms(time.perf_counter() - self.start)
        return out
