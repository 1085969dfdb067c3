"""Where the stand-ins listen: documented names/ports, and the per-instance address layout.

The documented values are read from the collection's account model so that the stack stands in
for exactly what the roles configure; the fallback below exists only while the model is being
written and is the ONE place this package names them.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

_MODEL_PATH = Path(__file__).resolve().parents[2] / "plugins" / "module_utils" / "account_model.py"

# TODO(mailstack): drop this fallback once account_model.DOCUMENTED has landed.
_FALLBACK = {
    "imap_host": "mail.middlebury.edu",
    "smtp_host": "ssmtp.middlebury.edu",
    "mail_domain": "middlebury.edu",
    "imaps_port": 993,
    "imap_port": 143,
    "pop3s_port": 995,
    "smtp_port": 25,
}
# Not documented for users, but welcome for STLS tests: the IANA POP3 port.
POP3_PORT = 110


def _load_model():
    """The account model module, imported by path: the CLI runs without the collection on sys.path."""
    if not _MODEL_PATH.exists():
        return None
    spec = importlib.util.spec_from_file_location("_mailstack_account_model", _MODEL_PATH)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception:  # a half-written model must not break the stack; fall back loudly in status
        return None
    return module


def documented() -> dict:
    """Names and ports of the documented servers."""
    values = dict(_FALLBACK)
    model = _load_model()
    doc = getattr(model, "DOCUMENTED", None) if model else None
    if isinstance(doc, dict):
        values.update(_from_model(doc))
    return values


def _from_model(doc: dict) -> dict:
    """Map the model's DOCUMENTED dict onto our keys (only keys we recognise)."""
    found = {}
    for ours in _FALLBACK:
        if ours in doc:
            found[ours] = doc[ours]
    return found


# Offsets inside an instance's 127.X.Y.0/24 block. Never .1: Dovecot treats a client whose IP
# equals the server's as secure and would advertise AUTH before STARTTLS (client source is 127.0.0.1).
IMAP_HOST_OFFSET = 2
SMTP_HOST_OFFSET = 3
NEGATIVE_OFFSETS = {
    "expired": 10,
    "expiring": 17,
    "wrong_name": 11,
    "untrusted": 12,
    "auth_before_tls": 13,
    "no_starttls": 14,
    "blackhole": 15,
    "closed": 16,
}
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
