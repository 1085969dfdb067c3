# Copyright (c) Middlebury College
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""managed_files' built-in validators, chosen by name (``validate_with: {name: ...}``) and run in the module's
own process on the managed host: no validator travels as a pasted program, and none needs a package that
the client itself does not bring.

- ``json``, ``xml``: the Python standard library's parsers (Thunderbird's policies and account-wizard file).
- ``evolution-source``, ``evolution-autoconfig``, ``dconf``, ``dconf-locks``: what evolution-data-server or dconf
  would silently misread. One malformed .source file switches off autoconfig for a user, a bad dconf value is
  dropped by ``dconf update``. The parser is GLib's own, reached through ctypes, so that only libglib (a
  dependency of evolution-data-server and dconf) is needed, not python3-gi.
- ``muttrc``: the clients themselves read the file (``-Q folder``), with a throw-away HOME.
"""

from __future__ import annotations

import ctypes
import json
import shutil
import tempfile
import typing as t
from xml.dom import minidom
from xml.parsers.expat import ExpatError

SECURITY_NICKS = ("ssl-on-alternate-port", "starttls-on-standard-port")
MUTT_CLIENTS = ("mutt", "neomutt")
# A client that hangs on a file (a backtick that blocks) must not hang the module.
MUTT_TIMEOUT = 30


class ValidationError(Exception):
    """The new content would be misread; the message says how."""


class _GError(ctypes.Structure):
    _fields_ = [("domain", ctypes.c_uint32), ("code", ctypes.c_int), ("message", ctypes.c_char_p)]


def _load_glib():
    try:
        glib = ctypes.CDLL("libglib-2.0.so.0")
    except OSError:
        raise ValidationError("cannot check it: libglib-2.0 is missing (evolution-data-server and dconf need it; "
                              "install Evolution first or set evolution_install: true)") from None
    glib.g_key_file_new.restype = ctypes.c_void_p
    glib.g_key_file_free.argtypes = [ctypes.c_void_p]
    glib.g_key_file_load_from_data.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_int,
                                               ctypes.POINTER(ctypes.POINTER(_GError))]
    glib.g_key_file_get_groups.restype = ctypes.POINTER(ctypes.c_char_p)
    glib.g_key_file_get_groups.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
    glib.g_key_file_get_keys.restype = ctypes.POINTER(ctypes.c_char_p)
    glib.g_key_file_get_keys.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p, ctypes.c_void_p]
    glib.g_key_file_get_value.restype = ctypes.c_char_p
    glib.g_key_file_get_value.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_void_p]
    glib.g_variant_parse.restype = ctypes.c_void_p
    glib.g_variant_parse.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p, ctypes.c_void_p,
                                     ctypes.POINTER(ctypes.POINTER(_GError))]
    glib.g_variant_unref.argtypes = [ctypes.c_void_p]
    return glib


def _strv(pointer) -> list:
    items, index = [], 0
    while pointer and pointer[index] is not None:
        items.append(pointer[index].decode("utf-8"))
        index += 1
    return items


def _keyfile_groups(glib, data: bytes) -> dict:
    """{group: {key: raw value}} as GLib reads it (raw: before GLib's own unescaping)."""
    keyfile = glib.g_key_file_new()
    try:
        error = ctypes.POINTER(_GError)()
        if not glib.g_key_file_load_from_data(keyfile, data, len(data), 0, ctypes.byref(error)):
            raise ValidationError("GLib cannot load it as a key file: "
                                  + error.contents.message.decode("utf-8", "replace"))
        groups = {}
        for group in _strv(glib.g_key_file_get_groups(keyfile, None)):
            name = group.encode("utf-8")
            groups[group] = {key: glib.g_key_file_get_value(keyfile, name, key.encode("utf-8"), None).decode("utf-8")
                             for key in _strv(glib.g_key_file_get_keys(keyfile, name, None, None))}
        return groups
    finally:
        glib.g_key_file_free(keyfile)


def _text(data: bytes) -> str:
    if data.startswith(b"\xef\xbb\xbf"):
        raise ValidationError("starts with a byte order mark, which makes GLib reject the whole file")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValidationError("is not valid UTF-8: %s" % exc) from None


def _source(data: bytes, autoconfig: bool) -> None:
    _text(data)
    groups = _keyfile_groups(_load_glib(), data)
    if "Data Source" not in groups:
        raise ValidationError("has no [Data Source] group: evolution-data-server would not load it")
    if autoconfig and not groups.get("Autoconfig", {}).get("Revision"):
        raise ValidationError("has no [Autoconfig] Revision: evolution-data-server would skip the template")
    # A missing [Security] group means plaintext, a misspelt method silently means STARTTLS.
    if "Authentication" in groups and groups.get("Security", {}).get("Method") not in SECURITY_NICKS:
        raise ValidationError("[Security] Method must be one of %s next to [Authentication]"
                              % ", ".join(SECURITY_NICKS))
    for group, keys in groups.items():
        for key, value in keys.items():
            if value.lower() in ("true", "false") and value != value.lower():
                raise ValidationError("[%s] %s=%s: GLib reads only lowercase booleans" % (group, key, value))


def evolution_source(path: str, **_unused: t.Any) -> None:
    _source(_read(path), autoconfig=False)


def evolution_autoconfig(path: str, **_unused: t.Any) -> None:
    _source(_read(path), autoconfig=True)


def dconf(path: str, **_unused: t.Any) -> None:
    data = _read(path)
    _text(data)
    glib = _load_glib()
    for group, keys in _keyfile_groups(glib, data).items():
        for key, value in keys.items():
            error = ctypes.POINTER(_GError)()
            variant = glib.g_variant_parse(None, value.encode("utf-8"), None, None, ctypes.byref(error))
            if not variant:
                raise ValidationError("[%s] %s=%s is not a GVariant value: %s" % (
                    group, key, value, error.contents.message.decode("utf-8", "replace")))
            glib.g_variant_unref(variant)


def dconf_locks(path: str, **_unused: t.Any) -> None:
    for line in _text(_read(path)).splitlines():
        line = line.strip()
        if line and not line.startswith("#") and (not line.startswith("/") or line.endswith("/")):
            raise ValidationError("%r is not a dconf key path (/org/gnome/...)" % line)


def json_file(path: str, **_unused: t.Any) -> None:
    try:
        json.loads(_read(path).decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ValidationError("is not valid JSON: %s" % exc) from None


def xml_file(path: str, **_unused: t.Any) -> None:
    try:
        minidom.parseString(_read(path))
    except ExpatError as exc:
        raise ValidationError("is not well-formed XML: %s" % exc) from None


def muttrc(path: str, run_command: t.Callable, clients: list | None = None, missing_ok: bool = False,
           **_unused: t.Any) -> None:
    """Each client reads the file. They report errors in it on stderr but exit 0 (mutt 2.2, NeoMutt 20220429),
    and NeoMutt 2025 exits 1 for -Q even on a valid file: so the verdict is "stderr empty and the value printed".
    A throw-away HOME: the file's header-cache backtick creates directories under ~, and validation (as root, on
    every host) must leave nothing behind. ``missing_ok``: check mode with an install that only pretended."""
    clients = list(clients or [])
    unknown = [c for c in clients if c not in MUTT_CLIENTS]
    if not clients or unknown:
        raise ValidationError("muttrc validator: clients must be some of %s, got %r"
                              % (", ".join(MUTT_CLIENTS), clients))
    home = tempfile.mkdtemp(prefix="mail_clients-muttrc-")
    try:
        for client in clients:
            binary = shutil.which(client)
            if binary is None:
                if missing_ok:
                    continue
                raise ValidationError("%s is not installed: set mutt_install to true, or leave %s out of "
                                      "mutt_clients" % (client, client))
            rc, out, err = run_command(["timeout", str(MUTT_TIMEOUT), binary, "-n", "-F", path, "-Q", "folder"],
                                       cwd=home, environ_update={"HOME": home})
            if err.strip() or not out.strip():
                raise ValidationError("%s rejects the generated file (rc=%d): %s" % (client, rc, err.strip()))
    finally:
        shutil.rmtree(home, ignore_errors=True)


def _read(path: str) -> bytes:
    with open(path, "rb") as handle:
        return handle.read()


VALIDATORS = {
    "json": json_file,
    "xml": xml_file,
    "evolution-source": evolution_source,
    "evolution-autoconfig": evolution_autoconfig,
    "dconf": dconf,
    "dconf-locks": dconf_locks,
    "muttrc": muttrc,
}


def validate(spec: dict, path: str, run_command: t.Callable) -> None:
    """Run the validator ``spec['name']`` (with the rest of ``spec`` as its arguments) on ``path``."""
    arguments = dict(spec)
    name = arguments.pop("name", None)
    if name not in VALIDATORS:
        raise ValidationError("unknown validator %r; built in: %s" % (name, ", ".join(sorted(VALIDATORS))))
    VALIDATORS[name](path, run_command=run_command, **arguments)
