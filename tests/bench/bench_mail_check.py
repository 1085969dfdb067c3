"""Benchmark (not a test): mail_check against the tools people would use instead.

Starts its own test mail stack, then, interleaved, N times each (median and min reported):
  module x4      the mail_check module process on the four documented endpoints, with login
  module x1      the same, limited to the slowest single endpoint
  OAuth2 x4/x1   the same with XOAUTH2 logins, a fresh token from the stack's identity provider each run (Dovecot
                 asks the provider about every token); x1 is the slowest endpoint of OAuth2 runs
  engine x4/x1   the same checks inside this process (no interpreter start, no AnsibleModule)
  check_* suite  check_imap -S (993), check_imap (143), check_pop -S (995), check_smtp -S (25), sequentially
  s_client x4    openssl s_client -brief with verification, 993 / 143 STARTTLS / 995 / 25 STARTTLS, sequentially
first on loopback, then through a relay that adds --rtt ms of round-trip time (0 skips it).
Usage: python tests/bench/bench_mail_check.py [--runs 7] [--rtt 20] [--instance 77] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests"))
import conftest  # noqa: E402  (puts the collection on sys.path, like pytest does)
from mailstack import settings  # noqa: E402
from mailstack.claims import claim, claim_free_instance, release  # noqa: E402
from mailstack.stack import MailStack  # noqa: E402

from ansible_collections.middlebury.mail_clients.plugins.module_utils import account_model  # noqa: E402
from ansible_collections.middlebury.mail_clients.plugins.module_utils.mailcheck import runner  # noqa: E402

MODULE = REPO / "plugins" / "modules" / "mail_check.py"
PLUGINS = Path("/usr/lib/nagios/plugins")
RELAY_OFFSET = 40
TOOL_TIMEOUT = 30


def _module_args(stack, target_ips, only=None):
    user, password = next(iter(stack.users.items()))
    args = {"ca_path": str(stack.ca_path), "username": user, "password": password, "timeout": 10, "deadline": 20,
            "connect_to": {ep["host"]: target_ips[ep["protocol"]] for ep in account_model.documented_endpoints()}}
    if only:
        args["only"] = [only]
    return args


def _oauth_args(stack, target_ips, only=None):
    """Module arguments for XOAUTH2 logins with a token minted now (tokens are short-lived on purpose)."""
    user = next(iter(stack.users))
    args = _module_args(stack, target_ips, only)
    del args["password"]
    args.update(auth="oauth2", access_token=stack.tokens_for(user)["access_token"])
    return args


def run_module(args_file):
    begin = time.perf_counter()
    proc = subprocess.run([sys.executable, str(MODULE), str(args_file)], capture_output=True, text=True,
                          timeout=TOOL_TIMEOUT, env=dict(os.environ, PYTHONPATH=str(conftest.COLLECTIONS_ROOT)),
                          check=False)
    wall = time.perf_counter() - begin
    out = json.loads(proc.stdout)
    if out.get("failed"):
        raise RuntimeError("module failed: %s" % out.get("msg"))
    return wall, out


def run_engine(args):
    options = {"ip_version": "any", "min_tls_version": "TLSv1.2", "x509_strict": False,
               "auth_mechanisms": ["PLAIN", "LOGIN"], "days_warning": 30, "days_critical": 7, "ehlo_name": None}
    options.update(args)
    endpoints = runner.select_endpoints(account_model, only=args.get("only"))
    begin = time.perf_counter()
    results, summary = runner.run_checks(endpoints, options)
    wall = time.perf_counter() - begin
    if summary["failed"]:
        raise RuntimeError("engine failed: %s" % [r["message"] for r in results if r["status"] == "fail"])
    return wall


def _run_tools(commands):
    begin = time.perf_counter()
    for argv in commands:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=TOOL_TIMEOUT, check=False,
                              stdin=subprocess.DEVNULL)
        if proc.returncode != 0:
            raise RuntimeError("%s -> rc %d: %s %s" % (" ".join(argv), proc.returncode, proc.stdout, proc.stderr))
    return time.perf_counter() - begin


def _run_tools_concurrently(commands):
    """All at once: a control for how much concurrency this machine and stack allow at all."""
    begin = time.perf_counter()
    procs = [subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
             for argv in commands]
    codes = [proc.wait(TOOL_TIMEOUT) for proc in procs]
    if any(codes):
        raise RuntimeError("concurrent tools failed: %s" % codes)
    return time.perf_counter() - begin


def suite_commands(ips, ports):
    return [[str(PLUGINS / "check_imap"), "-H", ips["imap"], "-p", str(ports["imaps"]), "-S"],
            [str(PLUGINS / "check_imap"), "-H", ips["imap"], "-p", str(ports["imap"])],
            [str(PLUGINS / "check_pop"), "-H", ips["pop3"], "-p", str(ports["pop3s"]), "-S"],
            [str(PLUGINS / "check_smtp"), "-H", ips["smtp"], "-p", str(ports["smtp"]), "-S"]]


def s_client_commands(ips, ports, ca):
    commands = []
    for ep in account_model.documented_endpoints():
        argv = ["openssl", "s_client", "-brief", "-verify_return_error", "-CAfile", ca, "-servername", ep["host"],
                "-verify_hostname", ep["host"], "-connect", "%s:%d" % (ips[ep["protocol"]], ep["port"])]
        if ep["security"] == "starttls":
            argv[2:2] = ["-starttls", ep["protocol"]]
        commands.append(["timeout", str(TOOL_TIMEOUT), *argv])
    return commands


def start_relay(listen_ip, routes, rtt):
    """The latency relay as a child process (its event loop must not share our GIL)."""
    specs = ["%d=%s:%d" % (port, ip, target) for port, (ip, target) in routes.items()]
    proc = subprocess.Popen([sys.executable, str(Path(__file__).with_name("relay.py")), listen_ip, str(rtt), *specs],
                            stdout=subprocess.PIPE, text=True)
    if proc.stdout.readline().strip() != "ready":
        proc.kill()
        raise RuntimeError("the latency relay did not start")
    return proc


def measure(label_fns, runs):
    """Interleaved: one run of each per round, so load changes hit every tool alike."""
    samples = {label: [] for label in label_fns}
    for fn in label_fns.values():
        fn()  # warm-up (first login spawns Dovecot processes, caches fill)
    for _round in range(runs):
        for label, fn in label_fns.items():
            samples[label].append(fn() * 1000.0)
    return {label: {"median": round(statistics.median(v), 1), "min": round(min(v), 1), "runs": len(v)}
            for label, v in samples.items()}


def _slowest_endpoint(args_file, args, attempts=3):
    """The slowest endpoint, by the module runs' own per-endpoint timings (median of a few runs)."""
    totals = {}
    for _attempt in range(attempts):
        args_file.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": args()}))
        _wall, out = run_module(args_file)
        for ep in out["endpoints"]:
            totals.setdefault(ep["name"], []).append(ep["timings_ms"]["total"])
    return max(totals, key=lambda n: statistics.median(totals[n]))


