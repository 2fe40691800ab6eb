"""The MainManager's view of which vehicles are still connected.

A vehicle whose host crashed sends nothing more, and without this the registry kept it
"idle": it was called in every auction of its cluster until the round timed out. The
embedded server tells the MainManager when a vehicle's session ends (an unavailable
presence from the vehicle's full JID, platform/session_watch.py), so the registry drops it
from its idle pool at once. A vehicle that comes back logs in again and announces itself
(`vehicle-available`), which puts it back in the pool as usual: nothing to undo here.

Not a message of the protocol: presence is the server's word, not a vehicle's, and adds no
stanza to any auction. With --replicate-main the registry is a replicated state machine
whose inputs must go through the group's total order; a presence seen by one replica is not
such an input, so there the pool is left as it is (docs/hosts.md).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("fleetbid.liveness")


def idle_pool(registry: Any) -> dict[str, Any]:
    """The registry's idle vehicles (`idle_vehicles` of the auction registry, `idle` of the
    dispatch and batch registries), keyed by vehicle JID."""
    pool = getattr(registry, "idle_vehicles", None)
    if pool is None:
        pool = getattr(registry, "idle", None)
    return pool if isinstance(pool, dict) else {}


@dataclass
class Liveness:
    """Attached to the MainManager's XMPP client; `gone` counts the sessions seen to end."""

    registry: Any
    fleet: frozenset[str]
    gone: dict[str, int] = field(default_factory=dict)  # vehicle -> sessions ended

    def attach(self, client: Any) -> None:
        client.add_event_handler("presence_unavailable", self.on_unavailable)

    def on_unavailable(self, presence: Any) -> None:
        self.session_ended(str(presence["from"].bare))

    def session_ended(self, vehicle: str) -> bool:
        """Forget `vehicle` as idle; True if it was in the pool."""
        if vehicle not in self.fleet:
            return False  # not a vehicle of ours (or a client's session)
        self.gone[vehicle] = self.gone.get(vehicle, 0) + 1
        was_idle = idle_pool(self.registry).pop(vehicle, None) is not None
        log.warning("%s's session ended: %s", vehicle,
                    "out of the idle pool until it announces itself again" if was_idle
                    else "it was not idle")
        return was_idle
