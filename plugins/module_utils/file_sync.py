# Copyright (c) Middlebury College
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Write a batch of controller-rendered files in one remote execution.

A lab fleet is hundreds of hosts, and every ``template`` task costs a stat plus a copy or file
module per file per host; the roles render everything on the controller instead and hand the
whole set to this code at once.
"""

from __future__ import annotations

import base64
import contextlib
import glob
import grp
import hashlib
import os
import pwd
import shlex
import stat
import tempfile

from ansible_collections.middlebury.mail_clients.plugins.module_utils.file_validators import (
    ValidationError,
    validate,
)


class FileSyncError(Exception):
    """A request that cannot be carried out; ``field`` names the offending entry."""

    def __init__(self, field, message):
        self.field = field
        super().__init__("%s: %s" % (field, message))


def expand_path(field, path):
    """Expand a leading ``~login`` to that user's home on this host; return (path, login or None)."""
    if not path.startswith("~"):
        if not os.path.isabs(path):
            raise FileSyncError(field, "path %r must be absolute or start with ~login/" % path)
        return os.path.normpath(path), None
    login, _sep, rest = path[1:].partition("/")
    if not login:
        raise FileSyncError(field, "path %r must name the user (~login/...), not the module's own ~" % path)
    try:
        home = pwd.getpwnam(login).pw_dir
    except KeyError:
        raise FileSyncError(field, "there is no user %r on this host" % login) from None
    return os.path.normpath(os.path.join(home, rest)), login


def resolve_owner(field, owner, group, home_login):
    """uid and gid for an entry: explicit owner/group, else the home's user, else root."""
    owner = owner or home_login or "root"
    try:
        pw = pwd.getpwnam(owner)
    except KeyError:
        raise FileSyncError(field, "owner %r does not exist on this host" % owner) from None
    if group:
        try:
            gid = grp.getgrnam(group).gr_gid
        except KeyError:
            raise FileSyncError(field, "group %r does not exist on this host" % group) from None
    else:
        gid = pw.pw_gid
    return pw.pw_uid, gid


@contextlib.contextmanager
def acting_as(uid, gid):
    """Act with the user's privileges inside their home, so a symlink they planted cannot
    make root write elsewhere. Root-owned entries are written as root."""
    if uid == 0 or os.geteuid() != 0:
        yield
        return
    old_groups = os.getgroups()
    os.setgroups([gid])
    os.setegid(gid)
    os.seteuid(uid)
    try:
        yield
    finally:
        os.seteuid(0)
        os.setegid(0)
        os.setgroups(old_groups)


@contextlib.contextmanager
def as_root():
    """Back to root for a moment inside acting_as: validators run the clients, and mutt refuses to run with
    a real and an effective user that differ."""
    euid, egid = os.geteuid(), os.getegid()
    if os.getuid() != 0 or euid == 0:
        yield
        return
    groups = os.getgroups()
    os.seteuid(0)
    os.setegid(0)
    try:
        yield
    finally:
        os.setgroups(groups)
        os.setegid(egid)
        os.seteuid(euid)


def parse_keyfile(text):
    """GKeyFile groups and keys as {group: {key: value}}; comments and blank lines ignored."""
    groups = {}
    current = None
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.startswith("[") and stripped.endswith("]"):
            current = groups.setdefault(stripped[1:-1], {})
        elif "=" in line and current is not None:
            key, _sep, value = line.partition("=")
            current[key.strip()] = value.strip()
    return groups


def keyfile_contains(existing, wanted):
    """True when every key we write already has our value (the owning program may add keys)."""
    have = parse_keyfile(existing)
    for group, keys in parse_keyfile(wanted).items():
        for key, value in keys.items():
            if have.get(group, {}).get(key) != value:
                return False
    return True


def _read(path):
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def _make_parents(directory, uid, gid, dir_mode, check_mode):
    missing = []
    while not os.path.isdir(directory):
        if os.path.lexists(directory):
            raise OSError("%s exists and is not a directory" % directory)
        missing.append(directory)
        directory = os.path.dirname(directory)
    if check_mode:
        return missing
    for path in reversed(missing):
        os.mkdir(path, dir_mode)
        if os.geteuid() == 0:
            os.chown(path, uid, gid)
    return missing


def _validate(field, entry, tmp_path, run_command):
    """The entry's built-in validator (validate_with) and its validation command, if any, on the new content."""
    if entry.get("validate_with"):
        try:
            validate(entry["validate_with"], tmp_path, run_command)
        except ValidationError as exc:
            raise FileSyncError(field, "validation (%s) failed: the new content %s"
                                % (entry["validate_with"].get("name"), exc)) from None
    command = entry.get("validate")
    if not command:
        return
    argv = [arg.replace("%s", tmp_path) for arg in shlex.split(command)]
    try:
        rc, out, err = run_command(argv)
    except OSError as exc:
        raise FileSyncError(field, "validation command %r could not run: %s" % (command, exc)) from None
    if rc != 0:
        raise FileSyncError(field, "validation %r failed (rc=%d): %s" % (command, rc, (err or out).strip()))


