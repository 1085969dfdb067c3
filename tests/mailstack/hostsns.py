"""Reach the stand-ins by their real names without touching the host's /etc/hosts: a hosts-format
file bind-mounted over /etc/hosts inside a private mount namespace (needs root and util-linux)."""

from __future__ import annotations

import shlex
import shutil
from pathlib import Path

_SETUP = 'mount --bind %s /etc/hosts && exec "$@"'


def write_hosts_file(path: Path, mapping: dict) -> Path:
    """The host's own entries (minus any for our names) followed by ours, so localhost etc. still resolve."""
    try:
        base = Path("/etc/hosts").read_text().splitlines()
    except OSError:
        base = ["127.0.0.1 localhost"]
    ours = set(mapping)
    kept = [line for line in base if not (set(line.split("#", 1)[0].split()[1:]) & ours)]
    lines = kept + ["# stand-ins written by tests/mailstack"] + ["%s %s" % (ip, name) for name, ip in mapping.items()]
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("\n".join(lines) + "\n")
    tmp.chmod(0o644)
    tmp.replace(path)
    return path


def wrap(argv, hosts_file: Path) -> list[str]:
    """argv prefixed so that it runs with `hosts_file` as /etc/hosts (private mount namespace)."""
    if not shutil.which("unshare"):
        raise RuntimeError("unshare (util-linux) is needed to run clients against the test stack")
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c", _SETUP % shlex.quote(str(hosts_file)),
            "mailstack-hosts", *[str(a) for a in argv]]
