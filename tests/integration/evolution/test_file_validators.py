"""managed_files' built-in validators refuse what EDS, dconf or Thunderbird would silently misread (GLib's parser,
for real, through ctypes)."""

from __future__ import annotations

import pytest

from ansible_collections.middlebury.mail_clients.plugins.module_utils.file_validators import (
    ValidationError,
    validate,
)

GOOD_SOURCE = (b"# managed\n[Data Source]\nDisplayName=Zo\xc3\xab back\\\\slash\nEnabled=true\n\n"
               b"[Authentication]\nHost=h\n\n[Security]\nMethod=ssl-on-alternate-port\n")


def check(tmp_path, name, data):
    target = tmp_path / "candidate"
    target.write_bytes(data)
    validate({"name": name}, str(target), run_command=None)


def test_good_files_pass(tmp_path):
    check(tmp_path, "evolution-source", GOOD_SOURCE)
    check(tmp_path, "evolution-autoconfig", GOOD_SOURCE + b"\n[Autoconfig]\nRevision=abc\n")
    check(tmp_path, "dconf", b"[org/gnome/x]\na='never'\nb=true\nc=uint32 5\n")
    check(tmp_path, "dconf-locks", b"# locks\n/org/gnome/x/a\n")
    check(tmp_path, "json", b'{"policies": {"DisableAppUpdate": true}}\n')
    check(tmp_path, "xml", b"<?xml version='1.0'?>\n<clientConfig version='1.1'/>\n")


@pytest.mark.parametrize(("name", "data", "message"), [
    ("evolution-source", b"\xef\xbb\xbf" + GOOD_SOURCE, "byte order mark"),
    ("evolution-source", GOOD_SOURCE.replace(b"Zo\xc3\xab", b"Zo\xeb"), "UTF-8"),
    ("evolution-source", GOOD_SOURCE + b"not a key\n", "GLib cannot load it"),
    ("evolution-source", GOOD_SOURCE.replace(b"[Data Source]", b"[Data Sourc]"), "[Data Source]"),
    ("evolution-source", GOOD_SOURCE.replace(b"ssl-on-alternate-port", b"ssl"), "[Security] Method"),
    ("evolution-source", GOOD_SOURCE.replace(b"\n[Security]\nMethod=ssl-on-alternate-port\n", b""),
     "[Security] Method"),
    ("evolution-source", GOOD_SOURCE.replace(b"Enabled=true", b"Enabled=True"), "lowercase"),
    ("evolution-autoconfig", GOOD_SOURCE, "Revision"),
    ("dconf", b"[org/gnome/x]\na=never\n", "GVariant"),
    ("dconf-locks", b"org/gnome/x/a\n", "key path"),
    ("json", b'{"policies": {"DisableAppUpdate": true,}}\n', "JSON"),
    ("xml", b"<clientConfig><emailProvider></clientConfig>\n", "XML"),
    ("no-such-validator", b"", "unknown validator"),
])
def test_refusals_name_the_problem(tmp_path, name, data, message):
    with pytest.raises(ValidationError) as refused:
        check(tmp_path, name, data)
    assert message in str(refused.value)
