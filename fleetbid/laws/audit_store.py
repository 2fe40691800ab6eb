"""The auditor's append-only SQLite store: one row per message copy, never updated.

Triggers make UPDATE and DELETE fail, so even code with the file open cannot rewrite the
history through SQL; the file survives the auditor (and the fleet) restarting.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from fleetbid.protocol import law_messages as lm

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
    at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_by_auction ON audit (auction_id, seq);
CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
"""
MAX_ENTRIES = 2000  # per answer: keeps an audit-record well under the 1 MiB body limit


class AuditStore:
    def __init__(self, path: str | Path | None) -> None:
        self.path = str(path) if path else ":memory:"
        try:
            self.db = sqlite3.connect(self.path, isolation_level=None)
            self.db.executescript(SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise ValueError(f"audit file {self.path}: {exc}") from None

    def append(self, copy: lm.AuditCopy) -> int:
        cursor = self.db.execute(
            "INSERT INTO audit (auction_id, law, kind, performative, sender, receiver, body, at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (copy.auction_id, copy.law, copy.kind, copy.performative, copy.sender,
             copy.receiver, copy.body, copy.at),
        )
        return int(cursor.lastrowid or 0)

    def record(self, auction_id: str) -> tuple[lm.AuditEntry, ...]:
        rows = self.db.execute(
            "SELECT seq, law, kind, performative, sender, receiver, body, at FROM audit"
            " WHERE auction_id = ? ORDER BY seq LIMIT ?", (auction_id, MAX_ENTRIES),
        ).fetchall()
        return tuple(lm.AuditEntry(seq=r[0], law=r[1], kind=r[2], performative=r[3], sender=r[4],
                                  receiver=r[5], body=r[6], at=r[7]) for r in rows)

    def close(self) -> None:
        self.db.close()
