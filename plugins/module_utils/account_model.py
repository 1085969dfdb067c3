# Copyright (c) Middlebury College
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The one source of truth: the college's documented mail settings and the account model.

Every role, the mail_check module, the docs and the tests read the values below; nothing
else restates them. ``normalize_account`` turns a user-supplied ``mail_clients_account``
(all keys optional) plus ``mail_clients_users`` into one validated, fully derived
structure that every template renders from.
"""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import urlsplit

# The documented settings (college IT documentation).
DOCUMENTED = {
    "mail_domain": "middlebury.edu",
    "incoming_host": "mail.middlebury.edu",
    "smtp_host": "ssmtp.middlebury.edu",
    # IMAP is recommended over POP3.
    "protocol": "imap",
    "incoming_security": "ssl",
    "smtp_security": "starttls",
    # The documentation names port 25 with STARTTLS for SMTP, not 587.
    "smtp_port": 25,
    "auth": "password",
    # Passwords change every six months: users are advised not to save them.
    "save_password": False,
    "pop_leave_on_server": True,
    "imap_subscriptions": True,
    "display_name": "Middlebury College",
    "folders": {"sent": "Sent", "drafts": "Drafts", "trash": "Trash", "junk": "Junk"},
}

# Provider presets beside the documented settings. A preset fills every value the documented settings would
# (each can still be overridden, and is validated the same way), plus how its OAuth2 works. This is the one
# place their host names live. Microsoft 365: Exchange Online's IMAP/POP/SMTP with OAuth2 (password logins
# are off for IMAP and POP since 2022, for SMTP AUTH by default from the end of 2026); Google: Gmail's.
PRESETS = {
    "microsoft365": {
        "incoming_hosts": {"imap": "outlook.office365.com", "pop3": "outlook.office365.com"},
        "smtp_host": "smtp.office365.com",
        "protocol": "imap",
        "incoming_security": "ssl",
        "smtp_security": "starttls",
        "smtp_port": 587,
        "auth": "oauth2",
        "display_name": "Microsoft 365",
        "folders": {"sent": "Sent Items", "drafts": "Drafts", "trash": "Deleted Items", "junk": "Junk Email"},
        "oauth2": {
            "issuer": "login.microsoftonline.com",
            "tenant": "common",
            # {tenant} is filled from oauth2.tenant.
            "authorization_endpoint": "https://login.microsoftonline.com/{tenant}/oauth2/v2.0/authorize",
            "token_endpoint": "https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token",
            "device_authorization_endpoint": "https://login.microsoftonline.com/{tenant}/oauth2/v2.0/devicecode",
            "scopes": ["https://outlook.office.com/IMAP.AccessAsUser.All",
                       "https://outlook.office.com/POP.AccessAsUser.All",
                       "https://outlook.office.com/SMTP.Send", "offline_access"],
            # Exchange Online offers XOAUTH2 only, not OAUTHBEARER.
            "mechanisms": ["XOAUTH2"],
        },
        # Exchange Web Services, for clients that can use it instead of IMAP/SMTP (Thunderbird 153 ESR). Exchange
        # Online blocks it unless the tenant allow-lists the app, and ends it on EWS_END.
        "ews": {"url": "https://outlook.office365.com/EWS/Exchange.asmx",
                "scopes": ["https://outlook.office.com/EWS.AccessAsUser.All", "offline_access"]},
        # Microsoft Graph, for clients with a Microsoft 365 connector (evolution-ews' Microsoft365 collection).
        "graph": {"host": "graph.microsoft.com"},
    },
    "google": {
        "incoming_hosts": {"imap": "imap.gmail.com", "pop3": "pop.gmail.com"},
        "smtp_host": "smtp.gmail.com",
        "protocol": "imap",
        "incoming_security": "ssl",
        "smtp_security": "starttls",
        "smtp_port": 587,
        "auth": "oauth2",
        "display_name": "Google",
        "folders": {"sent": "[Gmail]/Sent Mail", "drafts": "[Gmail]/Drafts", "trash": "[Gmail]/Trash",
                    "junk": "[Gmail]/Spam"},
        "oauth2": {
            "issuer": "accounts.google.com",
            "tenant": None,
            "authorization_endpoint": "https://accounts.google.com/o/oauth2/v2/auth",
            "token_endpoint": "https://oauth2.googleapis.com/token",
            "device_authorization_endpoint": "https://oauth2.googleapis.com/device/code",
            "scopes": ["https://mail.google.com/"],
            "mechanisms": ["OAUTHBEARER", "XOAUTH2"],
        },
    },
}
PROVIDERS = ("documented", *PRESETS)
# The day Microsoft turns EWS off in Exchange Online for good (after 2026-10-01 only allow-listed apps have it).
EWS_END = "2027-04-01"
# Token mechanisms for any other identity provider's servers: the standard one, then Google's and Microsoft's.
DEFAULT_TOKEN_MECHANISMS = ("OAUTHBEARER", "XOAUTH2")
OAUTH2_KEYS = ("client_id", "client_secret", "tenant", "authorization_endpoint", "token_endpoint",
               "device_authorization_endpoint", "scopes")

# Standard ports for each protocol and security mode (RFC 8314 for implicit TLS).
PORTS = {
    ("imap", "ssl"): 993,
    ("imap", "starttls"): 143,
    ("pop3", "ssl"): 995,
    ("pop3", "starttls"): 110,
    ("smtp", "ssl"): 465,
    ("smtp", "starttls"): 25,
}

# The endpoints the documentation lists, as (name, protocol, host key, security).
DOCUMENTED_ENDPOINTS = (
    ("imaps", "imap", "incoming_host", "ssl"),
    ("imap_starttls", "imap", "incoming_host", "starttls"),
    ("pop3s", "pop3", "incoming_host", "ssl"),
    ("smtp_starttls", "smtp", "smtp_host", "starttls"),
)

PROTOCOLS = ("imap", "pop3")
SECURITIES = ("ssl", "starttls")
AUTH_METHODS = ("password", "oauth2")
# Names people type for "secure password authentication"; the documentation says never.
REFUSED_AUTH = {
    "ntlm": "NTLM",
    "spa": "SPA",
    "secure_password": "secure password authentication",
    "secure-password": "secure password authentication",
    "gssapi": "GSSAPI/Kerberos",
    "kerberos": "GSSAPI/Kerberos",
    "cram-md5": "CRAM-MD5",
}
REFUSED_SECURITY = ("none", "plain", "plaintext", "clear", "cleartext", "no", "off", "false")

ACCOUNT_KEYS = (
    "provider", "mail_domain", "incoming_host", "smtp_host", "protocol", "incoming_security", "incoming_port",
    "smtp_security", "smtp_port", "auth", "save_password", "pop_leave_on_server",
    "imap_subscriptions", "display_name", "folders", "oauth2",
)
USER_KEYS = ("login", "username", "email", "full_name")
FOLDER_ROLES = ("sent", "drafts", "trash", "junk")

_HOST_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")
# A POSIX-ish login (Debian's adduser default, plus upper case and '.'), no leading '-'.
_LOGIN = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}$")
# Mail usernames may be a full address; nothing that needs quoting in a URL but '@'.
_USERNAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.+-]{0,63}(@[A-Za-z0-9.-]{1,253})?$")
_EMAIL_LOCAL = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$")
MAX_TEXT = 256
# A Microsoft tenant: a GUID, a domain, or common/organizations/consumers.
_TENANT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.-]{0,252}$")
# An OAuth2 scope token (RFC 6749 3.3: printable ASCII but space, '"' and '\\').
_SCOPE = re.compile(r"^[!#-\[\]-~]{1,512}$")
_CLIENT_ID = re.compile(r"^[A-Za-z0-9._~:/@+=-]{1,256}$")


class AccountError(ValueError):
    """A value that cannot be written safely; ``field`` names where it came from."""

    def __init__(self, field, message):
        self.field = field
        super().__init__("%s: %s" % (field, message))


def _has_control(text):
    return any(unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Zl", "Zp") for ch in text)


def check_text(field, value, allow_empty=True, max_len=MAX_TEXT):
    """Free text (names, labels): any printable Unicode, no control characters."""
    if not isinstance(value, str):
        raise AccountError(field, "must be a string, got %s" % type(value).__name__)
    if not value and not allow_empty:
        raise AccountError(field, "must not be empty")
    if len(value) > max_len:
        raise AccountError(field, "is longer than %d characters" % max_len)
    if _has_control(value):
        raise AccountError(field, "contains control or invisible formatting characters, which no client "
                                  "configuration format can carry safely")
    if value != value.strip():
        raise AccountError(field, "has leading or trailing white space")
    return value


def check_hostname(field, value):
    """A DNS name (RFC 1123) or a literal IPv4 address; no trailing dot, no IDN U-labels."""
    if not isinstance(value, str) or not value:
        raise AccountError(field, "must be a non-empty host name")
    if len(value) > 253:
        raise AccountError(field, "is longer than 253 characters")
    labels = value.split(".")
    if not all(_HOST_LABEL.match(label) for label in labels):
        raise AccountError(field, "%r is not a valid host name (letters, digits, '-' and '.' only; "
                                  "use the punycode form for international names)" % value)
    if labels[-1].isdigit() and not (len(labels) == 4 and all(0 <= int(x) <= 255 for x in labels)):
        raise AccountError(field, "%r is neither a host name nor an IPv4 address" % value)
    return value.lower()


def check_port(field, value):
    if isinstance(value, bool):
        raise AccountError(field, "must be a port number 1-65535, got a boolean")
    try:
        port = int(value)
    except (TypeError, ValueError):
        raise AccountError(field, "must be a port number 1-65535, got %r" % (value,)) from None
    if str(port) != str(value).strip() and not isinstance(value, int):
        raise AccountError(field, "must be a port number 1-65535, got %r" % (value,))
    if not 1 <= port <= 65535:
        raise AccountError(field, "must be a port number 1-65535, got %d" % port)
    return port


def check_choice(field, value, choices):
    if not isinstance(value, str) or value.lower() not in choices:
        raise AccountError(field, "must be one of %s, got %r" % (", ".join(choices), value))
    return value.lower()


def check_security(field, value):
    if isinstance(value, str) and value.lower() in REFUSED_SECURITY:
        raise AccountError(field, "plaintext connections are refused: the documentation requires SSL/TLS "
                                  "or STARTTLS (use 'ssl' or 'starttls')")
    if isinstance(value, str) and value.lower() in ("tls", "ssl/tls", "implicit"):
        value = "ssl"
    return check_choice(field, value, SECURITIES)


def check_auth(field, value):
    if isinstance(value, str) and value.lower() in REFUSED_AUTH:
        raise AccountError(field, "%s is refused: the documentation requires normal password authentication "
                                  "over TLS and never 'secure password authentication' (use 'password' or "
                                  "'oauth2')" % REFUSED_AUTH[value.lower()])
    if isinstance(value, str) and value.lower() in ("normal", "plain", "login", "normal_password"):
        value = "password"
    return check_choice(field, value, AUTH_METHODS)


def check_bool(field, value):
    if not isinstance(value, bool):
        raise AccountError(field, "must be true or false, got %r" % (value,))
    return value


def check_folder(field, value):
    check_text(field, value, allow_empty=False, max_len=200)
    if any(ch in value for ch in "*%\\\"") or value.startswith("/") or value.endswith("/"):
        raise AccountError(field, "%r is not a usable folder name (no '*', '%%', '\\', '\"', and no leading "
                                  "or trailing '/')" % value)
    # The clients disagree about relative segments (mutt reads '../../etc' as '.etc', NeoMutt as
    # '././etc', Evolution literally): a folder name has none, nor an empty one.
    if any(segment in ("", ".", "..") for segment in value.split("/")):
        raise AccountError(field, "%r is not a usable folder name: no '.' or '..' segment and no '//'" % value)
    return value


def check_login(field, value):
    if not isinstance(value, str) or not _LOGIN.match(value):
        raise AccountError(field, "%r is not a valid login name (letters, digits, '_', '.', '-'; at most 32; "
                                  "not starting with '-' or '.')" % (value,))
    return value


def check_username(field, value):
    if not isinstance(value, str) or not _USERNAME.match(value):
        raise AccountError(field, "%r is not a usable mail username (letters, digits, '_', '.', '+', '-', "
                                  "optionally @domain)" % (value,))
    return value


def check_email(field, value):
    if not isinstance(value, str) or value.count("@") != 1:
        raise AccountError(field, "%r is not an e-mail address (local@domain)" % (value,))
    local, domain = value.split("@")
    if not _EMAIL_LOCAL.match(local) or len(local) > 64:
        raise AccountError(field, "%r has an unusable local part" % value)
    check_hostname(field, domain)
    return value


def _field_and_value(account, key, field_prefix, defaults=None):
    """(field name, given value or the default) for one account key; the defaults are the documented
    settings, or a provider preset's."""
    defaults = DOCUMENTED if defaults is None else defaults
    value = account[key] if account.get(key) is not None else defaults.get(key)
    return "%s.%s" % (field_prefix, key), value


