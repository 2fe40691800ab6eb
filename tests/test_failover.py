"""An agent's stream moving to the next node of a clustered server (platform/failover.py),
and the endpoint that lists a cluster's nodes (no server: a stand-in for slixmpp's client)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from fleetbid.platform import failover as failover_module
from fleetbid.platform.failover import Failover
from fleetbid.platform.xmpp_server import external_endpoint

A, B = ("10.0.0.1", 5222), ("10.0.0.2", 5223)


class FakeClient:
    """What Failover uses of a slixmpp client: events, connect, send_raw, the bound JID."""

    def __init__(self) -> None:
        self.handlers: dict[str, list[Callable[[Any], None]]] = {}
        self.transport: object | None = object()
        self.boundjid = "v@fleet/r1"
        self.written: list[str] = []
        self.connects: list[tuple[str, int]] = []
        self.custom_address: tuple[str, int] | None = None

    def add_event_handler(self, name: str, handler: Callable[[Any], None]) -> None:
        self.handlers.setdefault(name, []).append(handler)

    def event(self, name: str, data: Any = None) -> None:
        for handler in self.handlers.get(name, []):
            handler(data)

    def connect(self, host: str, port: int) -> None:
        self.connects.append((host, port))

    def send_raw(self, data: str) -> None:
        assert self.transport is not None
        self.written.append(data)


@pytest.fixture(autouse=True)
def fresh_process_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(failover_module, "_live", {})


def test_a_list_of_addresses_is_one_server_entered_at_each_node_in_turn() -> None:
    ep = external_endpoint("10.0.0.1:5222,10.0.0.2:5223", "fleet.test")
    assert ep.addresses == (A, B)
    assert ep.rotated(0).addresses == (A, B)
    assert ep.rotated(1).addresses == (B, A)
    assert ep.rotated(2).addresses == (A, B)
    with pytest.raises(ValueError):
        external_endpoint("10.0.0.1:5222,nonsense", "fleet.test")


def test_a_lost_stream_moves_to_the_next_node_and_held_messages_follow() -> None:
    async def scenario() -> tuple[FakeClient, Failover]:
        client, f = FakeClient(), Failover("v", (A, B))
        f.prepare(client)
        f.attach(client)
        f.send(client, lambda me: f"m1 from {me}")
        client.transport = None  # node A died
        client.event("disconnected", None)
        f.send(client, lambda me: f"m2 from {me}")  # while down: held, not raised
        await asyncio.sleep(0)  # the reconnect is scheduled after the event's handlers
        assert client.connects == [B]
        client.transport, client.boundjid = object(), "v@fleet/r2"
        client.event("session_start")
        return client, f

    client, f = asyncio.run(scenario())
    # Rendered with the new session's JID: ejabberd refuses a `from` not its own.
    assert client.written == ["m1 from v@fleet/r1", "m2 from v@fleet/r2"]
    assert f.address == B and f.failovers == 1
    # A later agent of this process (a passenger) goes straight to the live node.
    assert Failover("p", (A, B)).address == B


def test_a_refused_connection_points_the_retry_at_the_next_node() -> None:
    client, f = FakeClient(), Failover("v", (A, B))
    f.prepare(client)
    client.event("connection_failed", OSError("refused"))
    assert client.custom_address == B
    client.event("connection_failed", OSError("refused"))
    assert client.custom_address == A


def test_a_stream_closed_by_the_agent_itself_is_not_reopened() -> None:
    async def scenario() -> FakeClient:
        client, f = FakeClient(), Failover("v", (A, B))
        f.attach(client)
        f.closing = True
        client.event("disconnected", None)
        await asyncio.sleep(0)
        return client

    assert asyncio.run(scenario()).connects == []


def test_one_address_keeps_the_old_behaviour() -> None:
    client, f = FakeClient(), Failover("v", (A,))
    f.prepare(client)
    f.attach(client)
    assert client.handlers == {}
