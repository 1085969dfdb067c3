"""The evolution role with the Google preset: evolution-data-server's own Google OAuth2 service, with the
organisation's app set through the registry's GSettings (system dconf). Proven by the registry loading the
sources (lab templates and named users) and, live, by the registry refreshing a seeded token at the stand-in
identity provider (the preset's names mapped to the stack, its CA trusted system-wide in the sandbox) and Camel
logging in to Dovecot and Postfix with XOAUTH2 with the token the registry handed out."""

from __future__ import annotations

import re
import secrets
from pathlib import Path

import pytest
from evolution_support import converge, environment_d, new_sandbox, plant_personal_source, probe, user_file
from mailstack import LOGIN_LOGGED, graph

from ansible_collections.middlebury.mail_clients.plugins.module_utils.account_model import normalize_account
from ansible_collections.middlebury.mail_clients.plugins.plugin_utils.client_plans import evolution as plan

APP = "evo-role-test-app.apps.example"
APP_SECRET = "not-really-secret-1"
ACCOUNT = {"provider": "google", "oauth2": {"client_id": APP, "client_secret": APP_SECRET}}
UID = "middlebury-imap"
TEMPLATES = "/etc/xdg/evolution-data-server/autoconfig"
SCHEMA = "org.gnome.evolution-data-server"
PATH, ID_KEY, SECRET_KEY = plan.OAUTH2_GSETTINGS["google"]
METHOD = plan.OAUTH2_METHODS["google"]

pytestmark = pytest.mark.timeout(600)


def _our_sources(seen, model, address):
    """Our account, identity and transport as the registry loaded them."""
    assert not seen["not_loaded"], seen["not_loaded"]
    account, identity, transport = (seen["sources"].get(UID + suffix) for suffix in ("", "-identity", "-transport"))
    assert account and identity and transport, sorted(seen["sources"])
    assert account["backend"] == "imapx" and account["security"] == plan.SECURITY_NICKS["ssl"]
    assert account["auth"]["method"] == METHOD and account["auth"]["user"] == address, account
    assert (account["auth"]["host"], account["auth"]["port"]) == (model["incoming"]["host"], model["incoming"]["port"])
    assert account["camel"]["auth-mechanism"] == METHOD, account["camel"]
    assert identity["address"] == address and identity["transport"] == UID + "-transport"
    assert transport["auth"]["method"] == METHOD and transport["auth"]["user"] == address, transport
    assert (transport["auth"]["host"], transport["auth"]["port"]) == (model["smtp"]["host"], model["smtp"]["port"])
    assert transport["security"] == plan.SECURITY_NICKS[model["smtp"]["security"]]


def test_the_registry_loads_the_google_preset_for_lab_logins_and_named_users_with_the_apps_client_id(tmp_path):
    sb = new_sandbox(tmp_path, None, [("evogl", "Lab Person"), ("evogn", "Named Person")])
    # Lab mode: templates for every login, the address as the user.
    assert converge(sb, {"mail_clients_account": ACCOUNT}).rc == 0
    model = normalize_account(ACCOUNT)
    address = "evogl@%s" % model["mail_domain"]
    seen = probe(sb, "evogl", gsettings={SCHEMA: [ID_KEY, SECRET_KEY]})
    _our_sources(seen, model, address)
    # The registry reads the organisation's app from the system dconf database the role compiled.
    assert seen["gsettings"][SCHEMA] == {ID_KEY: APP, SECRET_KEY: APP_SECRET}, seen["gsettings"]
    assert "${USER}@" in sb.upper("%s/%s.source" % (TEMPLATES, UID)).read_text()
    again = converge(sb, {"mail_clients_account": ACCOUNT})
    assert again.rc == 0 and again.changed() == 0, again
    checked = converge(sb, {"mail_clients_account": ACCOUNT}, check=True, diff=True)
    assert checked.rc == 0 and checked.changed() == 0, checked

    # Named users: their own files, their address.
    people = [{"login": "evogn", "email": "named.person@%s" % model["mail_domain"]}]
    assert converge(sb, {"mail_clients_account": ACCOUNT, "mail_clients_users": people}).rc == 0
    seen = probe(sb, "evogn", gsettings={SCHEMA: [ID_KEY]})
    _our_sources(seen, normalize_account(ACCOUNT, people), people[0]["email"])
    assert user_file(sb, "evogn", UID).stat().st_mode & 0o777 == 0o600
    # The lab templates went with the switch to named users: no second account for every login.
    assert not sb.upper("%s/%s.source" % (TEMPLATES, UID)).exists()

    # Without a client ID: the build's own registration (the key stays empty), no dconf file of ours.
    assert converge(sb, {"mail_clients_account": {"provider": "google"}, "mail_clients_users": people}).rc == 0
    seen = probe(sb, "evogn", gsettings={SCHEMA: [ID_KEY]})
    assert seen["gsettings"][SCHEMA] == {ID_KEY: ""}, seen["gsettings"]
    _our_sources(seen, normalize_account({"provider": "google"}, people), people[0]["email"])

    # Absent: only ours go.
    assert converge(sb, {"mail_clients_account": ACCOUNT, "mail_clients_users": people,
                         "evolution_state": "absent"}).rc == 0
    assert UID not in probe(sb, "evogn")["sources"]


