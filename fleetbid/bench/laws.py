"""Cost of the law controller per message: `python -m fleetbid.bench.laws`.

Runs the controller alone (no XMPP), on the messages an auction manager receives and a
vehicle sends most: bids, under the default law and under a law requiring certificates.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from spade.message import Message

from fleetbid.laws import certificates
from fleetbid.laws.book import LawBook, builtin_laws
from fleetbid.laws.controller import Controller
from fleetbid.laws.schema import law_from_dict
from fleetbid.protocol import codec
from fleetbid.protocol import messages as m

AM, VEHICLE, CA = "auction-0@bench", "vehicle-1@bench", "certification-authority@bench"


def per_call_us(step: Callable[[], object], n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        step()
    return (time.perf_counter() - start) / n * 1e6


def main() -> None:
    private, public = certificates.new_key()
    certified = law_from_dict({"name": "certified", "auction": {"type": "sealed-first-price"},
                               "eligibility": {"certified": True}, "audit": {"kinds": ["bid"]}})
    spec = m.OpenAuction(auction_id="a1", passenger="p@bench", pickup="1", dropoff="2",
                         cluster=0, requested_at=0.0)
    bid = m.Bid(auction_id="a1", bid=0.01, eta_s=50.0)

    def received(sender: str, to: str, body: m.Body, **metadata: str) -> Message:
        msg = codec.encode(to, body)
        msg.sender = sender
        for key, value in metadata.items():
            msg.set_metadata(key, value)
        return msg

    for name, law in (("sealed-first-price", builtin_laws()["sealed-first-price"]),
                      ("certified", certified)):
        ctl = Controller(AM, "auction-manager", LawBook(law), {"auditor": "auditor@bench",
                         "certification-authority": CA}, public, lambda: 10.0)
        ctl.on_receive(received("mm@bench", AM, spec), spec)
        cert = certificates.encode(certificates.issue(private, VEHICLE, CA, 0.0, 1e6))
        msg = received(VEHICLE, AM, bid, cert=cert)
        us = per_call_us(lambda ctl=ctl, msg=msg: ctl.on_receive(msg, bid), 20000)
        print(f"{name:20} manager receives a bid (+ its audit copy): {us:6.1f} us")
        vehicle = Controller(VEHICLE, "vehicle", LawBook(law), {"auditor": "auditor@bench"},
                             public, lambda: 10.0)
        vehicle.certificate = certificates.decode(cert)
        call = m.CallForBids(auction_id="a1", pickup="1", n=2, deadline=10.0)
        call_msg = received(AM, VEHICLE, call)

        def send(vehicle: Controller = vehicle, call_msg: Message = call_msg,
                 call: m.CallForBids = call) -> None:
            vehicle.on_receive(call_msg, call)
            vehicle.on_send(codec.encode(AM, bid))

        us = per_call_us(send, 20000)
        print(f"{name:20} vehicle receives a call, sends a bid (encode): "
              f"{us:6.1f} us")


if __name__ == "__main__":
    main()
