# Copyright (c) Middlebury College
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Filters exposing the settings model to playbooks and roles."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.middlebury.mail_clients.plugins.module_utils.account_model import (
    AccountError,
    account_endpoints,
    documented_endpoints,
    normalize_account,
)


def mail_account(account=None, users=None):
    """Validate ``mail_clients_account`` (+ users) and return the normalised account."""
    try:
        return normalize_account(account or {}, users or [])
    except AccountError as exc:
        raise AnsibleFilterError("middlebury.mail_clients: invalid %s" % exc) from None


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
        return {"mail_account": mail_account, "mail_endpoints": mail_endpoints}
