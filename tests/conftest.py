"""Test-wide set-up: import the collection from this checkout, and the mail stack fixture."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
TESTS = REPO / "tests"


def _collection_root():
    """A directory holding ansible_collections/middlebury/mail_clients -> this checkout.

    The repo root is the collection root, so Python needs the namespace layout above it."""
    # One per checkout: two clones on one machine (a developer's and CI's) must not re-point each other's link.
    checkout_id = hashlib.sha1(str(REPO).encode()).hexdigest()[:8]
    default = Path(tempfile.gettempdir()) / ("mail_clients-collections-%s" % checkout_id)
    root = Path(os.environ.get("MAIL_CLIENTS_COLLECTIONS_ROOT") or default)
    link = root / "ansible_collections" / "middlebury" / "mail_clients"
    link.parent.mkdir(parents=True, exist_ok=True)
    if not link.is_symlink() or link.resolve() != REPO:
        tmp = link.with_name(".mail_clients.%d" % os.getpid())
        tmp.symlink_to(REPO)
        os.replace(tmp, link)
    return root


COLLECTIONS_ROOT = _collection_root()
os.environ["MAIL_CLIENTS_COLLECTIONS_ROOT"] = str(COLLECTIONS_ROOT)
# Tests always exercise this checkout, never an installed copy.
os.environ["ANSIBLE_COLLECTIONS_PATH"] = str(COLLECTIONS_ROOT)
for path in (str(COLLECTIONS_ROOT), str(TESTS)):
    if path not in sys.path:
        sys.path.insert(0, path)

pytest_plugins = ["mailstack.pytest_plugin"]


@pytest.fixture(scope="session")
def collection_tarball(tmp_path_factory):
    """The collection as `ansible-galaxy collection build` makes it from this checkout, built once a session."""
    from ansible_runner import BIN

    build = tmp_path_factory.mktemp("build")
    proc = subprocess.run([BIN / "ansible-galaxy", "collection", "build", str(REPO), "--output-path", str(build)],
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    version = yaml.safe_load((REPO / "galaxy.yml").read_text())["version"]
    tarball = build / ("middlebury-mail_clients-%s.tar.gz" % version)
    assert tarball.exists(), list(build.iterdir())
    return tarball
