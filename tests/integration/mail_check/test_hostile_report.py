"""The fleet report as the helpdesk sees it, when servers and host names carry markup.

playbooks/verify.yml checks hostile stand-in servers (greeting, capabilities and a certificate subject
with <script>, <img onerror>, <body style>, quotes, ampersands, </td> and very long lines) from hosts whose
inventory names carry the same; the page is then loaded in headless Chromium: no element may be
injected, and the hostile text must be on the page as text."""

from __future__ import annotations

import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
import yaml
from ansible_runner import run_playbook
from hostile_server import Listener, self_signed, tls_context

pytestmark = pytest.mark.timeout(400)
PLAYBOOK = Path(__file__).resolve().parents[3] / "playbooks" / "verify.yml"
SCRIPT = '<script>alert("x")</script>'
BODY = '<body style="background:red">'
IMG = "<img src=x onerror=alert(1)>"
CELL = '"&</td>'
LONG = "A" * 3000
HOSTS = ["lab-" + IMG, "lab-" + CELL + SCRIPT]
# Elements and attributes the template itself writes; anything else on the page was injected.
OWN_TAGS = {"html", "head", "meta", "title", "style", "body", "h1", "h2", "div", "span", "table", "thead", "tbody",
            "tr", "th", "td", "small", "ul", "li", "strong", "p", "code"}


class _Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.event_attrs, self.styled_bodies, self.text = set(), [], 0, []

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        self.event_attrs += [name for name, _value in attrs if name.startswith("on")]
        if tag == "body" and any(name == "style" for name, _value in attrs):
            self.styled_bodies += 1

    def handle_data(self, data):
        self.text.append(data)


def _servers(tmp_path):
    cert, key = self_signed(tmp_path, r"/O=%s/CN=%s %s" % (SCRIPT.replace("/", r"\/"), IMG, CELL.replace("/", r"\/")))

    def imap_caps(line):
        return ["* CAPABILITY IMAP4rev1 %s %s" % (IMG, LONG), line.split(" ", 1)[0] + " OK done"]

    def smtp_answer(line):
        if line.upper().startswith("EHLO"):
            return ["250-%s %s" % (SCRIPT, BODY), "250-" + LONG, "250 AUTH PLAIN " + CELL]
        return ["221 " + IMG]

    return {
        # Not an IMAP greeting: the finding quotes it.
        "imap": Listener([SCRIPT + BODY + CELL + LONG]),
        # Untrusted certificate whose issuer names carry markup.
        "imaps": Listener(["* OK " + SCRIPT], imap_caps, tls=tls_context(cert, key)),
        "pop3": Listener(["+OK " + BODY + IMG], lambda _line: ["-ERR " + SCRIPT + LONG]),
        "smtp": Listener(["220 " + BODY + " " + SCRIPT], smtp_answer),
    }


@pytest.fixture(scope="module")
def hostile_report(tmp_path_factory):
    work = tmp_path_factory.mktemp("hostile")
    servers = {name: listener.start() for name, listener in _servers(work).items()}
    try:
        endpoints = [
            {"name": "imap_starttls", "protocol": "imap", "host": "mail.example.org", "port": servers["imap"].port,
             "security": "starttls"},
            {"name": "imaps", "protocol": "imap", "host": "mail.example.org", "port": servers["imaps"].port,
             "security": "ssl"},
            {"name": "pop3_starttls", "protocol": "pop3", "host": "mail.example.org", "port": servers["pop3"].port,
             "security": "starttls"},
            {"name": "smtp", "protocol": "smtp", "host": "smtp.example.org", "port": servers["smtp"].port,
             "security": "starttls"},
        ]
        connect_to = {"%s:%d" % (ep["host"], ep["port"]): "127.0.0.1" for ep in endpoints}
        local = {"ansible_connection": "local", "ansible_python_interpreter": "/usr/bin/python3"}
        inventory = {"all": {"children": {"lab": {"hosts": dict.fromkeys(HOSTS, local), "vars": {
            "mail_check_endpoints": endpoints, "mail_check_connect_to": connect_to,
            "mail_check_timeout": 20, "mail_check_deadline": 40}}}}}
        (work / "inventory.yml").write_text(yaml.safe_dump(inventory))
        out = work / "report"
        result = run_playbook(PLAYBOOK, extra_vars={"mail_check_hosts": "lab", "mail_check_report_dir": str(out)},
                              args=("-i", str(work / "inventory.yml")), timeout=300)
    finally:
        for listener in servers.values():
            listener.close()
    return result, out, work


def test_every_hostile_value_is_on_the_page_as_text(hostile_report):
    result, out, work = hostile_report
    assert result.stats[HOSTS[0]]["failures"] == 1, result
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    assert chromium, "Debian's chromium package is required (tests/apt/mail_check.txt)"
    args = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--user-data-dir=%s" % (work / "chromium")]
    page_uri = (out / "mail_check.html").as_uri()
    # An alert() that ran would hang headless Chromium: the timeout turns that into a failure.
    dom = subprocess.run([*args, "--dump-dom", page_uri], capture_output=True, text=True, timeout=120, check=False)
    assert dom.returncode == 0, dom.stderr[-2000:]
    page = _Page()
    page.feed(dom.stdout)
    assert page.tags <= OWN_TAGS, "injected elements: %s" % sorted(page.tags - OWN_TAGS)
    assert page.event_attrs == [] and page.styled_bodies == 0
    text = "".join(page.text)
    for host in HOSTS:
        assert host in text, host
    for hostile in (SCRIPT + BODY + CELL, IMG, "issued by"):
        assert hostile in text, hostile
    shot = work / "report.png"
    taken = subprocess.run([*args, "--window-size=1280,2000", "--screenshot=%s" % shot, page_uri],
                           capture_output=True, text=True, timeout=120, check=False)
    assert taken.returncode == 0 and shot.stat().st_size > 10000, taken.stderr[-2000:]
