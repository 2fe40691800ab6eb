"""Checked numbers for command-line options: argparse turns a ValueError into a usage error
(exit 2) naming the option, so `--timeout nan` or `--interval -1` never reach a run."""

from __future__ import annotations

import argparse
import ipaddress
import math
from collections.abc import Callable

# The latest simulated start of a scripted request: one simulated week. A request set later
# would keep its passenger (and the client) waiting for ever at any sensible speed.
LATEST_START_S = 7 * 24 * 3600.0


def _number(kind: type, low: float, low_ok: bool, high: float = math.inf,
            what: str = "") -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a {kind.__name__}") from None
        if not math.isfinite(value) or value < low or (value == low and not low_ok) \
                or value > high:
            raise argparse.ArgumentTypeError(f"{text!r}: {what}")
        return value

    parse.__name__ = kind.__name__  # argparse names the type in its messages
    return parse


positive_float = _number(float, 0.0, False, what="must be a finite number > 0")
non_negative_float = _number(float, 0.0, True, what="must be a finite number >= 0")
positive_int = _number(int, 1, True, what="must be an integer >= 1")
non_negative_int = _number(int, 0, True, what="must be an integer >= 0")
port = _number(int, 1, True, 65535, what="must be a port number 1..65535")
port_or_any = _number(int, 0, True, 65535, what="must be a port number 0..65535 (0: any)")


def loopback_port(text: str) -> tuple[str, int]:
    """`[HOST:]PORT` of a server that listens on loopback only (`serve --web`)."""
    host, _, number = text.rpartition(":")
    host = host or "127.0.0.1"
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise argparse.ArgumentTypeError(f"{text!r}: the host must be loopback (127.0.0.1, "
                                         "localhost or ::1)")
    return host, int(port(number))


def multicast_endpoint(text: str) -> tuple[str, int]:
    """`ADDR:PORT` of an IPv4 multicast group (224.0.0.0/4)."""
    import ipaddress

    address, _, number = text.rpartition(":")
    try:
        ok = ipaddress.IPv4Address(address).is_multicast
    except ValueError:
        ok = False
    if not ok:
        raise argparse.ArgumentTypeError(f"{text!r}: not an IPv4 multicast ADDR:PORT")
    return address, int(port(number))


def hex_key(text: str) -> str:
    try:
        if len(bytes.fromhex(text)) >= 16:
            return text
    except ValueError:
        pass
    raise argparse.ArgumentTypeError("must be at least 16 bytes as hex digits")


def ipv4_address(text: str) -> str:
    """A dotted IPv4 address (`--listen`, `--mcast-interface`)."""
    try:
        return str(ipaddress.IPv4Address(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an IPv4 address") from None


def multicast_group(text: str) -> str:
    """An IPv4 multicast group (224.0.0.0/4) for `--mcast-group`."""
    address = ipv4_address(text)
    if not ipaddress.IPv4Address(address).is_multicast:
        raise argparse.ArgumentTypeError(f"{text!r} is not a multicast group (224.0.0.0/4)")
    return address
