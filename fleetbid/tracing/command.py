"""`fleetbid trace`: read the trace of `fleetbid run --trace FILE`."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from fleetbid.tracing import formats, render
from fleetbid.tracing.formats import FORMATS
from fleetbid.tracing.reader import (
    Conversation,
    Message,
    TraceError,
    agent_matcher,
    causal_records,
    involving,
    load,
)

DESCRIPTION = """\
Read the message trace written by `fleetbid run --trace FILE`.

Without options: one line per conversation (auction): passenger, winner, bidders, messages,
wall and simulated duration, outcome. --conversation ID: that auction's messages, one line
each, in causal order. --agent JID: only messages sent or received by that agent (a bare JID
or its short name, e.g. vehicle-3), in one auction or across the whole run. FILE may be one
of several per-process files: FILE and its FILE.* siblings are read and merged, as are
several FILE arguments.

--format mermaid|svg|html with --conversation ID draws that auction as a sequence diagram
(Mermaid text, an SVG picture, or a self-contained HTML page with the SVG and a table of
the messages), to stdout or to --out PATH. The SVG folds a repeated fan-out (one agent
sending the same message to 3 or more agents) and its answers into one arrow group;
--no-fold draws every message. See docs/tracing.md.
"""


def add_parser(subparsers: Any) -> None:
    """Register `trace` on the `fleetbid` subcommand parser."""
    p = subparsers.add_parser(
        "trace", help="read a message trace (fleetbid run --trace FILE)",
        description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("files", nargs="+", metavar="FILE",
                   help="trace file(s); FILE.* siblings are merged in")
    p.add_argument("--conversation", "-c", metavar="ID", default=None,
                   help="show one conversation (auction id = passenger request id)")
    p.add_argument("--agent", "-a", metavar="JID", default=None,
                   help="only messages sent or received by this agent (JID or short name)")
    p.add_argument("--json", action="store_true",
                   help="JSON: the conversation list as an array; with --conversation or "
                        "--agent, the trace records (send and recv) as JSON lines")
    p.add_argument("--format", "-f", choices=("text", *FORMATS), default="text",
                   help="output of --conversation: text (default), or a sequence diagram: "
                        "mermaid, svg, html")
    p.add_argument("--out", "-o", metavar="PATH", default=None,
                   help="write the diagram of --format to PATH instead of stdout")
    p.add_argument("--fold", action=argparse.BooleanOptionalAction, default=True,
                   help="svg/html: fold repeated fan-outs and their answers (default: fold)")
    # `fleetbid` main() reads log_level for every command.
    p.set_defaults(func=run, log_level="WARNING")


def _warn(text: str) -> None:
    print(f"fleetbid trace: warning: {text}", file=sys.stderr)


def _error(text: str) -> None:
    print(f"fleetbid trace: error: {text}", file=sys.stderr)


def _emit(text: str) -> None:
    if text:
        print(text)


def run(args: argparse.Namespace) -> int:
    try:
        return _run(args)
    except BrokenPipeError:  # `fleetbid trace T | head`
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


def _usage_problem(args: argparse.Namespace) -> str | None:
    """Options that do not go together (checked before reading anything)."""
    if args.format == "text":
        return "--out needs --format mermaid, svg or html" if args.out is not None else None
    if args.conversation is None:
        return f"--format {args.format} needs --conversation ID"
    if args.json:
        return f"--format {args.format} and --json do not go together"
    return None


def _run(args: argparse.Namespace) -> int:
    problem = _usage_problem(args)
    if problem:
        _error(problem)
        return 2
    try:
        trace = load(args.files, _warn)
    except TraceError as exc:
        _error(str(exc))
        return 2
    where = ", ".join(args.files)
    if args.format != "text" and not trace.records:
        # Nothing readable at all (an empty, binary or foreign file): bad input.
        _error(f"no trace records in {where}")
        return 2

    if args.agent is not None:
        matches = agent_matcher(args.agent)
        if not any(matches(jid) for jid in trace.agents()):
            _error(f"no agent {args.agent!r} in {where}")
            return 1

    if args.conversation is None and args.agent is None:
        convs = trace.conversations()
        if args.json:
            _emit(render.conversations_json(convs))
        else:
            outside = sum(1 for m in trace.messages if not m.record.conversation)
            _emit(render.conversations_text(convs, trace.files, len(trace.records), outside))
        return 0

    if args.conversation is not None:
        conv = trace.conversation(args.conversation)
        if conv is None:
            known = len(trace.conversations())
            _error(f"no conversation {args.conversation!r} in {where} "
                   f"({known} conversation{'s' if known != 1 else ''}; "
                   "`fleetbid trace FILE` lists them)")
            return 1
        messages = conv.messages
    else:
        conv = None
        messages = trace.messages
    if args.agent is not None:
        messages = involving(messages, args.agent)

    if args.format != "text" and conv is not None:
        return _write_diagram(args, conv, messages)
    if args.json:
        _emit(render.records_jsonl(causal_records(messages)))
        return 0
    if conv is not None:
        _emit(render.conversation_header(conv))
    if args.agent is not None:
        convs = {m.record.conversation for m in messages if m.record.conversation}
        _emit(f"agent {args.agent}: {len(messages)} message{'s' if len(messages) != 1 else ''}"
              + ("" if conv is not None else
                 f" in {len(convs)} conversation{'s' if len(convs) != 1 else ''}"))
    _emit(render.messages_text(messages, show_conversation=conv is None))
    return 0


def _write_diagram(args: argparse.Namespace, conv: Conversation,
                   messages: list[Message]) -> int:
    if not messages:
        _error(f"agent {args.agent!r} has no message in conversation {conv.auction_id!r}")
        return 1
    text = formats.render(args.format, conv, messages, fold=args.fold)
    if args.out is None:
        sys.stdout.write(text)
        sys.stdout.flush()
        return 0
    try:
        with open(args.out, "w", encoding="utf-8") as handle:
            handle.write(text)
    except OSError as exc:
        _error(f"{args.out}: cannot write: {exc.strerror or exc}")
        return 2
    return 0
