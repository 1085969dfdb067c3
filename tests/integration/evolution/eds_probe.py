"""Ask evolution-data-server itself what it loaded, then let Camel use those very sources.

Runs with the SYSTEM Python (python3-gi) as the user under test, inside ``dbus-run-session`` so
that a private evolution-source-registry reads that user's real ~/.config/evolution/sources (and,
for lab logins, /etc/xdg/evolution-data-server/autoconfig). Input on stdin (JSON):
  {"uids": [account uids], "password": "..." or null, "send": {"to": ..., "subject": ...} or null,
   "folders": [IMAP folder names whose subscription state to report],
   "rewrite": [uids to write back through the registry, as Evolution does after an edit],
   "oauth2": null or {"secret_uid": ..., "refresh_token": ...}: seed the keyring as a sign-in would (the access
   token already expired, so the registry must refresh it) and let Camel log in with the registry's token,
   "gsettings": {schema: [keys]} to read back,
   "await": null or {"parent": uid, "names": [display names], "timeout": s, "settle": s}: wait until the
   registry has created children of that collection with those names (a collection backend adds its calendars
   and address books after it signs in), then `settle` seconds more}
Output (JSON, into the file the environment's EDS_PROBE_RESULT names, since services the bus starts print to
stdout): every source EDS exports, the files it did not load, and the Camel results.
The password only ever travels through stdin; nothing is stored.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time

import gi

gi.require_version("EDataServer", "1.2")
gi.require_version("Camel", "1.2")
from gi.repository import Camel, Gio, GLib  # noqa: E402
from gi.repository import EDataServer as E  # noqa: E402

CAMEL_KEYS = ("security-method", "use-subscriptions", "check-all", "check-subscribed", "keep-on-server",
              "delete-after-days", "delete-expunged", "auth-mechanism", "host", "port", "user",
              "use-real-trash-path", "real-trash-path", "use-real-junk-path", "real-junk-path")


def nick(value):
    return getattr(value, "value_nick", value)


def camel_settings(source, backend):
    settings = source.get_extension(E.SourceCamel.get_extension_name(backend)).get_settings()
    return {key: nick(settings.get_property(key)) for key in CAMEL_KEYS if settings.find_property(key)}


def auth(source):
    if not source.has_extension("Authentication"):
        return None
    ext = source.get_extension("Authentication")
    return {"host": ext.get_host(), "port": ext.get_port(), "user": ext.get_user(), "method": ext.get_method(),
            "remember_password": ext.get_remember_password()}


def security(source):
    return source.get_extension("Security").get_method() if source.has_extension("Security") else None


M365_KEYS = ("email", "override-oauth2", "oauth2-client-id", "oauth2-tenant", "oauth2-endpoint-host")


def m365_settings(source):
    """evolution-ews' Microsoft 365 settings of a source (what its OAuth2 service reads)."""
    extension = source.get_extension(E.SourceCamel.get_extension_name("microsoft365"))
    settings = extension.get_settings()
    return {key: settings.get_property(key) for key in M365_KEYS}


# Children a collection backend creates for the server's folders: the extension and its kind.
FOLDER_KINDS = (("Calendar", "calendar"), ("Address Book", "address_book"), ("Task List", "task_list"))


def describe(source):
    info = {"name": source.get_display_name(), "enabled": source.get_enabled(), "parent": source.get_parent()}
    if source.has_extension("Collection"):
        collection = source.get_extension("Collection")
        backend = collection.get_backend_name()
        info.update(kind="collection", backend=backend, identity=collection.get_identity(), auth=auth(source),
                    mail=collection.get_mail_enabled(), calendar=collection.get_calendar_enabled(),
                    contacts=collection.get_contacts_enabled())
        if backend == "microsoft365":
            info["m365"] = m365_settings(source)
        return info
    if source.has_extension("Mail Account"):
        account = source.get_extension("Mail Account")
        backend = account.get_backend_name()
        info.update(kind="account", backend=backend, identity=account.get_identity_uid(), auth=auth(source),
                    security=security(source))
        if backend in ("imapx", "pop"):
            info["camel"] = camel_settings(source, backend)
        if backend == "microsoft365":
            info["m365"] = m365_settings(source)
        return info
    if source.has_extension("Mail Identity"):
        identity = source.get_extension("Mail Identity")
        submission = source.get_extension("Mail Submission")
        info.update(kind="identity", address=identity.get_address(), full_name=identity.get_name(),
                    transport=submission.get_transport_uid(), sent_folder=submission.get_sent_folder())
        if source.has_extension("Mail Composition"):
            info["drafts_folder"] = source.get_extension("Mail Composition").get_drafts_folder()
        return info
    if source.has_extension("Mail Transport"):
        backend = source.get_extension("Mail Transport").get_backend_name()
        info.update(kind="transport", backend=backend, auth=auth(source), security=security(source))
        if backend == "smtp":
            info["camel"] = camel_settings(source, backend)
        return info
    for extension, kind in FOLDER_KINDS:
        if source.has_extension(extension):
            info.update(kind=kind, backend=source.get_extension(extension).get_backend_name(),
                        m365_folder=raw_group(source, "Microsoft365 Folder"))
            return info
    return None


