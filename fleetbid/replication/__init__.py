"""Replication: ISIS total-order multicast over UDP with membership and state transfer.

Sans-IO protocol code (replica.py and below) runs on real UDP (node.ReplicaNode) or on the
seeded simulated network (simnet, simgroup). Does not import SPADE.
"""

from fleetbid.replication.api import (
    Delivery,
    GroupConfig,
    ReplicationError,
    StateMachine,
    View,
)

__all__ = ["Delivery", "GroupConfig", "ReplicationError", "StateMachine", "View"]
