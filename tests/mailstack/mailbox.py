"""Test accounts: the passwd-file Dovecot (and through it Postfix SASL) authenticates against, and
their Maildirs, seeded and read directly on disk (no daemon needed, and fast)."""

from __future__ import annotations

import email
import email.policy
import os
import re
import shutil
import socket
import time
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path

from .dovecot import SPECIAL_USE

LOGIN_RE = re.compile(r"^[a-z_][a-z0-9._-]{0,31}$")
# Seeded, subscribed folders besides the special-use ones.
FOLDERS = ("Personal", "Classes")
INBOX_SUBJECTS = ("Welcome to the lab mail test", "Reading list for week 2", "Re: office hours")


def check_account(login: str, password: str) -> None:
    if not LOGIN_RE.match(login):
        raise ValueError("login %r: use a unix-style name (lowercase letters, digits, . _ -)" % login)
    if not password or any(c in password for c in ":\n\r\0"):
        raise ValueError("password for %r must be non-empty and free of ':' and line breaks" % login)


def write_account(users_dir: Path, login: str, password: str) -> None:
    """users_dir/<login>: one `login:{PLAIN}password::::::` line, replaced atomically."""
    users_dir.mkdir(mode=0o750, exist_ok=True)
    shutil.chown(users_dir, "root", "dovecot")
    path = users_dir / login
    tmp = users_dir / (".%s.tmp" % login)
    tmp.write_text("%s:{PLAIN}%s::::::\n" % (login, password))
    # Read by Dovecot's auth process, which runs as the dovecot user.
    shutil.chown(tmp, "root", "dovecot")
    os.chmod(tmp, 0o640)
    existed = path.exists()
    if existed:
        # Dovecot re-reads a file whose mtime (whole seconds) or size changed, at most once a second:
        # force a new mtime, and return only once the second has turned, so a new password is in
        # effect when this returns.
        stamp = max(int(time.time()), int(path.stat().st_mtime) + 1)
        os.utime(tmp, (stamp, stamp))
    os.replace(tmp, path)
    while existed and time.time() < stamp + 1:
        time.sleep(0.02)


def read_accounts(users_dir: Path) -> dict:
    """login -> password from users_dir."""
    found = {}
    if not users_dir.is_dir():
        return found
    for path in sorted(users_dir.iterdir()):
        if path.name.startswith("."):
            continue
        login, _sep, rest = path.read_text().strip().partition(":")
        if login:
            found[login] = rest.split(":", 1)[0].removeprefix("{PLAIN}")
    return found


def folder_dir(maildir: Path, folder: str) -> Path:
    """Maildir++ layout: INBOX is the root, `A/B` lives in `.A.B`."""
    if folder.upper() == "INBOX":
        return maildir
    return maildir / ("." + folder.replace("/", "."))


def chown_tree(top: Path, uid: int, gid: int) -> None:
    os.chown(top, uid, gid)
    for root, dirs, files in os.walk(top):
        for name in dirs + files:
            os.chown(os.path.join(root, name), uid, gid)


def _ensure_folder(path: Path, is_sub: bool) -> None:
    for sub in ("cur", "new", "tmp"):
        (path / sub).mkdir(parents=True, exist_ok=True)
    if is_sub:
        (path / "maildirfolder").touch()


def build_message(sender: str, recipient: str, subject: str, body: str) -> bytes:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = recipient
    msg["Subject"] = subject
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
    msg.set_content(body)
    return msg.as_bytes(policy=email.policy.SMTP)


_counter = 0


def deliver_file(maildir: Path, folder: str, data: bytes, seen: bool) -> Path:
    """Drop one message into a folder the way an MDA does: write to tmp/, rename into new/ or cur/."""
    global _counter
    _counter += 1
    target = folder_dir(maildir, folder)
    _ensure_folder(target, folder.upper() != "INBOX")
    host = socket.gethostname().replace("/", "_").replace(":", "_")
    base = "%d.M%dP%dQ%d.%s,S=%d" % (time.time(), time.time_ns() % 1000000, os.getpid(), _counter, host, len(data))
    tmp = target / "tmp" / base
    tmp.write_bytes(data)
    final = target / ("cur" if seen else "new") / (base + (":2,S" if seen else ""))
    os.replace(tmp, final)
    return final


def seed(mail_root: Path, login: str, domain: str, uid: int, gid: int) -> None:
    """INBOX with INBOX_SUBJECTS (unread), Personal and Classes with one read message each,
    empty Sent/Drafts/Trash; all folders subscribed."""
    home = mail_root / login
    maildir = home / "Maildir"
    _ensure_folder(maildir, False)
    address = "%s@%s" % (login, domain)
    sender = "registrar@%s" % domain
    for subject in INBOX_SUBJECTS:
        deliver_file(maildir, "INBOX", build_message(sender, address, subject, "Seeded by tests/mailstack.\n"), False)
    for folder in FOLDERS:
        subject = folder_subject(folder)
        deliver_file(maildir, folder, build_message(sender, address, subject, "Seeded into %s.\n" % folder), True)
    for folder in SPECIAL_USE:
        _ensure_folder(folder_dir(maildir, folder), True)
    # Version-1 subscriptions format (one name per line), which Dovecot 2.3 still reads.
    (maildir / "subscriptions").write_text("".join("%s\n" % f for f in (*FOLDERS, *SPECIAL_USE)))
    chown_tree(home, uid, gid)


def folder_subject(folder: str) -> str:
    return "Seeded message in %s" % folder


def list_subjects(mail_root: Path, login: str, folder: str = "INBOX") -> list[str]:
    """Subjects in a folder, oldest file first (new/ and cur/)."""
    target = folder_dir(mail_root / login / "Maildir", folder)
    files = []
    for sub in ("new", "cur"):
        d = target / sub
        if d.is_dir():
            files.extend(p for p in d.iterdir() if p.is_file())
    files.sort(key=lambda p: (p.stat().st_mtime, p.name))
    subjects = []
    for path in files:
        with path.open("rb") as fh:
            msg = email.message_from_binary_file(fh, policy=email.policy.default)
        subjects.append(str(msg.get("Subject", "")))
    return subjects
