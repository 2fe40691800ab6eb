"""The batch auction under a law, end to end: real XMPP server, real agents.

One fleet (one cluster, 5 vehicles, --policy batch-auction) under a Vickrey law that
requires certificates (short lifetime, no renewal) and audits the batch's bids and awards:

* a ride is served by a batch, and the winner is paid the VCG price `fleetbid audit check`
  recomputes from the audited bids (no violation);
* a batch bid from a client (a forged certificate, then none) is refused with the reason
  and changes nothing;
* once the certificates have expired, every vehicle's own controller blocks its batch bid
  (it declines "blocked by law") and the next ride is awarded to nobody;
* after the run, the audit file passes `fleetbid audit check`; a tampered award is caught.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from fleetbid.cli import main
from fleetbid.laws import certificates
from fleetbid.laws.audit_store import AuditStore
from fleetbid.laws.book import load_law_file
from fleetbid.laws.schema import law_hash
from fleetbid.platform.eventloop import run
from fleetbid.protocol import codec
from fleetbid.protocol import messages as m
from fleetbid.run.launcher import Fleet

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

SPEED = 200.0
LIFETIME_S = 2000.0  # 10 wall s: long enough for the first ride on a busy machine
LAW = """
name = "certified-batch"
[auction]
type = "vickrey"
[eligibility]
certified = true
[certification]
lifetime_s = LIFETIME
renew = false
[audit]
kinds = ["batch-bid", "batch-group-bids", "batch-award", "award-confirmed", "ride-assigned"]
"""


@pytest.fixture(scope="module")
def batch_run(kit: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("batchlaw")
    law_path = tmp / "law.toml"
    law_path.write_text(LAW.replace("LIFETIME", str(LIFETIME_S)))
    digest = law_hash(load_law_file(law_path))
    config = kit.small_config(
        vehicles=5, clusters=1, radius_m=100000.0, speed=SPEED, processes=1,
        auction_managers=2, law=str(law_path), audit=str(tmp / "audit.sqlite"),
        trace=str(tmp / "trace.jsonl"), patience_s=200.0, policy="batch-auction",
        batch_s=20.0)
    out: dict[str, Any] = {"tmp": tmp, "law_path": law_path}

    async def scenario() -> None:
        async with Fleet(config) as fleet:
            await kit.wait_for_announcements(fleet)

            async def certified_all() -> bool:
                return kit.total_by_type(await fleet.stats()).get("certificate-issued", 0) >= 5

            await kit.wait_until(certified_all, what="certificates")
            nodes = fleet.roadmap.nodes
            pickup, dropoff = nodes[len(nodes) // 3], nodes[2 * len(nodes) // 3]
            out["served"] = await fleet.ride("bl-1", pickup, dropoff)
            before = kit.total_by_type(await fleet.stats())
            prober = await kit.start_prober("prober", fleet.endpoint)
            me = str(prober.jid.bare)
            forged = certificates.issue(certificates.new_key()[0], me,
                                        fleet.plan.directory.authority, fleet.now(), 1e6)
            am = fleet.plan.directory.auction_managers[0]
            out["probes"] = []
            for conv, cert in (("b-forged", certificates.encode(forged)), ("b-none", "")):
                msg = codec.encode(am, m.BatchBid(batch_id=conv,
                                                  times=(m.PickupTime("bl-1", 1.0),)))
                msg.set_metadata("law", digest)
                if cert:
                    msg.set_metadata("cert", cert)
                await prober.send(msg, prober.inbox_behaviour)
                out["probes"].append(await prober.next_reply(conv))
            await prober.stop()
            out["awards_after_probes"] = kit.total_by_type(await fleet.stats()).get(
                "batch-award", 0) - before.get("batch-award", 0)

            async def expired() -> bool:
                return fleet.now() > LIFETIME_S + 50.0

            await kit.wait_until(expired, timeout=60.0, what="certificate expiry")
            out["expired"] = await fleet.ride("bl-2", pickup, dropoff)
        out["trace"] = kit.read_trace(tmp / "trace.jsonl")

    run(scenario())
    return out


def test_a_batch_under_a_certified_vickrey_law_serves_and_pays_the_vcg_price(
        batch_run: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    served = batch_run["served"]
    assert served.served, served.reason
    store = AuditStore(batch_run["tmp"] / "audit.sqlite")
    [batch] = [b for b in store.batch_ids() if any(
        e.kind == "batch-award" and "bl-1" in e.body for e in store.record(b))]
    [award] = [e for e in store.record(batch) if e.kind == "batch-award"]
    assert json.loads(award.body)["price"] == pytest.approx(served.price)
    assert main(["audit", "check", str(batch_run["tmp"] / "audit.sqlite"),
                 "--auction", batch, "--law", str(batch_run["law_path"])]) == 0
    assert f"{batch}: cleared by its law" in capsys.readouterr().out


def test_batch_bids_without_a_vehicle_s_valid_certificate_are_refused(
        batch_run: dict[str, Any]) -> None:
    for reply in batch_run["probes"]:
        assert reply.type == "refused"
        assert reply.reason.endswith("the law does not let a passenger send batch-bid")
    assert batch_run["awards_after_probes"] == 0


def test_expired_certificates_block_every_batch_bid(batch_run: dict[str, Any]) -> None:
    assert not batch_run["expired"].served
    late = [r for r in batch_run["trace"] if r["dir"] == "send" and r["type"] == "batch-bid"
            and r["sim"] > LIFETIME_S]
    assert late, "no batch bid after the certificates expired"
    for record in late:
        body = record["body"] if isinstance(record["body"], dict) else json.loads(record["body"])
        assert not body.get("times") and body["reason"].startswith("blocked by law"), body
    assert not [r for r in batch_run["trace"] if r["dir"] == "send"
                and r["type"] == "batch-award" and r["sim"] > LIFETIME_S]


def test_audit_check_catches_a_tampered_batch_award(batch_run: dict[str, Any],
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    path = Path(batch_run["tmp"]) / "audit.sqlite"
    tampered = path.with_name("tampered.sqlite")
    tampered.write_bytes(path.read_bytes())
    db = sqlite3.connect(tampered)
    db.execute("DROP TRIGGER audit_no_update")
    db.execute("UPDATE audit SET body = json_set(body, '$.price', 1.0) "
               "WHERE kind = 'batch-award'")
    db.commit()
    db.close()
    law = str(batch_run["law_path"])
    assert main(["audit", "check", str(path), "--law", law]) == 0
    capsys.readouterr()
    assert main(["audit", "check", str(tampered), "--law", law]) == 1
    out = capsys.readouterr().out
    assert "hash chain BROKEN" in out and "VIOLATION" in out and "was paid 1" in out
