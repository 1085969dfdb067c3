"""The role's pre-flight checker refuses what EDS or dconf would silently misread (GLib's parser, for real)."""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

import pytest

CHECKER = Path(__file__).resolve().parents[3] / "roles" / "evolution" / "files" / "keyfile_check.py"
GOOD_SOURCE = (b"# managed\n[Data Source]\nDisplayName=Zo\xc3\xab back\\\\slash\nEnabled=true\n\n"
               b"[Authentication]\nHost=h\n\n[Security]\nMethod=ssl-on-alternate-port\n")


def check(tmp_path, kind, data):
    target = tmp_path / "candidate"
    target.write_bytes(data)
    # Exactly as managed_files runs it: the script inlined with -c, the file substituted for %s.
    command = "/usr/bin/python3 -c %s %s %%s" % (shlex.quote(CHECKER.read_text()), kind)
    argv = [arg.replace("%s", str(target)) for arg in shlex.split(command)]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)


def test_checker_text_survives_the_validate_substitution():
    assert "%s" not in CHECKER.read_text()


def test_good_files_pass(tmp_path):
    assert check(tmp_path, "source", GOOD_SOURCE).returncode == 0
    assert check(tmp_path, "autoconfig", GOOD_SOURCE + b"\n[Autoconfig]\nRevision=abc\n").returncode == 0
    assert check(tmp_path, "dconf", b"[org/gnome/x]\na='never'\nb=true\nc=uint32 5\n").returncode == 0
    assert check(tmp_path, "locks", b"# locks\n/org/gnome/x/a\n").returncode == 0


@pytest.mark.parametrize(("kind", "data", "message"), [
    ("source", b"\xef\xbb\xbf" + GOOD_SOURCE, "byte order mark"),
    ("source", GOOD_SOURCE.replace(b"Zo\xc3\xab", b"Zo\xeb"), "UTF-8"),
    ("source", GOOD_SOURCE + b"not a key\n", "GLib cannot load it"),
    ("source", GOOD_SOURCE.replace(b"[Data Source]", b"[Data Sourc]"), "[Data Source]"),
    ("source", GOOD_SOURCE.replace(b"ssl-on-alternate-port", b"ssl"), "[Security] Method"),
    ("source", GOOD_SOURCE.replace(b"\n[Security]\nMethod=ssl-on-alternate-port\n", b""), "[Security] Method"),
    ("source", GOOD_SOURCE.replace(b"Enabled=true", b"Enabled=True"), "lowercase"),
    ("autoconfig", GOOD_SOURCE, "Revision"),
    ("dconf", b"[org/gnome/x]\na=never\n", "GVariant"),
    ("locks", b"org/gnome/x/a\n", "key path"),
])
def test_refusals_name_the_problem(tmp_path, kind, data, message):
    proc = check(tmp_path, kind, data)
    assert proc.returncode == 1 and message in proc.stderr, proc.stderr
