"""The auditor's append-only SQLite store: one row per message copy, never updated.

Triggers make UPDATE and DELETE fail through SQL, and every row carries a hash chain: its
`hash` is SHA-256 of the previous row's hash and the row's own fields, so changing, removing
or inserting a row (after dropping the triggers) breaks every hash after it unless they are
all recomputed; `verify` walks the chain, and the head hash it reports (the auditor logs it
when it stops) pins the whole history. The file survives the auditor and the fleet.
"""

from __future__ import annotations

import hashlib
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import msgspec

from fleetbid.protocol import law_messages as lm
from fleetbid.protocol import messages as m

SCHEMA = """
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    auction_id TEXT NOT NULL,
    law TEXT NOT NULL,
    kind TEXT NOT NULL,
    performative TEXT NOT NULL,
    sender TEXT NOT NULL,
    receiver TEXT NOT NULL,
    body TEXT NOT NULL,
    at REAL NOT NULL,
    hash TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS audit_by_auction ON audit (auction_id, seq);
CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
"""
MAX_ENTRIES = 2000  # per answer: keeps an audit-record well under the 1 MiB body limit
GENESIS = "0" * 64
COLUMNS = "auction_id, law, kind, performative, sender, receiver, body, at"


def chain(previous: str, row: tuple[object, ...]) -> str:
    """The hash of a row given the previous row's hash (canonical JSON of its fields)."""
    return hashlib.sha256(previous.encode() + msgspec.json.encode(list(row))).hexdigest()


@dataclass(frozen=True)
class Verdict:
    rows: int
    head: str  # the last row's hash: publish it to pin the history
    broken_at: int | None = None  # seq of the first row whose hash does not follow

    @property
    def ok(self) -> bool:
        return self.broken_at is None


class AuditStore:
    def __init__(self, path: str | Path | None) -> None:
        self.path = str(path) if path else ":memory:"
        try:
            self.db = sqlite3.connect(self.path, isolation_level=None)
            self.db.executescript(SCHEMA)
            columns = {r[1] for r in self.db.execute("PRAGMA table_info(audit)")}
            if "hash" not in columns:  # a file from before the chain: its rows stay unchained
                self.db.execute("ALTER TABLE audit ADD COLUMN hash TEXT NOT NULL DEFAULT ''")
            last = self.db.execute("SELECT hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
        except sqlite3.DatabaseError as exc:
            raise ValueError(f"audit file {self.path}: {exc}") from None
        self.head = last[0] if last and last[0] else GENESIS

    def append(self, copy: lm.AuditCopy) -> int:
        row = (copy.auction_id, copy.law, copy.kind, copy.performative, copy.sender,
               copy.receiver, copy.body, copy.at)
        digest = chain(self.head, row)
        cursor = self.db.execute(
            f"INSERT INTO audit ({COLUMNS}, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (*row, digest),
        )
        self.head = digest
        return int(cursor.lastrowid or 0)

    def verify(self) -> Verdict:
        """Walk the hash chain from the first row."""
        previous, rows = GENESIS, 0
        for seq, *row, digest in self.db.execute(
                f"SELECT seq, {COLUMNS}, hash FROM audit ORDER BY seq"):
            rows += 1
            expected = chain(previous, tuple(row))
            if digest != expected:
                return Verdict(rows, previous, broken_at=int(seq))
            previous = digest
        return Verdict(rows, previous)

    def record(self, auction_id: str) -> tuple[lm.AuditEntry, ...]:
        rows = self.db.execute(
            "SELECT seq, law, kind, performative, sender, receiver, body, at FROM audit"
            " WHERE auction_id = ? ORDER BY seq LIMIT ?", (auction_id, MAX_ENTRIES),
        ).fetchall()
        return tuple(lm.AuditEntry(seq=r[0], law=r[1], kind=r[2], performative=r[3], sender=r[4],
                                  receiver=r[5], body=r[6], at=r[7]) for r in rows)

    def batch_ids(self) -> list[str]:
        """The batch auctions in the log (conversations with batch bids or awards)."""
        rows = self.db.execute(
            "SELECT DISTINCT auction_id FROM audit WHERE kind IN (?, ?, ?) ORDER BY auction_id",
            (m.BatchBid.TYPE, m.BatchGroupBids.TYPE, m.BatchAward.TYPE)).fetchall()
        return [str(r[0]) for r in rows]

    def close(self) -> None:
        self.db.close()
