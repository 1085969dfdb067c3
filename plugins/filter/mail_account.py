# Copyright (c) Middlebury College
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Filters exposing the settings model to playbooks and roles."""

from __future__ import annotations

DOCUMENTATION = r"""
name: mail_account
version_added: 0.1.0
short_description: Validate a mail account description and derive every setting from the documented defaults
description:
  - Takes O(_input), the C(mail_clients_account) mapping (all keys optional), and the optional list of named
    users, and returns one normalised account that every role of this collection renders from.
  - Documented defaults (college IT documentation) fill every key that is not given. Ports are derived from
    protocol and security unless given.
  - Anything that cannot be written safely into a client configuration is refused, and the error names the
    field, for example C(mail_clients_users[2].full_name).
positional: users
options:
  _input:
    description:
      - The account description. Keys are C(provider) (V(documented), the default, V(microsoft365) or
        V(google); a preset fills the servers, ports, security, V(oauth2), the folder names and the address as
        username, and each can still be given), C(mail_domain) (default V(middlebury.edu)), C(incoming_host)
        (default V(mail.middlebury.edu)), C(smtp_host) (default V(ssmtp.middlebury.edu)), C(protocol)
        (V(imap) or V(pop3), default V(imap)), C(incoming_security) (V(ssl) or V(starttls), default V(ssl);
        plaintext is refused), C(incoming_port) (default 993/143 for IMAP, 995/110 for POP3),
        C(smtp_security) (default V(starttls)), C(smtp_port) (default 25 with STARTTLS, 465 with SSL),
        C(auth) (V(password) meaning normal password, or V(oauth2); NTLM/SPA are refused),
        C(save_password) (default V(false)), C(pop_leave_on_server) (must stay V(true) for POP3),
        C(imap_subscriptions) (default V(true)), C(display_name) (account label) and C(folders)
        (a mapping with C(sent), C(drafts), C(trash), C(junk)), and C(oauth2) (used with V(oauth2) auth only, keys
        C(client_id), C(tenant) for Microsoft 365, C(authorization_endpoint), C(token_endpoint),
        C(device_authorization_endpoint) as https URLs, C(scopes)).
    type: dict
    required: true
  users:
    description:
      - The named users (C(mail_clients_users)). Each item has C(login) and optionally C(username) (mail login,
        default the login), C(email) (default username@mail_domain) and C(full_name).
      - Empty means lab mode, every person who logs in gets the account with the login name as username.
    type: list
    elements: dict
    default: []
"""

EXAMPLES = r"""
- name: Show the normalised account for a department that uses its own servers
  ansible.builtin.debug:
    msg: "{{ department | middlebury.mail_clients.mail_account }}"
  vars:
    department: {incoming_host: imap.example.edu, mail_domain: example.edu}

- name: Named users
  ansible.builtin.set_fact:
    account: "{{ mail_clients_account | default({}) | middlebury.mail_clients.mail_account(mail_clients_users) }}"
"""

RETURN = r"""
_value:
  description:
    - The normalised account with keys C(provider), C(mail_domain), C(display_name), C(incoming) (C(protocol), C(host),
      C(port), C(security)), C(smtp) (C(host), C(port), C(security)), C(auth), C(oauth2) (null unless V(oauth2),
      else C(issuer), C(tenant), the three endpoints, C(endpoint_host) (the token endpoint's host), C(scopes),
      C(mechanisms), C(client_id), C(client_secret)),
      C(ews) and C(graph) (a provider's web services, or null), C(username_format) (V(login) or V(email), what a
      lab login's username is), C(save_password),
      C(pop_leave_on_server), C(imap_subscriptions), C(folders), C(users) (each with C(login), C(username),
      C(email), C(full_name)) and C(lab_mode) (true when no users are listed).
  type: dict
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.middlebury.mail_clients.plugins.module_utils.account_model import (
    AccountError,
    normalize_account,
)


def mail_account(account=None, users=None):
    """Validate ``mail_clients_account`` (+ users) and return the normalised account."""
    try:
        return normalize_account(account or {}, users or [])
    except AccountError as exc:
        raise AnsibleFilterError("middlebury.mail_clients: invalid %s" % exc) from None


class FilterModule:
    def filters(self):
        return {"mail_account": mail_account}
