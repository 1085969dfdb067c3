"""pytest plugin: a session-scoped `mail_stack` fixture (fresh temp dir, its own instance).

The instance comes from MAILSTACK_INSTANCE if set, else the first free one from 100 up, so a
developer's stack on instance 0 (the CLI default) is never touched. MAILSTACK_DIR (with
MAILSTACK_INSTANCE) reuses a stack you started yourself and leaves it running afterwards.
MAILSTACK_KEEP=1 keeps the temp directory (logs) after the session.
"""

from __future__ import annotations

import os
import shutil
import tempfile

import pytest

from .claims import claim, claim_free_instance, release
from .stack import MailStack


@pytest.fixture(scope="session")
def mail_stack():
    own_dir = not os.environ.get("MAILSTACK_DIR")
    if os.environ.get("MAILSTACK_INSTANCE"):
        instance = int(os.environ["MAILSTACK_INSTANCE"])
        if own_dir:  # a claim marks the stack as this session's: prune_orphans() may stop it later
            claim(instance)
    else:
        instance = claim_free_instance()
    workdir = tempfile.mkdtemp(prefix="mailstack-%d-" % instance) if own_dir else os.environ["MAILSTACK_DIR"]
    stack = MailStack(workdir, instance)
    reused = not own_dir and stack.is_running()
    try:
        stack.start()
        yield stack
    finally:
        try:
            if not reused:
                stack.stop()
        finally:
            release(instance)
            if own_dir and not os.environ.get("MAILSTACK_KEEP"):
                shutil.rmtree(workdir, ignore_errors=True)