def _display_name(account, mail_domain, field_prefix):
    """The account's label: the college's name only for the college's own domain. Another department
    that sets only its mail_domain gets that domain, never a label naming the college."""
    field, value = _field_and_value(account, "display_name", field_prefix)
    if account.get("display_name") is None and mail_domain != DOCUMENTED["mail_domain"]:
        value = mail_domain
    return field, value


def preset_defaults(provider):
    """The settings a provider fills, in the shape of DOCUMENTED (the documented ones for "documented")."""
    if provider == "documented":
        return DOCUMENTED
    preset = PRESETS[provider]
    defaults = dict(DOCUMENTED)
    defaults.update({key: value for key, value in preset.items() if key in DOCUMENTED})
    defaults["incoming_hosts"] = preset["incoming_hosts"]
    return defaults


def check_url(field, value):
    """An HTTPS endpoint: https://host[:port]/path, nothing a config file would have to quote."""
    if not isinstance(value, str) or not value.startswith("https://") or len(value) > 1024 or _has_control(value) \
            or any(ch in value for ch in " \"'\\<>`{}|^"):
        raise AccountError(field, "%r is not an https:// URL without spaces, quotes or control characters"
                           % (value,))
    authority = value[len("https://"):].split("/", 1)[0]
    host, _sep, port = authority.partition(":")
    if "@" in authority:
        raise AccountError(field, "%r must not carry credentials" % value)
    check_hostname(field, host)
    if port:
        check_port(field, port)
    return value


