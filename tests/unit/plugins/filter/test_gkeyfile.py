"""The GKeyFile filter writes exactly what GLib writes and refuses what a key file cannot carry."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.middlebury.mail_clients.plugins.filter.gkeyfile import FilterModule, gkeyfile

HOSTILE = ["O'Brien", 'Zoë "Z" Ångström', "`id`", "$(id)", "a;b", "back\\slash", "#not a comment",
           "[group]", "k=v", "  two leading", "trailing  ", "\\s", "日本語 名前", "${not autoconfig here}"]
SYSTEM_PYTHON = "/usr/bin/python3"

# Runs under the system Python, which has GLib's introspection data (python3-gi).
_GLIB_ROUND_TRIP = r"""
import json, sys
from gi.repository import GLib
cases = json.load(sys.stdin)
written = GLib.KeyFile()
for i, text in enumerate(cases["strings"]):
    written.set_string("G", "k%d" % i, text)
written.set_string_list("G", "list", cases["list"])
ours = GLib.KeyFile()
ours.load_from_data(cases["ours"], len(cases["ours"].encode()), GLib.KeyFileFlags.NONE)
print(json.dumps({
    "glib_writes": [written.get_value("G", "k%d" % i) for i in range(len(cases["strings"]))],
    "glib_list": written.get_value("G", "list"),
    "glib_reads": [ours.get_string("G", "k%d" % i) for i in range(len(cases["strings"]))],
    "glib_reads_list": ours.get_string_list("G", "list"),
    "glib_reads_bool": [ours.get_boolean("G", "t"), ours.get_boolean("G", "f")],
}))
"""


def test_registered():
    assert FilterModule().filters() == {"gkeyfile": gkeyfile}


def test_scalars():
    assert gkeyfile(True) == "true"
    assert gkeyfile(False) == "false"
    assert gkeyfile(993) == "993"
    assert gkeyfile(None) == ""
    assert gkeyfile("plain") == "plain"
    assert gkeyfile("back\\slash") == "back\\\\slash"
    assert gkeyfile("a;b") == "a;b"
    assert gkeyfile(" x") == "\\sx"
    assert gkeyfile(["a;b", "c"]) == "a\\;b;c;"


@pytest.mark.parametrize("bad", ["a\nb", "a\rb", "a\x00b", "a\tb", "\x1b[31m", "a\u2028b", "a\u200eb", "\ud800"])
def test_refuses_control_characters_naming_the_field(bad):
    with pytest.raises(AnsibleFilterError, match=r"^mail_clients_users\[3\]\.full_name: .*U\+"):
        gkeyfile(bad, field="mail_clients_users[3].full_name")


def test_refuses_control_characters_in_list_items():
    with pytest.raises(AnsibleFilterError, match=r"^cc\[1\]: "):
        gkeyfile(["ok", "no\nway"], field="cc")


def test_autoconfig_refuses_variables_only_there():
    assert gkeyfile("${HOME}") == "${HOME}"
    assert gkeyfile("$ {HOME} and $(id) and ${", autoconfig=True) == "$ {HOME} and $(id) and ${"
    with pytest.raises(AnsibleFilterError, match=r"^mail_clients_account\.display_name: .*\$\{HOME\}"):
        gkeyfile("at ${HOME}", field="mail_clients_account.display_name", autoconfig=True)


@pytest.mark.parametrize("bad", [{"a": 1}, 1.5, b"bytes"])
def test_refuses_other_types(bad):
    with pytest.raises(AnsibleFilterError, match=r"^x: cannot be written"):
        gkeyfile(bad, field="x")


def test_matches_glib_both_ways():
    """GLib writes what we write, and reads back the original text (real GLib, not a model of it)."""
    if not shutil.which(SYSTEM_PYTHON):
        pytest.fail("%s with python3-gi is required (tests/apt/evolution.txt)" % SYSTEM_PYTHON)
    items = ["a;b", "c\\d", " e"]
    ours = "[G]\n" + "".join("k%d=%s\n" % (i, gkeyfile(text)) for i, text in enumerate(HOSTILE))
    ours += "list=%s\nt=%s\nf=%s\n" % (gkeyfile(items), gkeyfile(True), gkeyfile(False))
    proc = subprocess.run([SYSTEM_PYTHON, "-c", _GLIB_ROUND_TRIP], input=json.dumps(
        {"strings": HOSTILE, "list": items, "ours": ours}), capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    glib = json.loads(proc.stdout)
    assert glib["glib_writes"] == [gkeyfile(text) for text in HOSTILE]
    assert glib["glib_list"] == gkeyfile(items)
    assert glib["glib_reads"] == HOSTILE
    assert glib["glib_reads_list"] == items
    assert glib["glib_reads_bool"] == [True, False]