def scenario(stack, ips, runs, work, name):
    ports = stack.ports
    full = _module_args(stack, ips)
    full_file = work / ("%s-full.json" % name)
    full_file.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": full}))
    slowest = _slowest_endpoint(full_file, lambda: full)
    # With OAuth2 logins the slowest endpoint is another one (SMTP proves the login with MAIL FROM): the x1 it is
    # compared with must be the slowest of the same kind of run.
    oauth_probe = work / ("%s-oauth-probe.json" % name)
    slowest_oauth = _slowest_endpoint(oauth_probe, lambda: _oauth_args(stack, ips))
    one = _module_args(stack, ips, only=slowest)
    one_file = work / ("%s-one.json" % name)
    one_file.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": one}))
    inner = {"x4": [], "x1": [], "oauth_x4": [], "oauth_x1": []}

    def module(path, key, fresh=None):
        def run():
            if fresh is not None:
                path.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": fresh()}))
            wall, out = run_module(path)
            if fresh is not None and not all(ep["auth"]["mechanism"] == "XOAUTH2" for ep in out["endpoints"]):
                raise RuntimeError("not every endpoint logged in with XOAUTH2")
            inner[key].append(out["summary"]["wall_ms"])
            return wall
        return run

    suite = suite_commands(ips, ports)
    s_client = s_client_commands(ips, ports, str(stack.ca_path))
    names = [ep["name"] for ep in account_model.documented_endpoints()]
    s_client_slowest = [s_client[names.index(slowest)]]
    results = measure({
        "module x4 (process)": module(full_file, "x4"),
        "module x1 (process)": module(one_file, "x1"),
        "module x4 OAuth2 (process)": module(work / ("%s-oauth-full.json" % name), "oauth_x4",
                                             lambda: _oauth_args(stack, ips)),
        "module x1 OAuth2 (process)": module(work / ("%s-oauth-one.json" % name), "oauth_x1",
                                             lambda: _oauth_args(stack, ips, only=slowest_oauth)),
        "engine x4 (in-process)": lambda: run_engine(full),
        "engine x1 (in-process)": lambda: run_engine(one),
        "check_* suite, sequential": lambda: _run_tools(suite),
        "openssl s_client x4, sequential": lambda: _run_tools(s_client),
        "openssl s_client x4, concurrent": lambda: _run_tools_concurrently(s_client),
        "openssl s_client x1 (same endpoint)": lambda: _run_tools(s_client_slowest),
    }, runs)
    for key, label in (("x4", "module x4 (time inside the module)"), ("x1", "module x1 (time inside the module)"),
                       ("oauth_x4", "module x4 OAuth2 (time inside the module)"),
                       ("oauth_x1", "module x1 OAuth2 (time inside the module)")):
        results[label] = {"median": round(statistics.median(inner[key][1:]), 1), "min": round(min(inner[key][1:]), 1),
                          "runs": len(inner[key]) - 1}
    return {"scenario": name, "slowest_endpoint": slowest, "slowest_oauth_endpoint": slowest_oauth,
            "results": results}