def _oauth2(account, auth, provider, field_prefix):
    """The OAuth2 settings: the preset's, with what was given over them; None unless auth is oauth2."""
    field = field_prefix + ".oauth2"
    given = account.get("oauth2")
    if given is None:
        given = {}
    if not isinstance(given, dict):
        raise AccountError(field, "must be a mapping of %s" % ", ".join(OAUTH2_KEYS))
    unknown = sorted(set(given) - set(OAUTH2_KEYS))
    if unknown:
        raise AccountError(field, "unknown key(s) %s; allowed: %s" % (", ".join(unknown), ", ".join(OAUTH2_KEYS)))
    if auth != "oauth2":
        if given:
            raise AccountError("%s.%s" % (field, sorted(given)[0]), "is used only with auth: oauth2")
        return None
    base = PRESETS[provider]["oauth2"] if provider in PRESETS else {}
    tenant = given.get("tenant")
    if tenant is not None and provider != "microsoft365":
        raise AccountError(field + ".tenant", "only Microsoft 365 has tenants (provider: microsoft365)")
    tenant = tenant or base.get("tenant")
    if tenant is not None and (not isinstance(tenant, str) or not _TENANT.match(tenant)):
        raise AccountError(field + ".tenant", "%r is not a tenant (a GUID, a domain, common or organizations)"
                           % (tenant,))
    out = {"issuer": base.get("issuer"), "tenant": tenant}
    for key in ("authorization_endpoint", "token_endpoint", "device_authorization_endpoint"):
        value = given.get(key) or (base[key].format(tenant=tenant) if base.get(key) else None)
        out[key] = None if value is None else check_url("%s.%s" % (field, key), value)
    # The token endpoint's host name (no port): clients that take the provider as a host (EDS' Microsoft 365
    # service, Thunderbird's EWS details) and the default issuer.
    out["endpoint_host"] = urlsplit(out["token_endpoint"]).hostname if out["token_endpoint"] else None
    if out["issuer"] is None:
        out["issuer"] = out["endpoint_host"]
    scopes = given.get("scopes") if given.get("scopes") is not None else base.get("scopes", [])
    if isinstance(scopes, str):
        scopes = scopes.split()
    if not isinstance(scopes, list) or not all(isinstance(x, str) and _SCOPE.match(x) for x in scopes):
        raise AccountError(field + ".scopes", "must be a list of OAuth2 scopes (no spaces or quotes in one)")
    out["scopes"] = list(scopes)
    # The SASL mechanisms a client should try, in order (RFC 7628's OAUTHBEARER first where the server has it).
    out["mechanisms"] = list(base.get("mechanisms", DEFAULT_TOKEN_MECHANISMS))
    client_id = given.get("client_id")
    if client_id is not None and (not isinstance(client_id, str) or not _CLIENT_ID.match(client_id)):
        raise AccountError(field + ".client_id", "%r is not an OAuth2 client id" % (client_id,))
    # None: each client uses its own built-in registration where it has one (its role refuses otherwise).
    out["client_id"] = client_id
    client_secret = given.get("client_secret")
    if client_secret is not None and (client_id is None or not isinstance(client_secret, str)
                                      or not _CLIENT_ID.match(client_secret)):
        raise AccountError(field + ".client_secret", "must go with oauth2.client_id and be one word of letters, "
                                                     "digits and ._~:/@+=-")
    out["client_secret"] = client_secret
    return out


