"""Shared helpers of the end-to-end tests (real XMPP server, real agents, real sockets).

The end-to-end modules reach these through the `kit` fixture rather than importing this file.
Each module runs its scenario once, inside one event loop (`fleetbid.platform.eventloop.run`),
in a module-scoped fixture, and its tests assert on what the scenario recorded.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import shutil
import tempfile
from collections.abc import Awaitable, Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from spade.behaviour import CyclicBehaviour
from spade.message import Message

from fleetbid.core.config import RunConfig
from fleetbid.maps import Clusters, RoadMap, TravelTimes, make_clusters
from fleetbid.platform.external_servers.flavors import FLAVORS
from fleetbid.platform.external_servers.server import ManagedServer, installed
from fleetbid.platform.xmpp_agent import XmppAgent, start_agents
from fleetbid.platform.xmpp_server import XmppEndpoint
from fleetbid.protocol import codec
from fleetbid.protocol import messages as m
from fleetbid.run.launcher import Fleet

# --- configuration ----------------------------------------------------------------------------


def small_config(**overrides: Any) -> RunConfig:
    """A small, fast fleet: simulated trips of a few minutes take about a wall second."""
    defaults: dict[str, Any] = {
        "vehicles": 8, "requests": 0, "speed": 400.0, "seed": 0, "clusters": 4,
        "radius_m": 1500.0, "processes": 1, "auction_managers": 4, "bid_timeout_s": 30.0,
        "patience_s": 600.0, "replicas": 1,
    }
    defaults.update(overrides)
    return RunConfig(**defaults)


def vehicle_jids(fleet: Fleet) -> dict[str, str]:
    """JID -> start node, in start-node order (vehicle-<i> is the i-th start node)."""
    assert fleet.endpoint is not None
    return {fleet.endpoint.jid(f"vehicle-{i}"): node for i, node in enumerate(fleet.start_nodes)}


# --- independent model of admission and of the winner -----------------------------------------


@dataclasses.dataclass(frozen=True)
class Geography:
    """Map, clusters and travel times as the tests see them (built independently of agents)."""

    roadmap: RoadMap
    clusters: Clusters
    travel: TravelTimes
    radius_m: float
    min_eta_s: float = 1.0
    max_bidders: int = 0  # 0: no bound

    @classmethod
    def of(cls, roadmap: RoadMap, config: RunConfig) -> Geography:
        return cls(roadmap, make_clusters(roadmap, config.clusters, config.seed),
                   TravelTimes(roadmap), config.radius_m, config.min_eta_s,
                   config.max_bidders)

    def cluster(self, node: str) -> int:
        return self.clusters.cluster_of_node(node)

    def is_admitted(self, node: str, pickup: str) -> bool:
        return (self.cluster(node) == self.cluster(pickup)
                and self.roadmap.distance_m(node, pickup) <= self.radius_m)

    def admitted(self, vehicles: Mapping[str, str], pickup: str) -> dict[str, str]:
        """In the cluster and the radius; of those, the `max_bidders` nearest by air
        (distance, then JID)."""
        inside = sorted(((self.roadmap.distance_m(n, pickup), v, n)
                         for v, n in vehicles.items() if self.is_admitted(n, pickup)))
        if self.max_bidders:
            inside = inside[:self.max_bidders]
        return {v: n for _, v, n in inside}

    def expected_winner(
        self, vehicles: Mapping[str, str], pickup: str
    ) -> tuple[str, float] | None:
        """(JID, T) of the admitted vehicle with the smallest T (ties: T, then JID), or None.

        With n bidders every bid is (n-1)/n * 1/max(T, min_eta): the highest bid is the
        smallest T, and the auction breaks ties on the (floored) ETA, then the JID."""
        admitted = self.admitted(vehicles, pickup)
        if not admitted:
            return None
        times = {v: self.travel.time_s(n, pickup) for v, n in admitted.items()}
        best = min(times, key=lambda v: (max(times[v], self.min_eta_s), v))
        return best, times[best]


# --- trace ------------------------------------------------------------------------------------


def read_trace(path: str | Path) -> list[dict[str, Any]]:
    """Every record of a run's JSON-lines trace (read it after the Fleet has stopped)."""
    text = Path(path).read_text()
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def sends(trace: list[dict[str, Any]], kind: str | None = None, **match: Any) -> list[dict]:
    """The `send` records (optionally of one type, with these field values), by wall time."""
    found = [
        r for r in trace
        if r["dir"] == "send" and (kind is None or r["type"] == kind)
        and all(r.get(k) == v for k, v in match.items())
    ]
    return sorted(found, key=lambda r: r["wall"])


