"""Raw XMPP ceiling: one-way SPADE message rate and ping-pong RTT between two processes.

Sender and receiver live in separate OS processes so every message really crosses the
server (spade would short-cut same-process delivery).  Messages look like protocol
traffic: a small JSON body and 4 metadata fields.  A credit window (receiver acks every
window/2 messages) keeps the sender from flooding the server's queues.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing as mp
import queue
import secrets
import statistics
import time
import traceback
from multiprocessing.process import BaseProcess
from multiprocessing.queues import Queue as MpQueue
from typing import Any

from spade.behaviour import CyclicBehaviour, OneShotBehaviour
from spade.message import Message

from fleetbid.platform.xmpp_server import XmppEndpoint

_IDLE_TIMEOUT_S = 30.0  # a child gives up if its peer goes silent this long
_RTT_WARMUP = 20


def _message(to: str, performative: str, seq: int) -> Message:
    body = json.dumps({"seq": seq, "ride": 1000 + seq, "vehicle": "v-17", "eta_s": 312.5})
    return Message(
        to=to,
        body=body,
        metadata={
            "performative": performative,
            "protocol": "fleetbid-bench",
            "ontology": "dispatch",
            "conversation_id": f"c-{seq // 100}",
        },
    )


def _seq(msg: Message) -> int:
    return int(json.loads(msg.body)["seq"])


def _child_setup() -> None:
    from fleetbid.platform._server_main import _die_with_parent
    from fleetbid.platform.eventloop import install_uvloop

    _die_with_parent()  # never outlive the benchmarking process
    install_uvloop()


# -- receiver process ------------------------------------------------------------------
def _receiver_main(
    endpoint: XmppEndpoint, name: str, messages: int, window: int, out: MpQueue[Any]
) -> None:
    _child_setup()
    from fleetbid.platform.eventloop import run

    try:
        out.put(("rx", run(_receiver(endpoint, name, messages, window, out))))
    except BaseException:
        out.put(("error", "receiver: " + traceback.format_exc()))


async def _receiver(
    endpoint: XmppEndpoint, name: str, messages: int, window: int, out: MpQueue[Any]
) -> dict[str, float]:
    from fleetbid.platform.xmpp_agent import XmppAgent

    agent = XmppAgent(name, endpoint)
    done: asyncio.Future[dict[str, float]] = asyncio.get_running_loop().create_future()
    ack_every = max(1, window // 2)

    class Receive(CyclicBehaviour):
        count = 0
        t_first = 0.0

        async def run(self) -> None:
            msg = await self.receive(timeout=_IDLE_TIMEOUT_S)
            if msg is None:
                if not done.done():
                    done.set_exception(TimeoutError(f"receiver idle; got {self.count} msgs"))
                self.kill()
                return
            kind = msg.get_metadata("performative")
            if kind == "ping":  # echo for RTT
                await agent.send(_message(str(msg.sender), "pong", _seq(msg)), self)
                return
            now = time.perf_counter()
            self.count += 1
            if self.count == 1:
                self.t_first = now
            if self.count % ack_every == 0 or self.count == messages:
                await agent.send(_message(str(msg.sender), "ack", self.count), self)
            if self.count == messages and not done.done():
                done.set_result({"seconds": now - self.t_first, "messages": self.count})

    agent.add_behaviour(Receive())
    await agent.start()
    out.put(("ready", str(agent.jid)))
    try:
        return await done
    finally:
        await asyncio.sleep(0.2)  # let the last ack leave the socket
        await agent.stop()


# -- sender process --------------------------------------------------------------------
def _sender_main(
    endpoint: XmppEndpoint,
    name: str,
    peer: str,
    messages: int,
    window: int,
    rtt_samples: int,
    out: MpQueue[Any],
) -> None:
    _child_setup()
    from fleetbid.platform.eventloop import run

    try:
        result = run(_sender(endpoint, name, peer, messages, window, rtt_samples))
        out.put(("tx", result))
    except BaseException:
        out.put(("error", "sender: " + traceback.format_exc()))


async def _sender(
    endpoint: XmppEndpoint, name: str, peer: str, messages: int, window: int, rtt_samples: int
) -> dict[str, float]:
    from fleetbid.platform.xmpp_agent import XmppAgent

    agent = XmppAgent(name, endpoint)
    result: dict[str, float] = {}

    class Send(OneShotBehaviour):
        async def expect(self, performative: str) -> Message:
            msg = await self.receive(timeout=_IDLE_TIMEOUT_S)
            if msg is None:
                raise TimeoutError(f"sender: no {performative} within {_IDLE_TIMEOUT_S} s")
            return msg

        async def run(self) -> None:
            rtts = []
            for i in range(_RTT_WARMUP + rtt_samples):
                t0 = time.perf_counter()
                await agent.send(_message(peer, "ping", i), self)
                while _seq(await self.expect("pong")) != i:
                    pass
                if i >= _RTT_WARMUP:
                    rtts.append(time.perf_counter() - t0)
            result["xmpp_rtt_p50_ms"] = statistics.median(rtts) * 1000 if rtts else 0.0

            acked = sent = 0
            t0 = time.perf_counter()
            while acked < messages:
                while sent < messages and sent - acked < window:
                    await agent.send(_message(peer, "inform", sent), self)
                    sent += 1
                    # take credit back as it arrives, without blocking
                    while (ack := await self.receive()) is not None:
                        acked = max(acked, _seq(ack))
                if acked < messages:
                    acked = max(acked, _seq(await self.expect("ack")))
            result["sender_seconds"] = time.perf_counter() - t0

    behaviour = Send()
    agent.add_behaviour(behaviour)
    await agent.start()
    try:
        await behaviour.join()
        if isinstance(error := behaviour.exit_code, BaseException):  # spade stores it there
            raise RuntimeError(f"sender behaviour failed: {error!r}") from error
        if "sender_seconds" not in result:
            raise RuntimeError("sender behaviour ended before finishing")
        return result
    finally:
        await agent.stop()


# -- parent ----------------------------------------------------------------------------
def _get(out: MpQueue[Any], procs: list[BaseProcess], deadline: float) -> tuple[str, Any]:
    while True:
        try:
            kind, payload = out.get(timeout=0.5)
        except queue.Empty:
            kind, payload = "", None
        if not kind:
            if time.monotonic() > deadline:
                raise TimeoutError("raw XMPP benchmark timed out")
            dead = [p for p in procs if p.exitcode not in (None, 0)]
            if dead:
                raise RuntimeError(f"benchmark process died (exit code {dead[0].exitcode})")
            continue
        if kind == "error":
            raise RuntimeError(f"raw XMPP benchmark failed in {payload}")
        return kind, payload


def measure_xmpp_throughput(
    endpoint: XmppEndpoint,
    messages: int = 5000,
    window: int = 200,
    *,
    rtt_samples: int = 200,
    timeout: float = 300.0,
) -> dict[str, float | int]:
    """One-way SPADE message rate across the server, between two fresh processes.

    Returns ``{"xmpp_msgs_per_s", "messages", "seconds", "xmpp_rtt_p50_ms"}``; the rate
    is measured by the receiver from first to last message.
    """
    if messages < 2 or window < 2:
        raise ValueError("messages and window must both be >= 2")
    ctx = mp.get_context("spawn")
    out: MpQueue[Any] = ctx.Queue()
    tag = secrets.token_hex(4)  # fresh accounts: in-band registration of new names
    rx_name, tx_name = f"bench-rx-{tag}", f"bench-tx-{tag}"
    deadline = time.monotonic() + timeout
    rx = ctx.Process(
        target=_receiver_main,
        args=(endpoint, rx_name, messages, window, out),
        name="fleetbid-bench-rx",
        daemon=True,
    )
    procs: list[BaseProcess] = [rx]
    try:
        rx.start()
        kind, rx_jid = _get(out, procs, deadline)
        assert kind == "ready", kind
        tx = ctx.Process(
            target=_sender_main,
            args=(endpoint, tx_name, rx_jid, messages, window, rtt_samples, out),
            name="fleetbid-bench-tx",
            daemon=True,
        )
        procs.append(tx)
        tx.start()
        results: dict[str, dict[str, float]] = {}
        while len(results) < 2:
            kind, payload = _get(out, procs, deadline)
            results[kind] = payload
        for p in procs:
            p.join(timeout=10.0)
    finally:
        for p in procs:
            if p.is_alive():
                p.kill()
                p.join(timeout=5.0)
        out.close()
    seconds = results["rx"]["seconds"]
    count = int(results["rx"]["messages"])
    return {
        # first→last spans count-1 inter-arrival gaps
        "xmpp_msgs_per_s": (count - 1) / seconds if seconds > 0 else float("inf"),
        "messages": count,
        "seconds": seconds,
        "xmpp_rtt_p50_ms": results["tx"]["xmpp_rtt_p50_ms"],
    }