def normalize_user(item, index, mail_domain, field_prefix="mail_clients_users", username_is_email=False):
    field = "%s[%d]" % (field_prefix, index)
    if not isinstance(item, dict):
        raise AccountError(field, "must be a mapping with at least 'login'")
    unknown = sorted(set(item) - set(USER_KEYS))
    if unknown:
        raise AccountError(field, "unknown key(s) %s; allowed: %s" % (", ".join(unknown), ", ".join(USER_KEYS)))
    if "login" not in item:
        raise AccountError(field + ".login", "is required")
    login = check_login(field + ".login", item["login"])
    if username_is_email and not item.get("username"):
        # A provider preset: the mail username is the address (the login's at the mail domain by default).
        email = check_email(field + ".email", item.get("email") or "%s@%s" % (login, mail_domain))
        username = check_username(field + ".email", email)
    else:
        username = check_username(field + ".username", item.get("username") or login)
        default_email = username if "@" in username else "%s@%s" % (username, mail_domain)
        email = check_email(field + ".email", item.get("email") or default_email)
    full_name = check_text(field + ".full_name", item.get("full_name") or "")
    return {"login": login, "username": username, "email": email, "full_name": full_name}


def normalize_account(account=None, users=None, field_prefix="mail_clients_account"):
    """Validate and derive the whole account; raise AccountError naming the field on bad input."""
    account = {} if account is None else account
    if not isinstance(account, dict):
        raise AccountError(field_prefix, "must be a mapping")
    unknown = sorted(set(account) - set(ACCOUNT_KEYS))
    if unknown:
        raise AccountError(field_prefix, "unknown key(s) %s; allowed: %s"
                           % (", ".join(unknown), ", ".join(ACCOUNT_KEYS)))

    provider = check_choice(field_prefix + ".provider", account.get("provider") or "documented", PROVIDERS)
    defaults = preset_defaults(provider)

    def get(key):
        return _field_and_value(account, key, field_prefix, defaults)

    mail_domain = check_hostname(*get("mail_domain"))
    protocol = check_choice(*get("protocol"), PROTOCOLS)
    if "incoming_hosts" in defaults:
        defaults = dict(defaults, incoming_host=defaults["incoming_hosts"][protocol])
    incoming_security = check_security(*get("incoming_security"))
    smtp_security = check_security(*get("smtp_security"))
    incoming_port = account.get("incoming_port")
    incoming_port = (PORTS[(protocol, incoming_security)] if incoming_port is None
                     else check_port(field_prefix + ".incoming_port", incoming_port))
    smtp_port = account.get("smtp_port")
    if smtp_port is None:
        smtp_port = defaults["smtp_port"] if smtp_security == defaults["smtp_security"] \
            else PORTS[("smtp", smtp_security)]
    else:
        smtp_port = check_port(field_prefix + ".smtp_port", smtp_port)

    folders_in = account.get("folders") or {}
    if not isinstance(folders_in, dict):
        raise AccountError(field_prefix + ".folders", "must be a mapping of %s" % ", ".join(FOLDER_ROLES))
    unknown = sorted(set(folders_in) - set(FOLDER_ROLES))
    if unknown:
        raise AccountError(field_prefix + ".folders", "unknown key(s) %s; allowed: %s"
                           % (", ".join(unknown), ", ".join(FOLDER_ROLES)))
    folders = {}
    for role in FOLDER_ROLES:
        folders[role] = check_folder("%s.folders.%s" % (field_prefix, role),
                                     folders_in.get(role) or defaults["folders"][role])

    auth = check_auth(*get("auth"))
    normalized = {
        "provider": provider,
        "mail_domain": mail_domain,
        "display_name": check_text(*_display_name(account, mail_domain, field_prefix), allow_empty=False),
        "incoming": {
            "protocol": protocol,
            "host": check_hostname(*get("incoming_host")),
            "port": incoming_port,
            "security": incoming_security,
        },
        "smtp": {
            "host": check_hostname(*get("smtp_host")),
            "port": smtp_port,
            "security": smtp_security,
        },
        "auth": auth,
        "oauth2": _oauth2(account, auth, provider, field_prefix),
        # The provider's Exchange Web Services, where it has them and the account uses its tokens.
        "ews": dict(PRESETS[provider]["ews"]) if auth == "oauth2" and "ews" in PRESETS.get(provider, {}) else None,
        "graph": dict(PRESETS[provider]["graph"]) if auth == "oauth2" and "graph" in PRESETS.get(provider, {})
        else None,
        # What a lab login's mail username is: the login name, or (a provider preset) its address.
        "username_format": "email" if provider in PRESETS else "login",
        "save_password": check_bool(*get("save_password")),
        "pop_leave_on_server": check_bool(*get("pop_leave_on_server")),
        "imap_subscriptions": check_bool(*get("imap_subscriptions")),
        "folders": folders,
    }
    if protocol == "pop3" and not normalized["pop_leave_on_server"]:
        raise AccountError(field_prefix + ".pop_leave_on_server",
                           "must stay true: the documentation requires POP to leave mail on the server")

    if users is None:
        users = []
    if not isinstance(users, list):
        raise AccountError("mail_clients_users", "must be a list of mappings with 'login'")
    normalized_users = [normalize_user(item, i, mail_domain, username_is_email=provider in PRESETS)
                        for i, item in enumerate(users)]
    seen = set()
    for i, user in enumerate(normalized_users):
        if user["login"] in seen:
            raise AccountError("mail_clients_users[%d].login" % i, "%r is listed twice" % user["login"])
        seen.add(user["login"])
    normalized["users"] = normalized_users
    # Lab mode: nobody listed, so every login gets the account with username = login name.
    normalized["lab_mode"] = not normalized_users
    return normalized


