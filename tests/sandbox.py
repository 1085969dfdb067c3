"""Run commands as if on a fresh lab PC, without touching this machine's /etc or /home.

Role tests converge the real roles on localhost and then start the real clients. Both must see
the role's files at their real paths (/etc/Muttrc.d, /etc/thunderbird, ~/.config/...) and unix
users created by the test, yet the host must stay untouched: every command runs in a private
mount namespace with copy-on-write overlays over /etc, /home and /root (and any further
directories a test names, e.g. one under /usr a role writes into) whose upper layers live in the
sandbox's own directory, so state persists from one command to the next within one sandbox.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from pathlib import Path

OVERLAID = ("/etc", "/home", "/root")


def _inside(path, top):
    return path == top or path.startswith(top.rstrip("/") + "/")


def _overlapping(one, other):
    return _inside(one, other) or _inside(other, one)


def _checked_extra(path, taken):
    """An extra directory to overlay, refused loudly if the overlay could not do what it promises."""
    path = str(path)
    if not os.path.isabs(path) or os.path.normpath(path) != path:
        raise ValueError("extra overlay %r: give a normalized absolute path" % path)
    if not os.path.isdir(path):
        # A missing directory would leave the tests writing nowhere (or the role failing for the
        # wrong reason): the package that provides it is not installed.
        raise RuntimeError("extra overlay %s is missing: is the package that provides it installed?" % path)
    if os.path.realpath(path) != path:
        # mount follows the link, so upper() would map paths the commands never use.
        raise ValueError("extra overlay %s is (under) a symlink: overlay %s instead" % (path, os.path.realpath(path)))
    for top in taken:
        if _overlapping(path, top):
            raise ValueError("extra overlay %s overlaps the overlay of %s" % (path, top))
    return path


class Sandbox:
    """A throwaway view of /etc, /home, /root and ``extra_overlays``; commands in one sandbox run one at a time.

    ``lowers`` maps an extra overlay to another host directory that it shows instead of its own content (another
    release of a program, say): written files still land in the sandbox's upper layer."""

    def __init__(self, workdir, hosts_file=None, extra_overlays=(), lowers=None):
        self.workdir = Path(workdir)
        self.lowers = dict(lowers or {})
        for top, lower in self.lowers.items():
            if top not in extra_overlays or not os.path.isdir(lower):
                raise ValueError("lower %s for %s: name an extra overlay and an existing directory" % (lower, top))
        self.hosts_file = Path(hosts_file) if hosts_file else None
        overlays = list(OVERLAID)
        for extra in extra_overlays:
            overlays.append(_checked_extra(extra, overlays))
        # Top directory -> name of its upper and work directories (/usr/share/x -> usr_share_x).
        self.overlays = {top: top.strip("/").replace("/", "_") for top in overlays}
        if len(set(self.overlays.values())) != len(self.overlays):
            raise ValueError("extra overlays %s would share an upper directory" % (list(extra_overlays),))
        for name in self.overlays.values():
            (self.workdir / "upper" / name).mkdir(parents=True, exist_ok=True)
            (self.workdir / "work" / name).mkdir(parents=True, exist_ok=True)

    def upper(self, path):
        """Where a file written inside the sandbox lands on the host (None if not overlaid)."""
        for top, name in self.overlays.items():
            if _inside(path, top):
                return self.workdir / "upper" / name / os.path.relpath(path, top)
        return None

    def _setup_script(self):
        lines = ["set -e"]
        for top, name in self.overlays.items():
            lines.append("mount -t overlay overlay -o lowerdir=%s,upperdir=%s,workdir=%s %s" % (
                shlex.quote(self.lowers.get(top, top)), shlex.quote(str(self.workdir / "upper" / name)),
                shlex.quote(str(self.workdir / "work" / name)), shlex.quote(top)))
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
