"""Thunderbird 140 ESR beside the host's own Thunderbird, for the tests that must also run on 140.

Debian 12 and 13 both ship 153 now; 140 is only in the Debian 12 image with the main archive's 140 ESR that the
molecule lab scenario uses (tests/containers/build-image.sh bookworm-tb140). Its two install trees are copied
out of that image into the test's own directory and become the lower layers of the sandbox's overlays over
/usr/lib/thunderbird and /usr/share/thunderbird: inside the sandbox, `thunderbird` is 140, with everything else
(the role's files, the test users, the mail stack) as for 153. A library 140 needs that the host lacks (Debian
13 has another libvpx) is copied from the image too and found through LD_LIBRARY_PATH.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from sandbox import Sandbox

REPO = Path(__file__).resolve().parents[3]
BUILD_IMAGE = REPO / "tests" / "containers" / "build-image.sh"
CONTAINERS_CONF = REPO / "tests" / "containers" / "containers.conf"
SUITE = "bookworm-tb140"
IMAGE = "localhost/middlebury-mail-clients:" + SUITE
TREES = ("/usr/lib/thunderbird", "/usr/share/thunderbird")
LIB_DIR = "/usr/lib/thunderbird"
SYSTEM_LIBS = "/usr/lib/x86_64-linux-gnu"


def _podman(*args, timeout=300):
    env = dict(os.environ)
    env.setdefault("CONTAINERS_CONF", str(CONTAINERS_CONF))
    proc = subprocess.run(["podman", *args], env=env, capture_output=True, text=True, timeout=timeout, check=False)
    assert proc.returncode == 0, "podman %s: %s" % (" ".join(args), proc.stderr[-2000:])
    return proc.stdout.strip()


def _missing_libraries(lib_dir):
    """Shared libraries of Thunderbird's that the host's loader cannot find (Thunderbird's own dir searched too)."""
    missing = set()
    for name in ("libxul.so", "thunderbird-bin", "librnp.so"):
        proc = subprocess.run(["ldd", str(lib_dir / name)], env={"LD_LIBRARY_PATH": str(lib_dir)},
                              capture_output=True, text=True, timeout=60, check=False)
        missing.update(re.findall(r"^\s*(\S+) => not found", proc.stdout, re.MULTILINE))
    return sorted(missing)


def _in_image(root, path):
    """``path`` of the image, its symlinks followed inside the image (an absolute link is the image's)."""
    current = root / path.lstrip("/")
    for _hop in range(40):
        if not current.is_symlink():
            return current
        target = os.readlink(current)
        current = root / target.lstrip("/") if target.startswith("/") else current.parent / target
    raise AssertionError("symlink loop at %s in the image" % path)


class Release:
    """One Thunderbird release: the sandbox it runs in and the environment it needs."""

    def __init__(self, version, lowers=None, env=None):
        self.version = version
        self.lowers = lowers or {}
        self.env = env or {}

    def sandbox(self, workdir, hosts_file=None, extra_overlays=()):
        # The role writes under /usr/share/thunderbird/isp: covered by the tree's overlay when it is replaced.
        extra = [path for path in extra_overlays if not any(path == t or path.startswith(t + "/") for t in self.lowers)]
        return Sandbox(workdir, hosts_file=hosts_file, extra_overlays=(*extra, *self.lowers), lowers=self.lowers)


HOST = Release("host")


def thunderbird_140(workdir):
    """Thunderbird 140 ESR from the tb140 image, copied into ``workdir`` (fresh per run)."""
    workdir = Path(workdir)
    proc = subprocess.run([str(BUILD_IMAGE), SUITE], env=dict(os.environ, CONTAINERS_CONF=str(CONTAINERS_CONF)),
                          capture_output=True, text=True, timeout=3600, check=False)
    assert proc.returncode == 0, "building the %s image failed: %s" % (SUITE, (proc.stdout + proc.stderr)[-3000:])
    root = Path(_podman("image", "mount", IMAGE))
    try:
        ini = (root / LIB_DIR.lstrip("/") / "application.ini").read_text(encoding="utf-8")
        version = re.search(r"^Version=(\S+)", ini, re.MULTILINE).group(1)
        lowers = {}
        for tree in TREES:
            lowers[tree] = str(workdir / tree.lstrip("/"))
            shutil.copytree(root / tree.lstrip("/"), lowers[tree], symlinks=True)
        # What the host lacks goes into Thunderbird's own directory (readable by the test logins, unlike the
        # test's directory), which LD_LIBRARY_PATH then names.
        lib_dir = Path(lowers[LIB_DIR])
        missing = _missing_libraries(lib_dir)
        for name in missing:
            shutil.copyfile(_in_image(root, "%s/%s" % (SYSTEM_LIBS, name)), lib_dir / name)
    finally:
        _podman("image", "unmount", IMAGE)
    assert version.startswith("140."), version
    still = _missing_libraries(lib_dir)
    assert not still, "Thunderbird %s needs libraries neither the host nor its image has: %s" % (version, still)
    return Release(version, lowers, {"LD_LIBRARY_PATH": LIB_DIR} if missing else {})
