"""Collections that keep only the newest entries: per-ride records of a fleet that runs for
days (docs/soak.md). Each counts what it let go, so a report can say its window."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T", bound=Hashable)

# Per agent: the invariant checks' records (outcomes told, bids acknowledged, rides taken).
# About 5 hours of the soak's load (one ride a second, each agent sees a share of them);
# runs and soaks this long or shorter check every ride.
INVARIANT_WINDOW = 20_000


class RecentSet(Generic[T]):
    """A set of at most `capacity` items, the oldest added forgotten first."""

    def __init__(self, capacity: int = INVARIANT_WINDOW) -> None:
        if capacity < 1:
            raise ValueError("capacity must be >= 1")
        self.capacity = capacity
        self.forgotten = 0
        self._items: OrderedDict[T, None] = OrderedDict()

    def add(self, item: T) -> None:
        self._items[item] = None
        if len(self._items) > self.capacity:
            self._items.popitem(last=False)
            self.forgotten += 1

    def __contains__(self, item: object) -> bool:
        return item in self._items

    def __iter__(self) -> Iterator[T]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)


class RecentList(Generic[T]):
    """A list of at most `capacity` items (repeats kept), the oldest forgotten first."""

    def __init__(self, capacity: int = INVARIANT_WINDOW) -> None:
        if capacity < 1:
            raise ValueError("capacity must be >= 1")
        self.capacity = capacity
        self.forgotten = 0
        self._items: list[T] = []

    def append(self, item: T) -> None:
        self._items.append(item)
        if len(self._items) > self.capacity + self.capacity // 10:  # trim in batches
            drop = len(self._items) - self.capacity
            del self._items[:drop]
            self.forgotten += drop

    def __iter__(self) -> Iterator[T]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)
