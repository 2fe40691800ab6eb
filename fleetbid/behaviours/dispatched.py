"""The vehicle's side of direct dispatch: take the passenger if idle, else decline."""

from __future__ import annotations

from spade.message import Message

from fleetbid.behaviours.base import ProtocolBehaviour, Rejected, sender_of
from fleetbid.platform import messages as m

IDLE, TO_PICKUP = "idle", "to_pickup"  # the states of behaviours/vehicle.py


async def on_dispatch(behaviour: ProtocolBehaviour, msg: Message, body: m.Dispatch) -> None:
    from fleetbid.behaviours.vehicle import TripBehaviour

    agent = behaviour.agent
    if sender_of(msg) != agent.manager_jid:
        raise Rejected(f"{sender_of(msg)} is not the main manager")
    if not agent.world.roadmap.has_node(body.pickup) or not agent.world.roadmap.has_node(
            body.dropoff):
        raise Rejected("pickup or drop-off is not on my map")
    if agent.state != IDLE:
        await behaviour.tell(agent.manager_jid, m.DispatchDeclined(
            auction_id=body.auction_id, reason=f"already assigned ({agent.state})"))
        return
    eta = agent.world.travel.time_to(agent.node, body.pickup)
    agent.state = TO_PICKUP  # before any await: a second dispatch now sees us busy
    await behaviour.tell(agent.manager_jid, m.DispatchConfirmed(
        auction_id=body.auction_id, eta_s=eta, trips=agent.trips))
    agent.add_behaviour(TripBehaviour(m.Award(
        auction_id=body.auction_id, vehicle=str(agent.jid.bare), passenger=body.passenger,
        pickup=body.pickup, dropoff=body.dropoff, price=0.0,
    )))
