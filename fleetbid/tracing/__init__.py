"""Reading message traces of `fleetbid run --trace FILE` (the `fleetbid trace` command), and
drawing a conversation as a sequence diagram (Mermaid, SVG, HTML; docs/tracing.md)."""

from fleetbid.tracing.reader import Conversation, Message, Record, Trace, TraceError, load

__all__ = ["Conversation", "Message", "Record", "Trace", "TraceError", "load"]
