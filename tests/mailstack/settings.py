"""Where the stand-ins listen: documented names/ports, and the per-instance address layout.

The documented values are read from the collection's account model so that the stack stands in
for exactly what the roles configure; this package never restates them.
"""

from __future__ import annotations

import functools
import importlib.util
import re
from pathlib import Path

_MODEL_PATH = Path(__file__).resolve().parents[2] / "plugins" / "module_utils" / "account_model.py"
# Not among the documented endpoints, but welcome for STLS tests: POP3 with STARTTLS (fallback 110).
_POP3_STARTTLS = ("pop3", "starttls")


def _load_model():
    """The account model module, imported by path: the CLI runs without the collection on sys.path."""
    spec = importlib.util.spec_from_file_location("_mailstack_account_model", _MODEL_PATH)
    if spec is None or not _MODEL_PATH.exists():
        raise RuntimeError("account model not found at %s" % _MODEL_PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@functools.cache
def _documented() -> dict:
    """Names and ports of the documented servers, from the account model."""
    model = _load_model()
    doc, ports = model.DOCUMENTED, model.PORTS
    return {
        "imap_host": doc["incoming_host"],
        "smtp_host": doc["smtp_host"],
        "mail_domain": doc["mail_domain"],
        "imaps_port": ports[("imap", "ssl")],
        "imap_port": ports[("imap", "starttls")],
        "pop3s_port": ports[("pop3", "ssl")],
        "pop3_port": ports[_POP3_STARTTLS],
        "smtp_port": doc["smtp_port"],
    }


@functools.cache
def _idp_names() -> tuple:
    """The stand-in identity provider's names: its own, every host of the presets' OAuth2 endpoints and their web
    APIs (from the account model), so that a client configured with a preset reaches the stand-in, never the real
    one."""
    model = _load_model()
    names = [IDP_NAME]
    for preset in model.PRESETS.values():
        oauth2 = preset["oauth2"]
        for key in ("authorization_endpoint", "token_endpoint", "device_authorization_endpoint"):
            names.append(oauth2[key].split("/")[2])
        names.append(oauth2["issuer"])
        # A preset's web API (Microsoft Graph) too: a client must never reach the real one.
        if "graph" in preset:
            names.append(preset["graph"]["host"])
    return tuple(dict.fromkeys(names))


@functools.cache
def _preset_mail_names() -> tuple:
    """Every mail server name of the presets (from the account model): the Exchange-like variants answer for them."""
    model = _load_model()
    names = []
    for preset in model.PRESETS.values():
        names.extend(preset["incoming_hosts"].values())
        names.append(preset["smtp_host"])
    return tuple(dict.fromkeys(names))


def preset_mail_names() -> list:
    return list(_preset_mail_names())


def preset_names_by_server() -> dict:
    """{"incoming": [...], "smtp": [...]}: the presets' IMAP/POP and SMTP server names (from the account model)."""
    model = _load_model()
    out = {"incoming": [], "smtp": []}
    for preset in model.PRESETS.values():
        out["incoming"].extend(n for n in preset["incoming_hosts"].values() if n not in out["incoming"])
        if preset["smtp_host"] not in out["smtp"]:
            out["smtp"].append(preset["smtp_host"])
    return out


def preset_endpoint_paths() -> list:
    """[(path pattern, flow)]: where the presets' OAuth2 endpoints live on their hosts (Microsoft's carry the
    tenant), so that the stand-in provider answers a client configured with a preset at the same paths."""
    model = _load_model()
    flows = {"authorization_endpoint": "/authorize", "token_endpoint": "/token",
             "device_authorization_endpoint": "/devicecode"}
    out = []
    for preset in model.PRESETS.values():
        for key, flow in flows.items():
            path = "/" + preset["oauth2"][key].split("/", 3)[3]
            out.append((re.escape(path).replace(re.escape("{tenant}"), "[A-Za-z0-9.-]+"), flow))
    return out


def graph_settings() -> dict:
    """What the Microsoft Graph stand-in needs from the model: Graph's base URL (every preset with a web API names
    the same one) and the identity provider its 401 answers point at (Graph names the common tenant's)."""
    model = _load_model()
    (preset,) = [p for p in model.PRESETS.values() if "graph" in p]
    oauth2 = preset["oauth2"]
    return {"base": "https://" + preset["graph"]["host"],
            "authorization_uri": oauth2["authorization_endpoint"].replace("{tenant}", oauth2["tenant"])}


def idp_names() -> list:
    return list(_idp_names())


def documented() -> dict:
    """Names and ports of the documented servers, from the account model (a fresh copy each call)."""
    return dict(_documented())


# Offsets inside an instance's 127.X.Y.0/24 block. Never .1: Dovecot treats a client whose IP
# equals the server's as secure and would advertise AUTH before STARTTLS (client source is 127.0.0.1).
IMAP_HOST_OFFSET = 2
SMTP_HOST_OFFSET = 3
# The stand-in OAuth2 identity provider (tests/mailstack/idp.py), HTTPS on 443 as the real ones.
IDP_HOST_OFFSET = 4
IDP_PORT = 443
IDP_NAME = "idp.mailstack.test"
# The client Dovecot introspects tokens as (RFC 7662 needs one).
INTROSPECTION_CLIENT = "dovecot"
NEGATIVE_OFFSETS = {
    "expired": 10,
    "expiring": 17,
    "wrong_name": 11,
    "untrusted": 12,
    "auth_before_tls": 13,
    "no_starttls": 14,
    "blackhole": 15,
    "closed": 16,
    "exchange": 18,
    "exchange_tenant": 19,
}
# The Exchange-like variants (exchange.py): Exchange Online's ports, SMTP submission on 587.
SUBMISSION_PORT = 587
EXCHANGE_PORTS = {"imaps": 993, "pop3s": 995, "submission": SUBMISSION_PORT}
# Port that nothing of ours listens on, on any address of the block (verified at start).
CLOSED_PORT = 1
WRONG_CERT_NAME = "wrong-name.example.net"
MAX_INSTANCE = 255 * 200


def block(instance: int) -> str:
    """The 127.X.Y prefix of an instance (X from 20 up, so 127.0.0.0/16 stays untouched)."""
    if not 0 <= instance < MAX_INSTANCE:
        raise ValueError("instance must be in 0..%d" % (MAX_INSTANCE - 1))
    return "127.%d.%d" % (20 + instance // 256, instance % 256)


def address(instance: int, offset: int) -> str:
    return "%s.%d" % (block(instance), offset)
