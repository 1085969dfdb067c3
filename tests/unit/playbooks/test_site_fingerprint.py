"""site.yml renders the clients' files once and reuses them on every host whose inputs have the same
fingerprint: the variables named like the roles' options (mail_clients_*, mutt_*, thunderbird_*, evolution_*),
ansible_check_mode and the play's client switches. That is only right while the roles' checks and renders
read nothing else: these tests parse every Jinja expression they evaluate and fail on any other input."""

from __future__ import annotations

import re
from pathlib import Path

import jinja2
import pytest
import yaml
from jinja2 import meta

REPO = Path(__file__).resolve().parents[3]
pytestmark = pytest.mark.filterwarnings("ignore:invalid escape sequence:DeprecationWarning")
ROLES = ("mutt", "thunderbird", "evolution")
FINGERPRINTED = re.compile(r"^(mail_clients|mutt|thunderbird|evolution)_")
# Read by the renders and either the same on every host (role_path, Jinja's own names) or in the fingerprint.
ALLOWED = {"ansible_check_mode", "role_path", "lookup", "query", "namespace", "dict", "range", "loop",
           "true", "false", "none", "True", "False", "None"}
RENDER_TASKS = ("files.yml", "validate.yml", "render.yml")


class _AnyPlugins(dict):
    """Filters and tests of Ansible and the collection: only names matter for parsing."""

    def __missing__(self, name):
        return lambda *args, **kwargs: None

    def get(self, name, default=None):
        return self[name]


ENV = jinja2.Environment(extensions=["jinja2.ext.do", "jinja2.ext.loopcontrols"])
ENV.filters = _AnyPlugins(ENV.filters)
ENV.tests = _AnyPlugins(ENV.tests)


def _strings(node, key=None):
    """Every template in a task file or vars file; bare conditionals (when, that) as expressions."""
    if isinstance(node, dict):
        for sub_key, value in node.items():
            yield from _strings(value, sub_key)
    elif isinstance(node, list):
        for item in node:
            yield from _strings(item, key)
    elif isinstance(node, str):
        if key in ("when", "that", "changed_when", "failed_when"):
            yield "{{ %s }}" % node
        elif "{{" in node or "{%" in node:
            yield node


def render_inputs(role):
    """{source: undeclared variable names} for everything a role's `files` entry point evaluates: its task
    files, its templates, and the variables of vars/main.yml that those read (directly or through others)."""
    base = REPO / "roles" / role
    sources = {}
    for name in RENDER_TASKS:
        for index, text in enumerate(_strings(yaml.safe_load((base / "tasks" / name).read_text()))):
            sources["tasks/%s#%d" % (name, index)] = text
    for template in sorted((base / "templates").glob("*.j2")):
        sources["templates/" + template.name] = template.read_text()
    inputs = {source: _names(text) for source, text in sources.items()}
    role_vars = yaml.safe_load((base / "vars" / "main.yml").read_text())
    pending = set().union(*inputs.values()) & set(role_vars)
    seen = set()
    while pending:
        var = pending.pop()
        seen.add(var)
        for index, text in enumerate(_strings(role_vars[var])):
            names = inputs["vars/main.yml:%s#%d" % (var, index)] = _names(text)
            pending |= (names & set(role_vars)) - seen
    return inputs


def _names(text):
    return meta.find_undeclared_variables(ENV.parse(text)) - _assigned(text)


def _assigned(text):
    """Names the template sets itself: Jinja reports a name set in one branch of a loop as undeclared."""
    return set(re.findall(r"{%-?\s*set\s+(\w+)\s*=", text))


def os_family_vars(role):
    names = set()
    for path in (REPO / "roles" / role / "vars").glob("*.yml"):
        if path.name != "main.yml":
            names |= set(yaml.safe_load(path.read_text()) or {})
    return names


@pytest.mark.parametrize("role", ROLES)
def test_the_render_reads_only_fingerprinted_inputs(role):
    inputs = render_inputs(role)
    assert inputs, "nothing parsed for %s" % role
    internal = re.compile(r"^__%s_" % role)
    outside = {source: sorted(n for n in names if not (FINGERPRINTED.match(n) or internal.match(n) or n in ALLOWED))
               for source, names in inputs.items()}
    assert {s: n for s, n in outside.items() if n} == {}


@pytest.mark.parametrize("role", ROLES)
def test_os_family_variables_are_for_the_install_only(role):
    """vars/<os_family>.yml is loaded per host with the package install: a render reading it could differ
    between hosts with the same fingerprint."""
    family = os_family_vars(role)
    read = set().union(*render_inputs(role).values())
    assert family & read == set()
    # Every OS-family variable feeds the role's package list, nothing else.
    packages = yaml.safe_load((REPO / "roles" / role / "vars" / "main.yml").read_text())["__%s_install_packages" % role]
    assert all(name in packages for name in family), family


def test_the_parser_sees_a_variable_outside_the_fingerprint():
    """The check above can fail: a template reading a host fact is caught."""
    names = meta.find_undeclared_variables(ENV.parse("{{ ansible_facts.hostname | upper }} {{ mutt_clients }}"))
    assert names == {"ansible_facts", "mutt_clients"}


def test_site_fingerprints_what_these_tests_allow():
    site = (REPO / "playbooks" / "site.yml").read_text()
    play = yaml.safe_load(site)[0]
    assert play["vars"]["__mail_clients_input_pattern"] == FINGERPRINTED.pattern
    facts = [t["ansible.builtin.set_fact"] for t in play["tasks"] if "ansible.builtin.set_fact" in t]
    text = next(f["__mail_clients_fingerprint"] for f in facts if "__mail_clients_fingerprint" in f)
    assert "ansible_check_mode" in text and "__mail_clients_on" in text
