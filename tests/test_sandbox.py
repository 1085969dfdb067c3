"""The test sandbox itself: extra overlays are copy-on-write like /etc, and refused loudly when they cannot be."""

from __future__ import annotations

import pytest
from sandbox import Sandbox


def test_an_extra_overlay_keeps_writes_in_the_sandbox(tmp_path):
    host_dir = tmp_path / "host" / "isp"
    host_dir.mkdir(parents=True)
    (host_dir / "shipped.xml").write_text("from the package\n")
    sb = Sandbox(tmp_path / "sb", extra_overlays=[str(host_dir)])
    written = "%s/ours.xml" % host_dir
    proc = sb.sh("echo ours > %s && cat %s/shipped.xml" % (written, host_dir))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "from the package\n"
    assert sb.upper(written).read_text() == "ours\n"
    assert sorted(p.name for p in host_dir.iterdir()) == ["shipped.xml"], "the write reached the host"
    # Like /etc: what one command wrote, the next one sees.
    assert sb.sh("cat %s" % written).stdout == "ours\n"
    assert sb.upper("/etc/passwd") == sb.workdir / "upper" / "etc" / "passwd"


def test_a_missing_extra_overlay_is_a_loud_error(tmp_path):
    missing = str(tmp_path / "not-installed")
    with pytest.raises(RuntimeError, match="not-installed is missing"):
        Sandbox(tmp_path / "sb", extra_overlays=[missing])


@pytest.mark.parametrize("path", ["/etc/ssl", "/", "relative/dir", "/usr/share/../share"])
def test_an_extra_overlay_that_overlaps_or_is_not_normalized_is_refused(tmp_path, path):
    with pytest.raises(ValueError, match="extra overlay"):
        Sandbox(tmp_path / "sb", extra_overlays=[path])


def test_an_extra_overlay_behind_a_symlink_is_refused(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    with pytest.raises(ValueError, match="symlink: overlay %s instead" % (tmp_path / "real")):
        Sandbox(tmp_path / "sb", extra_overlays=[str(tmp_path / "link")])
