"""`fleetbid laws list|show NAME|check FILE` and `fleetbid audit verify|check FILE`."""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
from pathlib import Path
from typing import Any

from fleetbid.laws import batch as batch_law
from fleetbid.laws.audit_store import AuditStore, Verdict
from fleetbid.laws.book import LawBook, builtin_laws, load_law_file, resolve
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
    check = audit_sub.add_parser(
        "check", help="verify the hash chain, then re-clear every batch auction in the log "
                      "under its law (assignment and prices): exit 0 if all agree, 1 if not, "
                      "2 if not an audit file")
    check.add_argument("file")
    check.add_argument("--auction", action="append", default=[], metavar="BATCH_ID",
                       help="check only this batch (repeatable; default: every batch)")
    check.add_argument("--law", default="sealed-first-price",
                       help="a law file the batches may be under, besides the built-in laws")
    check.add_argument("--json", action="store_true", help="print the verdict as JSON")
    audit.set_defaults(func=cmd_audit, log_level="WARNING")


def cmd_audit(args: argparse.Namespace) -> int:
    path = Path(args.file)
    if not path.is_file():
        print(f"fleetbid: audit file {path} not found", file=sys.stderr)
        return 2
    try:
        store = AuditStore(path)
        verdict = store.verify()
        if args.audit_command == "check":
            return check_batches(args, store, verdict)
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


def batch_problems(store: AuditStore, book: LawBook, batch_id: str) -> list[str]:
    """What is wrong with one batch of the log (empty: cleared by its law)."""
    entries = store.record(batch_id)
    if not entries:
        return [f"no entry of batch {batch_id} in the log"]
    digests = {e.law for e in entries}
    if len(digests) > 1:
        return [f"batch {batch_id} has entries under {len(digests)} laws"]
    law = book.get(digests.pop())
    if law is None:
        return [f"batch {batch_id} is under law {entries[0].law[:16]}, not a built-in one "
                "nor --law: pass its file with --law"]
    return batch_law.check(law, batch_id, entries)


def check_batches(args: argparse.Namespace, store: AuditStore, verdict: Verdict) -> int:
    book = LawBook(resolve(args.law))
    found = {b: batch_problems(store, book, b) for b in (args.auction or store.batch_ids())}
    ok = verdict.ok and not any(found.values())
    if args.json:
        print(json.dumps({"file": args.file, "rows": verdict.rows, "chain_ok": verdict.ok,
                          "broken_at": verdict.broken_at, "batches": found, "ok": ok}))
        return 0 if ok else 1
    if not verdict.ok:
        print(f"{args.file}: hash chain BROKEN at row {verdict.broken_at}: an entry was "
              "changed, removed or inserted")
    for batch_id, problems in found.items():
        print(f"{batch_id}: " + ("cleared by its law" if not problems else "VIOLATION"))
        for problem in problems:
            print(f"  - {problem}")
    print(f"{len(found)} batch(es) checked, "
          f"{sum(1 for p in found.values() if p)} with violations, "
          f"hash chain {'intact' if verdict.ok else 'broken'}")
    return 0 if ok else 1


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
