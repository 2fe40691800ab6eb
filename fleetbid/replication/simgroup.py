"""A replication group on the simulated network: builds replicas, submits, crashes, checks."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from fleetbid.replication.api import Delivery, GroupConfig
from fleetbid.replication.logmachine import DigestMachine, LogMachine
from fleetbid.replication.membership import quorum
from fleetbid.replication.replica import Replica
from fleetbid.replication.simnet import Faults, SimNetwork

SIM_KEY = b"simulation-key-0123456789abcdef"


class SimGroup:
    def __init__(self, seed: int, members: Iterable[int], standbys: Iterable[int] = (),
                 faults: Faults | None = None, config: GroupConfig | None = None,
                 machine: Callable[[], LogMachine | DigestMachine] = LogMachine) -> None:
        # Everyone starts at time 0 here, so a short grace for never-heard members suffices.
        self.config = config or GroupConfig("sim", SIM_KEY, startup_grace_s=1.0)
        self.net = SimNetwork(seed, faults)
        self.clock = self.net.clock
        self.replicas: dict[int, Replica] = {}
        self._machine = machine  # LogMachine keeps every entry; DigestMachine a hash chain
        self.machines: dict[int, LogMachine | DigestMachine] = {}
        self.submitted: dict[int, list[int]] = {}  # member -> msg ids it submitted
        self.lost: dict[int, set[int]] = {}  # ... given up: it was excluded before delivery
        self.delivered_here: dict[int, list[Delivery]] = {}
        self.crashed: set[int] = set()
        # Everything each replica ever applied, (seq, (sender, msg id)), across restores, and
        # the members of every view it delivered: what the safety checks look at.
        self.history: dict[int, list[tuple[int, tuple[int, int]]]] = {}
        self.views_seen: dict[int, dict[int, tuple[int, ...]]] = {}
        initial = tuple(sorted(members))
        for m in initial:
            self._add(m, initial, standby=False)
        for s in standbys:
            self._add(s, (), standby=True)
        for r in self.replicas.values():
            r.start()

    def _add(self, member: int, initial: tuple[int, ...], standby: bool) -> None:
        node = self.net.node(member)
        machine = self._machine()
        self.machines[member] = machine
        self.replicas[member] = Replica(self.config, member, machine, node, node.clock,
                                        initial_members=initial, standby=standby,
                                        incarnation=1)
        self.submitted[member] = []
        lost = self.lost[member] = set()
        self.replicas[member].lost_listeners.append(lost.update)
        self.delivered_here[member] = []
        hist = self.history[member] = []
        if isinstance(machine, LogMachine):
            machine.listeners.append(lambda d: hist.append((d.seq, (d.sender, d.msg_id))))
        seen = self.views_seen[member] = {}
        self.replicas[member].view_listeners.append(
            lambda v, seen=seen: seen.__setitem__(v.view_id, v.members))

    def submit(self, member: int, payload: bytes) -> int:
        mid = self.replicas[member].submit(payload, self.delivered_here[member].append)
        self.submitted[member].append(mid)
        return mid

    def crash(self, member: int) -> None:
        self.crashed.add(member)
        self.net.crash(member)

    def stall(self, member: int, seconds: float) -> None:
        self.net.stall(member, seconds)

    def stalled(self, member: int) -> bool:
        return self.net.stalled(member)

    def run(self, seconds: float) -> None:
        self.clock.advance(seconds)

    def run_until(self, pred, timeout: float, step: float = 0.01) -> bool:
        end = self.clock.now() + timeout
        while self.clock.now() < end:
            if pred():
                return True
            self.clock.run_until(min(end, self.clock.now() + step))
        return bool(pred())

    def majority_survives(self, victim: int) -> bool:
        """Crash-stop with a primary partition: every view keeps a live majority."""
        # A recruit without its state yet counts for no quorum (it answers no flush).
        live = {m for m in self.alive() if self.replicas[m].status == "member"} - {victim}
        views = {self.replicas[m].members for m in live if self.replicas[m].members}
        views |= {r.coord.members for m in live if (r := self.replicas[m]).coord is not None}
        return all(quorum(live, v) for v in views)

    def alive(self) -> list[int]:
        return [m for m in self.replicas if m not in self.crashed]

    def members_alive(self) -> list[int]:
        return [m for m in self.alive() if self.replicas[m].status == "member"]

    def stable(self) -> bool:
        """All live members installed and delivered the same view, and nothing is pending."""
        live = self.members_alive()
        if not live:
            return False
        views = {self.replicas[m].view for m in live}
        if len(views) != 1:
            return False
        v = next(iter(views))
        return (v is not None and set(v.members) == set(live)
                and all(not self.replicas[m].frozen and not self.replicas[m].out
                        and len(self.replicas[m].hold) == 0 for m in live))

    def check(self) -> None:
        """Safety: same order everywhere (prefixes), no duplicates, one membership per view.

        Every live replica counts, excluded ones (standbys) too: their state is a prefix of
        the others', and everything any of them ever applied (before a restore too) sits at
        the same position of the longest log.
        """
        live = self.alive()
        logs = {m: self.machines[m].keys() for m in live}
        longest = max(logs.values(), key=len, default=[])
        for m, lg in logs.items():
            if lg != longest[: len(lg)]:
                raise AssertionError(f"replica {m} delivered a different sequence")
            if len(set(lg)) != len(lg):
                raise AssertionError(f"replica {m} delivered a message twice")
        for m in live:
            for seq, key in self.history[m]:
                if seq < len(longest) and longest[seq] != key:
                    raise AssertionError(f"replica {m} applied {key} at {seq}, others "
                                         f"{longest[seq]}")
        members_of: dict[int, tuple[int, ...]] = {}
        for seen in self.views_seen.values():
            for vid, ms in seen.items():
                if members_of.setdefault(vid, ms) != ms:
                    raise AssertionError(f"two memberships (leaders) for view {vid}: "
                                         f"{members_of[vid]} and {ms}")
