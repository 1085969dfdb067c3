#!/usr/bin/python
# Copyright (c) Middlebury College
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# The work is done by the action plugin of the same name (plugins/action/client_files.py) on the controller,
# which then runs managed_files on the host; this file holds the documentation.

from __future__ import annotations

DOCUMENTATION = r"""
---
module: client_files
short_description: Check, render and write the mail clients' files for one host in one module call
version_added: 0.2.0
author:
  - Middlebury College ITS (@middlebury)
description:
  - The engine of the collection's client roles and of C(playbooks/site.yml). On the controller, for each client
    in O(clients), it reads the role's options from the host's variables and checks them against the role's
    argument spec, normalises O(ignore:mail_clients_account) and O(ignore:mail_clients_users) once with the
    account model (a refusal starts with the field it names, for example C(mail_clients_account.auth)),
    asks the client's plan which files it gets, and renders the role's templates.
  - Then it installs the packages of the clients whose C(<client>_install) option is true (one run of the
    C(ansible.builtin.package) action, which gathers the package manager fact if needed), and writes every file of
    every client with one call of M(middlebury.mail_clients.managed_files), each new file validated once before
    anything goes live, compiling the dconf database in the same call when a dconf file changed. A configured host
    with installs off costs one remote execution.
  - Hosts with exactly the same inputs (options, account, check mode, OS layout) share one render per run.
  - Use the roles (M(middlebury.mail_clients.mutt) and the others) or C(playbooks/site.yml); this module is their
    common last step.
options:
  clients:
    description: The clients to configure, each with the options of its role.
    type: list
    elements: str
    choices: [evolution, mutt, thunderbird]
    required: true
  install:
    description:
      - Install the clients' packages (V(true)) or not (V(false)). Default each client's own C(<client>_install)
        option (with its C(<client>_state) present).
    type: bool
  write:
    description:
      - V(false) only checks the options and renders the files on the controller (no connection to the host), so
        that a play can refuse bad input before it installs anything.
    type: bool
    default: true
attributes:
  action:
    support: full
    description: Renders on the controller, then runs M(middlebury.mail_clients.managed_files) on the host.
  check_mode:
    support: full
    description: Reports what would change; the files are still validated.
  diff_mode:
    support: full
    description: Shows the content before and after for every changed file.
seealso:
  - module: middlebury.mail_clients.managed_files
  - plugin: middlebury.mail_clients.mail_account
    plugin_type: filter
"""

EXAMPLES = r"""
- name: Write mutt's and Thunderbird's files, with the options of their roles
  middlebury.mail_clients.client_files:
    clients: [mutt, thunderbird]
  vars:
    mutt_clients: [neomutt]
    mail_clients_account:
      protocol: pop3
"""

RETURN = r"""
changed_paths:
  description: The paths that changed on the host (see M(middlebury.mail_clients.managed_files)).
  returned: when O(write=true)
  type: list
  elements: str
files:
  description: One entry per file, as M(middlebury.mail_clients.managed_files) returns them.
  returned: when O(write=true)
  type: list
  elements: dict
render:
  description: V(shared) when another host's render with exactly the same inputs was reused in this run, else V(own).
  returned: success
  type: str
install:
  description: The packages installed (C(packages)) and whether that changed anything (C(changed)).
  returned: when packages were to be installed
  type: dict
render_cpu_ms:
  description: Controller CPU time of the check and render for this host, in milliseconds.
  returned: success
  type: float
field:
  description: The option or account field that was refused.
  returned: on refusal
  type: str
"""
