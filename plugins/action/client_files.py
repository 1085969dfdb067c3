# Copyright (c) Middlebury College
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The client roles' one task: check, plan and render every requested client's files on the controller, install
the clients' packages where asked, then write every file in one managed_files call (the shape of
ansible.builtin.template: render here, then run modules). A configured host costs one remote execution."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import tempfile
import time
import typing as t
from pathlib import Path

import yaml
from ansible import constants as C
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.plugins.action import ActionBase
from ansible.release import __version__ as ansible_version

from ansible_collections.middlebury.mail_clients.plugins.module_utils.account_model import (
    AccountError,
    normalize_account,
)
from ansible_collections.middlebury.mail_clients.plugins.plugin_utils.client_plans import (
    PlanContext,
    evolution,
    mutt,
    thunderbird,
)
from ansible_collections.middlebury.mail_clients.plugins.plugin_utils.template_text import read_text, render_text

PLANS = {"mutt": mutt, "thunderbird": thunderbird, "evolution": evolution}
# meta/runtime.yml's requires_ansible: older lines only warn about it, and then fail somewhere unrelated.
OLDEST_ANSIBLE_CORE = (2, 16)
ROLES = Path(__file__).resolve().parents[2] / "roles"
# Read by every client, documented in each role's argument spec.
SHARED = ("mail_clients_account", "mail_clients_users")
DEFAULT_LAYOUT = "Debian"
_SPECS: dict = {}
# libyaml's loader where PyYAML has it: the pure-Python one takes ~15 ms per spec, in every forked worker.
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def role_spec(client: str) -> dict:
    """The role's argument spec (its main entry point): the one description of the role's options."""
    if client not in _SPECS:
        text = (ROLES / client / "meta" / "argument_specs.yml").read_text(encoding="utf-8")
        _SPECS[client] = yaml.load(text, Loader=_YAML_LOADER)["argument_specs"]["main"]["options"]
    return _SPECS[client]


def check_options(client: str, values: dict) -> dict:
    """The client's options with the spec's defaults; AccountError naming the option when one is refused."""
    spec = role_spec(client)
    result = ArgumentSpecValidator(spec).validate({k: v for k, v in values.items() if k in spec})
    if result.error_messages:
        first = result.errors[0]
        field = getattr(first, "name", None) or next((name for name in spec if name in str(first)), client)
        raise AccountError(field, "; ".join(result.error_messages))
    options = dict(result.validated_parameters)
    # The account goes to the model as given: the spec only documents it (its nested keys default to None).
    for name in SHARED:
        options.pop(name, None)
    return options