def _stage(entry, content, uid, gid, mode):
    """Write a temporary copy next to the file (on disk, with its owner and mode) and return its path; the
    caller renames it over the file once every file of the batch is staged. A reader, a concurrent run or a
    run killed half-way only ever sees the old or the new file, whole."""
    path = entry["path"]
    directory = os.path.dirname(path)
    try:
        fd, tmp_path = tempfile.mkstemp(prefix=".%s." % os.path.basename(path), dir=directory)
    except OSError as exc:
        raise FileSyncError(entry["field"], "cannot write next to %s: %s" % (path, exc.strerror or exc)) from None
    try:
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(content)
                # On disk before the rename: after a power cut the file is old or new, never empty.
                handle.flush()
                os.fsync(handle.fileno())
        except OSError as exc:
            raise FileSyncError(entry["field"], "cannot write %s: %s; the file is left as it was"
                                % (path, exc.strerror or exc)) from None
        os.chmod(tmp_path, mode)
        if os.geteuid() == 0:
            os.chown(tmp_path, uid, gid)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_path)
        raise
    return tmp_path


def _remove(path):
    # Gone already (a concurrent run removed it): the wanted state is reached all the same.
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def _set_attributes(path, mode, uid, gid):
    os.chmod(path, mode)
    if os.geteuid() == 0:
        os.chown(path, uid, gid)


def _apply(commits, home_login, uid, gid, action, *args, staged=None):
    """Run action(*args) now, or (with a commit list) later, with the same privileges as now."""
    if commits is None:
        action(*args)
        return

    def commit():
        with acting_as(uid if home_login else 0, gid):
            action(*args)
    commit.staged = staged
    commits.append(commit)


def sync_entry(entry, check_mode, run_command, commits=None):
    """Bring one file to its wanted state; return a result dict (and a diff).

    With ``commits`` (a list), nothing is validated (the dry run did it) and nothing goes live: a new
    content is staged next to the file, and what puts it (or a removal, or new attributes) in place is
    appended as a callable, run by sync_files once every file of the batch is staged."""
    field = entry["field"]
    path, home_login = expand_path(field, entry["path"])
    uid, gid = resolve_owner(field, entry.get("owner"), entry.get("group"), home_login)
    default_mode = "0600" if home_login else "0644"
    mode = int(str(entry.get("mode") or default_mode), 8)
    dir_mode = int(str(entry.get("dir_mode") or ("0700" if uid else "0755")), 8)
    entry = dict(entry, path=path)
    result = {"path": path, "changed": False, "action": "unchanged"}
    with acting_as(uid if home_login else 0, gid):
        before = _read(path) if not os.path.islink(path) else None
        if os.path.islink(path):
            raise FileSyncError(field, "%s is a symbolic link; refusing to replace it" % path)
        if entry.get("state", "present") == "absent":
            if before is None:
                result["action"] = "absent"
                return result, None
            if not check_mode:
                _apply(commits, home_login, uid, gid, _remove, path)
            result.update(changed=True, action="removed")
            return result, {"before_header": path, "before": before.decode("utf-8", "replace"),
                            "after_header": path, "after": ""}
        binary = entry.get("content_base64") is not None
        content = _wanted_bytes(entry)
        same_content = before == content or (
            not binary and before is not None and entry.get("compare") == "keyfile"
            and keyfile_contains(before.decode("utf-8", "replace"), entry["content"]))
        if same_content:
            st = os.stat(path)
            if stat.S_IMODE(st.st_mode) == mode and (st.st_uid, st.st_gid) == (uid, gid):
                return result, None
            if not check_mode:
                _apply(commits, home_login, uid, gid, _set_attributes, path, mode, uid, gid)
            result.update(changed=True, action="attributes")
            return result, None
        try:
            _make_parents(os.path.dirname(path), uid, gid, dir_mode, check_mode)
        except OSError as exc:
            raise FileSyncError(field, "cannot create the directory for %s: %s" % (path, exc)) from None
        if not check_mode:
            staged = _stage(entry, content, uid, gid, mode)
            _apply(commits, home_login, uid, gid, os.replace, staged, path, staged=staged)
        elif entry.get("validate") or entry.get("validate_with"):
            # Check mode still proves the new content valid, without touching the real file (nor creating
            # its directory: the scratch copy lives elsewhere).
            with tempfile.TemporaryDirectory() as scratch:
                probe = os.path.join(scratch, os.path.basename(path))
                with open(probe, "wb") as handle:
                    handle.write(content)
                with as_root():
                    _validate(field, entry, probe, run_command)
        result.update(changed=True, action="created" if before is None else "updated")
        if binary:  # a diff of bytes says nothing: sizes and digests do
            return result, {"before_header": path, "before": _digest_line(before),
                            "after_header": path, "after": _digest_line(content)}
        return result, {"before_header": path, "before": "" if before is None else before.decode("utf-8", "replace"),
                        "after_header": path, "after": entry["content"]}


