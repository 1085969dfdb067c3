"""A stand-in OAuth2 identity provider for the test stack: HTTPS on loopback, Python standard library only.

It stands in for the identity providers the collection's presets name (which no test may reach) and for a
university's own one, for exactly what the mail clients and Dovecot use:
  GET  /authorize            authorization code with PKCE (S256) and a loopback redirect_uri
  POST /token                grant types authorization_code, refresh_token (rotated) and device_code
  POST /devicecode           the device-authorization flow (RFC 8628)
  POST /revoke               RFC 7009: an access token, or a refresh token and everything issued from it
  POST /introspect           RFC 7662, HTTP Basic as the introspection client (Dovecot's passdb / oauth2 settings)
The test API (`/test/...`, JSON in and out) lets a test act as the person at the browser or the administrator:
  POST /test/approve         {"user": login, "client_id": ...}: the next authorization request of that client is
                             approved as that user (or {"request": id} for one already waiting)
  GET  /test/pending         the authorization requests waiting for a person
  POST /test/approve-device  {"user_code": ..., "user": login}
  POST /test/tokens          {"user": login, "client_id": ..., "scope": ...}: tokens as if a flow had completed
                             (without a scope: a grant a refresh may give any scope)
  POST /test/expire          {"user": login} or {"token": ...}: access tokens expire now
  POST /test/revoke          {"user": login}: every token of the user is revoked
  POST /test/delay           {"seconds": s}: the token endpoint answers s seconds late (0: at once), so that
                             clients that ask together really overlap
  GET  /test/log             what was asked of the provider (grant types, clients, scopes, never a token)
and, under /v1.0/, the part of Microsoft Graph evolution-ews reads (graph.py: the stack maps Graph's name here),
with the access tokens this provider issued.

Access tokens are opaque and long (about as long as Entra's JWTs, so the servers' line limits are exercised),
and short-lived (ACCESS_TTL), so that clients really refresh.

Run as a script: `python3 idp.py CONFIG.json`; it binds, detaches and writes its PID to the config's pid_file
once it listens (the same contract as blackhole.py).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import socket
import ssl
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlsplit

# Run as a script: this directory is on sys.path.
import graph
from detach import detach

ACCESS_TTL = 120
DEVICE_TTL = 600
DEVICE_INTERVAL = 1
CODE_TTL = 120
# Entra's access tokens are JWTs of about 1,500-2,500 characters.
ACCESS_TOKEN_LENGTH = 1600
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"


class Store:
    """Every grant and token, in memory, behind one lock (the server is threaded)."""

    def __init__(self, clock=time.time):
        self.clock = clock
        self.lock = threading.Lock()
        self.access = {}      # token -> {user, client_id, scope, exp, family}
        self.refresh = {}     # token -> {user, client_id, scope, family}
        self.revoked_families = set()
        self.token_delay = 0.0  # seconds the token endpoint waits before answering (/test/delay)
        self.codes = {}       # code -> {user, client_id, redirect_uri, challenge, scope, exp}
        self.devices = {}     # device_code -> {user_code, client_id, scope, exp, user, last_poll}
        self.approvals = {}   # client_id -> [user, ...]: pre-approved next authorization requests
        self.pending = {}     # request id -> the authorization request's parameters
        self.log = []

    def note(self, **event):
        self.log.append(dict(event, at=round(self.clock(), 3)))
        # Bounded, and far more than one test session asks (tests index it by the length they saw before).
        del self.log[:-20000]

    def issue(self, user, client_id, scope, family=None):
        family = family or secrets.token_hex(8)
        access = "at." + secrets.token_urlsafe(ACCESS_TOKEN_LENGTH * 3 // 4)[:ACCESS_TOKEN_LENGTH - 3]
        refresh = "rt." + secrets.token_urlsafe(32)
        self.access[access] = {"user": user, "client_id": client_id, "scope": scope,
                               "exp": self.clock() + ACCESS_TTL, "family": family}
        self.refresh[refresh] = {"user": user, "client_id": client_id, "scope": scope, "family": family}
        return {"access_token": access, "token_type": "Bearer", "expires_in": ACCESS_TTL, "refresh_token": refresh,
                "scope": scope}

    def active(self, token):
        info = self.access.get(token)
        if info is None or info["exp"] <= self.clock() or info["family"] in self.revoked_families:
            return None
        return info


def _s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii")).digest()).rstrip(b"=").decode()


def _loopback_redirect(uri: str) -> bool:
    parts = urlsplit(uri)
    return parts.scheme in ("http", "https") and parts.hostname in ("localhost", "127.0.0.1", "::1")


class Handler(BaseHTTPRequestHandler):
    server_version = "mailstack-idp/1"
    # Keep-alive: Dovecot introspects every token, and a TLS handshake per request is most of that cost.
    protocol_version = "HTTP/1.1"
    timeout = 30  # an idle kept-alive connection ends; its thread with it
    store: Store = None  # set by serve()
    introspection_clients: dict = {}
    # [(compiled path pattern, flow path)]: the presets' own endpoint paths (from the stack's config).
    routes: list = []
    graph_settings: dict = {}  # graph.answer's `where`: Graph's base URL, the 401's authorization_uri

    def log_message(self, format, *args):
        pass

    # ----- plumbing -------------------------------------------------------------------------------
    def _send(self, status, body=None, headers=None):
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if body is not None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Cache-Control", "no-store")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status, error, description=""):
        self._send(status, {"error": error, "error_description": description})

    def _form(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length).decode("utf-8", "replace") if length else ""
        if (self.headers.get("Content-Type") or "").startswith("application/json"):
            return json.loads(raw or "{}")
        return {key: values[0] for key, values in parse_qs(raw, keep_blank_values=True).items()}

    def _basic_client(self):
        header = self.headers.get("Authorization") or ""
        if not header.startswith("Basic "):
            return None
        try:
            client, _sep, secret = base64.b64decode(header[6:]).decode().partition(":")
        except ValueError:
            return None
        return client if self.introspection_clients.get(client) == secret else None

    # ----- routes ---------------------------------------------------------------------------------
    def _path(self):
        """The request's path, a preset's endpoint path (e.g. Microsoft's /<tenant>/oauth2/v2.0/token) as its flow's."""
        path = self.path.partition("?")[0]
        return next((flow for pattern, flow in self.routes if pattern.fullmatch(path)), path)

    def do_GET(self):
        path, query = self._path(), self.path.partition("?")[2]
        params = {key: values[0] for key, values in parse_qs(query).items()}
        with self.store.lock:
            if path.startswith(graph.PREFIX):
                answer = graph.answer(self.store, self.graph_settings, "GET", path, params,
                                      self.headers.get("Authorization"))
                return self._send(*answer)
            if path == "/authorize":
                return self._authorize(params)
            if path == "/test/pending":
                return self._send(200, {"pending": self.store.pending})
            if path == "/test/log":
                return self._send(200, {"log": self.store.log})
        return self._error(404, "not_found", path)

    def do_POST(self):
        path = self._path()
        try:
            form = self._form()
        except ValueError:
            return self._error(400, "invalid_request", "unreadable body")
        routes = {"/token": self._token, "/devicecode": self._devicecode, "/revoke": self._revoke,
                  "/introspect": self._introspect, "/test/approve": self._test_approve,
                  "/test/approve-device": self._test_approve_device, "/test/tokens": self._test_tokens,
                  "/test/expire": self._test_expire, "/test/revoke": self._test_revoke,
                  "/test/delay": self._test_delay}
        if path not in routes:
            return self._error(404, "not_found", path)
        if path == "/token" and self.store.token_delay:
            time.sleep(self.store.token_delay)  # outside the lock: requests that arrive together overlap
        with self.store.lock:
            return routes[path](form)

    def _authorize(self, params):
        store = self.store
        # A request that waited for a person, approved since: the browser comes back with its id alone.
        waiting = store.pending.get(params.get("request", ""))
        if waiting is not None and waiting.get("approved_as"):
            params = store.pending.pop(params["request"])
        if params.get("response_type") != "code" or not params.get("client_id"):
            return self._error(400, "invalid_request", "response_type=code and client_id are required")
        redirect = params.get("redirect_uri", "")
        if not _loopback_redirect(redirect):
            return self._error(400, "invalid_request", "redirect_uri must be a loopback address")
        if params.get("code_challenge_method", "S256") != "S256":
            return self._error(400, "invalid_request", "only S256 PKCE")
        approved = store.approvals.get(params["client_id"]) or []
        user = params.get("approved_as") or (approved.pop(0) if approved else None)
        store.note(event="authorize", client_id=params["client_id"], approved=bool(user))
        if user is None:
            request_id = secrets.token_hex(6)
            store.pending[request_id] = dict(params)
            return self._send(200, {"waiting": request_id, "login_hint": params.get("login_hint")})
        code = secrets.token_urlsafe(24)
        store.codes[code] = {"user": user, "client_id": params["client_id"], "redirect_uri": redirect,
                             "challenge": params.get("code_challenge"), "scope": params.get("scope", ""),
                             "exp": store.clock() + CODE_TTL}
        query = {"code": code}
        if "state" in params:
            query["state"] = params["state"]
        location = "%s%s%s" % (redirect, "&" if "?" in redirect else "?", urlencode(query))
        return self._send(302, headers={"Location": location})

    def _token(self, form):
        store = self.store
        grant = form.get("grant_type")
        client_id = form.get("client_id") or ""
        store.note(event="token", grant_type=grant, client_id=client_id, scope=form.get("scope"))
        if grant == "authorization_code":
            entry = store.codes.pop(form.get("code", ""), None)
            if entry is None or entry["exp"] <= store.clock() or entry["client_id"] != client_id:
                return self._error(400, "invalid_grant", "unknown, used or expired code")
            if form.get("redirect_uri") != entry["redirect_uri"]:
                return self._error(400, "invalid_grant", "redirect_uri differs from the authorization request")
            if entry["challenge"] and _s256(form.get("code_verifier", "")) != entry["challenge"]:
                return self._error(400, "invalid_grant", "PKCE verification failed")
            return self._send(200, store.issue(entry["user"], client_id, entry["scope"]))
        if grant == "refresh_token":
            entry = store.refresh.get(form.get("refresh_token", ""))
            if entry is None or entry["family"] in store.revoked_families or entry["client_id"] != client_id:
                return self._error(400, "invalid_grant", "unknown or revoked refresh token")
            # RFC 6749 section 6: a refresh may narrow the grant's scope, never widen it (a grant made without a
            # scope, through the test API, takes what the refresh names).
            asked = form.get("scope")
            if asked and entry["scope"] and not set(asked.split()) <= set(entry["scope"].split()):
                return self._error(400, "invalid_scope", "beyond what the grant allows")
            # Rotated: the old refresh token is spent, the family goes on.
            del store.refresh[form["refresh_token"]]
            return self._send(200, store.issue(entry["user"], client_id, asked or entry["scope"], entry["family"]))
        if grant == DEVICE_GRANT:
            entry = store.devices.get(form.get("device_code", ""))
            if entry is None or entry["client_id"] != client_id:
                return self._error(400, "invalid_grant", "unknown device code")
            if entry["exp"] <= store.clock():
                return self._error(400, "expired_token", "the device code expired")
            if entry["user"] is None:
                return self._error(400, "authorization_pending", "waiting for the user")
            del store.devices[form["device_code"]]
            return self._send(200, store.issue(entry["user"], client_id, entry["scope"]))
        return self._error(400, "unsupported_grant_type", str(grant))

    def _devicecode(self, form):
        store = self.store
        if not form.get("client_id"):
            return self._error(400, "invalid_request", "client_id is required")
        device_code = secrets.token_urlsafe(24)
        user_code = "%s-%s" % (secrets.token_hex(2).upper(), secrets.token_hex(2).upper())
        store.devices[device_code] = {"user_code": user_code, "client_id": form["client_id"],
                                      "scope": form.get("scope", ""), "exp": store.clock() + DEVICE_TTL, "user": None}
        store.note(event="devicecode", client_id=form["client_id"])
        host = self.headers.get("Host", "localhost")
        return self._send(200, {"device_code": device_code, "user_code": user_code,
                                "verification_uri": "https://%s/device" % host, "expires_in": DEVICE_TTL,
                                "interval": DEVICE_INTERVAL})

    def _revoke(self, form):
        store = self.store
        token = form.get("token", "")
        info = store.access.get(token) or store.refresh.get(token)
        if info is not None:
            store.revoked_families.add(info["family"])
        store.note(event="revoke", known=info is not None)
        return self._send(200, {})

    def _introspect(self, form):
        store = self.store
        client = self._basic_client()
        if client is None:
            return self._send(401, {"error": "invalid_client"}, {"WWW-Authenticate": 'Basic realm="introspect"'})
        info = store.active(form.get("token", ""))
        store.note(event="introspect", client=client, active=info is not None)
        if info is None:
            return self._send(200, {"active": False})
        return self._send(200, {"active": True, "username": info["user"], "sub": info["user"],
                                "client_id": info["client_id"], "scope": info["scope"], "exp": int(info["exp"]),
                                "token_type": "Bearer"})

    # ----- the test API -----------------------------------------------------------------------------
    def _test_approve(self, form):
        store = self.store
        if form.get("request"):
            request = store.pending.get(form["request"])
            if request is None:
                return self._error(404, "not_found", "no such waiting request")
            request["approved_as"] = form["user"]
            return self._send(200, {"approved": form["request"]})
        store.approvals.setdefault(form["client_id"], []).append(form["user"])
        return self._send(200, {"approved_next": form["client_id"]})

    def _test_approve_device(self, form):
        for entry in self.store.devices.values():
            if entry["user_code"] == form.get("user_code"):
                entry["user"] = form["user"]
                return self._send(200, {"approved": form["user_code"]})
        return self._error(404, "not_found", "no such user code")

    def _test_tokens(self, form):
        return self._send(200, self.store.issue(form["user"], form.get("client_id", "mailstack-test"),
                                                form.get("scope", "")))

    def _test_expire(self, form):
        store = self.store
        now = store.clock()
        expired = 0
        for token, info in store.access.items():
            if token == form.get("token") or info["user"] == form.get("user"):
                info["exp"] = now - 1
                expired += 1
        return self._send(200, {"expired": expired})

    def _test_delay(self, form):
        self.store.token_delay = float(form.get("seconds", 0))
        return self._send(200, {"token_delay": self.store.token_delay})

    def _test_revoke(self, form):
        store = self.store
        families = {info["family"] for info in [*store.access.values(), *store.refresh.values()]
                    if info["user"] == form.get("user")}
        store.revoked_families.update(families)
        return self._send(200, {"revoked_families": len(families)})


class TLSServer(ThreadingHTTPServer):
    """The TLS handshake happens in each connection's own thread: wrapping the listening socket would do it in
    the accepting thread, one connection at a time, and a client that never says hello would stop everyone."""

    daemon_threads = True

    def __init__(self, address, handler, context):
        super().__init__(address, handler)
        self.context = context

    def finish_request(self, request, client_address):
        request.settimeout(Handler.timeout)
        # The headers and the body are two writes: without this the body waits for the client's delayed ACK.
        request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            tls = self.context.wrap_socket(request, server_side=True)
        except (OSError, ssl.SSLError):
            return
        try:
            self.RequestHandlerClass(tls, client_address, self)
        finally:
            tls.close()


def make_server(address, port, cert, key, introspection_clients, store=None, routes=(), graph_settings=None):
    store = store or Store()
    handler = type("BoundHandler", (Handler,), {"store": store, "introspection_clients": introspection_clients,
                                                "graph_settings": graph_settings or {},
                                                "routes": [(re.compile(p), flow) for p, flow in routes]})
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert, key)
    return TLSServer((address, port), handler, context), store


def main(argv):
    with open(argv[0], encoding="utf-8") as handle:
        config = json.load(handle)
    try:
        server, _store = make_server(config["address"], config["port"], config["cert"], config["key"],
                                     config["introspection_clients"], routes=config.get("routes", ()),
                                     graph_settings=config.get("graph"))
    except OSError as exc:
        sys.exit("idp: cannot listen on %s:%s: %s" % (config["address"], config["port"], exc.strerror or exc))
    detach(config["pid_file"])
    server.serve_forever()


if __name__ == "__main__":
    main(sys.argv[1:])
