"""Seeded random fault schedules on the simulated network, and the invariants they must keep."""

from __future__ import annotations

import random

from fleetbid.replication.simgroup import SimGroup
from fleetbid.replication.simnet import Faults

STALL_S = (0.2, 0.8)  # a stall longer than the failure timeout (0.3 s here) gets suspected
LOSSES = (0.0, 0.05, 0.1)
HEAVY_LOSS = 0.4


def run_schedule(seed: int, *, steps: int = 30, max_crashes: int = 1, max_stalls: int = 0,
                 heavy_loss: bool = False) -> SimGroup:
    """Random submissions, faults, crashes and stalls; then quiet time; then the checks.

    A stall stops a live member's process (timers and datagrams wait) for STALL_S seconds of
    virtual time: it is suspected and excluded while it still runs. `heavy_loss` adds
    HEAVY_LOSS to the loss rates drawn from. Raises AssertionError if an invariant is broken:
    prefix-consistent sequences at every live replica (excluded ones too), nothing delivered
    twice, one membership per view id, every message of a correct sender delivered, one view
    (so one leader) at all correct members once stable.
    """
    rng = random.Random(seed)
    n = rng.choice((1, 2, 3, 3, 4, 5))
    members = list(range(1, n + 1))
    standbys = [10 + i for i in range(rng.choice((0, 1, 1, 2)))]
    losses = LOSSES + (HEAVY_LOSS,) * 2 if heavy_loss else LOSSES
    faults = Faults(loss=rng.choice(losses), dup=rng.choice((0.0, 0.05, 0.1)),
                    reorder=rng.choice((0.0, 0.2, 0.5)))
    g = SimGroup(seed, members, standbys, faults)
    crashes = stalls = 0
    for _ in range(steps):
        r = rng.random()
        live = g.members_alive()
        if r < 0.06 and crashes < max_crashes and len(live) > 1:
            victim = rng.choice(live)
            if g.majority_survives(victim):
                g.crash(victim)
                crashes += 1
        elif r < 0.14 and stalls < max_stalls and len(live) > 1:
            g.stall(rng.choice(live), rng.uniform(*STALL_S))
            stalls += 1
        elif r < 0.7 and live:
            m = rng.choice(live)
            if g.replicas[m].status == "member" and not g.stalled(m):
                g.submit(m, rng.randbytes(rng.randint(0, 40)))
        g.run(rng.choice((0.0005, 0.002, 0.01, 0.05)))
    ok = g.run_until(g.stable, timeout=10.0, step=0.05)
    g.check()
    if not ok:
        raise AssertionError(f"seed {seed}: group did not become stable")
    check_liveness(g)
    return g


def check_liveness(g: SimGroup) -> None:
    """Every message a correct member submitted was delivered, at it and everywhere (but
    those it gave up, reported to lost_listeners, when it was excluded)."""
    live = g.members_alive()
    logs = {m: set(g.machines[m].keys()) for m in live}
    for m in live:
        for mid in g.submitted.get(m, []):
            if mid in g.lost.get(m, ()):
                continue
            for other in live:
                if (m, mid) not in logs[other]:
                    raise AssertionError(f"message {(m, mid)} of correct {m} missing at {other}")
    views = {g.replicas[m].view for m in live}
    if len(views) != 1:
        raise AssertionError(f"correct members disagree on the view: {views}")
