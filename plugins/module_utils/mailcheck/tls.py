# Copyright (c) Middlebury College
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""TLS contexts and certificate facts.

Every handshake uses a context from ``verified_context``: CERT_REQUIRED plus hostname check. The
stdlib mail classes default to an *unverified* context; we never rely on a default. The only
unverified handshake is ``describe_context``, used after a verification failure to say what the
server presented, and it never carries a command other than STARTTLS."""

from __future__ import annotations

import datetime
import hashlib
import os
import ssl
import tempfile
import time

_ENCODING_DER = getattr(getattr(ssl, "_ssl", None), "ENCODING_DER", 2)
MIN_VERSIONS = {"TLSv1.2": ssl.TLSVersion.TLSv1_2, "TLSv1.3": ssl.TLSVersion.TLSv1_3}


def verified_context(ca_path=None, min_version="TLSv1.2", x509_strict=False):
    """System trust store, or only ca_path (a file or a directory) when given."""
    if ca_path and os.path.isdir(ca_path):
        ctx = ssl.create_default_context(capath=ca_path)
    elif ca_path:
        ctx = ssl.create_default_context(cafile=ca_path)
    else:
        ctx = ssl.create_default_context()
    ctx.minimum_version = MIN_VERSIONS[min_version]
    # Python 3.13 turns on strict RFC 5280 checks by default; make the result the same on every
    # Python of the fleet, strict only when asked.
    strict = getattr(ssl, "VERIFY_X509_STRICT", 0)
    if x509_strict:
        ctx.verify_flags |= strict
    else:
        ctx.verify_flags &= ~strict
    return ctx


def describe_context():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def _name_field(name, key):
    for rdn in name or ():
        for attr, value in rdn:
            if attr == key:
                return value
    return None


def _to_iso(text):
    seconds = ssl.cert_time_to_seconds(text)
    return datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def days_left(not_after, now=None):
    now = time.time() if now is None else now
    return round((ssl.cert_time_to_seconds(not_after) - now) / 86400.0, 1)


def facts_from_dict(info, der=None, now=None):
    """getpeercert()-style dict (+ DER) -> the facts we report."""
    facts = {
        "subject_cn": _name_field(info.get("subject"), "commonName"),
        "issuer_cn": _name_field(info.get("issuer"), "commonName"),
        "issuer_o": _name_field(info.get("issuer"), "organizationName"),
        "sans": [value for kind, value in info.get("subjectAltName", ()) if kind in ("DNS", "IP Address")],
        "serial": info.get("serialNumber"),
        "not_before": _to_iso(info["notBefore"]) if info.get("notBefore") else None,
        "not_after": _to_iso(info["notAfter"]) if info.get("notAfter") else None,
        "days_left": days_left(info["notAfter"], now) if info.get("notAfter") else None,
    }
    if der:
        facts["sha256"] = hashlib.sha256(der).hexdigest()
    return facts


def _decode_with_ssl(der):
    """The stdlib's own decoder (private, present 3.4-3.14) reads a PEM file."""
    decode = getattr(getattr(ssl, "_ssl", None), "_test_decode_cert", None)
    if decode is None:
        return None
    fd, path = tempfile.mkstemp(suffix=".pem")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(ssl.DER_cert_to_PEM_cert(der))
        return decode(path)
    finally:
        os.unlink(path)


def _decode_with_cryptography(der):
    # Optional, and imported only here: loading it costs ~100 ms on every run otherwise.
    try:
        from cryptography import x509 as _x509
    except ImportError:
        return None
    cert = _x509.load_der_x509_certificate(der)

    def rdns(name):
        return tuple(((_oid_name(attr.oid), attr.value),) for attr in name)

    try:
        sans = cert.extensions.get_extension_for_class(_x509.SubjectAlternativeName).value
        san_list = tuple(("DNS", value) for value in sans.get_values_for_type(_x509.DNSName))
    except _x509.ExtensionNotFound:
        san_list = ()
    fmt = "%b %d %H:%M:%S %Y GMT"
    not_before = getattr(cert, "not_valid_before_utc", None) or cert.not_valid_before
    not_after = getattr(cert, "not_valid_after_utc", None) or cert.not_valid_after
    return {"subject": rdns(cert.subject), "issuer": rdns(cert.issuer), "subjectAltName": san_list,
            "serialNumber": "%X" % cert.serial_number, "notBefore": not_before.strftime(fmt),
            "notAfter": not_after.strftime(fmt)}


def _oid_name(oid):
    return {"2.5.4.3": "commonName", "2.5.4.10": "organizationName"}.get(oid.dotted_string, oid.dotted_string)


def facts_from_der(der, now=None):
    """Facts of a certificate that was not verified (getpeercert() is empty then)."""
    for decoder in (_decode_with_ssl, _decode_with_cryptography):
        try:
            info = decoder(der)
        except Exception:  # a broken certificate is itself a finding; keep the fingerprint
            info = None
        if info:
            return facts_from_dict(info, der, now)
    return {"sha256": hashlib.sha256(der).hexdigest()}


def chain_facts(sslsock, now=None):
    """Expiry of every element of the verified chain, when this Python can tell.

    3.13 has get_verified_chain() (DER); 3.10-3.12 have it on the private _sslobj."""
    chain = []
    try:
        getter = getattr(sslsock, "get_verified_chain", None) \
            or getattr(getattr(sslsock, "_sslobj", None), "get_verified_chain", None)
        if getter is None:
            return None
        for item in getter():
            if isinstance(item, bytes):  # 3.13+: DER
                chain.append(facts_from_der(item, now))
            else:  # 3.10-3.12: _ssl.Certificate; DER is _ssl.ENCODING_DER (no public constant)
                chain.append(facts_from_dict(item.get_info(), item.public_bytes(_ENCODING_DER), now))
    except Exception:  # best effort: the leaf facts stand on their own
        return None
    return [{"subject_cn": c.get("subject_cn"), "not_after": c.get("not_after"), "days_left": c.get("days_left")}
            for c in chain]


def session_facts(sslsock, now=None):
    """Negotiated version/cipher and the verified leaf (+ chain) of a live TLS socket."""
    cipher = sslsock.cipher() or (None, None, None)
    der = sslsock.getpeercert(binary_form=True)
    cert = facts_from_dict(sslsock.getpeercert() or {}, der, now)
    chain = chain_facts(sslsock, now)
    # Python 3.9 cannot show the verified chain: the result says that only the leaf's expiry was checked.
    cert["chain_checked"] = bool(chain)
    if chain:
        cert["chain"] = chain
        known = [c["days_left"] for c in chain if c.get("days_left") is not None]
        cert["chain_min_days_left"] = min(known) if known else None
    return {"version": sslsock.version(), "cipher": cipher[0], "bits": cipher[2]}, cert
