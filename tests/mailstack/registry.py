"""Machine-wide record of stacks, under $TMPDIR/mailstack-instances: which workdir runs which
instance (<N>.json), a lock per instance (<N>.lock) and test-session claims (<N>.claim)."""

from __future__ import annotations

import fcntl
import json
import tempfile
from contextlib import contextmanager
from pathlib import Path


def registry_dir() -> Path:
    d = Path(tempfile.gettempdir()) / "mailstack-instances"
    d.mkdir(mode=0o755, exist_ok=True)
    return d


@contextmanager
def instance_lock(instance: int):
    """Serialise start/stop of one instance across processes (e.g. two pytest sessions)."""
    with open(registry_dir() / ("%d.lock" % instance), "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def registered_workdir(instance: int) -> Path | None:
    """Workdir of the stack last started for `instance` (it may have died since)."""
    try:
        return Path(json.loads((registry_dir() / ("%d.json" % instance)).read_text())["workdir"])
    except (OSError, ValueError, KeyError):
        return None


def registered_instances() -> list[int]:
    return sorted(int(p.stem) for p in registry_dir().glob("*.json") if p.stem.isdigit())


def register(instance: int, workdir: Path) -> None:
    (registry_dir() / ("%d.json" % instance)).write_text(json.dumps({"workdir": str(workdir)}))


def unregister(instance: int, workdir: Path) -> None:
    if registered_workdir(instance) == workdir:
        (registry_dir() / ("%d.json" % instance)).unlink(missing_ok=True)
