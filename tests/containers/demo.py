"""`make demo`: one throwaway lab PC, converged, verified and read from, then cleaned up.

Builds the Debian 12 lab PC image if it is missing, starts the stand-in mail servers on loopback,
starts a container with the college's server names pointing at them, converges it with
playbooks/site.yml (lab mode, all three clients), runs playbooks/verify.yml from inside it, shows
mutt reading the demo INBOX (the tmux screen), prints where the HTML fleet report is, and removes
the container and stops the stack. Nothing on this machine's own mail configuration is touched:
the clients are configured inside the container only.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(HERE))
from fleet import podman, podman_env  # noqa: E402
from mailstack.claims import claim_free_instance, release  # noqa: E402
from mailstack.stack import MailStack  # noqa: E402

BIN = Path(sys.executable).parent
IMAGE = os.environ.get("MAIL_CLIENTS_IMAGE_BOOKWORM", "localhost/middlebury-mail-clients:bookworm")
CONTAINER = "mail-clients-demo-labpc"
LOGIN = "demostudent"
PASSWORD = "Demo-Student-Pass_1"
READ_INBOX = REPO / "extensions" / "molecule" / "shared" / "files" / "read_inbox.py"


def step(text: str) -> None:
    print("\n==> [%5.1f s] %s" % (time.monotonic() - T0, text), flush=True)


def run(argv, env, timeout=900) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(a) for a in argv], env=env, timeout=timeout, text=True, capture_output=True,
                          check=False)
    if proc.returncode != 0:
        sys.stdout.write(proc.stdout[-6000:])
        sys.stderr.write(proc.stderr[-3000:])
        raise SystemExit("demo: %s failed (rc %d)" % (argv[0], proc.returncode))
    return proc


def recap(output: str) -> str:
    lines = output.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("PLAY RECAP")), len(lines))
    return "\n".join(line for line in lines[start:] if line.strip())


def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="mail-clients-demo-"))
    # The stack gets its own free address block and a directory its daemons can enter.
    instance = claim_free_instance()
    stack = MailStack(tempfile.mkdtemp(prefix="mail-clients-demo-stack-"), instance)
    env = dict(podman_env(), PATH="%s:%s" % (BIN, os.environ.get("PATH", "")), ANSIBLE_FORCE_COLOR="0")
    collections = work / "collections" / "ansible_collections" / "middlebury"
    collections.mkdir(parents=True)
    (collections / "mail_clients").symlink_to(REPO)
    env["ANSIBLE_COLLECTIONS_PATH"] = str(work / "collections")
    try:
        step("Lab PC image %s (built from nothing with debootstrap when absent)" % IMAGE)
        run([HERE / "build-image.sh", "bookworm"], env, timeout=1800)

        step("Starting the stand-in mail servers (Dovecot + Postfix on loopback, throwaway CA)")
        status = stack.start()
        stack.add_user(LOGIN, PASSWORD)
        print("   IMAP/POP3 %s, SMTP %s -> %s" % (
            status["imap_host_ip"], status["smtp_host_ip"], ", ".join(sorted(stack.hosts))))

        step("Creating the throwaway lab PC container %s" % CONTAINER)
        podman("rm", "-f", "-t", "0", CONTAINER, check=False)
        add_hosts = [arg for name, ip in stack.hosts.items() for arg in ("--add-host", "%s:%s" % (name, ip))]
        podman("run", "-d", "--name", CONTAINER, "--hostname", CONTAINER, "--network", "host", "--init",
               *add_hosts, IMAGE, "sleep", "infinity")
        # The stand-ins' CA goes into the container's trust store, as a college CA would on a lab PC.
        podman("cp", str(stack.ca_path), "%s:/usr/local/share/ca-certificates/mail-clients-demo-ca.crt" % CONTAINER)
        podman("exec", CONTAINER, "update-ca-certificates")
        podman("exec", CONTAINER, "useradd", "--create-home", "--shell", "/bin/bash", LOGIN)

        inventory = work / "inventory.ini"
        inventory.write_text("[lab_pcs]\n%s ansible_connection=containers.podman.podman "
                             "ansible_python_interpreter=/usr/bin/python3\n" % CONTAINER)
        step("Converging it with playbooks/site.yml (lab mode: mutt, NeoMutt, Thunderbird, Evolution)")
        out = run([BIN / "ansible-playbook", "-i", inventory, "middlebury.mail_clients.site",
                   "-e", "mutt_install=false", "-e", "thunderbird_install=false", "-e", "evolution_install=false"],
                  env)
        print(recap(out.stdout))

        report_dir = Path(os.environ.get("MAIL_CLIENTS_DEMO_REPORT_DIR", REPO / "tests" / "output" / "demo-report"))
        report_dir.mkdir(parents=True, exist_ok=True)
        step("Running playbooks/verify.yml from inside the lab PC against the stand-ins")
        out = run([BIN / "ansible-playbook", "-i", inventory, "middlebury.mail_clients.verify",
                   "-e", json.dumps({"mail_check_report_dir": str(report_dir)})], env)
        print("\n".join(line.strip(' ",') for line in out.stdout.splitlines()
                        if "Mail check:" in line or "report:" in line))
        print(recap(out.stdout))

        step("mutt in the lab PC, logged in as %s, reading the demo INBOX (tmux screen)" % LOGIN)
        podman("cp", str(READ_INBOX), "%s:/usr/local/bin/read-inbox" % CONTAINER)
        screen = podman("exec", CONTAINER, "python3", "/usr/local/bin/read-inbox", "mutt", LOGIN, PASSWORD,
                        *stack.inbox_subjects, timeout=120)
        # The index lines and the status bar; tmux pads the 50-line screen with empty rows.
        print("\n".join(line for line in screen.stdout.splitlines() if line.strip()))

        reports = sorted(report_dir.glob("*.html"))
        step("Fleet report: %s" % (", ".join(str(p) for p in reports) or "(none written in %s)" % report_dir))
        if not reports:
            return 1
    finally:
        step("Cleaning up: container and stand-in servers")
        podman("rm", "-f", "-t", "0", CONTAINER, check=False)
        stack.stop()
        release(instance)
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(stack.workdir, ignore_errors=True)
    print("\ndemo finished in %.0f s" % (time.monotonic() - T0))
    return 0


T0 = time.monotonic()

if __name__ == "__main__":
    sys.exit(main())
