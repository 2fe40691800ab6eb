"""The auditor's append-only SQLite store: one row per message copy, never updated.

Triggers make UPDATE and DELETE fail through SQL, and every row carries a hash chain: its
`hash` is SHA-256 of the previous row's hash and the row's own fields, so changing, removing
or inserting a row (after dropping the triggers) breaks every hash after it unless they are
all recomputed; `verify` walks the chain, and the head hash it reports (the auditor logs it
when it stops) pins the whole history. The file survives the auditor and the fleet.

Without a file the store lives in memory and is a ring: it keeps the newest
`MEMORY_ROWS` copies and drops the oldest (counted in `dropped`), so a fleet that runs for
days does not grow by one row per message (docs/soak.md). The chain still verifies: it
starts from the hash of the last dropped row. Keep everything with `--audit FILE`.
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
# In memory: about 350 bytes a row, so some 3.5 MB; at the soak's load (13 copies a second)
# the last 13 minutes of auctions: enough for a complaint about a recent ride.
MEMORY_ROWS = 10_000
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
    dropped: int = 0  # oldest rows an in-memory ring let go (the chain starts after them)

    @property
    def ok(self) -> bool:
        return self.broken_at is None


class AuditStore:
    def __init__(self, path: str | Path | None, memory_rows: int = MEMORY_ROWS) -> None:
        self.path = str(path) if path else ":memory:"
        # A file keeps every row; memory keeps the newest `capacity` (None: unbounded).
        self.capacity: int | None = None if path else memory_rows
        self.dropped = 0
        self.base = GENESIS  # hash of the row before the oldest kept one
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
        if self.capacity is not None:
            # Nobody but this process can reach an in-memory database: the ring may delete.
            self.db.execute("DROP TRIGGER audit_no_delete")

    def append(self, copy: lm.AuditCopy) -> int:
        row = (copy.auction_id, copy.law, copy.kind, copy.performative, copy.sender,
               copy.receiver, copy.body, copy.at)
        digest = chain(self.head, row)
        cursor = self.db.execute(
            f"INSERT INTO audit ({COLUMNS}, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (*row, digest),
        )
        self.head = digest
        seq = int(cursor.lastrowid or 0)
        self._trim(seq)
        return seq

    def _trim(self, seq: int) -> None:
        """Drop the oldest rows of a full ring, a tenth of it at a time (one DELETE)."""
        if self.capacity is None:
            return
        oldest = self.db.execute("SELECT min(seq) FROM audit").fetchone()[0]
        if oldest is None or seq - oldest + 1 <= self.capacity + self.capacity // 10:
            return
        last_dropped = seq - self.capacity
        row = self.db.execute("SELECT hash FROM audit WHERE seq <= ? ORDER BY seq DESC LIMIT 1",
                              (last_dropped,)).fetchone()
        cursor = self.db.execute("DELETE FROM audit WHERE seq <= ?", (last_dropped,))
        self.dropped += cursor.rowcount
        self.base = row[0] if row else self.base

    def verify(self) -> Verdict:
        """Walk the hash chain from the first row (kept: an in-memory ring dropped older ones)."""
        previous, rows = self.base, 0
        for seq, *row, digest in self.db.execute(
                f"SELECT seq, {COLUMNS}, hash FROM audit ORDER BY seq"):
            rows += 1
            expected = chain(previous, tuple(row))
            if digest != expected:
                return Verdict(rows, previous, broken_at=int(seq), dropped=self.dropped)
            previous = digest
        return Verdict(rows, previous, dropped=self.dropped)

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
