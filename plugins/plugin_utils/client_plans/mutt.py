# Copyright (c) Middlebury College
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""mutt and NeoMutt: one system drop-in per known client, one file per named user (templates/muttrc.j2)."""

from __future__ import annotations

from ansible_collections.middlebury.mail_clients.plugins.plugin_utils.client_plans import (
    OptionError,
    PlanContext,
    present,
    wanted,
)

CLIENTS = ("mutt", "neomutt")
# Debian's /etc/Muttrc and /etc/neomuttrc source /etc/Muttrc.d/*.rc and /etc/neomuttrc.d/*.rc last, in glob
# order (README.Debian): "zz-" sorts after the shipped charset.rc ... smime.rc, so ours wins over the
# distribution defaults while each user's own muttrc, read afterwards, still wins over ours. Another OS family
# (Fedora has /etc/Muttrc.local and no .d directory) gets its own entry here.
LAYOUTS = {
    "Debian": {
        "dropin_dirs": {"mutt": "/etc/Muttrc.d", "neomutt": "/etc/neomuttrc.d"},
        # Fixed names, not knobs: absent must find exactly what present wrote.
        "dropin_name": "zz-middlebury.rc",
        # Per-user file of ours, relative to the user's home (passwd entry); the drop-ins source it.
        "user_file": ".config/mutt/middlebury.rc",
        "packages": {"mutt": ["mutt"], "neomutt": ["neomutt"]},
        # The OAuth2 token helper (files/mail_clients_oauth2.py) and its settings: fixed paths, so that absent
        # finds them, the drop-ins can name them, and a lab's logout script can call --forget.
        "oauth2_helper": "/usr/local/bin/mail-clients-oauth2",
        "oauth2_config": "/etc/mail-clients/oauth2.json",
        "python": "/usr/bin/python3",
    },
}
HELPER_SOURCE = "mail_clients_oauth2.py"


def check(options: dict, account: dict) -> None:
    clients = options["mutt_clients"]
    if not clients or set(clients) - set(CLIENTS):
        raise OptionError("mutt_clients", "must list mutt and/or neomutt, got %r" % (clients,))
    ca_file = options["mutt_ca_file"]
    if ca_file and not ca_file.startswith("/"):
        raise OptionError("mutt_ca_file", "must be empty or an absolute path on the managed host, got %r" % ca_file)
    if account["auth"] == "oauth2" and not options["mutt_oauth_refresh_command"]:
        _check_helper_settings(account["oauth2"])
    if account["auth"] == "oauth2" and account["incoming"]["protocol"] == "pop3" and "neomutt" in clients \
            and "OAUTHBEARER" not in account["oauth2"]["mechanisms"]:
        raise OptionError("mutt_clients", "NeoMutt cannot log in to POP3 with XOAUTH2, the only token mechanism of"
                          " this provider: use protocol imap, or mutt_clients [mutt]")


def _check_helper_settings(oauth2: dict) -> None:
    """Our token helper needs an app registration and the device flow: mutt has no built-in registration."""
    field = "mail_clients_account.oauth2."
    if not oauth2["client_id"]:
        raise OptionError(field + "client_id", "mutt and NeoMutt have no built-in OAuth2 app registration: give"
                          " the client ID of your organisation's app (a public client with the device-code flow),"
                          " or mutt_oauth_refresh_command for a token helper of your own")
    for key in ("token_endpoint", "device_authorization_endpoint"):
        if not oauth2[key]:
            raise OptionError(field + key, "is needed by the token helper (device-code sign-in), or set"
                              " mutt_oauth_refresh_command for a token helper of your own")
    if not oauth2["scopes"]:
        raise OptionError(field + "scopes", "is needed by the token helper: the scopes for IMAP/POP and SMTP")


def uses_helper(options: dict, account: dict) -> bool:
    """Our token helper, rather than a site's own refresh command."""
    return account["auth"] == "oauth2" and not options["mutt_oauth_refresh_command"]


def refresh_command(options: dict, layout: dict) -> str:
    """What the clients run for a token (through sh -c, as the user): the site's own, or our helper."""
    if options["mutt_oauth_refresh_command"]:
        return options["mutt_oauth_refresh_command"]
    return "%s --config %s" % (layout["oauth2_helper"], layout["oauth2_config"])


def packages(options: dict, layout: dict, account: dict) -> list:
    """What the install step installs: the packages of the listed clients."""
    return [name for client in options["mutt_clients"] for name in layout["packages"][client]]


def plan(ctx: PlanContext) -> list:
    options, layout, account = ctx.options, ctx.layout, ctx.account
    on = options["mutt_state"] == "present"
    # A client missing in check mode is fine when the install step only pretended to install it.
    missing_ok = ctx.check_mode and options["mutt_install"]

    def muttrc(path, clients, **render):
        content = ctx.render("muttrc.j2", __mutt_account=account, __mutt_user_file=layout["user_file"],
                             __mutt_render=render, __mutt_refresh_command=refresh_command(options, layout))
        return present(path, content, validate_with={"name": "muttrc", "clients": clients, "missing_ok": missing_ok},
                       **({"owner": "root", "group": "root", "mode": "0644"} if "user" not in render else
                          {"mode": "0600"}))

    helper = on and uses_helper(options, account)
    files = [
        wanted(helper, layout["oauth2_helper"], lambda: present(
            layout["oauth2_helper"], "#!%s\n%s" % (layout["python"], ctx.source(HELPER_SOURCE)),
            owner="root", group="root", mode="0755")),
        wanted(helper, layout["oauth2_config"], lambda: present(
            layout["oauth2_config"], ctx.render("oauth2.json.j2", __mutt_oauth2=helper_settings(account, options)),
            validate_with={"name": "json"}, owner="root", group="root", mode="0644", dir_mode="0755")),
    ]
    for client in CLIENTS:
        path = "%s/%s" % (layout["dropin_dirs"][client], layout["dropin_name"])
        files.append(wanted(on and client in options["mutt_clients"], path,
                            lambda path=path, client=client: muttrc(path, [client], client=client)))
    for index, user in enumerate(account["users"]):
        path = "~%s/%s" % (user["login"], layout["user_file"])
        files.append(wanted(on, path, lambda path=path, user=user, index=index: muttrc(
            path, list(options["mutt_clients"]), client="both", user=user, index=index)))
    return files


def helper_settings(account: dict, options: dict) -> dict:
    """The token helper's settings: the account's OAuth2 app and provider (a desktop app's client secret, where it
    has one, is not confidential: RFC 8252 8.5)."""
    oauth2 = account["oauth2"]
    settings = {key: oauth2[key] for key in ("issuer", "client_id", "token_endpoint", "device_authorization_endpoint",
                                             "scopes")}
    if oauth2["client_secret"]:
        settings["client_secret"] = oauth2["client_secret"]
    settings["ca_file"] = options["mutt_ca_file"] or None
    return settings
