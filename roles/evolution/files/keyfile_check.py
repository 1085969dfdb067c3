# Copyright (c) Middlebury College
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Refuse a file that evolution-data-server or dconf would not read the way we mean it.

Run by managed_files' ``validate`` on the temporary copy, before the file goes live: one
malformed .source file silently switches off autoconfig for a user, a bad dconf value is
dropped by ``dconf update``. The parser is GLib's own, reached through ctypes so that only
libglib (a dependency of evolution-data-server and dconf) is needed on the target, not python3-gi.

Usage: python3 -c "<this file>" source|autoconfig|dconf|locks FILE
The text must not contain a percent sign followed by s: managed_files substitutes that token.
"""

from __future__ import annotations

import ctypes
import sys

SECURITY_NICKS = ("ssl-on-alternate-port", "starttls-on-standard-port")


class GError(ctypes.Structure):
    _fields_ = [("domain", ctypes.c_uint32), ("code", ctypes.c_int), ("message", ctypes.c_char_p)]


def fail(message):
    sys.stderr.write(message + "\n")
    sys.exit(1)


def load_glib():
    try:
        glib = ctypes.CDLL("libglib-2.0.so.0")
    except OSError:
        fail("cannot check it: libglib-2.0 is missing (evolution-data-server and dconf need it; "
             "install Evolution first or set evolution_install: true)")
    glib.g_key_file_new.restype = ctypes.c_void_p
    glib.g_key_file_load_from_data.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_int,
                                               ctypes.POINTER(ctypes.POINTER(GError))]
    glib.g_key_file_get_groups.restype = ctypes.POINTER(ctypes.c_char_p)
    glib.g_key_file_get_groups.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
    glib.g_key_file_get_keys.restype = ctypes.POINTER(ctypes.c_char_p)
    glib.g_key_file_get_keys.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p, ctypes.c_void_p]
    glib.g_key_file_get_value.restype = ctypes.c_char_p
    glib.g_key_file_get_value.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_void_p]
    glib.g_variant_parse.restype = ctypes.c_void_p
    glib.g_variant_parse.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p, ctypes.c_void_p,
                                     ctypes.POINTER(ctypes.POINTER(GError))]
    return glib


def strv(pointer):
    items, index = [], 0
    while pointer and pointer[index] is not None:
        items.append(pointer[index].decode("utf-8"))
        index += 1
    return items


def parse(glib, data):
    """{group: {key: raw value}} as GLib reads it (raw: before GLib's own unescaping)."""
    keyfile = glib.g_key_file_new()
    error = ctypes.POINTER(GError)()
    if not glib.g_key_file_load_from_data(keyfile, data, len(data), 0, ctypes.byref(error)):
        fail("GLib cannot load it as a key file: " + error.contents.message.decode("utf-8", "replace"))
    groups = {}
    for group in strv(glib.g_key_file_get_groups(keyfile, None)):
        name = group.encode("utf-8")
        groups[group] = {key: glib.g_key_file_get_value(keyfile, name, key.encode("utf-8"), None).decode("utf-8")
                         for key in strv(glib.g_key_file_get_keys(keyfile, name, None, None))}
    return groups


def check_source(groups, autoconfig):
    if "Data Source" not in groups:
        fail("has no [Data Source] group: evolution-data-server would not load it")
    if autoconfig and not groups.get("Autoconfig", {}).get("Revision"):
        fail("has no [Autoconfig] Revision: evolution-data-server would skip the template")
    # A missing [Security] group means plaintext, a misspelt method silently means STARTTLS.
    if "Authentication" in groups and groups.get("Security", {}).get("Method") not in SECURITY_NICKS:
        fail("[Security] Method must be one of {} next to [Authentication]".format(", ".join(SECURITY_NICKS)))
    for group, keys in groups.items():
        for key, value in keys.items():
            if value.lower() in ("true", "false") and value != value.lower():
                fail(f"[{group}] {key}={value}: GLib reads only lowercase booleans")


def check_dconf(glib, groups):
    for group, keys in groups.items():
        for key, value in keys.items():
            error = ctypes.POINTER(GError)()
            if not glib.g_variant_parse(None, value.encode("utf-8"), None, None, ctypes.byref(error)):
                fail("[{}] {}={} is not a GVariant value: {}".format(
                    group, key, value, error.contents.message.decode("utf-8", "replace")))


def check_locks(text):
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#") and (not line.startswith("/") or line.endswith("/")):
            fail(f"{line!r} is not a dconf key path (/org/gnome/...)")


def main(argv):
    kind, path = argv[1], argv[2]
    with open(path, "rb") as handle:
        data = handle.read()
    if data.startswith(b"\xef\xbb\xbf"):
        fail("starts with a byte order mark, which makes GLib reject the whole file")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        fail(f"is not valid UTF-8: {exc}")
    if kind == "locks":
        check_locks(text)
        return
    glib = load_glib()
    groups = parse(glib, data)
    if kind == "dconf":
        check_dconf(glib, groups)
    else:
        check_source(groups, autoconfig=kind == "autoconfig")


main(sys.argv)