def _let_signals_in(seconds, done=lambda: False):
    """Dispatch the registry's D-Bus signals for up to ``seconds``, or until ``done()``."""
    context = GLib.MainContext.default()
    deadline = time.monotonic() + seconds
    while not done() and time.monotonic() < deadline:
        while context.pending():
            context.iteration(False)
        time.sleep(0.2)


def await_children(registry, wanted):
    """Until the collection has children with every wanted name (or time runs out), then ``settle`` s more."""
    def named():
        return set(wanted["names"]) <= {source.get_display_name() for source in registry.list_sources(None)
                                        if source.get_parent() == wanted["parent"]}

    _let_signals_in(wanted["timeout"], named)
    _let_signals_in(wanted.get("settle", 0))


def raw_group(source, group):
    """A group of the source's key file as text (for extensions this process has no GType for)."""
    keyfile = GLib.KeyFile()
    data = source.to_string()[0]
    keyfile.load_from_data(data, len(data.encode("utf-8")), GLib.KeyFileFlags.NONE)
    if not keyfile.has_group(group):
        return None
    return {key: keyfile.get_value(group, key) for key in keyfile.get_keys(group)[0]}


def rewrite(source):
    """What Evolution's account editor does on any edit: load every extension (so each property, defaults
    included, is serialised) and write the whole source back through the registry."""
    for name in ("Mail Account", "Mail Identity", "Mail Submission", "Mail Composition", "Mail Transport",
                 "Authentication", "Security", "Offline", "Refresh"):
        if source.has_extension(name):
            source.get_extension(name)
    backend = None
    if source.has_extension("Mail Account"):
        backend = source.get_extension("Mail Account").get_backend_name()
    elif source.has_extension("Mail Transport"):
        backend = source.get_extension("Mail Transport").get_backend_name()
    if backend:
        source.get_extension(E.SourceCamel.get_extension_name(backend)).get_settings()
    source.write_sync(None)


class Session(Camel.Session):
    """Authenticates with the password given on stdin, or with the OAuth2 token the registry hands out for the
    service's source (what Evolution's mail session does); rejects every certificate it cannot verify."""

    registry = None
    token_errors: list = []

    def do_get_oauth2_access_token_sync(self, service, cancellable):
        source = self.registry.ref_source(service.get_uid())
        try:
            ok, token, expires_in = source.get_oauth2_access_token_sync(cancellable)
        except GLib.Error as exc:
            self.token_errors.append(exc.message)
            raise
        return ok, token, expires_in

    def do_authenticate_sync(self, service, mechanism, cancellable):
        result = service.authenticate_sync(mechanism, cancellable)
        return result == Camel.AuthenticationResult.ACCEPTED

    def do_get_filter_driver(self, filter_type, for_folder):
        # FilterInbox=true (the default) asks for one after fetching new mail; an empty driver filters nothing.
        driver = Camel.FilterDriver.new(self)
        self.drivers.append(driver)
        return driver

    def do_trust_prompt(self, service, certificate, errors):
        # Never accept: a test stack whose CA is not in the system store must fail, as it would for users.
        return Camel.CertTrust.REJECT


