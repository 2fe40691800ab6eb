"""The base of every message body, the envelope constants and the value types bodies use.

A body schema registers itself by subclassing `Body` with a `TYPE`: the codec
(`protocol.codec`) knows every subclass, so there is no list of schemas to keep by hand.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, ClassVar

import msgspec

PROTOCOL = "fleetbid-auction"
ONTOLOGY = "fleetbid"

NodeId = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
Jid = Annotated[str, msgspec.Meta(min_length=3, max_length=256, pattern=r"^[^@\s]+@[^@\s]+$")]
AuctionId = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]
NonNeg = Annotated[float, msgspec.Meta(ge=0)]
Positive = Annotated[float, msgspec.Meta(gt=0)]
Reason = Annotated[str, msgspec.Meta(max_length=500)]

SCHEMAS: dict[str, type[Body]] = {}  # TYPE -> schema, filled by Body.__init_subclass__


class Body(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """Base of every body. `TYPE` names the schema; `PERFORMATIVES` are those it may travel with."""

    TYPE: ClassVar[str]
    PERFORMATIVES: ClassVar[tuple[str, ...]]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # Registered by subclassing: a new message type is known to the codec at once.
        super().__init_subclass__(**kwargs)
        if "TYPE" in cls.__dict__:
            if cls.TYPE in SCHEMAS:
                raise TypeError(f"message type {cls.TYPE!r} defined twice")
            SCHEMAS[cls.TYPE] = cls

    def __post_init__(self) -> None:
        # JSON has no NaN/inf, but bodies built in code never went through JSON: check here.
        for name in self.__struct_fields__:
            value = getattr(self, name)
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError(f"{name} must be finite")