# --- a prober agent in the test process --------------------------------------------------------


class _Inbox(CyclicBehaviour):
    def __init__(self, sink: asyncio.Queue[Message]) -> None:
        super().__init__()
        self.sink = sink  # not `queue`: spade's behaviours keep their mailbox there

    async def run(self) -> None:
        msg = await self.receive(timeout=1)
        if msg is not None:
            self.sink.put_nowait(msg)


@dataclasses.dataclass
class Reply:
    sender: str
    type: str
    performative: str
    conversation: str
    body: Any

    @property
    def reason(self) -> str:
        return self.body.get("reason", "") if isinstance(self.body, dict) else ""


class Prober(XmppAgent):
    """A SPADE agent of the test process that sends raw (possibly malformed) messages to the
    fleet over the XMPP server and collects what comes back."""

    def __init__(self, name: str, endpoint: XmppEndpoint) -> None:
        super().__init__(name, endpoint)
        self.inbox: asyncio.Queue[Message] = asyncio.Queue()
        self.got: list[Reply] = []
        self.sent_count = 0
        self.inbox_behaviour = _Inbox(self.inbox)
        self.add_behaviour(self.inbox_behaviour)

    async def send_raw(
        self, to: str, *, kind: str | None, body: str | None, performative: str | None,
        conversation: str = "", protocol: str | None = codec.PROTOCOL,
    ) -> None:
        metadata = {"performative": performative, "protocol": protocol, "ontology": codec.ONTOLOGY,
                    "conversation": conversation, "type": kind}
        clean = {k: v for k, v in metadata.items() if v is not None}
        await self.send(Message(to=to, body=body, metadata=clean), self.inbox_behaviour)
        self.sent_count += 1

    async def send_body(self, to: str, body: m.Body, conversation: str | None = None,
                        performative: str = "") -> None:
        """A well-formed message (encoded exactly as the agents encode theirs)."""
        await self.send(codec.encode(to, body, conversation, performative), self.inbox_behaviour)
        self.sent_count += 1

    async def next_reply(self, conversation: str, timeout: float = 20.0) -> Reply:
        """The first message received in `conversation` (earlier ones included)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            for reply in self.got:
                if reply.conversation == conversation:
                    self.got.remove(reply)
                    return reply
            left = deadline - loop.time()
            if left <= 0:
                raise AssertionError(f"no reply in conversation {conversation!r}")
            try:
                msg = await asyncio.wait_for(self.inbox.get(), left)
            except TimeoutError:
                continue
            self.got.append(_as_reply(msg))

    async def drain(self, settle_s: float = 0.3) -> list[Reply]:
        """Whatever else arrived (collects for `settle_s` more wall seconds)."""
        await asyncio.sleep(settle_s)
        while not self.inbox.empty():
            self.got.append(_as_reply(self.inbox.get_nowait()))
        rest, self.got = self.got, []
        return rest


def _as_reply(msg: Message) -> Reply:
    try:
        body: Any = json.loads(msg.body) if msg.body else None
    except ValueError:
        body = msg.body
    return Reply(
        sender=str(msg.sender.bare), type=msg.get_metadata("type") or "",
        performative=msg.get_metadata("performative") or "",
        conversation=msg.get_metadata("conversation") or "", body=body,
    )


async def start_prober(name: str, endpoint: XmppEndpoint) -> Prober:
    prober = Prober(name, endpoint)
    await start_agents([prober])
    return prober


# --- waiting ----------------------------------------------------------------------------------


async def wait_until(
    check: Callable[[], Awaitable[bool]], timeout: float = 30.0, every: float = 0.1,
    what: str = "condition",
) -> None:
    """Poll `check` until it is true (a test precondition, never a timing assertion)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await check():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(every)


async def wait_for_announcements(fleet: Fleet) -> None:
    """Until every vehicle has told the MainManager it is idle (sent at fleet start)."""

    async def announced() -> bool:
        stats = await fleet.stats()
        return sum(s["by_type"].get("vehicle-available", 0) for s in stats) >= \
            fleet.config.vehicles

    async def arrived() -> bool:
        stats = await fleet.stats()
        return total_received_by_type(stats).get("vehicle-available", 0) >= fleet.config.vehicles

    await wait_until(announced, what="the vehicles' first vehicle-available")
    await wait_until(arrived, what="the MainManager to receive every vehicle-available")


def total(stats: list[dict[str, Any]], key: str) -> int:
    return sum(s[key] for s in stats)


