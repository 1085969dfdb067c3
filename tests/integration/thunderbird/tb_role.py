"""Helpers of the thunderbird role tests: the role's own paths, a sandbox that also covers the ISP
directory, and a converge helper. (Not in conftest.py: every test directory has one, and
`from conftest import` would pick whichever was imported first.)"""

from __future__ import annotations

import os
import shlex
from pathlib import Path

import yaml
from ansible_runner import run_playbook
from sandbox import Sandbox

HERE = Path(__file__).resolve().parent

ROLE_DIR = HERE.parents[2] / "roles" / "thunderbird"
ROLE = "middlebury.mail_clients.thunderbird"
# The role's own OS data: tests never restate its paths.
DEBIAN_VARS = yaml.safe_load((ROLE_DIR / "vars" / "Debian.yml").read_text())
ROLE_CONSTANTS = yaml.safe_load((ROLE_DIR / "vars" / "main.yml").read_text())
CFG_PATH = "%s/%s" % (DEBIAN_VARS["__thunderbird_sysconf_dir"], ROLE_CONSTANTS["__thunderbird_cfg_name"])
AUTOCONFIG_PATH = "%s/autoconfig.js" % DEBIAN_VARS["__thunderbird_pref_dir"]
POLICIES_PATH = DEBIAN_VARS["__thunderbird_policies_path"]
ISP_DIR = DEBIAN_VARS["__thunderbird_isp_dir"]
KEYS = ROLE_CONSTANTS["__thunderbird_keys"]


class TbSandbox(Sandbox):
    """The team sandbox plus a copy-on-write overlay over Thunderbird's ISP directory.

    The account-wizard file lives in <install dir>/isp (under /usr), which the shared sandbox does
    not cover; without this the role under test would write into the host's /usr."""

    EXTRA = (ISP_DIR,)

    def __init__(self, workdir, hosts_file=None):
        super().__init__(workdir, hosts_file)
        for index, _path in enumerate(self.EXTRA):
            (self.workdir / "upper" / ("extra%d" % index)).mkdir(parents=True, exist_ok=True)
            (self.workdir / "work" / ("extra%d" % index)).mkdir(parents=True, exist_ok=True)

    def upper(self, path):
        for index, top in enumerate(self.EXTRA):
            if path == top or path.startswith(top + "/"):
                return self.workdir / "upper" / ("extra%d" % index) / os.path.relpath(path, top)
        return super().upper(path)

    def _setup_script(self):
        lines = super()._setup_script().splitlines()
        mounts = []
        for index, top in enumerate(self.EXTRA):
            if not os.path.isdir(top):
                raise RuntimeError("%s is missing: is Debian's thunderbird package installed?" % top)
            mounts.append("mount -t overlay overlay -o lowerdir=%s,upperdir=%s,workdir=%s %s" % (
                top, shlex.quote(str(self.workdir / "upper" / ("extra%d" % index))),
                shlex.quote(str(self.workdir / "work" / ("extra%d" % index))), top))
        return "\n".join(lines[:-1] + mounts + lines[-1:])


def role_play(**role_vars):
    return [{"hosts": "localhost", "gather_facts": False,
             "roles": [{"role": ROLE, **({"vars": role_vars} if role_vars else {})}]}]


def converge(sb, extra_vars=None, check=False, diff=False):
    """Run the role inside the sandbox; Thunderbird is already installed on the test machine."""
    variables = {"thunderbird_install": False}
    variables.update(extra_vars or {})
    return run_playbook(role_play(), variables, check=check, diff=diff, sandbox=sb)


def snapshot(sb):
    """Every file the sandbox has written on top of the host, with its content."""
    files = {}
    for root, _dirs, names in os.walk(sb.workdir / "upper"):
        for name in names:
            path = Path(root) / name
            files[str(path.relative_to(sb.workdir))] = path.read_bytes() if not path.is_symlink() else b"->"
    return files
