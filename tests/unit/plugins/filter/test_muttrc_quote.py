"""muttrc_quote: the one muttrc escaping rule, checked against the real clients' tokenizer."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest
from ansible.errors import AnsibleFilterError
from mutt_versions import query_exit_ok

from ansible_collections.middlebury.mail_clients.plugins.filter.muttrc_quote import muttrc_quote

HOSTILE = [
    "O'Brien",
    'Zoë "Z" Ångström',
    "`id`",
    "$(id)",
    "a;b",
    "back\\slash",
    "'",
    "''",
    "# not a comment",
    "${HOME} $USER %s ~root",
    "trailing backslash\\",
    "",
]
REFUSED = ["line\nbreak", "cr\rhere", "nul\x00", "tab\there", "esc\x1b[31m", "del\x7f", "rtl\u202eoverride",
           "ls\u2028sep"]


@pytest.mark.parametrize("value", HOSTILE)
def test_quotes_as_one_single_quoted_token(value):
    quoted = muttrc_quote(value)
    assert quoted.startswith("'") and quoted.endswith("'")
    # Outside the '\'' sequences nothing but the value's own characters appears.
    assert quoted[1:-1].replace("'\\''", "'") == value


def test_numbers_are_quoted_as_text():
    assert muttrc_quote(993) == "'993'"


@pytest.mark.parametrize("value", REFUSED)
def test_refuses_control_characters_naming_the_field(value):
    with pytest.raises(AnsibleFilterError, match=r"mail_clients_users\[3\]\.full_name .*U\+"):
        muttrc_quote(value, "mail_clients_users[3].full_name")


@pytest.mark.parametrize("value", [None, True, ["x"], {"a": 1}])
def test_refuses_non_scalars(value):
    with pytest.raises(AnsibleFilterError, match="realname must be a string"):
        muttrc_quote(value, "realname")


def _query(client, rcfile, home):
    """Value of realname as the client reads it from rcfile (its -Q output, unescaped)."""
    proc = subprocess.run([client, "-n", "-F", str(rcfile), "-Q", "realname"], capture_output=True, text=True,
                          timeout=30, env={"HOME": str(home), "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                                           "LANG": "C.UTF-8"}, check=False)
    assert query_exit_ok(client, proc.returncode) and proc.stderr == "", proc
    line = proc.stdout.strip()
    # mutt: realname="v"; NeoMutt: set real_name = "v"; both escape \ and " with a backslash.
    raw = line.split("=", 1)[1].strip()
    assert raw.startswith('"') and raw.endswith('"'), line
    out, chars = [], iter(raw[1:-1])
    for char in chars:
        out.append(next(chars) if char == "\\" else char)
    return "".join(out)


@pytest.mark.parametrize("client", ["mutt", "neomutt"])
def test_real_client_reads_every_hostile_value_back_byte_exact(client, tmp_path):
    if shutil.which(client) is None:
        pytest.fail("%s is not installed (tests/apt/mutt.txt lists it)" % client)
    canary = tmp_path / "pwned"
    # "" is left out: NeoMutt replaces an empty real_name by the GECOS name, which is not our quoting.
    values = [v for v in HOSTILE if v] + ["`touch %s`x" % canary, "$(touch %s)" % canary]
    for index, value in enumerate(values):
        rcfile = tmp_path / ("rc%d" % index)
        rcfile.write_text("set realname = %s\n" % muttrc_quote(value), encoding="utf-8")
        assert _query(client, rcfile, tmp_path) == value
    assert not canary.exists(), "a quoted value was executed"
