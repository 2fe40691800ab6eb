"""The auditor's append-only store and the complaints agent's decisions."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from fleetbid.laws.audit_store import AuditStore
from fleetbid.laws.decisions import decide
from fleetbid.protocol import law_messages as lm

LAW = "a" * 64


def copy(kind: str, sender: str, receiver: str, body: dict, at: float, auction: str = "r1"
         ) -> lm.AuditCopy:
    return lm.AuditCopy(auction_id=auction, law=LAW, kind=kind, performative="inform",
                       sender=sender, receiver=receiver, body=json.dumps(body), at=at)


def served_record(pickup: bool) -> list[lm.AuditCopy]:
    rows = [
        copy("bid", "v1@x", "am@x", {"auction_id": "r1", "bid": 0.01, "eta_s": 50.0}, 1.0),
        copy("award", "am@x", "v1@x", {"auction_id": "r1", "passenger": "p@x"}, 2.0),
        copy("award-confirmed", "v1@x", "am@x",
             {"auction_id": "r1", "vehicle": "v1@x", "eta_s": 50.0}, 3.0),
        copy("ride-assigned", "am@x", "p@x", {"auction_id": "r1"}, 3.5),
    ]
    if pickup:
        rows.append(copy("picked-up", "v1@x", "p@x", {"auction_id": "r1", "at": 53.0}, 53.0))
    return rows


def test_store_is_append_only_and_survives_reopening(tmp_path: Path) -> None:
    path = tmp_path / "audit.sqlite"
    store = AuditStore(path)
    for row in served_record(pickup=True):
        store.append(row)
    store.append(copy("bid", "v2@x", "am@x", {}, 1.0, auction="r2"))
    first = store.record("r1")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        store.db.execute("UPDATE audit SET sender = 'v9@x'")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        store.db.execute("DELETE FROM audit")
    store.close()
    again = AuditStore(path)
    assert again.record("r1") == first
    assert [e.kind for e in first] == ["bid", "award", "award-confirmed", "ride-assigned",
                                       "picked-up"]
    assert [e.seq for e in first] == sorted(e.seq for e in first)
    assert len(again.record("r2")) == 1 and again.record("nope") == ()


def test_corrupt_audit_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "audit.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(ValueError, match="audit file"):
        AuditStore(path)


def entries(rows: list[lm.AuditCopy]) -> list[lm.AuditEntry]:
    store = AuditStore(None)
    for row in rows:
        store.append(row)
    return list(store.record("r1"))


def test_no_show_supported_by_the_record_names_the_offender() -> None:
    decision = decide("no-show", "r1", entries(served_record(pickup=False)), now=500.0)
    assert decision.upheld and decision.offender == "v1@x"
    assert "no pickup by t=500 s" in decision.reason


def test_no_show_not_supported_is_rejected_with_the_reason() -> None:
    decision = decide("no-show", "r1", entries(served_record(pickup=True)), now=500.0)
    assert not decision.upheld and decision.offender is None
    assert decision.reason == "the record shows v1@x at the pickup at t=53 s"
    early = decide("no-show", "r1", entries(served_record(pickup=False)), now=60.0)
    assert not early.upheld and "not late yet" in early.reason
    assert decide("no-show", "r9", [], now=1.0).reason == "the auditor has no record of auction r9"


def test_shill_complaints() -> None:
    rows = served_record(pickup=True)
    rejected = decide("shill", "r1", entries(rows), now=1.0)
    assert not rejected.upheld
    assert rejected.reason == "no bid from the passenger p@x in the record (1 bid(s), all from " \
                              "other agents)"
    rows.append(copy("bid", "p@x", "am@x", {"auction_id": "r1", "bid": 1.0}, 1.5))
    upheld = decide("shill", "r1", entries(rows), now=1.0)
    assert upheld.upheld and upheld.offender == "p@x"


def test_the_log_is_a_hash_chain_that_verify_walks(tmp_path: Path) -> None:
    import sqlite3

    from fleetbid.cli import main

    path = tmp_path / "audit.sqlite"
    store = AuditStore(path)
    for row in served_record(pickup=True):
        store.append(row)
    verdict = store.verify()
    assert verdict.ok and verdict.rows == len(served_record(pickup=True))
    assert verdict.head == store.head
    store.close()
    assert main(["audit", "verify", str(path)]) == 0
    # Someone drops the triggers and rewrites history: the chain breaks at that row.
    db = sqlite3.connect(path)
    db.execute("DROP TRIGGER audit_no_update")
    db.execute("UPDATE audit SET body = '{}' WHERE seq = 2")
    db.commit()
    db.close()
    broken = AuditStore(path).verify()
    assert not broken.ok and broken.broken_at == 2
    assert main(["audit", "verify", str(path)]) == 1
    assert main(["audit", "verify", str(tmp_path / "nope.sqlite")]) == 2
    (tmp_path / "junk").write_text("not sqlite")
    assert main(["audit", "verify", str(tmp_path / "junk")]) == 2


def test_a_reopened_store_continues_the_chain(tmp_path: Path) -> None:
    path = tmp_path / "audit.sqlite"
    first, second = served_record(pickup=True)[:2]
    store = AuditStore(path)
    store.append(first)
    store.close()
    again = AuditStore(path)
    again.append(second)
    assert again.verify().ok and again.verify().rows == 2


def test_the_in_memory_store_is_a_ring_that_still_verifies() -> None:
    """Without a file the auditor grew by one row per message copy for ever (docs/soak.md):
    10,000 auctions through a ring of 1,000 rows keep at most a tenth more than that."""
    store = AuditStore(None, memory_rows=1_000)
    largest = 0
    for n in range(10_000):
        store.append(copy("bid", "v1@x", "am@x", {"bid": n}, float(n), auction=f"r{n}"))
        largest = max(largest, store.db.execute("SELECT count(*) FROM audit").fetchone()[0])
    assert largest <= 1_100
    verdict = store.verify()
    assert verdict.ok and verdict.head == store.head
    assert verdict.rows + verdict.dropped == 10_000 and verdict.dropped >= 8_900
    assert [e.kind for e in store.record("r9999")] == ["bid"] and store.record("r0") == ()
    # Tampering with a kept row (past the update trigger) still breaks the chain there.
    store.db.execute("DROP TRIGGER audit_no_update")
    store.db.execute("UPDATE audit SET body = '{}' WHERE seq = 9990")
    assert store.verify().broken_at == 9990


def test_a_file_store_keeps_every_row(tmp_path: Path) -> None:
    store = AuditStore(tmp_path / "audit.sqlite", memory_rows=10)
    for n in range(50):
        store.append(copy("bid", "v1@x", "am@x", {}, float(n), auction=f"r{n}"))
    assert store.verify().rows == 50 and store.dropped == 0
