"""Fixtures of the thunderbird role tests; the helpers live in tb_role.py."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from tb_role import make_sandbox


@pytest.fixture
def tb_sandbox(tmp_path):
    def make(hosts_file=None, name="sb"):
        return make_sandbox(tmp_path / name, hosts_file=hosts_file)
    return make
