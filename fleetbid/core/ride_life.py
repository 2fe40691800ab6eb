"""A ride request's life at the MainManager: queued -> auctioning -> ended, exactly once.

The registry keeps one `RideLives`; it is the only place a request's stage changes. Every
transition checks the stage it leaves (a request cannot end twice, an ended one cannot be
opened again), and the pool of AuctionManagers lives here too, so a manager is handed back
to the pool by the one transition that ends its auction and by no other.

Who tells the passenger is part of the transition (`Teller`): the registry for a request
that never reached a manager (turned away, expired in the queue, or refused by the manager
it was sent to), the AuctionManager for an auction it runs. A request being withdrawn
(past its deadline, the manager asked to end it) is still the manager's: the registry ends
it only on the manager's `auction-closed`.
"""

from __future__ import annotations

import enum
from collections import OrderedDict, deque
from collections.abc import Iterable
from typing import Generic, TypeVar

T = TypeVar("T")


class Stage(enum.StrEnum):
    QUEUED = "queued"
    AUCTIONING = "auctioning"
    WITHDRAWING = "withdrawing"  # past its deadline; its manager was asked to end it
    ENDED = "ended"


class Teller(enum.StrEnum):
    """Who tells the passenger the outcome when a request ends."""

    REGISTRY = "registry"
    MANAGER = "manager"


class LifeError(ValueError):
    """A transition the request's stage does not allow (a bug, or a message out of turn)."""


class RideLives(Generic[T]):
    """Every request the registry knows, its stage, and the pool of AuctionManagers."""

    def __init__(self, managers: Iterable[str], ended_capacity: int = 100_000) -> None:
        self.free: deque[str] = deque(managers)
        self.queue: OrderedDict[str, T] = OrderedDict()  # FIFO of requests waiting
        self.running: dict[str, str] = {}  # request -> its manager
        self.withdrawing: set[str] = set()
        self.ended: OrderedDict[str, Teller] = OrderedDict()  # bounded, oldest forgotten
        self.ended_capacity = ended_capacity

    def stage(self, request: str) -> Stage | None:
        if request in self.running:
            return Stage.WITHDRAWING if request in self.withdrawing else Stage.AUCTIONING
        if request in self.queue:
            return Stage.QUEUED
        if request in self.ended:
            return Stage.ENDED
        return None

    def manager_of(self, request: str) -> str | None:
        return self.running.get(request)

    def enqueue(self, request: str, item: T) -> None:
        self._expect(request, None)
        self.queue[request] = item

    def start(self, request: str) -> str:
        """New or queued -> auctioning, on the free manager taken from the pool."""
        if self.stage(request) not in (None, Stage.QUEUED):
            raise LifeError(f"{request} is {self.stage(request)}: it cannot be opened")
        if not self.free:
            raise LifeError(f"no free auction manager for {request}")
        self.queue.pop(request, None)
        manager = self.running[request] = self.free.popleft()
        return manager

    def withdraw(self, request: str) -> bool:
        """Auctioning -> withdrawing; False if it is not auctioning (already asked, or over)."""
        if self.stage(request) is not Stage.AUCTIONING:
            return False
        self.withdrawing.add(request)
        return True

    def end(self, request: str, teller: Teller) -> str | None:
        """End a request (once): returns the manager it frees, None if it had none."""
        stage = self.stage(request)
        if stage in (None, Stage.ENDED):
            raise LifeError(f"{request} is {stage or 'unknown'}: it cannot end")
        if stage is Stage.QUEUED and teller is not Teller.REGISTRY:
            raise LifeError(f"{request} never reached a manager")
        self.queue.pop(request, None)
        self.withdrawing.discard(request)
        manager = self.running.pop(request, None)
        if manager is not None:
            self.free.append(manager)
        self._ended(request, teller)
        return manager

    def turn_away(self, request: str) -> None:
        """A new request the registry ends at once (it tells the passenger)."""
        self._expect(request, None)
        self._ended(request, Teller.REGISTRY)

    def next_queued(self) -> tuple[str, T] | None:
        """The oldest queued request, if a manager is free to take it."""
        if not self.free or not self.queue:
            return None
        return next(iter(self.queue.items()))

    def _expect(self, request: str, stage: Stage | None) -> None:
        if self.stage(request) is not stage:
            raise LifeError(f"{request} is {self.stage(request)}, not {stage or 'new'}")

    def _ended(self, request: str, teller: Teller) -> None:
        self.ended[request] = teller
        while len(self.ended) > self.ended_capacity:
            self.ended.popitem(last=False)
