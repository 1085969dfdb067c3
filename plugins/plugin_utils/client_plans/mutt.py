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
    },
}


def check(options: dict, account: dict) -> None:
    clients = options["mutt_clients"]
    if not clients or set(clients) - set(CLIENTS):
        raise OptionError("mutt_clients", "must list mutt and/or neomutt, got %r" % (clients,))
    ca_file = options["mutt_ca_file"]
    if ca_file and not ca_file.startswith("/"):
        raise OptionError("mutt_ca_file", "must be empty or an absolute path on the managed host, got %r" % ca_file)
    if account["auth"] == "oauth2" and not options["mutt_oauth_refresh_command"]:
        raise OptionError("mutt_oauth_refresh_command", "required when mail_clients_account.auth is oauth2")


def packages(options: dict, layout: dict) -> list:
    """What the install step installs: the packages of the listed clients."""
    return [name for client in options["mutt_clients"] for name in layout["packages"][client]]


def plan(ctx: PlanContext) -> list:
    options, layout, account = ctx.options, ctx.layout, ctx.account
    on = options["mutt_state"] == "present"
    # A client missing in check mode is fine when the install step only pretended to install it.
    missing_ok = ctx.check_mode and options["mutt_install"]

    def muttrc(path, clients, **render):
        content = ctx.render("muttrc.j2", __mutt_account=account, __mutt_user_file=layout["user_file"],
                             __mutt_render=render)
        return present(path, content, validate_with={"name": "muttrc", "clients": clients, "missing_ok": missing_ok},
                       **({"owner": "root", "group": "root", "mode": "0644"} if "user" not in render else
                          {"mode": "0600"}))

    files = []
    for client in CLIENTS:
        path = "%s/%s" % (layout["dropin_dirs"][client], layout["dropin_name"])
        files.append(wanted(on and client in options["mutt_clients"], path,
                            lambda path=path, client=client: muttrc(path, [client], client=client)))
    for index, user in enumerate(account["users"]):
        path = "~%s/%s" % (user["login"], layout["user_file"])
        files.append(wanted(on, path, lambda path=path, user=user, index=index: muttrc(
            path, list(options["mutt_clients"]), client="both", user=user, index=index)))
    return files