def cache_key(inputs: dict) -> str:
    """The exact inputs of a render, hashed: equal inputs on two hosts give equal files, by construction."""
    blob = json.dumps(inputs, sort_keys=True, default=repr, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def layout_for(client: str, facts: t.Any) -> dict:
    """The OS family's layout when facts were gathered and the plan knows the family, else Debian's."""
    layouts = PLANS[client].LAYOUTS
    family = facts.get("os_family") if isinstance(facts, dict) else None
    return layouts.get(family) or layouts[DEFAULT_LAYOUT]


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(("clients", "write", "install"))

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        task_vars = task_vars or {}
        _spec, args = self.validate_argument_spec(argument_spec={
            "clients": {"type": "list", "elements": "str", "required": True, "choices": sorted(PLANS)},
            "write": {"type": "bool", "default": True},
            # Default each client's own <client>_install option (with its state present).
            "install": {"type": "bool"},
        })
        if tuple(int(part) for part in ansible_version.split(".")[:2]) < OLDEST_ANSIBLE_CORE:
            result.update(failed=True, msg="middlebury.mail_clients needs ansible-core %d.%d or later on the "
                          "controller; this is %s (Debian 12's apt has 2.14): install a newer one, e.g. pip install "
                          "'ansible-core>=2.16'" % (*OLDEST_ANSIBLE_CORE, ansible_version))
            return result
        started = time.process_time()
        try:
            files, after_change, packages, warnings, shared = self._plan(args["clients"], task_vars, args["install"])
        except AccountError as exc:
            result.update(failed=True, msg=str(exc), field=exc.field)
            return result
        # Whether another host's render with the same inputs was reused (what a fleet's speed rests on), and the
        # controller CPU it took.
        result["render"] = "shared" if shared else "own"
        result["render_cpu_ms"] = round((time.process_time() - started) * 1000, 2)
        if warnings:
            result["warnings"] = list(warnings)
        if not args["write"]:
            result.update(changed=False, msg="checked and rendered %d file entries" % len(files))
            return result
        installed = None
        if packages:
            # After the checks (bad input installs nothing), before the write (the validators run the clients).
            installed = self._install(packages, task_vars)
            if installed.get("failed"):
                result.update(failed=True, msg="installing %s failed: %s" % (", ".join(packages), installed.get("msg")),
                              install=installed)
                return result
        module_result = self._execute_module(module_name="middlebury.mail_clients.managed_files",
                                             module_args={"files": files, "after_change": after_change},
                                             task_vars=task_vars)
        result.update(module_result, warnings=list(warnings) + list(module_result.get("warnings") or []))
        if not result["warnings"]:
            del result["warnings"]
        if installed is not None:
            result["install"] = {"packages": packages, "changed": bool(installed.get("changed"))}
            result["changed"] = bool(result.get("changed")) or bool(installed.get("changed"))
        return result

    def _install(self, packages: list, task_vars: dict) -> dict:
        """ansible.builtin.package's own action (it finds the package manager, gathering that one fact if
        needed), run from here so that a play with installs off has no install task at all."""
        task = self._task.copy()
        task.args = {"name": packages, "state": "present"}
        action = self._shared_loader_obj.action_loader.get(
            "ansible.legacy.package", task=task, connection=self._connection, play_context=self._play_context,
            loader=self._loader, templar=self._templar, shared_loader_obj=self._shared_loader_obj)
        return action.run(task_vars=task_vars)

    def _plan(self, clients: list, task_vars: dict, install: bool | None = None) -> tuple:
        """Every client's file entries, from the cache when another host had the same inputs.

        The key is the inputs as given (the role options and the account, templated for this host, check mode,
        the OS layouts): checking them is deterministic too, so a host whose inputs were already checked and
        rendered costs one hash and one read. Hosts that arrive together wait for the first one's render."""
        names = set(SHARED)
        for client in clients:
            names.update(role_spec(client))
        values = self._templar.template({name: task_vars[name] for name in sorted(names) if name in task_vars})
        layouts = {client: layout_for(client, task_vars.get("ansible_facts")) for client in clients}
        check_mode = bool(self._task.check_mode)
        key = cache_key({"values": values, "check_mode": check_mode, "clients": list(clients), "layouts": layouts,
                         "install": install})
        with self._render_lock(key):
            cached = self._cached(key)
            if cached is not None:
                return (*cached, True)
            rendered = self._render_all(clients, values, layouts, check_mode, install)
            self._store(key, rendered)
        return (*rendered, False)

    def _render_all(self, clients: list, values: dict, layouts: dict, check_mode: bool, install: bool | None) -> tuple:
        account = normalize_account(values.get("mail_clients_account") or {}, values.get("mail_clients_users") or [])
        inputs = {}
        for client in clients:
            options = check_options(client, values)
            PLANS[client].check(options, account)
            inputs[client] = {"options": options, "layout": layouts[client]}
        files, after_change, packages, warnings = [], [], [], []
        for client, data in inputs.items():
            options = data["options"]
            wanted = options["%s_install" % client] if install is None else install
            if wanted and options["%s_state" % client] == "present":
                wanted_packages = PLANS[client].packages(options, data["layout"], account)
                packages.extend(p for p in wanted_packages if p not in packages)
            ctx = PlanContext(account, data["options"], data["layout"], check_mode,
                              self._renderer(client, data["options"]), self._source(client))
            files.extend(PLANS[client].plan(ctx))
            if hasattr(PLANS[client], "after_change"):
                after_change.extend(PLANS[client].after_change(data["layout"]))
            if hasattr(PLANS[client], "warnings"):
                warnings.extend(PLANS[client].warnings(data["options"], account))
        return files, after_change, packages, warnings

    def _renderer(self, client: str, options: dict) -> t.Callable[..., str]:
        templates = ROLES / client / "templates"

        def render(name: str, **internal: t.Any) -> str:
            variables = dict(options, **internal)
            source = read_text(self._loader, str(templates / name))
            text = render_text(self._templar, [str(templates)], variables, source)
            if not isinstance(text, str):
                raise AccountError(client, "template %s rendered to %s, not text" % (name, type(text).__name__))
            return str(text)
        return render

    def _source(self, client: str) -> t.Callable[[str], str]:
        files = ROLES / client / "files"

        def source(name: str) -> str:
            return read_text(self._loader, str(files / name))
        return source

    @staticmethod
    def _cache_path(key: str) -> str:
        # DEFAULT_LOCAL_TMP is the ansible-playbook process's own private directory, inherited by every fork:
        # a render is shared by the hosts of one run and gone with it.
        return os.path.join(C.DEFAULT_LOCAL_TMP, "mail_clients-render-%s.json" % key)

    @contextlib.contextmanager
    def _render_lock(self, key: str):
        """One render per key at a time: the forks that arrive together wait for the first, then read its file."""
        try:
            handle = open(self._cache_path(key) + ".lock", "w", encoding="utf-8")  # noqa: SIM115 - held below
        except OSError:
            yield  # no cache directory: every host renders its own (slower, never wrong)
            return
        with handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            yield

    def _cached(self, key: str):
        try:
            with open(self._cache_path(key), encoding="utf-8") as handle:
                files, after_change, packages, warnings = json.load(handle)
        except (OSError, ValueError):
            return None
        return files, after_change, packages, warnings

    def _store(self, key: str, value: tuple) -> None:
        path = self._cache_path(key)
        try:
            fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".render-")
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(value, handle)
            os.replace(tmp, path)
        except OSError:
            # No cache is only slower.
            pass
