"""TLS client contexts that connect by IP but verify the real name (like curl --resolve)."""

from __future__ import annotations

import ssl


class NamedContext(ssl.SSLContext):
    """wrap_socket always sends SNI for and verifies `forced_hostname`, whatever the caller passes;
    imaplib/smtplib pass the IP they connected to, which would fail the name check."""

    forced_hostname: str | None = None

    def wrap_socket(self, sock, *args, **kwargs):
        if self.forced_hostname:
            kwargs["server_hostname"] = self.forced_hostname
        return super().wrap_socket(sock, *args, **kwargs)


def context_for(hostname: str | None, cafile) -> NamedContext:
    """Verifying client context trusting only `cafile` (CERT_REQUIRED, hostname check, TLS >= 1.2)."""
    ctx = NamedContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_verify_locations(cafile=str(cafile))
    ctx.forced_hostname = hostname
    return ctx