def total_by_type(stats: list[dict[str, Any]], key: str = "by_type") -> dict[str, int]:
    """Messages sent (or with key="received_by_type", received) by type, all processes."""
    out: dict[str, int] = {}
    for s in stats:
        for kind, count in s[key].items():
            out[kind] = out.get(kind, 0) + count
    return out


def total_received_by_type(stats: list[dict[str, Any]]) -> dict[str, int]:
    return total_by_type(stats, "received_by_type")


async def wait_delivered(fleet: Fleet, kind: str, at_least: int = 1) -> None:
    """Until at least `at_least` messages of `kind` were sent and every one has arrived."""

    async def delivered() -> bool:
        stats = await fleet.stats()
        sent = total_by_type(stats).get(kind, 0)
        return sent >= at_least and total_received_by_type(stats).get(kind, 0) >= sent

    await wait_until(delivered, what=f"every {kind} to arrive")


# --- fixture ----------------------------------------------------------------------------------


class Kit:
    """Namespace handed to the e2e modules by the `kit` fixture."""

    small_config = staticmethod(small_config)
    vehicle_jids = staticmethod(vehicle_jids)
    Geography = Geography
    read_trace = staticmethod(read_trace)
    sends = staticmethod(sends)
    Prober = Prober
    Reply = Reply
    start_prober = staticmethod(start_prober)
    wait_until = staticmethod(wait_until)
    wait_for_announcements = staticmethod(wait_for_announcements)
    total = staticmethod(total)
    total_by_type = staticmethod(total_by_type)
    total_received_by_type = staticmethod(total_received_by_type)
    wait_delivered = staticmethod(wait_delivered)


@pytest.fixture(scope="session")
def kit() -> Kit:
    return Kit()


# --- nightly-sized tests ------------------------------------------------------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--slow", action="store_true",
                     help="also run the nightly-sized tests (marked slow)")
    parser.addoption("--xmpp-server", choices=["embedded", *FLAVORS],
                     default=os.environ.get(XMPP_SERVER_ENV, "embedded"),
                     help="the server a Fleet of the e2e tests starts: the embedded pyjabber "
                          f"(default), or one shared Prosody/ejabberd (env {XMPP_SERVER_ENV})")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Skipped unless asked for: `--slow`, or a marker expression that selects them
    # (`-m slow`); `-m "not e2e"` must stay a fast tier.
    markexpr = config.getoption("-m") or ""
    if config.getoption("--slow") or ("slow" in markexpr and "not slow" not in markexpr):
        return
    skip = pytest.mark.skip(reason="nightly-sized: run with --slow or -m slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


# --- the e2e tier on a real XMPP server (--xmpp-server prosody|ejabberd) -----------------------

XMPP_SERVER_ENV = "FLEETBID_TEST_XMPP_SERVER"


class _SharedServer:
    """Stands in for EmbeddedXmppServer inside Fleet: hands out the session's real server.

    Its endpoint carries account keys, so an agent name gets the same password in every
    Fleet of the session (the server keeps the accounts the earlier Fleets registered).
    """

    server: ManagedServer | None = None
    pid: int | None = None  # the shared server is not Fleet's to watch: no health check on it

    def __init__(self, *_args: Any, **_kwargs: Any) -> None:
        pass

    def start(self) -> XmppEndpoint:
        assert self.server is not None
        return self.server.endpoint

    def stop(self) -> None:
        pass  # the session fixture stops the real server


@pytest.fixture(scope="session", autouse=True)
def xmpp_server_choice(request: pytest.FixtureRequest) -> Iterator[str]:
    """With --xmpp-server prosody|ejabberd, every Fleet started without an explicit endpoint
    uses one server of that kind, started once for the whole session."""
    kind = request.config.getoption("--xmpp-server")
    if kind == "embedded":
        yield kind
        return
    flavor = FLAVORS[kind]()
    if not installed(flavor):
        pytest.exit(f"--xmpp-server {kind}: {flavor.binary} is not installed", returncode=4)
    # Not pytest's tmp_path: its root is private to us, and the server runs as its own user.
    run_dir = tempfile.mkdtemp(prefix=f"fleetbid-test-{kind}-")
    server = ManagedServer(flavor, run_dir)
    server.start()
    patch = pytest.MonkeyPatch()
    patch.setattr(_SharedServer, "server", server)
    patch.setattr("fleetbid.run.launcher.EmbeddedXmppServer", _SharedServer)
    try:
        yield kind
    finally:
        patch.undo()
        server.stop()
        shutil.rmtree(run_dir, ignore_errors=True)
