"""`fleetbid laws list|show NAME|check FILE` and `fleetbid audit verify FILE`."""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
from pathlib import Path
from typing import Any

from fleetbid.laws.audit_store import AuditStore
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

    audit = sub.add_parser("audit", help="check an auditor's SQLite file")
    audit_sub = audit.add_subparsers(dest="audit_command", required=True)
    verify = audit_sub.add_parser("verify", help="walk the audit log's hash chain: exit 0 if "
                                                 "intact, 1 if broken, 2 if not an audit file")
    verify.add_argument("file")
    verify.add_argument("--json", action="store_true", help="print the verdict as JSON")
    audit.set_defaults(func=cmd_audit, log_level="WARNING")


def cmd_audit(args: argparse.Namespace) -> int:
    path = Path(args.file)
    if not path.is_file():
        print(f"fleetbid: audit file {path} not found", file=sys.stderr)
        return 2
    try:
        store = AuditStore(path)
        verdict = store.verify()
    except (ValueError, sqlite3.DatabaseError) as exc:
        print(f"fleetbid: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps({"file": str(path), "rows": verdict.rows, "ok": verdict.ok,
                          "head": verdict.head, "broken_at": verdict.broken_at}))
    elif verdict.ok:
        print(f"{path}: {verdict.rows} rows, hash chain intact, head {verdict.head}")
    else:
        print(f"{path}: hash chain BROKEN at row {verdict.broken_at} (of {verdict.rows} read); "
              f"last good hash {verdict.head}")
    return 0 if verdict.ok else 1


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
