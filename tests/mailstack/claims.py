"""Pick an instance number nobody else uses: not claimed by a live process, no stack registered as
running on it, nothing listening in its address block. Claims are O_EXCL files holding the PID."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from . import procs, settings
from .registry import registered_workdir, registry_dir


def _claim_path(instance: int) -> Path:
    return registry_dir() / ("%d.claim" % instance)


def _block_busy(instance: int) -> bool:
    prefix = settings.block(instance) + "."
    return any(addr.startswith(prefix) for addr, _port, _inode in procs.listening_sockets())


def claim(instance: int) -> bool:
    """Claim `instance` for this process; False if a live process holds it (stale claims are taken over)."""
    path = _claim_path(instance)
    for _attempt in range(2):
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            holder = procs.read_pidfile(path)
            if holder and holder != os.getpid() and procs.alive(holder):
                return False
            if holder == os.getpid():
                return True
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            continue
        with os.fdopen(fd, "w") as fh:
            fh.write("%d\n" % os.getpid())
        return True
    return False


def release(instance: int) -> None:
    path = _claim_path(instance)
    if procs.read_pidfile(path) == os.getpid():
        path.unlink(missing_ok=True)


def prune_orphans() -> list[int]:
    """Stop stacks whose claiming test session died without stopping them (e.g. killed pytest).
    Only claimed instances are touched: a stack started from the CLI is never claimed."""
    from .stack import MailStack

    pruned = []
    for path in registry_dir().glob("*.claim"):
        holder = procs.read_pidfile(path)
        if holder and procs.alive(holder):
            continue
        instance = int(path.stem)
        workdir = registered_workdir(instance)
        if workdir:
            with contextlib.suppress(Exception):
                MailStack(workdir, instance).stop()
                pruned.append(instance)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
    return pruned


def claim_free_instance(first: int = 100, last: int = 999) -> int:
    """Claim and return the first instance in [first, last] that is free in every sense."""
    from .stack import MailStack

    prune_orphans()
    for instance in range(first, last + 1):
        other = registered_workdir(instance)
        if other and MailStack(other, instance).is_running():
            continue
        if _block_busy(instance) or not claim(instance):
            continue
        return instance
    raise RuntimeError("no free mail stack instance in %d..%d" % (first, last))
