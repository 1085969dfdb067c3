"""Where the installed mutt and NeoMutt differ by version: the one place the tests know it."""

from __future__ import annotations

import functools
import re
import subprocess

# NeoMutt 2025 (Debian 13's 20250510) exits 1 after -Q even when the file is valid and the value is
# printed; earlier NeoMutt (Debian 12's 20220429) and mutt exit 0. Errors go to stderr in every version.
_NEOMUTT_Q_EXITS_1_FROM = 20250000


@functools.cache
def version(client: str) -> int:
    """NeoMutt's date-like release number (20250510), or mutt's dotted version as one number (2.2.9 -> 20209)."""
    first = subprocess.run([client, "-v"], capture_output=True, text=True, timeout=30, check=False).stdout
    first = first.splitlines()[0] if first else ""
    found = re.match(r"(?:NeoMutt|Mutt) (\d+)(?:\.(\d+))?(?:\.(\d+))?", first)
    if not found:
        raise AssertionError("%s -v printed no version: %r" % (client, first))
    if client.endswith("neomutt"):
        return int(found.group(1))
    major, minor, patch = (int(part or 0) for part in found.groups())
    return major * 10000 + minor * 100 + patch


def query_exit_ok(client: str, returncode: int) -> bool:
    """Whether `returncode` is what this client's -Q gives for a file it read without error."""
    expected = 1 if client.endswith("neomutt") and version(client) >= _NEOMUTT_Q_EXITS_1_FROM else 0
    return returncode == expected
