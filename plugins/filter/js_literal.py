# Copyright (c) Middlebury College
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""One escaping function for JavaScript: Thunderbird's AutoConfig .cfg is real JavaScript.

A syntax error in the .cfg makes Thunderbird refuse to start (in headless mode it hangs), and
a quoted number is silently ignored (Thunderbird then falls back to plaintext on port 143), so
every value the role puts in the .cfg comes out of here as a correctly typed literal.
"""

from __future__ import annotations

DOCUMENTATION = r"""
name: js_literal
version_added: 0.1.0
short_description: Write a value as a JavaScript literal for Thunderbird's AutoConfig (.cfg) file
description:
  - Returns a JavaScript literal for O(_input). Strings become double-quoted string literals in pure ASCII;
    C(") and C(\) are backslash-escaped and every other character outside printable ASCII is written as a
    C(\uXXXX) escape (a surrogate pair above U+FFFF), so Thunderbird reads the exact same characters back.
  - Integers and booleans are written unquoted. Thunderbird silently ignores a port or socket type written
    as a string and falls back to its defaults (plaintext on port 143), so numbers must stay numbers.
  - Control and invisible formatting characters (Unicode categories Cc, Cf, Cs, Co, Zl, Zp, for example a
    newline, a tab or NUL) are refused with an error that names O(field). Other types (floats, lists,
    None) are refused too.
positional: field
options:
  _input:
    description: The value to write.
    type: raw
    required: true
  field:
    description: Name of the setting the value came from, used in error messages.
    type: str
"""

EXAMPLES = r"""
# defaultPref("mail.identity.id_x.fullName", "Zo\u00eb \"Z\" \u00c5ngstr\u00f6m");
- name: Render one line of a .cfg
  ansible.builtin.debug:
    msg: >-
      defaultPref("mail.identity.id_x.fullName",
      {{ 'Zoë "Z" Ångström' | middlebury.mail_clients.js_literal('mail_clients_users[0].full_name') }});
"""

RETURN = r"""
_value:
  description: The JavaScript literal, for example V("O'Brien"), V(993) or V(true).
  type: str
"""

import unicodedata

from ansible.errors import AnsibleFilterError

# Characters that no client configuration can carry safely; the account model refuses the same
# set, this is the second line of defence for values that did not come through the model.
_REFUSED_CATEGORIES = ("Cc", "Cf", "Cs", "Co", "Zl", "Zp")
# Escapes JavaScript and JSON agree on; everything else outside printable ASCII becomes \uXXXX
# so that the file is pure ASCII whatever encoding a reader assumes.
_SHORT_ESCAPES = {'"': '\\"', "\\": "\\\\"}


def _refuse(field, message):
    where = field or "value"
    raise AnsibleFilterError("js_literal: %s %s" % (where, message))


def _escape_char(char, field):
    if char in _SHORT_ESCAPES:
        return _SHORT_ESCAPES[char]
    if " " <= char <= "~":
        return char
    category = unicodedata.category(char)
    if category in _REFUSED_CATEGORIES:
        _refuse(field, "contains the control or formatting character U+%04X (%s), which the "
                       "Thunderbird configuration cannot carry safely" % (ord(char), unicodedata.name(char, category)))
    code = ord(char)
    if code > 0xFFFF:
        # JavaScript strings are UTF-16: astral characters are written as a surrogate pair.
        code -= 0x10000
        return "\\u%04x\\u%04x" % (0xD800 + (code >> 10), 0xDC00 + (code & 0x3FF))
    return "\\u%04x" % code


def js_literal(value, field=None):
    """A JavaScript literal for a string, an integer or a boolean; anything else is refused."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if not isinstance(value, str):
        _refuse(field, "must be a string, an integer or a boolean, got %s" % type(value).__name__)
    return '"%s"' % "".join(_escape_char(char, field) for char in value)


class FilterModule:
    def filters(self):
        return {"js_literal": js_literal}
