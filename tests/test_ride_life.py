"""A request's life at the MainManager (core/ride_life.py), driven as the registry drives it.

Hypothesis runs random interleavings of arrivals, queue expiries, withdrawals, managers'
closes and refused opens, with late and repeated events (a close after a withdraw, a
second close, a replayed request), against a model: every request ends at most once with
exactly one teller, a manager runs at most one request and is free only when it runs none,
and the queue is served in arrival order whenever a manager frees.
"""

from __future__ import annotations

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from fleetbid.core.ride_life import LifeError, RideLives, Stage, Teller

MANAGERS = ("m0", "m1")
IDS = st.sampled_from([f"r{k}" for k in range(8)])


class Lives(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.lives: RideLives[str] = RideLives(MANAGERS)
        self.told: dict[str, list[Teller]] = {}  # request -> who told its outcome
        self.arrivals: list[str] = []  # queue order, as the model sees it

    def open_queued(self) -> None:
        """What the registry does whenever a manager frees."""
        nxt = self.lives.next_queued()
        if nxt is not None:
            assert nxt[0] == self.arrivals[0]  # FIFO
            self.arrivals.pop(0)
            self.lives.start(nxt[0])

    def end(self, request: str, teller: Teller) -> None:
        self.lives.end(request, teller)
        self.told.setdefault(request, []).append(teller)
        self.open_queued()

    @rule(request=IDS)
    def arrive(self, request: str) -> None:
        if self.lives.stage(request) is not None:  # open, queued or ended: refused
            with pytest.raises(LifeError):
                self.lives.enqueue(request, request)
            return
        if self.lives.free:
            self.lives.start(request)
        else:
            self.lives.enqueue(request, request)
            self.arrivals.append(request)

    @rule(request=IDS)
    def expire_in_queue(self, request: str) -> None:
        if self.lives.stage(request) is Stage.QUEUED:
            self.arrivals.remove(request)
            self.end(request, Teller.REGISTRY)

    @rule(request=IDS)
    def deadline(self, request: str) -> None:
        before = self.lives.stage(request)
        asked = self.lives.withdraw(request)
        assert asked == (before is Stage.AUCTIONING)
        if asked:
            assert self.lives.stage(request) is Stage.WITHDRAWING
            assert request not in self.told  # withdrawing tells nobody

    @rule(request=IDS)
    def manager_closes(self, request: str) -> None:
        """auction-closed, possibly late or repeated (then refused, no state change)."""
        if self.lives.stage(request) in (Stage.AUCTIONING, Stage.WITHDRAWING):
            manager = self.lives.manager_of(request)
            self.end(request, Teller.MANAGER)
            assert manager in self.lives.free or manager in self.lives.running.values()
        else:
            before = (self.lives.stage(request), list(self.lives.free))
            with pytest.raises(LifeError):
                self.lives.end(request, Teller.MANAGER)
            assert (self.lives.stage(request), list(self.lives.free)) == before

    @precondition(lambda self: bool(self.lives.running))
    @rule(data=st.data())
    def manager_refuses_open(self, data: st.DataObject) -> None:
        request = data.draw(st.sampled_from(sorted(self.lives.running)))
        self.end(request, Teller.REGISTRY)

    @invariant()
    def one_outcome_per_request(self) -> None:
        for request, tellers in self.told.items():
            assert len(tellers) == 1, (request, tellers)
            assert self.lives.stage(request) is Stage.ENDED

    @invariant()
    def managers_are_free_or_run_one_request(self) -> None:
        busy = list(self.lives.running.values())
        assert len(busy) == len(set(busy))
        assert sorted(busy + list(self.lives.free)) == sorted(MANAGERS)

    @invariant()
    def the_queue_waits_only_for_a_manager(self) -> None:
        assert not (self.lives.queue and self.lives.free)
        assert list(self.lives.queue) == self.arrivals


TestLives = Lives.TestCase
TestLives.settings = settings(max_examples=40, stateful_step_count=25, deadline=None)


def test_an_ended_request_cannot_be_opened_or_ended_again() -> None:
    lives: RideLives[str] = RideLives(["m0"])
    assert lives.start("r1") == "m0"
    assert lives.end("r1", Teller.MANAGER) == "m0"
    for attempt in (lambda: lives.start("r1"), lambda: lives.end("r1", Teller.REGISTRY),
                    lambda: lives.enqueue("r1", "again")):
        with pytest.raises(LifeError):
            attempt()
    assert list(lives.free) == ["m0"]


def test_a_queued_request_is_not_the_managers_to_end() -> None:
    lives: RideLives[str] = RideLives([])
    lives.enqueue("r1", "p")
    with pytest.raises(LifeError):
        lives.end("r1", Teller.MANAGER)
    assert lives.stage("r1") is Stage.QUEUED