def ratios(res):
    r = res["results"]

    def q(a, b):
        return round(r[a]["median"] / r[b]["median"], 2)

    return {
        "x4 / x1, inside the module (target <= 1.3)": q("module x4 (time inside the module)",
                                                        "module x1 (time inside the module)"),
        "x4 / x1 with OAuth2 logins, inside the module (target <= 1.1)": q(
            "module x4 OAuth2 (time inside the module)", "module x1 OAuth2 (time inside the module)"),
        "x4 / x1, engine in-process (target <= 1.3)": q("engine x4 (in-process)", "engine x1 (in-process)"),
        "x4 / x1, module process": q("module x4 (process)", "module x1 (process)"),
        "engine x4 / check_* suite (target < 1)": q("engine x4 (in-process)", "check_* suite, sequential"),
        "module x4 inside / check_* suite (target < 1)": q("module x4 (time inside the module)",
                                                           "check_* suite, sequential"),
        "module x4 process / check_* suite": q("module x4 (process)", "check_* suite, sequential"),
        "engine x4 / s_client x4": q("engine x4 (in-process)", "openssl s_client x4, sequential"),
        "control: s_client x4 concurrent / x1": q("openssl s_client x4, concurrent",
                                                  "openssl s_client x1 (same endpoint)"),
    }


def report(res):
    print("\n== %s (slowest single endpoint: %s, with OAuth2 logins: %s) ==" % (
        res["scenario"], res["slowest_endpoint"], res["slowest_oauth_endpoint"]))
    for label, v in res["results"].items():
        print("  %-40s median %8.1f ms   min %8.1f ms   (n=%d)" % (label, v["median"], v["min"], v["runs"]))
    print("  ratios:")
    for label, value in res["ratios"].items():
        print("    %-50s %5.2f" % (label, value))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--rtt", type=float, default=20.0, help="emulated round-trip time in ms (0: skip)")
    parser.add_argument("--instance", type=int, help="stack address block (default: the first free one)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    if args.runs < 5:
        parser.error("--runs must be at least 5")
    for tool in ("check_imap", "check_pop", "check_smtp"):
        if not (PLUGINS / tool).exists():
            parser.error("%s missing: apt-get install monitoring-plugins-basic (tests/apt/mail_check.txt)" % tool)
    if args.instance is None:
        args.instance = claim_free_instance()
    elif not claim(args.instance):
        parser.error("stack instance %d is in use" % args.instance)
    work = Path(tempfile.mkdtemp(prefix="mc-bench-"))
    work.chmod(0o755)  # Dovecot and Postfix users must be able to enter the stack directory
    stack = MailStack(work / "stack", args.instance)
    try:
        stack.start()
        return _run(args, stack, work)
    finally:
        stack.stop()
        release(args.instance)
        shutil.rmtree(work, ignore_errors=True)


def _run(args, stack, work):
    out = {"python": sys.version.split()[0], "load_before": os.getloadavg(), "runs": args.runs, "scenarios": []}
    direct = {"imap": stack.imap_host_ip, "pop3": stack.imap_host_ip, "smtp": stack.smtp_host_ip}
    runs = [("loopback", direct, None)]
    if args.rtt > 0:
        relay_ip = settings.address(args.instance, RELAY_OFFSET)
        runs.append(("%.0f ms RTT" % args.rtt, dict.fromkeys(direct, relay_ip), relay_ip))
    for name, ips, relay_ip in runs:
        relay = None
        if relay_ip:
            ports = stack.ports
            routes = {ports[k]: (stack.imap_host_ip if k.startswith(("imap", "pop3")) else stack.smtp_host_ip,
                                 ports[k]) for k in ("imaps", "imap", "pop3s", "smtp")}
            relay = start_relay(relay_ip, routes, args.rtt)
        try:
            res = scenario(stack, ips, args.runs, work, name)
        finally:
            if relay is not None:
                relay.terminate()
                relay.wait(10)
        res["ratios"] = ratios(res)
        report(res)
        out["scenarios"].append(res)
    out["load_after"] = os.getloadavg()
    print("\nload average before/after: %s / %s (2 cores shared with other work: compare ratios, not absolutes)"
          % (tuple(round(x, 2) for x in out["load_before"]), tuple(round(x, 2) for x in out["load_after"])))
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