def account_endpoints(normalized):
    """The two endpoints a client configured from this account talks to."""
    incoming = normalized["incoming"]
    smtp = normalized["smtp"]
    return [
        {"name": "%s%s" % (incoming["protocol"], "s" if incoming["security"] == "ssl" else "_starttls"),
         "protocol": incoming["protocol"], "host": incoming["host"], "port": incoming["port"],
         "security": incoming["security"]},
        {"name": "smtp%s" % ("s" if smtp["security"] == "ssl" else "_starttls"),
         "protocol": "smtp", "host": smtp["host"], "port": smtp["port"], "security": smtp["security"]},
    ]


def provider_endpoints(normalized):
    """A preset provider's endpoints, on the account's (possibly overridden) hosts: IMAP and POP3 with implicit
    TLS, and SMTP submission as the account has it (587 STARTTLS)."""
    preset = PRESETS[normalized["provider"]]
    incoming = normalized["incoming"]
    hosts = dict(preset["incoming_hosts"])
    hosts[incoming["protocol"]] = incoming["host"]
    smtp = normalized["smtp"]
    return [
        {"name": "imaps", "protocol": "imap", "host": hosts["imap"], "port": PORTS[("imap", "ssl")],
         "security": "ssl"},
        {"name": "pop3s", "protocol": "pop3", "host": hosts["pop3"], "port": PORTS[("pop3", "ssl")],
         "security": "ssl"},
        {"name": "smtp%s" % ("s" if smtp["security"] == "ssl" else "_starttls"), "protocol": "smtp",
         "host": smtp["host"], "port": smtp["port"], "security": smtp["security"]},
    ]


def documented_endpoints(normalized=None):
    """The four endpoints of the documentation, on the (possibly overridden) hosts of an account; for an account
    of a preset provider, that provider's endpoints (provider_endpoints)."""
    if normalized is not None and normalized.get("provider") in PRESETS:
        return provider_endpoints(normalized)
    hosts = {"incoming_host": DOCUMENTED["incoming_host"], "smtp_host": DOCUMENTED["smtp_host"]}
    smtp_port = DOCUMENTED["smtp_port"]
    if normalized is not None:
        hosts = {"incoming_host": normalized["incoming"]["host"], "smtp_host": normalized["smtp"]["host"]}
        if normalized["smtp"]["security"] == "starttls":
            smtp_port = normalized["smtp"]["port"]
    endpoints = []
    for name, protocol, host_key, security in DOCUMENTED_ENDPOINTS:
        port = smtp_port if protocol == "smtp" else PORTS[(protocol, security)]
        endpoints.append({"name": name, "protocol": protocol, "host": hosts[host_key], "port": port,
                          "security": security})
    return endpoints
