# Copyright (c) Middlebury College
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Which values cannot go into a systemd unit file as one word, each refusal naming its variable.

Unit files cannot quote a value for every reader at once (ExecStart splits words, other keys do not, and
``%`` specifiers are expanded everywhere), so our units carry values only as plain words, and each variable
has the pattern of what it may be. The checks are the role's data; this is the one loop over them."""

from __future__ import annotations

DOCUMENTATION = r"""
name: unit_word_refusals
version_added: 0.1.0
short_description: Refusals for values a systemd unit file cannot carry as one plain word
description:
  - Takes a list of checks, each with the variable's O(_input[].name), its O(_input[].value), the
    O(_input[].pattern) (a Python regular expression the whole value must match) and O(_input[].why) (what the
    value must be, in words).
  - Returns one message per value that is not a string matching its pattern, in the order given, each starting
    with the variable's name; an empty list when every value can be written.
options:
  _input:
    description: The checks.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: The variable's name, which the message starts with.
        type: str
        required: true
      value:
        description: The value to write into the unit.
        type: raw
        required: true
      pattern:
        description: Regular expression the whole value must match.
        type: str
        required: true
      why:
        description: What the value must be (for example C(an absolute path)).
        type: str
        required: true
"""

EXAMPLES = r"""
- name: Refuse a directory that is not an absolute plain path
  ansible.builtin.fail:
    msg: "{{ refusals | first }}"
  vars:
    refusals: "{{ [{'name': 'lab_pull_directory', 'value': lab_pull_directory, 'pattern': '^/[A-Za-z0-9._/-]*$',
                    'why': 'an absolute path'}] | middlebury.mail_clients.unit_word_refusals }}"
  when: refusals | length > 0
"""

RETURN = r"""
_value:
  description:
    - The refusals, in the order of the checks, each starting with the variable's name, then the value as JSON,
      why it cannot be written and what it must be.
  type: list
  elements: str
"""

import json
import re

from ansible.errors import AnsibleFilterError


def unit_word_refusals(checks):
    """One message per check whose value is not a string matching its pattern, naming the variable."""
    if not isinstance(checks, list):
        raise AnsibleFilterError("unit_word_refusals: expects a list of checks, got %s" % type(checks).__name__)
    refusals = []
    for check in checks:
        value = check["value"]
        if not (isinstance(value, str) and re.fullmatch(check["pattern"], value)):
            refusals.append("%s: %s cannot be written into a systemd unit as one word (it must be %s)"
                            % (check["name"], json.dumps(value, default=str), check["why"]))
    return refusals


class FilterModule:
    def filters(self):
        return {"unit_word_refusals": unit_word_refusals}