def test_the_registry_refreshes_the_token_at_the_identity_provider_and_camel_logs_in_with_xoauth2(
        tmp_path, mail_stack):
    login = "evooauth"
    mail_stack.add_user(login, "Evo-OAuth-%s" % secrets.token_hex(6))
    sb = new_sandbox(tmp_path, mail_stack, [(login, "Evo OAuth")], hosts_file=mail_stack.hosts_file_presets)
    assert converge(sb, {"mail_clients_account": ACCOUNT}).rc == 0
    model = normalize_account(ACCOUNT)
    address = mail_stack.address_of(login)
    scope = " ".join(model["oauth2"]["scopes"])
    # As the sign-in would have left it: a refresh token of the app, in the login keyring under EDS's own key.
    seeded = mail_stack.tokens_for(login, client_id=APP, scope=scope)["refresh_token"]
    before = len(mail_stack.token_scopes())
    dovecot_mark = mail_stack.dovecot_log.stat().st_size
    postfix_mark = mail_stack.postfix_log.stat().st_size
    subject = "evolution oauth2 %s" % secrets.token_hex(4)
    inbox = sorted(mail_stack.message_subjects(login, "INBOX"))  # before Camel sends one more there

    seen = probe(sb, login, uids=[UID], folders=mail_stack.folders, send={"to": address, "subject": subject},
                 oauth2={"secret_uid": "OAuth2::%s[%s]" % (METHOD, address), "refresh_token": seeded})
    _our_sources(seen, model, address)
    camel = seen["camel"][UID]
    # The registry (not the test) refreshed the token, with the organisation's app, keeping the grant's scope (the
    # model's: Google's mail scope), as EDS' Google service names none on a refresh.
    refreshed = mail_stack.token_scopes()[before:]
    assert ("refresh_token", APP, None) in refreshed, (refreshed, camel)
    assert camel["store"] == "ok", camel
    assert camel["inbox_subjects"] == inbox and inbox, camel
    assert camel["subscribed"], camel
    assert camel["send"] == "ok", camel
    assert mail_stack.wait_for_message(login, subject), "the message Camel sent never arrived"
    dovecot = Path(mail_stack.dovecot_log).read_text(errors="replace")[dovecot_mark:]
    assert re.search(r"imap-login: Info: " + LOGIN_LOGGED % login + r", method=XOAUTH2,.*\bTLS\b", dovecot), \
        dovecot[-3000:]
    postfix = Path(mail_stack.postfix_log).read_text(errors="replace")[postfix_mark:]
    assert re.search(r"sasl_method=XOAUTH2, sasl_username=%s\b" % login, postfix), postfix[-3000:]


M365 = {"provider": "microsoft365", "oauth2": {"client_id": "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0",
                                               "tenant": "example.onmicrosoft.com"}}
M365_UIDS = plan.source_uids("middlebury", "microsoft365")


