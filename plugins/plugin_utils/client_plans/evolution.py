# Copyright (c) Middlebury College
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Evolution: the account's three ESource files per protocol (lab templates or each named user's own), and the
system dconf settings. Every file is parsed by GLib on the managed host before it goes live (managed_files'
built-in validators); a changed dconf file is compiled with ``dconf update`` in the same module call."""

from __future__ import annotations

import hashlib
import json
import re

from ansible_collections.middlebury.mail_clients.plugins.plugin_utils.client_plans import (
    OptionError,
    PlanContext,
    absent,
    present,
    wanted,
)

LAYOUTS = {
    "Debian": {
        "user_sources_dir": ".config/evolution/sources",
        "dconf_root": "/etc/dconf",
        # The systemd user manager's environment (environment.d(5)), read at the next login.
        "environment_dir": "/etc/environment.d",
        # The mail client pulls in evolution-data-server (the registry that reads our sources) and libglib,
        # which checks them; dconf-cli compiles the system settings.
        "packages": ["evolution"],
        "dconf_packages": ["dconf-cli"],
        # Microsoft 365 (Graph) and Exchange (EWS) collections.
        "microsoft365_packages": ["evolution-ews"],
    },
}
# The kinds of account this role writes, each with UIDs of its own (<prefix>-<part>[-<kind>]), so that switching
# removes the other's sources instead of turning an IMAP cache directory into a POP one; and its source files by
# kind (template, UID suffix). Microsoft 365 is a collection (evolution-ews' Microsoft365 backend over Microsoft
# Graph) with its mail account, identity and transport as children.
ACCOUNT_TYPES = {
    "imap": {"part": "imap", "sources": {"account": ("account", ""), "identity": ("identity", "-identity"),
                                         "transport": ("transport", "-transport")}},
    "pop3": {"part": "pop", "sources": {"account": ("account", ""), "identity": ("identity", "-identity"),
                                        "transport": ("transport", "-transport")}},
    "microsoft365": {"part": "m365", "sources": {
        "collection": ("m365-collection", ""), "account": ("m365-account", "-mail"),
        "identity": ("identity", "-identity"), "transport": ("m365-transport", "-transport")}},
}
# Camel's security nicks (src/camel/camel-enums.h). A misspelt nick silently means STARTTLS and a missing
# [Security] group means plaintext, so every file with [Authentication] names one of these explicitly.
SECURITY_NICKS = {"ssl": "ssl-on-alternate-port", "starttls": "starttls-on-standard-port"}
# Camel backend names ("imap" is the pre-3.x name EDS migrates; write the current one).
BACKENDS = {"imap": "imapx", "pop3": "pop"}
# evolution-data-server's own OAuth2 services, by provider preset: the sources name one as their authentication
# method, and it signs in and refreshes the tokens (module-oauth2-services in the source registry; evolution-ews'
# Microsoft365 one for the Graph collection).
OAUTH2_METHODS = {"google": "Google", "microsoft365": "Microsoft365"}
# evolution-ews before 3.51.1 (Debian 12's 3.46) loads its Microsoft 365 parts only with this in the environment
# of every process that uses them (the registry, the calendar and address-book factories, Evolution): written for
# the systemd user manager, which starts them and the desktop session. Later releases ignore it.
M365_ENVIRONMENT = "ENABLE_M365=1"
# GSettings of the registry for an organisation's own app in place of the build's registration (a restart reads
# them); written to the system dconf database.
OAUTH2_GSETTINGS = {"google": ("org/gnome/evolution-data-server", "oauth2-google-client-id",
                               "oauth2-google-client-secret")}
# Built-in UIDs of evolution-data-server that our prefix must never collide with.
RESERVED_PREFIXES = ("local", "vfolder", "sendmail", "system", "birthdays")
_PREFIX = re.compile(r"^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$")
_DCONF_DB = re.compile(r"^[A-Za-z0-9_-]+$")
_DCONF_PATH = re.compile(r"^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*$")
_DCONF_KEY = re.compile(r"^[A-Za-z0-9-]+$")
_DCONF_LOCK = re.compile(r"^(/[A-Za-z0-9._-]+)+$")
# dconf reads values raw as GVariant text: one line, no control characters.
_ONE_LINE = re.compile(r"^[^\x00-\x1f\x7f\u2028\u2029]+$")


def check(options: dict, account: dict) -> None:
    if account["auth"] == "oauth2" and account["provider"] not in OAUTH2_METHODS:
        raise OptionError("mail_clients_account.auth", "Evolution signs in with OAuth2 only to the providers it "
                          "knows (provider: google), not to this account's identity provider; use 'password' "
                          "(normal password over TLS)")
    if account["auth"] == "oauth2" and account["incoming"]["protocol"] != "imap":
        # Google's service signs in for IMAP and SMTP; Microsoft 365 is a Graph collection, neither IMAP nor POP.
        raise OptionError("mail_clients_account.protocol", "Evolution's %s account is not %s: leave protocol unset"
                          % (OAUTH2_METHODS[account["provider"]], account["incoming"]["protocol"]))
    prefix = options["evolution_uid_prefix"]
    if not _PREFIX.match(prefix) or prefix in RESERVED_PREFIXES:
        raise OptionError("evolution_uid_prefix", '%r must be 1-32 lowercase letters, digits and "-" (not first or '
                          "last), and not one of evolution-data-server's own names %s"
                          % (prefix, ", ".join(RESERVED_PREFIXES)))
    if not 0 <= options["evolution_refresh_minutes"] <= 99999:
        raise OptionError("evolution_refresh_minutes", "must be a number of minutes (0 turns checking off)")
    if not _DCONF_DB.match(options["evolution_dconf_db"]):
        raise OptionError("evolution_dconf_db", 'must be a dconf database name (letters, digits, "_" and "-")')
    for path, keys in options["evolution_dconf_settings"].items():
        if not isinstance(keys, dict):
            raise OptionError("evolution_dconf_settings[%s]" % json.dumps(path),
                              "must map dconf paths (org/gnome/evolution/mail) to mappings of keys and values")
        for key, value in keys.items():
            good_value = isinstance(value, (bool, int)) or (isinstance(value, str) and _ONE_LINE.match(value))
            if not (_DCONF_PATH.match(path) and isinstance(key, str) and _DCONF_KEY.match(key) and good_value):
                raise OptionError("evolution_dconf_settings[%s][%s]" % (json.dumps(path), json.dumps(str(key))),
                                  "the path must look like org/gnome/evolution/mail, the key like "
                                  "image-loading-policy, and the value must be one line of GVariant text (for "
                                  "example 'never' with the quotes), a boolean or an integer")
    for index, key in enumerate(options["evolution_dconf_locks"]):
        if not _DCONF_LOCK.match(key):
            raise OptionError("evolution_dconf_locks[%d]" % index,
                              "must be a dconf key path such as /org/gnome/evolution/mail/image-loading-policy")


def dconf_settings(options: dict, account: dict) -> dict:
    """The system dconf settings: the site's, and the organisation's OAuth2 app for the registry."""
    settings = {path: dict(keys) for path, keys in options["evolution_dconf_settings"].items()}
    oauth2 = account["oauth2"]
    # (Microsoft 365's app goes into its collection's sources instead.)
    if oauth2 is not None and oauth2["client_id"] and options["evolution_state"] == "present" \
            and account["provider"] in OAUTH2_GSETTINGS:
        path, id_key, secret_key = OAUTH2_GSETTINGS[account["provider"]]
        # GVariant strings; both values are single words without quotes (the model's client-id rule).
        settings.setdefault(path, {}).update({id_key: "'%s'" % oauth2["client_id"],
                                              secret_key: "'%s'" % (oauth2["client_secret"] or "")})
    return settings


def packages(options: dict, layout: dict, account: dict) -> list:
    return (layout["packages"] + (layout["dconf_packages"] if dconf_settings(options, account) else [])
            + (layout["microsoft365_packages"] if account_type(account) == "microsoft365" else []))


def dconf_paths(layout: dict, options: dict) -> dict:
    directory = "%s/db/%s.d" % (layout["dconf_root"], options["evolution_dconf_db"])
    name = "50-%s-evolution" % options["evolution_uid_prefix"]
    return {"settings": "%s/%s" % (directory, name), "locks": "%s/locks/%s" % (directory, name),
            "profile": layout["dconf_root"] + "/profile/user"}


def account_type(account: dict) -> str:
    """Which kind of account the sources are: Microsoft 365's collection, else the incoming protocol's."""
    return "microsoft365" if account["graph"] is not None else account["incoming"]["protocol"]


def source_uids(prefix: str, kind_of_account: str) -> dict:
    part = ACCOUNT_TYPES[kind_of_account]["part"]
    return {kind: "%s-%s%s" % (prefix, part, suffix)
            for kind, (_template, suffix) in ACCOUNT_TYPES[kind_of_account]["sources"].items()}


def _sources(ctx: PlanContext) -> list:
    options, account = ctx.options, ctx.account
    prefix = options["evolution_uid_prefix"]
    current = account_type(account)
    people = [None] if account["lab_mode"] else [dict(user, index=i) for i, user in enumerate(account["users"])]
    method = OAUTH2_METHODS.get(account["provider"]) if account["auth"] == "oauth2" else None
    files = []
    for type_name, kinds in ACCOUNT_TYPES.items():
        on = options["evolution_state"] == "present" and type_name == current
        uids = source_uids(prefix, type_name)
        for kind, (template, _suffix) in kinds["sources"].items():
            uid = uids[kind]
            for person in people:
                def source(path, person=person, template=template, uids=uids, type_name=type_name):
                    body = ctx.render(template + ".source.j2", __evolution_person=person, __evolution_uids=uids,
                                      __evolution_type=type_name, __evolution_account=account,
                                      __evolution_backends=BACKENDS, __evolution_security_nicks=SECURITY_NICKS,
                                      __evolution_oauth2_method=method)
                    if person is not None:
                        # keyfile compare: the registry rewrites the files it loads, adding keys of its own.
                        return present(path, body, mode="0600", dir_mode="0700", compare="keyfile",
                                       validate_with={"name": "evolution-source"})
                    # The revision changes exactly when the content does: EDS re-merges a template only then.
                    revision = hashlib.sha256(body.encode("utf-8")).hexdigest()[:16]
                    return present(path, "%s\n[Autoconfig]\nRevision=%s\n" % (body, revision), owner="root",
                                   group="root", mode="0644", dir_mode="0755",
                                   validate_with={"name": "evolution-autoconfig"})
                path = ("%s/%s.source" % (options["evolution_autoconfig_dir"], uid) if person is None else
                        "~%s/%s/%s.source" % (person["login"], ctx.layout["user_sources_dir"], uid))
                files.append(wanted(on, path, lambda path=path, source=source: source(path)))
            if not account["lab_mode"]:
                # Named users now: the lab templates of an earlier run would still give every login the account.
                files.append(absent("%s/%s.source" % (options["evolution_autoconfig_dir"], uid)))
    return files


def _environment(ctx: PlanContext) -> list:
    path = "%s/50-%s-evolution-m365.conf" % (ctx.layout["environment_dir"], ctx.options["evolution_uid_prefix"])
    on = ctx.options["evolution_state"] == "present" and account_type(ctx.account) == "microsoft365"
    return [wanted(on, path, lambda: present(
        path, "# managed by Ansible, changes will be overwritten\n%s\n" % M365_ENVIRONMENT, mode="0644",
        dir_mode="0755"))]


def _dconf(ctx: PlanContext) -> list:
    options = ctx.options
    where = dconf_paths(ctx.layout, options)
    settings = dconf_settings(options, ctx.account)
    on = options["evolution_state"] == "present" and bool(settings)
    system = {"mode": "0644", "dir_mode": "0755"}
    files = [
        wanted(on, where["settings"], lambda: present(
            where["settings"], ctx.render("dconf-settings.j2", __evolution_dconf_settings=settings),
            validate_with={"name": "dconf"}, **system)),
        wanted(on and bool(options["evolution_dconf_locks"]), where["locks"], lambda: present(
            where["locks"], ctx.render("dconf-locks.j2"), validate_with={"name": "dconf-locks"}, **system)),
    ]
    # The profile is written but never removed: other system databases may be listed through it.
    if on and options["evolution_dconf_profile"]:
        files.append(present(where["profile"], ctx.render("dconf-profile.j2"), **system))
    return files


def plan(ctx: PlanContext) -> list:
    return _sources(ctx) + _dconf(ctx) + _environment(ctx)


def after_change(layout: dict) -> list:
    """Commands managed_files runs, in the same call, when one of these paths changed."""
    return [{"paths": [layout["dconf_root"] + "/"], "command": ["dconf", "update"]}]
