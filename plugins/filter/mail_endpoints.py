# Copyright (c) Middlebury College
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The endpoints the verifier checks for an account: the documented ones, or the two its clients use."""

from __future__ import annotations

DOCUMENTATION = r"""
name: mail_endpoints
version_added: 0.1.0
short_description: The mail endpoints to check for an account
description:
  - Returns the four documented endpoints (IMAP 993 implicit TLS, IMAP 143 STARTTLS, POP3 995 implicit TLS,
    SMTP 25 STARTTLS) on the account's hosts, or only the two endpoints the account's clients use.
options:
  _input:
    description: An account description (as for P(middlebury.mail_clients.mail_account#filter)) or its normalised form.
    type: dict
    required: true
  which:
    description: V(documented) for the four documented endpoints, V(account) for the incoming and SMTP endpoints
      of the account.
    type: str
    default: documented
    choices: [documented, account]
"""

EXAMPLES = r"""
- name: Endpoints to verify
  ansible.builtin.debug:
    msg: "{{ {} | middlebury.mail_clients.mail_endpoints }}"
"""

RETURN = r"""
_value:
  description: A list of endpoints, each with C(name), C(protocol), C(host), C(port) and C(security).
  type: list
  elements: dict
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.middlebury.mail_clients.plugins.module_utils.account_model import (
    AccountError,
    account_endpoints,
    documented_endpoints,
    normalize_account,
)


def mail_endpoints(account=None, which="documented"):
    """Endpoints to check: the four documented ones, or the two the account's clients use."""
    if which not in ("documented", "account"):
        raise AnsibleFilterError("mail_endpoints: 'which' must be 'documented' or 'account', got %r" % (which,))
    try:
        normalized = account if isinstance(account, dict) and "incoming" in account \
            else normalize_account(account or {})
    except AccountError as exc:
        raise AnsibleFilterError("middlebury.mail_clients: invalid %s" % exc) from None
    return documented_endpoints(normalized) if which == "documented" else account_endpoints(normalized)


class FilterModule:
    def filters(self):
        return {"mail_endpoints": mail_endpoints}