def _m365_sources(seen, model, address, calendars=True, contacts=True):
    """The Microsoft 365 collection and its children as the registry loaded them."""
    assert not seen["not_loaded"], seen["not_loaded"]
    collection, account, identity, transport = (seen["sources"].get(M365_UIDS[kind]) for kind in (
        "collection", "account", "identity", "transport"))
    assert collection and account and identity and transport, sorted(seen["sources"])
    method = plan.OAUTH2_METHODS["microsoft365"]
    assert collection["backend"] == "microsoft365" and collection["identity"] == address, collection
    assert (collection["mail"], collection["calendar"], collection["contacts"]) == (True, calendars, contacts)
    graph = model["graph"]["host"]
    for source in (collection, account, transport):
        assert source["auth"]["method"] == method and source["auth"]["host"] == graph, source
        assert source["auth"]["user"] == address, source
    oauth2 = model["oauth2"]
    expected = {"email": address, "override-oauth2": True, "oauth2-client-id": oauth2["client_id"],
                "oauth2-tenant": oauth2["tenant"],
                "oauth2-endpoint-host": oauth2["endpoint_host"]}
    assert collection["m365"] == expected and account["m365"] == expected, (collection["m365"], account["m365"])
    assert account["backend"] == "microsoft365" and account["parent"] == M365_UIDS["collection"], account
    assert account["identity"] == M365_UIDS["identity"] and identity["address"] == address
    assert identity["parent"] == M365_UIDS["collection"] and identity["transport"] == M365_UIDS["transport"]
    assert transport["backend"] == "microsoft365" and transport["parent"] == M365_UIDS["collection"], transport


def _graph_children(seen, collection_uid, enabled=True):
    """{kind: {display name: Microsoft Graph folder id}} of the children the registry made for the collection (the
    enabled ones, or with ``enabled=False`` those it turned off with their part of the collection)."""
    children = {}
    for source in seen["sources"].values():
        if source["parent"] == collection_uid and source["kind"] in ("calendar", "address_book", "task_list") \
                and source["enabled"] == enabled:
            assert source["backend"] == "microsoft365", source
            folder = source["m365_folder"] or {}
            children.setdefault(source["kind"], {})[source["name"]] = folder.get("Id")
    return children


# What the Graph stand-in lists for every mailbox (tests/mailstack/graph.py), as the registry must show it.
GRAPH_CALENDARS = {c["name"]: c["id"] for group in graph.CALENDARS.values() for c in group}
GRAPH_BOOKS = {f["displayName"]: f["id"] for f in [graph.DEFAULT_CONTACTS, *graph.CONTACT_FOLDERS]}


def _signed_in_probe(sb, mail_stack, login, address, environment, names, settle=0):
    """The registry with a refresh token of the tenant's app in the login keyring, as a sign-in leaves it: it
    refreshes the token at the stand-in provider, reads the folders from the Graph stand-in and adds the
    collection's calendars and address books; the probe waits for those named ``names``."""
    seeded = mail_stack.tokens_for(login, client_id=M365["oauth2"]["client_id"])["refresh_token"]
    method = plan.OAUTH2_METHODS["microsoft365"]
    return probe(sb, login, environment=environment,
                 oauth2={"secret_uid": "OAuth2::%s[%s]" % (method, address), "refresh_token": seeded},
                 wait_for={"parent": M365_UIDS["collection"], "names": sorted(names), "timeout": 60,
                           "settle": settle})


