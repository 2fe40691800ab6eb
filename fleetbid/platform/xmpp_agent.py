"""Base SPADE agent of fleetbid: endpoint-aware connection, message accounting, hooks."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import secrets
import ssl
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from slixmpp import JID
from slixmpp import Message as SlixmppMessage
from slixmpp.xmlstream import StanzaBase
from slixmpp.xmlstream import xmlstream as _xmlstream
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher.base import MatcherBase
from spade.agent import Agent, AuthenticationFailure, DisconnectedException
from spade.behaviour import CyclicBehaviour
from spade.message import SPADE_X_METADATA, Message

from fleetbid.platform.failover import Failover
from fleetbid.platform.xmpp_server import XmppEndpoint

_MESSAGE_TAG = "{jabber:client}message"
_BODY_TAG = "{jabber:client}body"

logger = logging.getLogger("fleetbid.xmpp")

MessageHook = Callable[[Message], None]

# Tracing (and anything else) plugs in here; called for every message of this process.
on_send: list[MessageHook] = []
on_receive: list[MessageHook] = []


@dataclass
class MessageCounters:
    """Per-process totals over all XmppAgents of the process."""

    sent: int = 0
    xmpp_sent: int = 0  # subset of `sent` that went through the XMPP server
    received: int = 0

    def as_dict(self) -> dict[str, int]:
        return {"sent": self.sent, "xmpp_sent": self.xmpp_sent, "received": self.received}


COUNTERS = MessageCounters()

_shared_tls_context: ssl.SSLContext | None = None


def install_shared_tls_context() -> ssl.SSLContext:
    """Make every slixmpp stream of this process reuse one client SSLContext (idempotent).

    slixmpp builds a fresh context per client (`create_default_context()` plus
    `set_default_verify_paths()`, i.e. parsing the system CA bundle): ~85 % of the CPU
    of starting an agent.  fleetbid agents all use spade's verify_security=False
    (self-signed local server), so one context with those settings serves them all.
    Streams given an explicit ssl_context are left alone.
    """
    global _shared_tls_context
    if _shared_tls_context is not None:
        return _shared_tls_context
    ctx = ssl.create_default_context()
    ctx.check_hostname = False  # what spade sets for verify_security=False
    ctx.verify_mode = ssl.CERT_NONE
    original_init = _xmlstream.XMLStream.__init__

    def __init__(
        self: _xmlstream.XMLStream, *args: Any, ssl_context: ssl.SSLContext | None = None,
        **kwargs: Any,
    ) -> None:  # fmt: skip
        original_init(self, *args, ssl_context=ssl_context or ctx, **kwargs)

    _xmlstream.XMLStream.__init__ = __init__  # type: ignore[method-assign]
    _shared_tls_context = ctx
    return ctx


class XmppAgent(Agent):
    """A SPADE agent named `name@endpoint.domain`, connecting to `endpoint.host:port`.

    Send through `await self.send(msg, behaviour)` so messages are counted; receipt is
    counted in `dispatch`, which spade calls for both in-process and XMPP deliveries.
    """

    always_xmpp = False  # send over the server even to an agent of this process

    def __init__(self, name: str, endpoint: XmppEndpoint, password: str | None = None) -> None:
        install_shared_tls_context()
        super().__init__(
            endpoint.jid(name),
            account_password(endpoint, name, password),
            port=endpoint.port,
            verify_security=False,
        )
        self.endpoint = endpoint
        self.failover = Failover(name, endpoint.addresses)
        # spade keeps each agent's last 1,000 in-process messages (Behaviour.send) for its web
        # UI, which fleetbid does not run: 1,000 messages, audit batches included, per agent
        # was memory a fleet filled for hours (docs/soak.md). fleetbid traces with trace.py.
        self.traces.size = 0
        self.sent = 0
        self.sent_over_xmpp = 0
        self.received = 0
        self._probe: tuple[str, asyncio.Future[None]] | None = None
        # spade's Container is a process-wide singleton holding the loop that was running
        # when it was created; follow the current loop if a later asyncio run replaced it.
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is not None and self.container.loop is not running:
            self.container.loop = running
            self.loop = running

    async def _async_connect(self) -> None:
        # spade connects to jid.host (the XMPP domain); the server may live elsewhere.
        client = self.client
        assert client is not None
        connect = client.connect
        failover = self.failover

        def connect_to_endpoint(*_args: Any, **_kwargs: Any) -> asyncio.Future[Any]:
            host, port = failover.address  # the endpoint's, or the next node after a loss
            return connect(host=host, port=port)

        client.connect = connect_to_endpoint  # type: ignore[method-assign]
        failover.prepare(client)
        # slixmpp raises its "message" event only for stanzas with a <body>; spade delivers
        # body-less (metadata-only) messages in-process, so deliver them over XMPP too.
        client.register_handler(
            Callback("fleetbid-bodyless-message", _BodylessMessage(), self._message_received)
        )
        await super()._async_connect()
        await self._await_reachable()
        failover.attach(client)

    async def _await_reachable(self, timeout: float = 10.0, retry_every: float = 0.2) -> None:
        """Return once the server routes messages to us.

        session_start fires before pyjabber has processed our initial presence; until then
        messages to our bare JID are silently dropped (message_persistence is off).  A
        message to ourselves that comes back proves we are reachable.
        """
        client = self.client
        assert client is not None
        probe_id = f"fleetbid-probe-{secrets.token_hex(8)}"
        arrived = asyncio.get_running_loop().create_future()
        self._probe = (probe_id, arrived)
        try:
            deadline = asyncio.get_running_loop().time() + timeout
            while not arrived.done():
                if asyncio.get_running_loop().time() > deadline:
                    raise TimeoutError(f"{self.jid}: server never routed messages to us")
                probe = client.Message()
                probe["to"] = self.jid.bare
                probe["id"] = probe_id
                probe["type"] = "normal"
                probe.send()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(arrived), retry_every)
        finally:
            self._probe = None

    def _message_received(self, msg: SlixmppMessage) -> list[asyncio.Task[Any]]:
        probe = getattr(self, "_probe", None)
        if msg["id"].startswith("fleetbid-probe-"):
            if probe is not None and msg["id"] == probe[0] and not probe[1].done():
                probe[1].set_result(None)
            return []  # never an application message (late duplicates included)
        return super()._message_received(msg)

    async def send(self, msg: Message, behaviour: CyclicBehaviour | Any) -> None:
        """Send `msg` and account for it (`behaviour` is the spade behaviour sending it).

        In-process receivers get it through spade's Container as usual. Over XMPP the
        stanza spade would build (body plus an XEP-0004 form of the metadata) is written
        straight to the stream: the same bytes, without building a slixmpp stanza tree,
        which was the largest cost of a send (see docs/performance.md).
        """
        # Same test spade's Container.send uses to pick in-process delivery (replicas of a
        # replicated role set `always_xmpp`: every copy of the receiver must get it).
        over_xmpp = self.always_xmpp or not self.container.has_agent(str(msg.to))
        if msg.empty_sender():
            msg.sender = str(self.jid)
        # Hooks first: in-process delivery runs the receiver's hooks inside the send below,
        # and a trace must show a message sent before it is received.
        for hook in on_send:
            hook(msg)
        if over_xmpp and self.client is not None:
            self.failover.send(self.client, lambda sender: stanza_xml(msg, sender))
            msg.sent = True
        else:
            await behaviour.send(msg)
        self.sent += 1
        COUNTERS.sent += 1
        if over_xmpp:
            self.sent_over_xmpp += 1
            COUNTERS.xmpp_sent += 1

    def dispatch(self, msg: Message) -> list[asyncio.Task[Any]]:
        self.received += 1
        COUNTERS.received += 1
        for hook in on_receive:
            hook(msg)
        # spade's own dispatch also formats the message for a debug log and str()s every
        # behaviour for its TraceStore, on every message: most of a receive's CPU. Tracing
        # lives in fleetbid.platform.trace instead.
        tasks = [self.submit(b.enqueue(msg)) for b in self.behaviours if b.match(msg)]
        if not tasks:
            logger.warning("%s: no behaviour matched a message from %s", self.name, msg.sender)
        return tasks

    async def stop(self) -> None:
        self.failover.closing = True
        await super().stop()
        release_client(self.client)
        # spade never unregisters: a stale entry would make later sends to this JID
        # look in-process (and be dispatched to a dead agent).
        if self.container.has_agent(str(self.jid)) and (
            self.container.get_agent(str(self.jid)) is self
        ):
            self.container.unregister(str(self.jid))


def release_client(client: Any) -> None:
    """Let a stopped agent's slixmpp client (and so the agent) be garbage-collected.

    slixmpp leaves two things behind that the event loop keeps, each holding the client:
    its outgoing-filter task (cancelled only in XMLStream.__del__, which therefore never
    runs) and scheduled events such as the whitespace keepalive (a loop timer). Every stopped
    agent, one per passenger, stayed in memory: a served fleet's passenger worker grew about
    10 MB a minute (docs/soak.md). Attribute names as of slixmpp 1.8.
    """
    if client is None:
        return
    filters = getattr(client, "_run_out_filters", None)
    if filters is not None:
        filters.cancel()
    for name in list(getattr(client, "scheduled_events", {})):
        client.cancel_schedule(name)


def account_password(endpoint: XmppEndpoint, name: str, password: str | None = None) -> str:
    """The password agent `name` registers and logs in with.

    On the embedded server it is derived from the run's keys (the server refuses any other
    registration), so `password` is ignored there: agents sharing an account, such as the
    replicas of an AuctionManager, derive the same one. Elsewhere: `password`, or random.
    """
    if endpoint.accounts is not None:
        # The server sees the username slixmpp sends: the JID's normalized localpart.
        return endpoint.accounts.password_for(JID(endpoint.jid(name)).user)
    return password if password is not None else secrets.token_urlsafe(16)


def stanza_xml(msg: Message, sender: str) -> str:
    """The <message/> stanza spade's `Message.prepare` builds, serialized directly."""
    fields = "".join(
        f'<field var={quoteattr(k)} type="text-single"><value>{escape(v)}</value></field>'
        for k, v in msg._metadata.items()  # spade keeps metadata here; no public iterator
    )
    if msg.thread:
        fields += (f'<field var="_thread_node" type="text-single"><value>{escape(msg.thread)}'
                   "</value></field>")
    form = (f'<x xmlns="jabber:x:data" type="form"><title>{SPADE_X_METADATA}</title>{fields}</x>'
            if fields else "")
    body = f"<body>{escape(msg.body)}</body>" if msg.body else ""
    return (f'<message xmlns="jabber:client" to={quoteattr(str(msg.to))} '
            f'from={quoteattr(sender)} type="chat">{body}{form}</message>')


