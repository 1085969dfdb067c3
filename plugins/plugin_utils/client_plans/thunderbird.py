# Copyright (c) Middlebury College
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Thunderbird: AutoConfig (autoconfig.js + the .cfg), enterprise policies and the account wizard's file.

No validator runs on the managed host for the .cfg: every value in it leaves through the js_literal filter
(one escaping rule), and the test suite runs each rendered variant in Node.js and in the real Thunderbird.
The policies (JSON) and the wizard file (XML) are parsed by managed_files' built-in validators.
"""

from __future__ import annotations

import base64
import hashlib
import io
import re
import zipfile
from urllib.parse import urlsplit

from ansible_collections.middlebury.mail_clients.plugins.module_utils.account_model import EWS_END
from ansible_collections.middlebury.mail_clients.plugins.plugin_utils.client_plans import (
    OptionError,
    PlanContext,
    absent,
    present,
    wanted,
)

LAYOUTS = {
    # Debian's Thunderbird reads every *.js in /etc/thunderbird/pref (its "syspref" directory) as default
    # preferences. The .cfg goes into the install directory, the one place every supported version reads it
    # from: 153 looks in /etc/thunderbird first and then there, 140 (still in Debian 12's main archive) only
    # there, and hangs at start-up when autoconfig.js names a .cfg it cannot find.
    "Debian": {
        "cfg_dir": "/usr/lib/thunderbird",
        "pref_dir": "/etc/thunderbird/pref",
        "policies_path": "/etc/thunderbird/policies/policies.json",
        # <install dir>/isp, where the account wizard looks first; a dpkg-owned directory, our file in it is not.
        "isp_dir": "/usr/share/thunderbird/isp",
        # Where earlier releases put the .cfg: removed on every run, since 153 would read that copy first.
        "legacy_cfg_dir": "/etc/thunderbird",
        # Nothing is installed only to check a file.
        "packages": ["thunderbird"],
    },
}
CFG_NAME = "mail_clients.cfg"
# The OAuth2 provider extension for the organisation's own app (Thunderbird has no client-ID pref for IMAP/SMTP:
# its `oauth_provider` manifest key is the one way to register one). Force-installed by policy from the install
# directory, where the .cfg is too, so a lab PC needs no network for it.
EXTENSION_ID = "oauth2-provider@mail-clients.middlebury.edu"
EXTENSION_FILE = "mail-clients-oauth2-provider.xpi"
# A fixed date in the archive: the same settings give the same bytes, so a second run changes nothing.
_ZIP_DATE = (2020, 1, 1, 0, 0, 0)
# Pref keys of our account. Never Thunderbird's own accountN/serverN/idN/smtpN, which collide with the
# accounts users create; these names are stable, so a restart finds and reuses them.
KEYS = {"account": "account_mailclients", "server": "server_mailclients", "identity": "id_mailclients",
        "smtp": "smtp_mailclients"}
# The Exchange Web Services account has keys of its own: a server key never changes type under Thunderbird's
# feet (its local folder store belongs to the type), and switching is one account out, the other in.
EWS_KEYS = {name: key + "_ews" for name, key in KEYS.items()}
# In every ISP file we write: a file of ours for a domain no longer configured is found by it and removed.
ISP_MARKER = "<!-- written by the middlebury.mail_clients thunderbird role -->"
# Thunderbird's numbers (mailnews nsMsgSocketType / nsMsgAuthMethod), and the account wizard's names for the
# same methods (config-v1.1.xml).
SOCKET_TYPE = {"ssl": 3, "starttls": 2}
AUTH_METHOD = {"password": 3, "oauth2": 10}
ISP_SOCKET = {"ssl": "SSL", "starttls": "STARTTLS"}
ISP_AUTH = {"password": "password-cleartext", "oauth2": "OAuth2"}
_ABSOLUTE_PATH = re.compile(r"^/[^\x00-\x1f\x7f]*$")


def check(options: dict, account: dict) -> None:
    oauth2 = account.get("oauth2")
    # Thunderbird 140/153 find the identity provider by the mail server's host name, in a built-in table
    # (Microsoft's and Google's): another provider needs a registration of its own.
    if oauth2 is not None and account["provider"] == "documented" and oauth2["client_id"] is None:
        raise OptionError("mail_clients_account.oauth2.client_id",
                          "Thunderbird has a built-in OAuth2 registration only for the microsoft365 and google "
                          "providers; another identity provider needs its client_id")
    if oauth2 is not None and oauth2["client_id"] is not None:
        # The registration goes into a provider extension: Thunderbird's sign-in needs both endpoints.
        for key in ("authorization_endpoint", "token_endpoint"):
            if not oauth2[key]:
                raise OptionError("mail_clients_account.oauth2." + key,
                                  "is needed by Thunderbird's sign-in (the role's provider extension)")
    if options["thunderbird_ews"] and account["ews"] is None:
        raise OptionError("thunderbird_ews", "Exchange Web Services need mail_clients_account.provider: "
                                             "microsoft365 (with auth: oauth2), got provider %s with auth %s"
                          % (account["provider"], account["auth"]))
    for index, path in enumerate(options["thunderbird_ca_certificates"]):
        if not _ABSOLUTE_PATH.match(path):
            raise OptionError("thunderbird_ca_certificates[%d]" % index,
                              "must be an absolute path on the managed host without control characters, got %r"
                              % path)


def warnings(options: dict, account: dict) -> list:
    """What the run should say about the configuration it writes."""
    if not (options["thunderbird_ews"] and options["thunderbird_state"] == "present"):
        return []
    return ["thunderbird_ews: Exchange Online blocks Exchange Web Services unless the tenant allows the app "
            "(EWSAllowedAppIDs: Thunderbird's own or oauth2.client_id), and Microsoft turns EWS off for good on "
            "%s: plan the move back to IMAP and SMTP with OAuth2 (thunderbird_ews: false). The EWS account needs "
            "Thunderbird 153 ESR or later." % EWS_END]


def packages(options: dict, layout: dict, account: dict) -> list:
    return list(layout["packages"])


def paths(layout: dict, account: dict) -> dict:
    return {
        "autoconfig": layout["pref_dir"] + "/autoconfig.js",
        "cfg": "%s/%s" % (layout["cfg_dir"], CFG_NAME),
        "legacy_cfg": "%s/%s" % (layout["legacy_cfg_dir"], CFG_NAME),
        "policies": layout["policies_path"],
        "isp": "%s/%s.xml" % (layout["isp_dir"], account["mail_domain"]),
        "extension": "%s/%s" % (layout["cfg_dir"], EXTENSION_FILE),
    }


def uses_extension(account: dict, ews: bool = False) -> bool:
    """The organisation's own app for IMAP/SMTP: a provider extension (without a client ID, Thunderbird's built-in
    one). An EWS account takes the app from its per-host override prefs instead."""
    return account.get("oauth2") is not None and account["oauth2"]["client_id"] is not None and not ews


def extension_issuer(account: dict) -> str:
    """The provider extension's issuer: the origin of its tokens in the login store (oauth://<issuer>), so a
    host-like name (the login store keeps origins, not paths); one per app, never a built-in one."""
    app = hashlib.sha256(account["oauth2"]["client_id"].encode("utf-8")).hexdigest()[:12]
    return "app-%s.%s" % (app, account["oauth2"]["issuer"])


def ews_settings(account: dict) -> dict:
    """The EWS URL, its host (Thunderbird keys the tenant's app override by it) and the host of the token
    endpoint (the override's endpointHost)."""
    return dict(account["ews"], host=urlsplit(account["ews"]["url"]).hostname,
                endpoint_host=account["oauth2"]["endpoint_host"])


def provider_extension(render) -> bytes:
    """The packed extension (an .xpi is a zip with manifest.json). Its version follows its content, so that a
    changed registration is installed again."""
    draft = render("oauth_provider_manifest.json.j2", "0")
    version = "1.0.%d" % int(hashlib.sha256(draft.encode("utf-8")).hexdigest()[:7], 16)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        info = zipfile.ZipInfo("manifest.json", date_time=_ZIP_DATE)
        info.external_attr = 0o644 << 16
        archive.writestr(info, render("oauth_provider_manifest.json.j2", version))
    return buffer.getvalue()


def plan(ctx: PlanContext) -> list:
    options, account = ctx.options, ctx.account
    on = options["thunderbird_state"] == "present"
    lock = options["thunderbird_lock_server_settings"]
    where = paths(ctx.layout, account)

    ews = options["thunderbird_ews"]
    extension = on and uses_extension(account, ews)

    def render(template, extension_version=None):
        return ctx.render(
            template, __thunderbird_account=account, __thunderbird_cfg_name=CFG_NAME,
            __thunderbird_keys=EWS_KEYS if ews else KEYS, __thunderbird_other_keys=KEYS if ews else EWS_KEYS,
            __thunderbird_ews=ews_settings(account) if ews else None,
            __thunderbird_define=on, __thunderbird_isp_marker=ISP_MARKER,
            __thunderbird_lock=account["lab_mode"] if lock is None else bool(lock),
            __thunderbird_socket_type=SOCKET_TYPE, __thunderbird_auth_method=AUTH_METHOD,
            __thunderbird_isp_socket=ISP_SOCKET, __thunderbird_isp_auth=ISP_AUTH,
            __thunderbird_extension_id=EXTENSION_ID, __thunderbird_extension_version=extension_version,
            __thunderbird_extension_issuer=extension_issuer(account) if extension else None,
            __thunderbird_extension_url="file://" + where["extension"] if extension else None)

    # With state absent the AutoConfig stays as a cleanup script (it then defines no account) unless told not to.
    autoconfig = on or options["thunderbird_cleanup_profiles"]
    return [
        wanted(autoconfig, where["autoconfig"], lambda: present(where["autoconfig"], render("autoconfig.js.j2"))),
        wanted(autoconfig, where["cfg"], lambda: present(where["cfg"], render("mail_clients.cfg.j2"))),
        absent(where["legacy_cfg"]),
        # With state absent the policies stay as long as the AutoConfig cleanup does: only to block (and so
        # remove) our provider extension in the profiles that have it.
        wanted(autoconfig, where["policies"],
               lambda: present(where["policies"], render("policies.json.j2"), validate_with={"name": "json"})),
        wanted(on and options["thunderbird_isp_file"], where["isp"],
               lambda: present(where["isp"], render("isp.xml.j2"), validate_with={"name": "xml"})),
        {"path": ctx.layout["isp_dir"] + "/*.xml", "state": "absent", "marker": ISP_MARKER},
        wanted(extension, where["extension"], lambda: present(
            where["extension"], content_base64=base64.b64encode(provider_extension(render)).decode("ascii"))),
    ]
