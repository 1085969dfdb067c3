"""Test-wide set-up: import the collection from this checkout, and the mail stack fixture."""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
from pathlib import Path

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