class _BodylessMessage(MatcherBase):
    """Matches non-error <message/> stanzas that have no <body> (complement of slixmpp's)."""

    def __init__(self) -> None:
        super().__init__(None)

    def match(self, xml: StanzaBase) -> bool:
        el = xml.xml
        return el.tag == _MESSAGE_TAG and el.get("type") != "error" and el.find(_BODY_TAG) is None


class AgentStartError(RuntimeError):
    """One or more agents failed to connect/register."""


# A server that drops the stream during a login, or refuses a password an account being
# registered at that moment does not hold yet, may accept the next attempt: ejabberd 23.01
# crashes the logins when several processes register one account at once (the replicas of a
# manager all log in as it; docs/scale-out.md). A timeout is not retried (it has waited).
START_ATTEMPTS = 3
RETRIED_START_ERRORS = (DisconnectedException, AuthenticationFailure)


async def start_agents(
    agents: Iterable[Agent],
    concurrency: int = 16,
    *,
    timeout: float | None = 60.0,
    auto_register: bool = True,
) -> None:
    """Start `agents` with at most `concurrency` logins in flight (each costs server CPU).

    Raises AgentStartError naming every agent that failed or timed out; agents that did
    start are left running (the caller owns them and should stop them).
    """
    if concurrency < 1:
        raise ValueError("concurrency must be >= 1")
    gate = asyncio.Semaphore(concurrency)

    async def start_one(agent: Agent) -> None:
        for attempt in range(1, START_ATTEMPTS + 1):
            async with gate:
                try:
                    await asyncio.wait_for(agent.start(auto_register=auto_register), timeout)
                    return
                except RETRIED_START_ERRORS as exc:
                    _abort(agent)
                    if attempt == START_ATTEMPTS:
                        raise
                    logger.info("%s: login attempt %d failed (%s); trying again", agent.jid,
                                attempt, _describe(exc))
                except BaseException:
                    _abort(agent)
                    raise
            # Apart, so that copies of one account (replicas) no longer register in step.
            await asyncio.sleep(random.uniform(0.05, 0.25) * attempt)

    todo = list(agents)
    results = await asyncio.gather(*(start_one(a) for a in todo), return_exceptions=True)
    failures = [(a, r) for a, r in zip(todo, results, strict=True) if isinstance(r, BaseException)]
    if failures:
        detail = "; ".join(f"{a.jid}: {_describe(e)}" for a, e in failures[:10])
        more = f" (+{len(failures) - 10} more)" if len(failures) > 10 else ""
        raise AgentStartError(
            f"{len(failures)}/{len(todo)} agent(s) failed to start: {detail}{more}"
        ) from failures[0][1]


def _abort(agent: Agent) -> None:
    if agent.client is not None:  # stop slixmpp's reconnect attempts
        agent.client.abort()


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError | asyncio.TimeoutError):
        return "timed out connecting/authenticating"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
