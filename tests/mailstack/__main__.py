"""CLI: python3 tests/mailstack start|stop|status|list [--dir DIR] [--instance N]; prints JSON.

`list` shows every registered stack (instance, dir, running); `prune` stops stacks left behind by
test sessions that died (never one started from this CLI)."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

if __package__ in (None, ""):
    # Run as `python3 tests/mailstack`: make the package importable by its name.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    __package__ = "mailstack"

from mailstack.claims import prune_orphans
from mailstack.stack import MailStack, MailStackError, registered_stacks


def default_dir(instance: int) -> Path:
    return Path(tempfile.gettempdir()) / ("mail_clients-stack-%d" % instance)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python3 tests/mailstack", description=__doc__)
    parser.add_argument("action", choices=("start", "stop", "status", "list", "prune"))
    parser.add_argument("--dir", type=Path, help="stack directory (default /tmp/mail_clients-stack-<N>)")
    parser.add_argument("--instance", type=int, default=0, help="address block 127.X.Y (default 0)")
    args = parser.parse_args(argv)
    if args.action == "list":
        print(json.dumps(registered_stacks(), indent=2))
        return 0
    if args.action == "prune":
        print(json.dumps({"pruned": prune_orphans()}))
        return 0
    stack = MailStack(args.dir or default_dir(args.instance), args.instance)
    try:
        if args.action == "start":
            result = stack.start()
            result["start_seconds"] = getattr(stack, "start_seconds", 0.0)
        elif args.action == "stop":
            result = stack.stop()
        else:
            result = stack.status()
    except MailStackError as exc:
        print("mailstack: %s" % exc, file=sys.stderr)
        return 1
    print(json.dumps(result, indent=2, default=str))
    return 0 if args.action != "status" or result["running"] else 3


if __name__ == "__main__":
    sys.exit(main())
