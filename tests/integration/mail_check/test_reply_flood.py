"""A server that answers with endless short lines must not make a probe grow: each protocol's probe,
in a process of its own, is measured (peak RSS) while a stand-in floods the reply it waits for."""

from __future__ import annotations

import json
import os
import subprocess

import pytest
from hostile_server import FLOOD, Listener

pytestmark = pytest.mark.timeout(300)
LIMIT_KIB = 32 * 1024
# One probe through the module's own runner, then its peak memory; runs under Debian's Python like a
# managed host does.
PROBE = r"""
import json, sys
from ansible_collections.middlebury.mail_clients.plugins.module_utils import account_model
from ansible_collections.middlebury.mail_clients.plugins.module_utils.mailcheck import runner
endpoint, port = json.loads(sys.argv[1]), int(sys.argv[2])
endpoints = runner.select_endpoints(account_model, endpoints=[endpoint])
options = {"connect_to": {"%s:%d" % (endpoint["host"], port): "127.0.0.1"}, "timeout": 20, "deadline": 40,
           "ip_version": "any", "min_tls_version": "TLSv1.2", "x509_strict": False, "auth_mechanisms": ["PLAIN"],
           "days_warning": 0, "days_critical": 0, "ehlo_name": None, "ca_path": None}
results, _summary = runner.run_checks(endpoints, options)
# VmHWM, not getrusage's ru_maxrss: Linux carries ru_maxrss over from the forking parent (pytest) across exec.
peak = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(json.dumps({"code": [f["code"] for f in results[0]["findings"]], "message": results[0]["message"],
                  "peak_kib": peak}))
"""


def _pop3(line):
    return ["+OK capabilities", FLOOD] if line == "CAPA" else ["+OK"]


# protocol -> (greeting, answer to each command, the line flooded)
FLOODS = {
    # IMAP: CAPABILITY answered with untagged lines that never reach the tagged completion.
    "imap": (["* OK ready"], lambda _line: FLOOD, b"* CAPABILITY IMAP4rev1 X"),
    # POP3: CAPA's list never ends with ".".
    "pop3": (["+OK ready"], _pop3, b"X-CAPA"),
    # SMTP: an EHLO reply of 250- continuations only.
    "smtp": (["220 ready"], lambda _line: FLOOD, b"250-X"),
}


@pytest.mark.parametrize("protocol", sorted(FLOODS))
def test_a_flooding_server_is_named_and_the_probe_stays_small(protocol):
    greeting, answer, line = FLOODS[protocol]
    listener = Listener(greeting, answer, flood_line=line).start()
    try:
        endpoint = {"name": protocol + "_starttls", "protocol": protocol, "host": "mail.example.org",
                    "port": listener.port, "security": "starttls"}
        env = dict(os.environ, PYTHONPATH=os.environ["MAIL_CLIENTS_COLLECTIONS_ROOT"])
        proc = subprocess.run(["/usr/bin/python3", "-c", PROBE, json.dumps(endpoint), str(listener.port)],
                              capture_output=True, text=True, timeout=120, env=env, check=False)
    finally:
        listener.close()
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout)
    assert "reply_flood" in result["code"], result
    assert "floods its replies" in result["message"], result
    assert result["peak_kib"] < LIMIT_KIB, "the probe grew to %d KiB" % result["peak_kib"]
