"""PassengerPersonalAgent: one per request; asks for a ride and reports how it went."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from fleetbid.agents.fleet_agent import FleetAgent
from fleetbid.behaviours.passenger import RideBehaviour
from fleetbid.core.directory import Directory
from fleetbid.core.outcome import RideOutcome
from fleetbid.core.roles import Role
from fleetbid.core.world import World
from fleetbid.laws.schema import Law
from fleetbid.platform.xmpp_agent import start_agents
from fleetbid.platform.xmpp_server import XmppEndpoint


class PassengerAgent(FleetAgent):
    ROLE = Role.PASSENGER
    BEHAVIOURS = (RideBehaviour,)

    def __init__(
        self, name: str, endpoint: XmppEndpoint, world: World, directory: Directory,
        request_id: str, source: str, destination: str,
        on_outcome: Callable[[RideOutcome], None], at: float | None = None,
    ) -> None:
        super().__init__(name, endpoint, world, directory)
        self.request_id, self.source, self.destination = request_id, source, destination
        self.at = at  # simulated time to send the request (None: as soon as online)
        self.on_outcome = on_outcome

    async def setup(self) -> None:
        # Runs once connected: the ride request goes out as soon as the agent is online.
        self.add_behaviour(RideBehaviour())

    def ride_ended(self, outcome: RideOutcome) -> None:
        self.on_outcome(outcome)


async def ride_session(
    agent: PassengerAgent, done: asyncio.Future[RideOutcome], gate: asyncio.Semaphore,
    timeout_s: float | None = None, report: Callable[[RideOutcome], None] | None = None,
) -> RideOutcome:
    """Log `agent` in (at most `gate`'s count at a time), wait for its outcome, stop it.

    Every way out yields an outcome: a login failure or a silent fleet (`timeout_s` wall
    seconds after the request time) become a rejection with the reason. `report` hears the
    outcome before the agent is stopped (a logout takes a while and is nobody's latency)."""
    world = agent.world
    try:
        async with gate:
            await start_agents([agent], concurrency=1)
        if timeout_s is None:
            outcome = await done
        else:
            wait = timeout_s + (world.clock.until(agent.at) if agent.at is not None else 0.0)
            outcome = await asyncio.wait_for(done, wait)
    except TimeoutError:
        outcome = _rejected(agent, f"timed out: no outcome within {timeout_s:.0f} s")
    except Exception as exc:  # a login failure must still produce an outcome
        outcome = _rejected(agent, f"passenger could not join: {exc}")
    try:
        if report is not None:
            report(outcome)
    finally:
        with contextlib.suppress(Exception):
            await agent.stop()
    return outcome


def passenger(
    name: str, endpoint: XmppEndpoint, world: World, directory: Directory, request_id: str,
    source: str, destination: str, at: float | None = None, law: Law | None = None,
) -> tuple[PassengerAgent, asyncio.Future[RideOutcome]]:
    """A passenger agent for one request, and the future its outcome will resolve."""
    done: asyncio.Future[RideOutcome] = asyncio.get_running_loop().create_future()

    def finished(outcome: RideOutcome) -> None:
        if not done.done():
            done.set_result(outcome)

    agent = PassengerAgent(name, endpoint, world, directory, request_id, source, destination,
                           finished, at)
    if law is not None:
        agent.controller.choose(law)
    return agent, done


def _rejected(agent: PassengerAgent, reason: str) -> RideOutcome:
    return RideOutcome(agent.request_id, agent.source, agent.destination,
                       requested_at=agent.world.clock.now(), reason=reason)
