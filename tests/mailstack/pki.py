"""Throwaway PKI made with the openssl CLI: a trusted CA, a second CA clients never get, and leaves.

`openssl ca` is used instead of `openssl x509 -req` because only it takes explicit start/end
dates on OpenSSL 3.0 (Debian 12), which the expired certificate needs.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
from pathlib import Path

_CA_CNF = """\
[ ca ]
default_ca = ca_default
[ ca_default ]
database = {d}/index.txt
new_certs_dir = {d}/issued
serial = {d}/serial
default_md = sha256
policy = policy_any
unique_subject = no
email_in_dn = no
[ policy_any ]
commonName = supplied
[ ca_ext ]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[ leaf_ext ]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
# Python 3.13's default context sets VERIFY_X509_STRICT, which rejects leaves without an AKI.
authorityKeyIdentifier = keyid:always
subjectAltName = $ENV::MAILSTACK_SAN
"""


def _utc(delta_days: float) -> str:
    when = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=delta_days)
    return when.strftime("%Y%m%d%H%M%SZ")


class Pki:
    """Creates files under `directory`; every certificate shares one P-256 leaf key (cheap, and enough)."""

    def __init__(self, directory: Path):
        self.dir = Path(directory)

    def _openssl(self, *args: str, san: str = "DNS:unused.invalid") -> None:
        env = dict(os.environ, MAILSTACK_SAN=san)
        proc = subprocess.run(["openssl", *args], cwd=self.dir, env=env, capture_output=True, text=True, timeout=60,
                              check=False)
        if proc.returncode:
            raise RuntimeError("openssl %s failed: %s" % (args[0], proc.stderr.strip()))

    def _ca_dir(self, name: str) -> Path:
        d = self.dir / name
        (d / "issued").mkdir(parents=True, exist_ok=True)
        (d / "index.txt").write_text("")
        (d / "serial").write_text("1000\n")
        (d / "ca.cnf").write_text(_CA_CNF.format(d=d))
        return d

    def make_ca(self, name: str, common_name: str) -> Path:
        """Self-signed CA valid from a year ago (so leaves may start in the past) for 60 more days."""
        d = self._ca_dir(name)
        self._openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                      "-keyout", str(d / "ca.key"), "-out", str(d / "ca.csr"), "-subj", "/CN=" + common_name)
        self._openssl("ca", "-batch", "-notext", "-selfsign", "-config", str(d / "ca.cnf"),
                      "-keyfile", str(d / "ca.key"), "-in", str(d / "ca.csr"), "-out", str(d / "ca.pem"),
                      "-extensions", "ca_ext", "-startdate", _utc(-365), "-enddate", _utc(60))
        return d / "ca.pem"

    def make_leaf_key(self) -> Path:
        key = self.dir / "server.key"
        self._openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                      "-keyout", str(key), "-out", str(self.dir / "server.csr"), "-subj", "/CN=csr")
        return key

    def issue(self, ca_name: str, out_name: str, names: list[str], start_days: float, end_days: float) -> Path:
        """Leaf for `names` (first one is the CN) signed by CA `ca_name`; returns the full chain file."""
        d = self.dir / ca_name
        leaf = self.dir / (out_name + ".pem")
        san = ",".join(n if n.startswith("IP:") else "DNS:" + n for n in names)
        self._openssl("ca", "-batch", "-notext", "-config", str(d / "ca.cnf"), "-cert", str(d / "ca.pem"),
                      "-keyfile", str(d / "ca.key"), "-in", str(self.dir / "server.csr"), "-out", str(leaf),
                      "-subj", "/CN=" + names[0], "-extensions", "leaf_ext",
                      "-startdate", _utc(start_days), "-enddate", _utc(end_days), san=san)
        chain = self.dir / (out_name + ".chain.pem")
        chain.write_text(leaf.read_text() + (d / "ca.pem").read_text())
        return chain

    def restrict_key(self, key: Path, group: str = "dovecot") -> None:
        """Key readable by root and the daemons' group only (Postfix reads it as root before dropping privileges)."""
        shutil.chown(key, "root", group)
        os.chmod(key, 0o640)
