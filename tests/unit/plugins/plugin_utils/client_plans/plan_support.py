"""Run a client plan without Ansible: the role's argument-spec defaults, the model's account, a render that
names the template and its variables (so the file list can be checked without rendering)."""

from __future__ import annotations

from ansible_collections.middlebury.mail_clients.plugins.action.client_files import PLANS, ROLES, check_options
from ansible_collections.middlebury.mail_clients.plugins.module_utils.account_model import normalize_account
from ansible_collections.middlebury.mail_clients.plugins.plugin_utils.client_plans import PlanContext


def run_plan(client, options=None, account=None, users=None, check_mode=False, family="Debian"):
    normalized = normalize_account(account or {}, users or [])
    checked = check_options(client, options or {})
    PLANS[client].check(checked, normalized)
    rendered = []

    def render(name, **variables):
        rendered.append((name, variables))
        return "rendered %s\n" % name

    def source(name):
        return (ROLES / client / "files" / name).read_text(encoding="utf-8")

    ctx = PlanContext(normalized, checked, PLANS[client].LAYOUTS[family], check_mode, render, source)
    return PLANS[client].plan(ctx), rendered


def by_state(files):
    return ({f["path"] for f in files if f["state"] == "present"},
            {f["path"] for f in files if f["state"] == "absent" and "marker" not in f})
