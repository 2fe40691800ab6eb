"""Replication: ISIS total-order multicast over UDP with membership and state transfer.

Sans-IO protocol code (replica.py and below) runs on real UDP (node.ReplicaNode) or on the
seeded simulated network (simnet, simgroup). Does not import SPADE.
"""

from fleetbid.replication.api import (
    Delivery,
    GroupConfig,
    GroupStatus,
    ReplicationError,
    StateMachine,
    View,
)
from fleetbid.replication.client import ClientCore, GroupClient
from fleetbid.replication.node import FaultSpec, ReplicaNode
from fleetbid.replication.replica import Replica

__all__ = ["ClientCore", "Delivery", "FaultSpec", "GroupClient", "GroupConfig", "GroupStatus",
           "Replica", "ReplicaNode", "ReplicationError", "StateMachine", "View"]
