"""Fixtures of the thunderbird role tests; the helpers live in tb_role.py."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from tb_releases import HOST, thunderbird_140
from tb_role import make_sandbox


@pytest.fixture(scope="session")
def thunderbird_140_release(tmp_path_factory):
    """Thunderbird 140 ESR (from the tb140 image), once per run."""
    return thunderbird_140(tmp_path_factory.mktemp("thunderbird-140"))


@pytest.fixture(params=["host", "140"])
def tb_release(request):
    """The host's Thunderbird (153), then 140 ESR: for the tests that must pass on both."""
    return HOST if request.param == "host" else request.getfixturevalue("thunderbird_140_release")


@pytest.fixture
def tb_sandbox(tmp_path):
    def make(hosts_file=None, name="sb"):
        return make_sandbox(tmp_path / name, hosts_file=hosts_file)
    return make
