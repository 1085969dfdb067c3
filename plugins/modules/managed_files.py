#!/usr/bin/python
# Copyright (c) Middlebury College
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: managed_files
short_description: Write a set of controller-rendered configuration files in one module call
version_added: 0.1.0
author:
  - Middlebury College ITS (@middlebury)
description:
  - Brings a list of files to the given content, owner and mode, or removes them, in a single remote
    execution. The client roles of this collection render their files on the controller and ship them with
    one call of this module per host, instead of one C(template) task per file.
  - Paths may start with C(~login/); they are expanded to that user's home directory on the managed host, and
    the file is then written with that user's privileges (a symbolic link planted by the user cannot redirect
    the write), owned by the user, mode C(0600) unless given.
  - Every entry is checked before anything is written, and each new file is validated once. Then every new
    content is staged next to its file, and only when all are on disk do they replace the old files (a
    rename each). A failing O(files[].validate), a full file system or a killed run leaves the whole batch as
    it was, and a reader never sees a partial file.
options:
  files:
    description: The files to manage.
    type: list
    elements: dict
    required: true
    suboptions:
      path:
        description: Absolute path, or C(~login/relative/path).
        type: str
        required: true
      content:
        description:
          - The wanted content (UTF-8). With O(files[].state=present), this or O(files[].content_base64) is required.
        type: str
      content_base64:
        description:
          - The wanted content as base64, for a binary file (a packed extension, for example). The diff shows its
            size and SHA-256 digest. Not with O(files[].compare=keyfile) or O(files[].marker).
        type: str
      state:
        description: V(present) writes the file, V(absent) removes it.
        type: str
        choices: [present, absent]
        default: present
      owner:
        description: Owner. Defaults to the user of a C(~login/) path, else C(root).
        type: str
      group:
        description: Group. Defaults to the owner's primary group.
        type: str
      mode:
        description: Octal mode as a string. Defaults to V(0600) in a home directory, else V(0644).
        type: str
      dir_mode:
        description: Mode of parent directories that have to be created (owned like the file).
          Defaults to V(0700) for files of a non-root owner, else V(0755).
        type: str
      validate:
        description:
          - Command run on the new content before it replaces the file; C(%s) is replaced by the path of a
            temporary copy. A non-zero exit status fails the task and leaves the old file in place.
        type: str
      validate_with:
        description:
          - A validator that ships with the collection, run in the module on the new content before it replaces
            the file (before O(files[].validate), when both are given). C(name) chooses it; the other keys are
            its arguments.
          - V(json) and V(xml) parse the file. V(evolution-source), V(evolution-autoconfig), V(dconf) and
            V(dconf-locks) refuse what evolution-data-server or dconf would misread, with GLib's own parser
            (libglib-2.0 must be installed). V(muttrc) lets each client in C(clients) (V(mutt), V(neomutt)) read
            the file, with a throw-away home directory; C(missing_ok=true) skips a client that is not installed.
        type: dict
      compare:
        description:
          - V(exact) compares bytes. V(keyfile) treats the file as unchanged when every key it sets already has
            that value, for files that their program rewrites with extra keys (evolution-data-server sources).
        type: str
        choices: [exact, keyfile]
        default: exact
      marker:
        description:
          - With O(files[].state=absent), O(files[].path) is a glob, and every matching file whose content contains
            this text is removed, except files that another entry of the same call writes. For files written under
            a name that changes with the settings (an old mail domain's file), so that none is left behind.
        type: str
  after_change:
    description:
      - Commands run once, after the files are in place, when a changed path starts with one of their
        O(after_change[].paths) (for example C(dconf update) after a dconf settings file changed). Not run in
        check mode. A failing command fails the task; the files stay in place.
    type: list
    elements: dict
    default: []
    suboptions:
      command:
        description: The program and its arguments (no shell).
        type: list
        elements: str
        required: true
      paths:
        description: Path prefixes (as expanded on the managed host) that trigger the command.
        type: list
        elements: str
        required: true
attributes:
  check_mode:
    support: full
    description: Reports what would change; validation still runs on the new content.
  diff_mode:
    support: full
    description: Shows the content before and after for every changed file.
notes:
  - The content is not logged as secret; never put a password into a file managed by this module.
"""

EXAMPLES = r"""
- name: Install the mutt drop-ins for both clients
  middlebury.mail_clients.managed_files:
    files:
      - path: /etc/Muttrc.d/zz-middlebury.rc
        content: "{{ lookup('ansible.builtin.template', 'muttrc.j2') }}"
      - path: ~alice/.config/mutt/middlebury.rc
        content: "set from = 'alice@middlebury.edu'\n"
        validate: mutt -n -F %s -Q from
"""

RETURN = r"""
files:
  description: One entry per requested file, in order (an entry with O(files[].marker), one per file it matched).
  returned: always
  type: list
  elements: dict
  contains:
    path:
      description: The expanded path.
      type: str
    changed:
      description: Whether this file was (or in check mode would be) changed.
      type: bool
    action:
      description: One of V(created), V(updated), V(attributes), V(removed), V(unchanged), V(absent).
      type: str
changed_paths:
  description: The expanded paths that changed.
  returned: always
  type: list
  elements: str
after_change:
  description: The commands of O(after_change) that ran.
  returned: always
  type: list
  elements: list
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.middlebury.mail_clients.plugins.module_utils.file_sync import (
    FileSyncError,
    run_after_change,
    sync_files,
)


def main():
    module = AnsibleModule(
        argument_spec={
            "files": {
                "type": "list",
                "elements": "dict",
                "required": True,
                "options": {
                    "path": {"type": "str", "required": True},
                    "content": {"type": "str"},
                    "content_base64": {"type": "str"},
                    "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
                    "owner": {"type": "str"},
                    "group": {"type": "str"},
                    "mode": {"type": "str"},
                    "dir_mode": {"type": "str"},
                    "validate": {"type": "str"},
                    "validate_with": {"type": "dict"},
                    "compare": {"type": "str", "choices": ["exact", "keyfile"], "default": "exact"},
                    "marker": {"type": "str"},
                },
            },
            "after_change": {
                "type": "list",
                "elements": "dict",
                "default": [],
                "options": {
                    "command": {"type": "list", "elements": "str", "required": True},
                    "paths": {"type": "list", "elements": "str", "required": True},
                },
            },
        },
        supports_check_mode=True,
    )
    try:
        results, diffs = sync_files(module.params["files"], module.run_command, check_mode=module.check_mode)
    except (FileSyncError, OSError) as exc:
        module.fail_json(msg=str(exc))
    changed_paths = [item["path"] for item in results if item["changed"]]
    ran = []
    if not module.check_mode:
        try:
            ran = run_after_change(module.params["after_change"], changed_paths, module.run_command)
        except FileSyncError as exc:
            module.fail_json(msg=str(exc), changed=True, changed_paths=changed_paths)
    output = {"changed": bool(changed_paths), "files": results, "changed_paths": changed_paths, "after_change": ran}
    if module._diff:
        output["diff"] = diffs
    module.exit_json(**output)


if __name__ == "__main__":
    main()
