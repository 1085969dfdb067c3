# Copyright (c) Middlebury College
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Escape one value for a GLib key file (evolution-data-server ``.source`` files, dconf keyfiles).

The output is byte-for-byte what GLib's own ``g_key_file_set_string`` writes, so a file that
evolution-source-registry re-serialises keeps our values textually unchanged and the
``managed_files`` keyfile comparison stays quiet on the next run.
"""

from __future__ import annotations

DOCUMENTATION = r"""
name: gkeyfile
version_added: 0.1.0
short_description: Escape a value for a GLib key file (evolution-data-server sources, dconf keyfiles)
description:
  - Returns O(_input) written the way GLib's own C(g_key_file_set_string) writes it, so that
    evolution-source-registry, which re-serialises the C(.source) files it loads, leaves our values textually
    unchanged.
  - Strings have C(\) doubled and leading spaces written as C(\s); everything else, including C(;), C(#),
    C(=), quotes and non-ASCII text, is kept as is (UTF-8).
  - Booleans become lowercase V(true)/V(false) (GLib reads C(False) as an invalid value and falls back to
    the default), integers their decimal form, a list of strings a C(;)-separated list with C(;) in items
    escaped.
  - Control characters (newline, tab, NUL, ...), invisible formatting characters and unpaired surrogates are
    refused with an error that names O(field).
options:
  _input:
    description: The value.
    type: raw
    required: true
  field:
    description: The input's name for error messages, for example C(mail_clients_users[2].full_name).
    type: str
  autoconfig:
    description:
      - Also refuse C(${NAME}). evolution-data-server expands such variables in every value of an autoconfig
        template and offers no escape for them.
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: A source file line with a free-text value
  ansible.builtin.debug:
    msg: "Name={{ user.full_name | middlebury.mail_clients.gkeyfile(field='mail_clients_users[0].full_name') }}"

- name: Booleans for GLib
  ansible.builtin.debug:
    msg: "UseSubscriptions={{ true | middlebury.mail_clients.gkeyfile }}"
"""

RETURN = r"""
_value:
  description: The escaped value, to be written after C(Key=) on one line.
  type: str
"""

import re
import unicodedata

from ansible.errors import AnsibleFilterError

# Same classes the account model refuses: nothing a client config line can carry safely.
_REFUSED_CATEGORIES = ("Cc", "Cf", "Cs", "Co", "Zl", "Zp")
# evolution-source-registry expands ${NAME} in every autoconfig template value and has no escape
# for it (src/services/evolution-source-registry/evolution-source-registry-autoconfig.c).
_AUTOCONFIG_VARIABLE = re.compile(r"\$\{\w+\}")


def _fail(field, message):
    raise AnsibleFilterError("%s: %s" % (field or "gkeyfile value", message))


def _escape_string(text, field, autoconfig, in_list=False):
    bad = next((ch for ch in text if unicodedata.category(ch) in _REFUSED_CATEGORIES), None)
    if bad is not None:
        _fail(field, "contains the control or invisible character U+%04X, which a key file line cannot "
                     "carry safely" % ord(bad))
    if autoconfig and _AUTOCONFIG_VARIABLE.search(text):
        _fail(field, "contains %r, which evolution-data-server would replace by a variable's value in an "
                     "autoconfig template (there is no way to escape it)" % _AUTOCONFIG_VARIABLE.search(text).group())
    escaped = text.replace("\\", "\\\\")
    if in_list:
        escaped = escaped.replace(";", "\\;")
    # GLib keeps interior and trailing spaces but strips leading ones unless written as \s.
    stripped = escaped.lstrip(" ")
    return "\\s" * (len(escaped) - len(stripped)) + stripped


def gkeyfile(value, field=None, autoconfig=False):
    """One key file value: strings escaped as GLib does, booleans ``true``/``false``, lists ``a;b;``.

    ``field`` names the input in error messages; ``autoconfig`` also refuses ``${NAME}``, which
    evolution-data-server would expand in an autoconfig template."""
    if value is None:
        return ""
    # bool before int: True is an int in Python, and GLib reads only lowercase true/false.
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return _escape_string(value, field, autoconfig)
    if isinstance(value, (list, tuple)):
        items = []
        for index, item in enumerate(value):
            item_field = "%s[%d]" % (field or "gkeyfile value", index)
            if not isinstance(item, str):
                _fail(item_field, "list items must be strings, got %s" % type(item).__name__)
            items.append(_escape_string(item, item_field, autoconfig, in_list=True) + ";")
        return "".join(items)
    _fail(field, "cannot be written to a key file: expected a string, number, boolean or list of strings, "
                 "got %s" % type(value).__name__)
    return None  # not reached: _fail raises


class FilterModule:
    def filters(self):
        return {"gkeyfile": gkeyfile}