def run_camel(registry, account_uid, password, send, folders, workdir):
    account = registry.ref_source(account_uid)
    backend = account.get_extension("Mail Account").get_backend_name()
    identity = registry.ref_source(account.get_extension("Mail Account").get_identity_uid())
    transport = registry.ref_source(identity.get_extension("Mail Submission").get_transport_uid())
    session = Session(user_data_dir=os.path.join(workdir, "data"), user_cache_dir=os.path.join(workdir, "cache"))
    session.drivers = []
    session.registry = registry
    session.token_errors = []
    session.set_online(True)
    result = {"backend": backend}
    store = session.add_service(account_uid, backend, Camel.ProviderType.STORE)
    store.set_settings(account.get_extension(E.SourceCamel.get_extension_name(backend)).get_settings())
    if password:
        store.set_password(password)
    try:
        if isinstance(store, Camel.OfflineStore):
            store.set_online_sync(True, None)
        store.connect_sync(None)
        inbox = store.get_inbox_folder_sync(None)
        inbox.refresh_info_sync(None)
        summary = inbox.get_folder_summary()
        if summary is not None:
            # IMAP: get_uids() lists only the summary in memory; the fetched headers are in its database.
            summary.load()
            subjects = [inbox.get_message_info(uid).get_subject() for uid in inbox.get_uids()]
        else:
            # POP3 keeps no summary: read each message (RETR only; deleting is the filter driver's job).
            subjects = [inbox.get_message_sync(uid, None).get_subject() for uid in inbox.get_uids()]
        result["inbox_subjects"] = sorted(subject or "" for subject in subjects)
        if backend == "imapx":
            # Fills Camel's folder list from the server (LIST/LSUB) before asking about subscriptions.
            store.get_folder_info_sync(None, Camel.StoreGetFolderInfoFlags.RECURSIVE, None)
            result["subscribed"] = sorted(name for name in folders if store.folder_is_subscribed(name))
        store.disconnect_sync(True, None)
        result["store"] = "ok"
    except GLib.Error as exc:
        result["store"] = "error: %s" % exc.message
    result["token_errors"] = session.token_errors
    if send:
        smtp = session.add_service(transport.get_uid(), "smtp", Camel.ProviderType.TRANSPORT)
        smtp.set_settings(transport.get_extension(E.SourceCamel.get_extension_name("smtp")).get_settings())
        if password:
            smtp.set_password(password)
        address = identity.get_extension("Mail Identity").get_address()
        message = Camel.MimeMessage()
        message.set_subject(send["subject"])
        sender = Camel.InternetAddress()
        sender.add(identity.get_extension("Mail Identity").get_name(), address)
        message.set_from(sender)
        recipients = Camel.InternetAddress()
        recipients.add("", send["to"])
        message.set_recipients("To", recipients)
        body = b"Sent by Camel with the sources Ansible wrote.\n"
        message.set_content(list(body), "text/plain")
        try:
            smtp.connect_sync(None)
            smtp.send_to_sync(message, sender, recipients, None)
            smtp.disconnect_sync(True, None)
            result["send"] = "ok"
        except GLib.Error as exc:
            result["send"] = "error: %s" % exc.message
    return result


def seed_token(oauth2):
    """The token as the registry's sign-in stores it (permanently, in the Secret Service), already expired."""
    secret = json.dumps({"refresh_token": oauth2["refresh_token"], "access_token": "expired-by-the-test",
                         "expires_after": "%d" % 1000})
    E.secret_store_store_sync(oauth2["secret_uid"], secret, "seeded by the test", True, None)


def gsettings(wanted):
    out = {}
    for schema, keys in wanted.items():
        settings = Gio.Settings.new(schema)
        out[schema] = {key: settings.get_value(key).unpack() for key in keys}
    return out


def main():
    request = json.load(sys.stdin)
    if request.get("oauth2"):
        seed_token(request["oauth2"])
    registry = E.SourceRegistry.new_sync(None)
    if request.get("await"):
        await_children(registry, request["await"])
    for uid in request.get("rewrite", []):
        rewrite(registry.ref_source(uid))
    sources = {}
    for source in registry.list_sources(None):
        described = describe(source)
        if described is not None:
            sources[source.get_uid()] = described
    config = os.environ.get("XDG_CONFIG_HOME") or os.path.expanduser("~/.config")
    sources_dir = os.path.join(config, "evolution", "sources")
    files = sorted(name[:-len(".source")] for name in os.listdir(sources_dir)
                   if name.endswith(".source") and not name.startswith(".")) if os.path.isdir(sources_dir) else []
    output = {"sources": sources, "files": files,
              "not_loaded": [uid for uid in files if registry.ref_source(uid) is None], "camel": {},
              "gsettings": gsettings(request.get("gsettings") or {})}
    if request.get("password") or request.get("oauth2"):
        with tempfile.TemporaryDirectory() as workdir:
            Camel.init(workdir, False)
            for uid in request.get("uids", []):
                output["camel"][uid] = run_camel(
                    registry, uid, request.get("password"), request.get("send"), request.get("folders", []), workdir)
    # Services the bus starts (a keyring) share this stdout and print when they like: the result goes to the
    # file EDS_PROBE_RESULT names.
    with open(os.environ["EDS_PROBE_RESULT"], "w", encoding="utf-8") as handle:
        handle.write(json.dumps(output, sort_keys=True))


main()