def _wanted_bytes(entry):
    """The entry's content as bytes: UTF-8 text (content) or any bytes (content_base64)."""
    if entry.get("content_base64") is None:
        return entry["content"].encode("utf-8")
    try:
        return base64.b64decode(entry["content_base64"], validate=True)
    except ValueError:
        raise FileSyncError(entry["field"], "content_base64 is not base64") from None


def _digest_line(data):
    if data is None:
        return ""
    return "(binary, %d bytes, sha256 %s)\n" % (len(data), hashlib.sha256(data).hexdigest())


def _expand_marked(entries):
    """Entries with a ``marker`` stand for every file their glob ``path`` matches that carries the marker
    (files we wrote under a name no longer wanted, such as an old domain's file); each becomes an absent
    entry, except files that another entry of the same call names (it writes or removes them itself)."""
    named = {e["path"] for e in entries if e.get("marker") is None}
    expanded = []
    for index, entry in enumerate(entries):
        if entry.get("marker") is None:
            expanded.append(dict(entry, field="files[%d] (%s)" % (index, entry.get("path"))))
            continue
        field = "files[%d] (%s)" % (index, entry.get("path"))
        if entry.get("state", "present") != "absent" or not os.path.isabs(entry["path"]):
            raise FileSyncError(field, "marker needs state absent and an absolute glob path")
        marker = entry["marker"].encode("utf-8")
        for path in sorted(glob.glob(entry["path"])):
            content = _read(path) if os.path.isfile(path) and not os.path.islink(path) else None
            if path not in named and content is not None and marker in content:
                expanded.append({"path": path, "state": "absent", "field": "%s: %s" % (field, path)})
    return expanded


def sync_files(entries, run_command, check_mode=False):
    """Apply every entry; all requests are checked for errors before anything is written.

    ``run_command(argv) -> (rc, stdout, stderr)`` runs validation commands (the module passes
    AnsibleModule.run_command)."""
    prepared = []
    for entry in _expand_marked(entries):
        given = [key for key in ("content", "content_base64") if entry.get(key) is not None]
        if entry.get("state", "present") == "present" and len(given) != 1:
            raise FileSyncError(entry["field"], "content is required when state is present (exactly one of content and"
                                " content_base64)")
        if entry.get("content_base64") is not None and (entry.get("compare") == "keyfile" or entry.get("marker")):
            raise FileSyncError(entry["field"], "content_base64 is for whole binary files (compare exact, no marker)")
        expand_path(entry["field"], entry["path"])
        prepared.append(entry)
    results, diffs = [], []
    # A dry run first, which validates each new file once: every validator passes (and every path is
    # usable) before the first file or directory is touched, so one bad file leaves the batch as it was.
    for entry in prepared:
        result, diff = sync_entry(entry, True, run_command)
        results.append(result)
        if diff:
            diffs.append(diff)
    if check_mode:
        return results, diffs
    # Then every new content is staged next to its file; only when all are on disk does anything go live
    # (a full file system on the third file leaves the first two as they were).
    commits = []
    try:
        for entry, result in zip(prepared, results):
            if result["changed"]:
                sync_entry(entry, False, run_command, commits)
    except BaseException:
        for commit in commits:
            if commit.staged:
                with contextlib.suppress(OSError):
                    os.unlink(commit.staged)
        raise
    for commit in commits:
        commit()
    return results, diffs


def run_after_change(commands, changed_paths, run_command):
    """Run each ``{command: argv, paths: [prefix, ...]}`` once when a changed path starts with one of its
    prefixes (dconf compiles its database after a settings file changed), in the same remote execution.
    Returns the argv lists that ran."""
    ran = []
    for index, item in enumerate(commands or []):
        if not any(path.startswith(prefix) for path in changed_paths for prefix in item["paths"]):
            continue
        try:
            rc, out, err = run_command(list(item["command"]))
        except OSError as exc:
            rc, out, err = 127, "", str(exc)
        if rc != 0:
            raise FileSyncError("after_change[%d]" % index, "%r failed (rc=%d) after the files changed (they are in "
                                "place): %s" % (" ".join(item["command"]), rc, (err or out).strip()))
        ran.append(list(item["command"]))
    return ran
