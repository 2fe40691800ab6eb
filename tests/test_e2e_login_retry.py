"""A login the server drops is tried again (`start_agents`), up to START_ATTEMPTS times.

Real agents, the embedded server, and between them a TCP relay on loopback that closes the
first connections as soon as the client speaks: what a login looks like when the server
crashes it (ejabberd 23.01 did, for concurrent registrations of one account).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import re
from pathlib import Path
from typing import Any

import pytest

from fleetbid.platform import xmpp_agent
from fleetbid.platform.eventloop import run
from fleetbid.platform.xmpp_agent import AgentStartError, XmppAgent, start_agents
from fleetbid.platform.xmpp_server import EmbeddedXmppServer, XmppEndpoint
from fleetbid.run.launcher import Fleet, LaunchError

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]


class DroppingRelay:
    """Forwards loopback TCP to `target`, but closes the first `drop` connections once the
    client has sent its first bytes."""

    def __init__(self, target: tuple[str, int], drop: int) -> None:
        self.target, self.drop = target, drop
        self.accepted = 0
        self.server: asyncio.Server | None = None
        self.port = 0

    async def __aenter__(self) -> DroppingRelay:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *_exc: object) -> None:
        assert self.server is not None
        self.server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        if self.accepted <= self.drop:
            await reader.read(1)
            writer.close()
            return
        up_reader, up_writer = await asyncio.open_connection(*self.target)

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))


def _login(tmp_path: Path, drop: int) -> tuple[int, str | None]:
    async def scenario() -> tuple[int, str | None]:
        with EmbeddedXmppServer(tmp_path) as server:
            endpoint = server.endpoint
            async with DroppingRelay((endpoint.host, endpoint.port), drop) as relay:
                agent = XmppAgent("vehicle-retry", dataclasses.replace(endpoint,
                                                                        port=relay.port))
                error = None
                try:
                    await start_agents([agent], timeout=30)
                    assert agent.is_alive()
                except AgentStartError as exc:
                    error = str(exc)
                finally:
                    await agent.stop()
                return relay.accepted, error

    return run(scenario())


def test_a_dropped_login_is_tried_again(tmp_path: Path,
                                        caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="fleetbid.xmpp"):
        accepted, error = _login(tmp_path, drop=xmpp_agent.START_ATTEMPTS - 1)
    assert error is None
    assert accepted == xmpp_agent.START_ATTEMPTS
    assert "login attempt 1 failed" in caplog.text


def test_a_login_dropped_every_time_fails_with_the_reason(tmp_path: Path) -> None:
    accepted, error = _login(tmp_path, drop=xmpp_agent.START_ATTEMPTS)
    assert accepted == xmpp_agent.START_ATTEMPTS  # no attempt beyond the bound
    assert error is not None and "DisconnectedException" in error, error


def test_a_fleet_whose_agents_cannot_log_in_names_the_worker_and_the_reason(
        tmp_path: Path, kit: Any) -> None:
    """The launcher learns why a worker failed as soon as it fails, not at its 120 s 'ready'
    deadline (the worker used to send its error only after its event loop's teardown, which
    a task that swallowed its cancellation held for ever)."""

    async def scenario() -> str:
        with EmbeddedXmppServer(tmp_path) as server:
            async with DroppingRelay((server.endpoint.host, server.endpoint.port),
                                     drop=10**9) as relay:
                endpoint = XmppEndpoint("127.0.0.1", relay.port, server.endpoint.domain,
                                        embedded=False)
                with pytest.raises(LaunchError) as failed:
                    async with Fleet(kit.small_config(vehicles=2), endpoint=endpoint):
                        pass
                return str(failed.value)

    message = run(scenario())
    assert re.search(r"worker \d+ failed: .*AgentStartError: \d+/\d+ agent\(s\) failed to "
                     r"start: .*DisconnectedException", message, re.S), message
