"""A fleet of lab PC containers reached over SSH, the way a real fleet is reached.

Each container runs its own sshd (key auth only) on its own loopback address with
`--network host`, and has an admin login with password-less sudo, like a lab PC managed by
Ansible. Every remote Python start is counted: the interpreter Ansible is given is a tiny wrapper
that appends a line to a bind-mounted file, so "module executions per host" is measured on the
managed side, not inferred from task names.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
CONTAINERS_CONF = HERE / "containers.conf"
ADMIN = "fleetadmin"
SSH_PORT = 2222
# Inside the container: the interpreter Ansible is told to use; it logs one line per start.
COUNTED_PYTHON = "/usr/local/bin/python3-counted"
COUNT_DIR = "/var/fleet-count"  # bind-mounted from the controller: counts are read without podman exec
COUNT_LOG = COUNT_DIR + "/python-starts"

_BOOT = r"""
set -eu
id {admin} >/dev/null 2>&1 || useradd --create-home --shell /bin/bash {admin}
install -d -m 0700 -o {admin} -g {admin} /home/{admin}/.ssh
install -m 0600 -o {admin} -g {admin} /fleet-key.pub /home/{admin}/.ssh/authorized_keys
echo '{admin} ALL=(ALL) NOPASSWD: ALL' >/etc/sudoers.d/{admin}
chmod 0440 /etc/sudoers.d/{admin}
printf '#!/bin/sh\necho x >>{log}\nexec /usr/bin/python3 "$@"\n' >{counted}
chmod 0755 {counted}
: >{log}
chmod 0666 {log}
mkdir -p /run/sshd
exec /usr/sbin/sshd -D -e -p {port} -o ListenAddress={address} -o PasswordAuthentication=no \
  -o KbdInteractiveAuthentication=no -o UseDNS=no -o MaxStartups=200 -o PermitRootLogin=no
"""


def podman_env() -> dict:
    env = dict(os.environ)
    env.setdefault("CONTAINERS_CONF", str(CONTAINERS_CONF))
    return env


def podman(*args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["podman", *args], env=podman_env(), capture_output=True, text=True,
                          timeout=timeout, check=check)


def _port_free(address: str, port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind((address, port))
        except OSError:
            return False
    return True


def _listening(address: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((address, port)) == 0


class SshFleet:
    """`size` containers named <prefix>-NN on 127.0.0.<first_octet + NN>:2222."""

    def __init__(self, workdir: Path, image: str, size: int = 20, prefix: str = "mail-clients-bench",
                 first_octet: int = 100):
        self.workdir = Path(workdir)
        self.image = image
        self.size = size
        self.prefix = prefix
        self.hosts = {"%s-%02d" % (prefix, i + 1): "127.0.0.%d" % (first_octet + i + 1) for i in range(size)}
        self.key = self.workdir / "fleet-key"

    def start(self, timeout: float = 120) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        if not self.key.exists():
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "fleet-bench", "-f", str(self.key)],
                           check=True, timeout=30)
        self.stop()
        busy = [a for a in self.hosts.values() if not _port_free(a, SSH_PORT)]
        if busy:
            raise RuntimeError("port %d already in use on %s" % (SSH_PORT, ", ".join(busy)))
        for name, address in self.hosts.items():
            self._count_dir(name).mkdir(parents=True, exist_ok=True)
            boot = _BOOT.format(admin=ADMIN, log=COUNT_LOG, counted=COUNTED_PYTHON, port=SSH_PORT, address=address)
            podman("run", "-d", "--name", name, "--hostname", name, "--network", "host", "--init",
                   "-v", "%s:/fleet-key.pub:ro" % self.key.with_suffix(".pub"),
                   "-v", "%s:%s" % (self._count_dir(name), COUNT_DIR), self.image, "sh", "-c", boot)
        deadline = time.monotonic() + timeout
        waiting = dict(self.hosts)
        while waiting and time.monotonic() < deadline:
            waiting = {n: a for n, a in waiting.items() if not _listening(a, SSH_PORT)}
            time.sleep(0.2)
        if waiting:
            logs = podman("logs", next(iter(waiting)), check=False).stderr
            raise RuntimeError("sshd did not come up in %s: %s" % (", ".join(waiting), logs[-2000:]))

    def stop(self) -> None:
        names = [n for n in self.hosts if podman("container", "exists", n, check=False).returncode == 0]
        if names:
            podman("rm", "-f", "-t", "0", *names, timeout=300)

    def write_inventory(self, path: Path, group_vars: dict | None = None) -> Path:
        """An INI inventory of the fleet (INI: no YAML dependency for the caller)."""
        lines = ["[lab_pcs]"]
        lines += ["%s ansible_host=%s" % (name, address) for name, address in self.hosts.items()]
        lines += ["", "[lab_pcs:vars]", "ansible_port=%d" % SSH_PORT, "ansible_user=%s" % ADMIN,
                  "ansible_ssh_private_key_file=%s" % self.key, "ansible_python_interpreter=%s" % COUNTED_PYTHON]
        lines += ["%s=%s" % (k, v) for k, v in (group_vars or {}).items()]
        path.write_text("\n".join(lines) + "\n")
        return path

    def _count_dir(self, name: str) -> Path:
        return self.workdir / "counts" / name

    def reset_counts(self) -> None:
        for name in self.hosts:
            (self._count_dir(name) / "python-starts").write_text("")

    def counts(self) -> dict:
        """Remote Python starts per host since the last reset."""
        return {name: len((self._count_dir(name) / "python-starts").read_text().splitlines()) for name in self.hosts}