def test_the_registry_loads_the_microsoft_365_collection_with_the_tenants_app(tmp_path, mail_stack):
    """No source fails: the Graph collection (evolution-ews, on Debian 12's 3.46 with the environment the role
    writes), its mail account, identity and transport, with the tenant's app; signed in (a seeded refresh token),
    the registry refreshes it at the stand-in provider with the tenant's app and adds the calendars and address
    books the Graph stand-in lists, unless switched off. Lab logins and named users. Every Microsoft name points at
    the stand-ins: nothing reaches a real host."""
    sb = new_sandbox(tmp_path, mail_stack, [("evoml", "Lab M365"), ("evomn", "Named M365")],
                     hosts_file=mail_stack.hosts_file_presets)
    result = converge(sb, {"mail_clients_account": M365})
    assert result.rc == 0, result
    environment = environment_d(sb)
    assert environment == dict([plan.M365_ENVIRONMENT.split("=", 1)]), environment
    model = normalize_account(M365)
    address = "evoml@%s" % model["mail_domain"]
    grants, asked = len(mail_stack.token_scopes()), len(mail_stack.graph_requests())
    seen = _signed_in_probe(sb, mail_stack, "evoml", address, environment, [*GRAPH_CALENDARS, *GRAPH_BOOKS])
    _m365_sources(seen, model, address)
    # The registry refreshed the seeded token with the tenant's app, asking for the delegated permissions Graph
    # wants for calendars, contacts and mail, then read Graph with the new access token: every read of the
    # mailbox answered (evolution-ews 3.51+ also tries the directory's organisational contacts, which need
    # OrgContact.Read.All, an admin's permission it does not ask for: 403, and no such book).
    refreshes = [scope for grant, client, scope in mail_stack.token_scopes()[grants:]
                 if (grant, client) == ("refresh_token", M365["oauth2"]["client_id"])]
    assert refreshes and refreshes[0], refreshes
    for call in ("mailFolders", "contactFolders", "calendarGroups"):
        assert set(refreshes[0].split()) & set(graph.PERMISSIONS[call]), (call, refreshes[0])
    requests = mail_stack.graph_requests()[asked:]
    mailbox = [(path, status) for _method, path, status in requests if path.startswith("/v1.0/users/")]
    assert mailbox and all(status == 200 for _path, status in mailbox), requests
    children = _graph_children(seen, M365_UIDS["collection"])
    assert children.get("calendar") == GRAPH_CALENDARS, children
    assert GRAPH_BOOKS.items() <= children.get("address_book", {}).items(), children
    again = converge(sb, {"mail_clients_account": M365})
    assert again.rc == 0 and again.changed() == 0, again
    checked = converge(sb, {"mail_clients_account": M365}, check=True, diff=True)
    assert checked.rc == 0 and checked.changed() == 0, checked

    # Named users; calendars off: the registry still signs in and lists the address books, never a calendar.
    # A hostile name (quotes, a back-tick, a semicolon, non-ASCII): the registry reads it back exactly.
    people = [{"login": "evomn", "full_name": "Zoë \"Z\" O'Brien; `id` \\"}]
    named = {"mail_clients_account": M365, "mail_clients_users": people}
    personal = plant_personal_source(sb, "evomn")
    personal_before = personal.read_bytes()
    assert converge(sb, dict(named, evolution_collection_calendars=False)).rc == 0
    address = "evomn@%s" % model["mail_domain"]
    asked = len(mail_stack.graph_requests())
    # Calendars would follow the address books in the same thread, within milliseconds: a few seconds' margin.
    seen = _signed_in_probe(sb, mail_stack, "evomn", address, environment, GRAPH_BOOKS, settle=3)
    _m365_sources(seen, normalize_account(M365, people), address, calendars=False)
    assert seen["sources"][M365_UIDS["identity"]]["full_name"] == people[0]["full_name"]
    children = _graph_children(seen, M365_UIDS["collection"])
    assert "calendar" not in children and GRAPH_BOOKS.items() <= children["address_book"].items(), children
    assert not [path for _m, path, _a in mail_stack.graph_requests()[asked:] if "/calendar" in path]
    # Contacts off (calendars back on): the calendars come; the registry turns the address books off.
    assert converge(sb, dict(named, evolution_collection_contacts=False)).rc == 0
    seen = _signed_in_probe(sb, mail_stack, "evomn", address, environment, GRAPH_CALENDARS)
    _m365_sources(seen, normalize_account(M365, people), address, contacts=False)
    children = _graph_children(seen, M365_UIDS["collection"])
    assert "address_book" not in children and children["calendar"] == GRAPH_CALENDARS, children
    assert GRAPH_BOOKS.items() <= _graph_children(seen, M365_UIDS["collection"], False)["address_book"].items()

    # Back to the documented settings: check mode says what would go and removes nothing; then the collection, its
    # children and the environment file go.
    preview = converge(sb, {"mail_clients_users": people}, check=True, diff=True)
    assert preview.rc == 0 and preview.changed() > 0 and environment_d(sb) == environment, preview
    assert user_file(sb, "evomn", M365_UIDS["collection"]).exists()
    assert converge(sb, {"mail_clients_users": people}).rc == 0
    assert environment_d(sb) == {}
    seen = probe(sb, "evomn")
    assert not set(M365_UIDS.values()) & set(seen["sources"]), sorted(seen["sources"])
    assert not seen["not_loaded"], seen["not_loaded"]
    assert not _graph_children(seen, M365_UIDS["collection"]) and not _graph_children(
        seen, M365_UIDS["collection"], False), seen
    # The user's own source, through all of it: still loaded, byte for byte what they wrote.
    assert personal.read_bytes() == personal_before and "my-own" in seen["sources"]
