# Copyright (c) Middlebury College
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Which files each client gets: one small plan per client, run on the controller.

A plan is a function ``plan(ctx) -> list of managed_files entries``. It decides the paths, owners, modes and
validators, and asks ``ctx.render(template, **variables)`` for each content; what is *in* a file is the role's
template. Present and absent are written once, in ``present()``/``absent()``: a plan lists every file it may
ever write, and a file that is not wanted is the same path with ``absent()``, so turning a setting off (or the
whole client) removes exactly what turning it on wrote.
"""

from __future__ import annotations

import typing as t

from ansible_collections.middlebury.mail_clients.plugins.module_utils.account_model import AccountError


class OptionError(AccountError):
    """A role option that cannot be honoured; ``field`` names the variable (same shape as the model's)."""


class PlanContext:
    """What a plan may read: the normalised account, the role's checked options, the OS layout, check
    mode, a ``render`` callable (a role template) and a ``source`` callable (a role file as it is, e.g. a
    program the role installs). Nothing else, so that the render cache key is exact by construction."""

    def __init__(self, account: dict, options: dict, layout: dict, check_mode: bool,
                 render: t.Callable[..., str], source: t.Callable[[str], str] | None = None) -> None:
        self.account = account
        self.options = options
        self.layout = layout
        self.check_mode = check_mode
        self.render = render
        self.source = source


def present(path: str, content: str | None = None, *, validate_with: dict | None = None, **attributes: t.Any) -> dict:
    """A file with this content, or binary ``content_base64=`` (attributes: owner, group, mode, dir_mode, compare)."""
    entry = {"path": path, "state": "present"}
    if content is not None:
        entry["content"] = content
    entry.update({key: value for key, value in attributes.items() if value is not None})
    if validate_with:
        entry["validate_with"] = validate_with
    return entry


def absent(path: str) -> dict:
    """The same path, not wanted: removed when it exists."""
    return {"path": path, "state": "absent"}


def wanted(condition: bool, path: str, make: t.Callable[[], dict]) -> dict:
    """``make()`` (a present() entry for ``path``) when the file is wanted, else absent(path): the one place the
    two are paired, and ``make`` (which renders) runs only when needed."""
    if not condition:
        return absent(path)
    entry = make()
    if entry["path"] != path:
        raise ValueError("plan error: %s is wanted as %s" % (path, entry["path"]))
    return entry
