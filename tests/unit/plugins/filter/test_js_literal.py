"""The js_literal filter writes literals a real JavaScript engine reads back exactly, and refuses the rest."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.middlebury.mail_clients.plugins.filter.js_literal import FilterModule, js_literal

HOSTILE = ["O'Brien", 'Zoë "Z" Ångström', "`id`", "$(id)", "a;b", "back\\slash", "\\u0041", "\\",
           '"', "'", "${x}", "</script>", "日本語 名前", "emoji 😀 (astral)", "a\\\"b", "// not a comment",
           "*/ x /*", "", "%s", "\u00a0nbsp"]
REFUSED = ["new\nline", "nul\x00", "tab\there", "cr\r", "esc\x1b[31m", "del\x7f", "c1\x85", "ls\u2028",
           "ps\u2029", "rlo\u202e", "bom\ufeff", "zwj\u200d", "lone\ud800"]


def node_eval(literals):
    """Parse each literal with Node.js (V8) and return the decoded values as JSON."""
    node = shutil.which("node")
    assert node, "node (Debian package nodejs, tests/apt/thunderbird.txt) is required for this test"
    program = "process.stdout.write(JSON.stringify([%s]))" % ",".join(literals)
    proc = subprocess.run([node, "-e", program], capture_output=True, text=True, timeout=30, check=False)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_hostile_strings_round_trip_through_a_javascript_engine():
    literals = [js_literal(text, "f") for text in HOSTILE]
    assert node_eval(literals) == HOSTILE


def test_output_is_ascii_and_one_double_quoted_token():
    for text in HOSTILE:
        literal = js_literal(text)
        assert literal.isascii()
        assert literal.startswith('"') and literal.endswith('"')
        # No unescaped quote inside: the literal cannot end early and let text run as code.
        inner = literal[1:-1].replace("\\\\", "").replace('\\"', "")
        assert '"' not in inner


def test_known_escapes():
    assert js_literal("O'Brien") == '"O\'Brien"'
    assert js_literal('a"b\\c') == '"a\\"b\\\\c"'
    assert js_literal("Zoë") == '"Zo\\u00eb"'
    assert js_literal("😀") == '"\\ud83d\\ude00"'


def test_numbers_and_booleans_stay_unquoted():
    assert js_literal(993) == "993"
    assert js_literal(True) == "true"
    assert js_literal(False) == "false"
    assert node_eval([js_literal(25), js_literal(True)]) == [25, True]
    # A port that arrives as text stays text: the role must pass real integers, and the
    # node-based .cfg check in the role tests would show the difference.
    assert js_literal("993") == '"993"'


@pytest.mark.parametrize("text", REFUSED)
def test_control_characters_are_refused_naming_the_field(text):
    with pytest.raises(AnsibleFilterError) as err:
        js_literal(text, "mail_clients_users[3].full_name")
    assert "mail_clients_users[3].full_name" in str(err.value)
    assert "U+" in str(err.value)


@pytest.mark.parametrize("value", [None, 1.5, ["a"], {"a": 1}, b"bytes"])
def test_other_types_are_refused(value):
    with pytest.raises(AnsibleFilterError, match="thunderbird_x"):
        js_literal(value, "thunderbird_x")


def test_registered_as_filter():
    assert FilterModule().filters()["js_literal"] is js_literal
