"""Run commands as if on a fresh lab PC, without touching this machine's /etc or /home.

Role tests converge the real roles on localhost and then start the real clients. Both must see
the role's files at their real paths (/etc/Muttrc.d, /etc/thunderbird, ~/.config/...) and unix
users created by the test, yet the host must stay untouched: every command runs in a private
mount namespace with copy-on-write overlays over /etc and /home whose upper layers live in the
sandbox's own directory, so state persists from one command to the next within one sandbox.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from pathlib import Path

OVERLAID = ("/etc", "/home", "/root")


class Sandbox:
    """A throwaway view of /etc, /home and /root; commands in one sandbox run one at a time."""

    def __init__(self, workdir, hosts_file=None):
        self.workdir = Path(workdir)
        self.hosts_file = Path(hosts_file) if hosts_file else None
        for top in OVERLAID:
            name = top.strip("/")
            (self.workdir / "upper" / name).mkdir(parents=True, exist_ok=True)
            (self.workdir / "work" / name).mkdir(parents=True, exist_ok=True)

    def upper(self, path):
        """Where a file written inside the sandbox lands on the host (None if not overlaid)."""
        for top in OVERLAID:
            if path == top or path.startswith(top + "/"):
                return self.workdir / "upper" / top.strip("/") / os.path.relpath(path, top)
        return None

    def _setup_script(self):
        lines = ["set -e"]
        for top in OVERLAID:
            name = top.strip("/")
            lines.append("mount -t overlay overlay -o lowerdir=%s,upperdir=%s,workdir=%s %s" % (
                top, shlex.quote(str(self.workdir / "upper" / name)),
                shlex.quote(str(self.workdir / "work" / name)), top))
        if self.hosts_file:
            # A bind mount, not a copy: /etc/hosts may itself be a bind mount in containers.
            lines.append("mount --bind %s /etc/hosts" % shlex.quote(str(self.hosts_file)))
        lines.append('exec "$@"')
        return "\n".join(lines)

    def wrap(self, argv):
        """argv prefixed so that it runs inside the sandbox."""
        if not shutil.which("unshare"):
            raise RuntimeError("unshare (util-linux) is required for the test sandbox")
        return ["unshare", "--mount", "--propagation", "private", "sh", "-c", self._setup_script(), "sandbox",
                *[str(arg) for arg in argv]]

    def run(self, argv, timeout=120, check=False, **kwargs):
        """subprocess.run inside the sandbox, text mode, output captured unless told otherwise."""
        kwargs.setdefault("capture_output", True)
        kwargs.setdefault("text", True)
        return subprocess.run(self.wrap(argv), timeout=timeout, check=check, **kwargs)

    def sh(self, script, timeout=120, check=False, **kwargs):
        """Run a shell script inside the sandbox."""
        return self.run(["sh", "-c", script], timeout=timeout, check=check, **kwargs)

    def add_user(self, login, full_name=""):
        """Create a unix login inside the sandbox (with a home directory)."""
        proc = self.run(["useradd", "--create-home", "--shell", "/bin/sh", "--comment", full_name, login])
        if proc.returncode not in (0, 9):  # 9: already exists
            raise RuntimeError("useradd %s failed: %s" % (login, proc.stderr))
