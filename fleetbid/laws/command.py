"""`fleetbid laws list|show NAME|check FILE` and `fleetbid complain`."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from fleetbid.laws.book import builtin_laws, load_law_file, resolve
from fleetbid.laws.schema import LawError, law_hash


def add_parsers(sub: Any) -> None:
    laws = sub.add_parser("laws", help="list, print and validate auction laws")
    laws_sub = laws.add_subparsers(dest="laws_command", required=True)
    laws_sub.add_parser("list", help="the built-in laws")
    show = laws_sub.add_parser("show", help="print a law (built-in name or file) and its hash")
    show.add_argument("name")
    check = laws_sub.add_parser("check", help="validate a law file; list every mistake")
    check.add_argument("file")
    laws.set_defaults(func=cmd_laws, log_level="WARNING")


def cmd_laws(args: argparse.Namespace) -> int:
    if args.laws_command == "list":
        for name, law in builtin_laws().items():
            print(f"{name:20} {law_hash(law)[:16]}  {law.description}")
        return 0
    if args.laws_command == "show":
        law = resolve(args.name)
        print(f"# sha256 {law_hash(law)}")
        print(json.dumps(law.model_dump(mode="json"), indent=2))
        return 0
    try:
        law = load_law_file(args.file)
    except LawError as exc:
        print(f"fleetbid: {exc}", file=sys.stderr)
        return 1
    print(f"{args.file}: valid law {law.name!r} ({law.kind}), sha256 {law_hash(law)}")
    return 0
