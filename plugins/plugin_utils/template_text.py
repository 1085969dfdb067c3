# Copyright (c) Middlebury College
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A role template rendered to text on the controller, the way ansible.builtin.template renders it, on every
ansible-core line the collection supports (the templating API changed in 2.19)."""

from __future__ import annotations

import typing as t

try:  # ansible-core 2.19 and later: a template's text must be trusted before it is rendered.
    from ansible.template import trust_as_template
except ImportError:  # 2.16-2.18
    trust_as_template = None


def render_text(templar: t.Any, searchpath: list, variables: dict, source: str) -> t.Any:
    """``source`` rendered with ``variables``, ``searchpath`` for its imports and includes."""
    templar = templar.copy_with_new_env(searchpath=searchpath, available_variables=variables)
    if trust_as_template is not None:
        return templar.template(trust_as_template(source), escape_backslashes=False)
    # Before 2.19, Templar.template turns text that looks like a literal into data (a JSON file came back as a dict
    # and was written as a Python repr): do_template, as the template action of those lines, keeps it text.
    return templar.do_template(source, preserve_trailing_newlines=True, escape_backslashes=False)


def read_text(loader: t.Any, path: str) -> str:
    """A role file's text through Ansible's loader (2.19 and later mark what it reads as from a file)."""
    if hasattr(loader, "get_text_file_contents"):
        return loader.get_text_file_contents(path)
    data, _show = loader._get_file_contents(path)  # 2.16-2.18 (vault-aware, bytes)
    return data.decode("utf-8")
