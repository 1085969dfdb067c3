#!/usr/bin/python3
"""Ask evolution-data-server, as a login, for the mail account the roles configured, then read mail with it.

    eds_check.py LOGIN PASSWORD INCOMING_HOST SUBJECTS_JSON [--isolate] [--also-uid UID ...]

Runs eds_probe.py (from the evolution role's tests, copied next to this file) as LOGIN in a fresh
D-Bus session: the registry lists every source it loaded; the account whose incoming host is
INCOMING_HOST must be there, and Camel, using that very source, must log in over verified TLS and
see SUBJECTS in the INBOX. --also-uid: sources of the user's own that must still be listed.
--isolate: run on a copy of ~/.config/evolution (a registry may rewrite the files it loads, and
the `users` scenario proves the user's own files stay byte-identical). Prints the findings; exit 0
only if everything holds.
"""

from __future__ import annotations

import argparse
import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))


def probe(entry, request, config_home):
    # eds_probe writes its result to the file EDS_PROBE_RESULT names (services the bus starts print to stdout).
    handle, result = tempfile.mkstemp(prefix=".eds-probe-result-", suffix=".json", dir=entry.pw_dir)
    os.close(handle)
    os.chown(result, entry.pw_uid, entry.pw_gid)
    env = {"HOME": entry.pw_dir, "USER": entry.pw_name, "LOGNAME": entry.pw_name, "PATH": "/usr/bin:/bin",
           "GSETTINGS_BACKEND": "memory", "LANG": "C.UTF-8", "EDS_PROBE_RESULT": result}
    if config_home:
        env["XDG_CONFIG_HOME"] = config_home
    with open(os.path.join(HERE, "eds_probe.py"), encoding="utf-8") as code_file:
        code = code_file.read()
    try:
        proc = subprocess.run(["timeout", "90", "dbus-run-session", "--", "/usr/bin/python3", "-c", code],
                              input=json.dumps(request), env=env, cwd=entry.pw_dir, user=entry.pw_uid,
                              group=entry.pw_gid, extra_groups=[], capture_output=True, text=True, timeout=120)
        with open(result, encoding="utf-8") as written:
            data = written.read()
        if proc.returncode != 0 or not data:
            raise SystemExit("eds_probe failed (rc %d): %s %s" % (proc.returncode, proc.stdout[-2000:],
                                                                  proc.stderr[-3000:]))
        return json.loads(data)
    finally:
        os.unlink(result)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("login")
    parser.add_argument("password")
    parser.add_argument("host")
    parser.add_argument("subjects")
    parser.add_argument("--isolate", action="store_true")
    parser.add_argument("--also-uid", action="append", default=[])
    args = parser.parse_args()
    entry = pwd.getpwnam(args.login)
    config_home = None
    if args.isolate:
        config_home = tempfile.mkdtemp(prefix=".eds-check-", dir=entry.pw_dir)
        source = os.path.join(entry.pw_dir, ".config", "evolution")
        if os.path.isdir(source):
            shutil.copytree(source, os.path.join(config_home, "evolution"))
        for root, dirs, files in os.walk(config_home):
            for name in [root, *(os.path.join(root, n) for n in dirs + files)]:
                os.chown(name, entry.pw_uid, entry.pw_gid)
    try:
        listed = probe(entry, {"uids": []}, config_home)
        ours = [uid for uid, src in listed["sources"].items()
                if src.get("kind") == "account" and (src.get("auth") or {}).get("host") == args.host]
        problems = []
        if len(ours) != 1:
            problems.append("expected one account for %s, found %s" % (args.host, ours))
        # The probe describes mail sources only; any other source of the user's counts as listed
        # when its file is there and the registry loaded it.
        missing = [uid for uid in args.also_uid if uid not in listed["sources"]
                   and (uid not in listed["files"] or uid in listed["not_loaded"])]
        if missing:
            problems.append("the user's own sources are not listed any more: %s" % missing)
        camel = {}
        if len(ours) == 1:
            camel = probe(entry, {"uids": ours, "password": args.password}, config_home)["camel"][ours[0]]
            wanted = sorted(json.loads(args.subjects))
            if camel.get("store") != "ok" or camel.get("inbox_subjects") != wanted:
                problems.append("Camel with the account's source: %s (wanted INBOX %s)" % (camel, wanted))
        print(json.dumps({"account": ours, "account_source": listed["sources"].get(ours[0]) if ours else None,
                          "sources": sorted(listed["sources"]), "camel": camel, "problems": problems},
                         sort_keys=True, ensure_ascii=False))
        return 1 if problems else 0
    finally:
        if config_home:
            shutil.rmtree(config_home, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
