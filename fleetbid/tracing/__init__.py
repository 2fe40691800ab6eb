"""Reading message traces of `fleetbid run --trace FILE` (the `fleetbid trace` command)."""

from fleetbid.tracing.reader import Conversation, Message, Record, Trace, TraceError, load

__all__ = ["Conversation", "Message", "Record", "Trace", "TraceError", "load"]
