# Copyright (c) Middlebury College
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The one escaping rule for muttrc values (mutt 2.x and NeoMutt share the tokenizer).

Inside single quotes mutt and NeoMutt expand nothing: no ``$VAR``, no backticks, no backslash
escapes, and ``;``/``#`` are literal. Quoted segments concatenate as in sh, so a ``'`` is written
as ``'\\''`` (close, escaped quote, reopen). What single quotes cannot protect is a line break:
the parser splits commands at a newline even inside quotes, so a value with a newline would
start an attacker's own command. Control characters are therefore refused, never escaped.
"""

from __future__ import annotations

DOCUMENTATION = r"""
name: muttrc_quote
version_added: 0.1.0
short_description: Quote a value for a mutt or NeoMutt configuration file, byte-exact
description:
  - Returns O(_input) as one single-quoted muttrc token that mutt 2.x and NeoMutt read back unchanged.
    Inside single quotes neither client expands C($VAR), backticks or backslashes, and C(;) and C(#) lose
    their meaning; a single quote is written as C('\'').
  - Values with control or invisible formatting characters (newline, carriage return, NUL, tab, U+202E, ...)
    are refused with an error naming O(field), because a line break starts a new command even inside
    quotes. Nothing is escaped silently.
  - Use it for every value that is not fixed template text. Never put its output inside double quotes,
    backticks or hook command strings, which the clients parse a second time.
positional: field
options:
  _input:
    description: The value (a string or a number).
    type: raw
    required: true
  field:
    description: Name of the input field, used in the error message (for example C(mail_clients_users[1].full_name)).
    type: str
"""

EXAMPLES = r"""
- name: A realname line that survives any printable name
  ansible.builtin.debug:
    msg: "set realname = {{ user.full_name | middlebury.mail_clients.muttrc_quote('mail_clients_users[0].full_name') }}"
  vars:
    user:
      full_name: "Zoë \"Z\" O'Brien"
  # -> set realname = 'Zoë "Z" O'\''Brien'
"""

RETURN = r"""
_value:
  description: The quoted token, including the surrounding single quotes.
  type: str
"""

import unicodedata

from ansible.errors import AnsibleFilterError

# Same classes the account model refuses (Cc control, Cf format such as U+202E, surrogates,
# private use, line/paragraph separators): defence in depth for values that bypass the model.
_REFUSED_CATEGORIES = ("Cc", "Cf", "Cs", "Co", "Zl", "Zp")


def _refusal(value):
    """Why ``value`` cannot be written into a muttrc, or None."""
    for index, char in enumerate(value):
        if unicodedata.category(char) in _REFUSED_CATEGORIES:
            return "contains the control or formatting character U+%04X at position %d, which a muttrc " \
                   "cannot carry safely (a line break would start a new command)" % (ord(char), index)
    return None


def muttrc_quote(value, field=None):
    """Return ``value`` as one single-quoted muttrc token, or refuse it naming ``field``."""
    name = field or "value"
    if isinstance(value, bool) or value is None or isinstance(value, (dict, list)):
        raise AnsibleFilterError("muttrc_quote: %s must be a string or a number, got %s"
                                 % (name, type(value).__name__))
    text = str(value)
    reason = _refusal(text)
    if reason:
        raise AnsibleFilterError("muttrc_quote: %s %s" % (name, reason))
    return "'" + text.replace("'", "'\\''") + "'"


class FilterModule:
    def filters(self):
        return {"muttrc_quote": muttrc_quote}
