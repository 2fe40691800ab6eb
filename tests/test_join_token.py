"""Joining with a token, without starting anything: tokens, join strings, the handshake's
cryptography, slot allocation, and the MainManager's liveness (docs/hosts.md)."""

from __future__ import annotations

import pytest

from fleetbid.behaviours.liveness import Liveness, idle_pool
from fleetbid.cli import build_parser
from fleetbid.core.config import RunConfig
from fleetbid.platform.accounts import AccountKeys
from fleetbid.platform.session_watch import unavailable_presence, watched
from fleetbid.platform.xmpp_server import XmppEndpoint
from fleetbid.run.population import Names, make_plan
from fleetbid.run.replica_setup import replica_settings
from fleetbid.service.join import with_join
from fleetbid.service.join_channel import (
    JoinRefused,
    JoinService,
    proof,
    seal,
    transcript,
    unseal,
)
from fleetbid.service.join_token import (
    JoinString,
    TokenBook,
    mint,
    parse_join_string,
    token_for,
    token_id_of,
)
from fleetbid.service.state import ServeState

KEY = "k" * 64
ENDPOINT = XmppEndpoint("10.77.0.1", 5222, "localhost", True,
                        AccountKeys.from_master("m" * 64))


def test_serve_recomputes_a_minted_token_from_its_id_and_no_other() -> None:
    token = mint(KEY, ttl_s=60)
    assert token_for(KEY, token_id_of(token)) == token
    assert token_for("x" * 64, token_id_of(token)) != token


def test_a_token_is_refused_when_expired_used_or_malformed_and_accepted_otherwise() -> None:
    book = TokenBook()
    fresh = token_id_of(mint(KEY, ttl_s=60, now=1000.0))
    assert book.refusal(fresh, now=1000.0) is None
    assert "expired" in (book.refusal(fresh, now=1061.0) or "")
    book.consume(fresh)
    assert "already used" in (book.refusal(fresh, now=1000.0) or "")
    assert book.refusal("../../etc", now=1000.0) == "malformed join token"


def test_a_join_string_round_trips_and_names_what_is_missing() -> None:
    token = mint(KEY)
    join = JoinString("10.77.0.1", 40000, "localhost", token)
    assert parse_join_string(str(join)) == join
    assert token not in repr(join)  # a secret until used: never in a log line
    for bad, why in [("http://h:1/d?token=" + token, "fleetbid://"),
                     ("fleetbid://h/d?token=" + token, "HOST:PORT"),
                     ("fleetbid://h:1/?token=" + token, "domain"),
                     ("fleetbid://h:1/d", "token"),
                     ("fleetbid://h:1/d?token=abc", "ID.EXPIRY.MAC")]:
        with pytest.raises(ValueError, match=why):
            parse_join_string(bad)


def test_a_malformed_join_string_is_a_usage_error() -> None:
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(["node", "--join", "fleetbid://h:1/d?token=nope"])
    assert exit_.value.code == 2


def test_the_box_opens_only_with_the_token_and_the_transcript_it_was_sealed_for() -> None:
    token, other = mint(KEY), mint(KEY)
    text = transcript({"v": 1, "nonce": "a" * 64}, "b" * 64)
    box = seal(token, text, {"secret": 42})
    assert unseal(token, text, box) == {"secret": 42}
    with pytest.raises(JoinRefused):
        unseal(other, text, box)
    with pytest.raises(JoinRefused):
        unseal(token, transcript({"v": 1, "nonce": "c" * 64}, "b" * 64), box)
    # Each side proves the token with its own label: one cannot replay the other's proof.
    assert proof(token, "serve", text) != proof(token, "node", text)


def joinable_state() -> ServeState:
    config = RunConfig(vehicles=1, join_slots=4, replicas=3, replica_slots=2)
    plan = make_plan(config, ENDPOINT, ["n"], Names())
    replicas = replica_settings(plan, net=config)
    state = ServeState.describe(config, ENDPOINT, plan.directory, 1.0, "m")
    return with_join(state, config, ENDPOINT, Names(), replicas)


def test_slots_are_given_in_order_and_a_refused_request_takes_none() -> None:
    service = JoinService(joinable_state(), lambda _text: None)
    assert service.state.join_key
    assert service.allocate(3, 0) == (0, 3, 0)
    for vehicles, replica, why in [(2, None, "only 1 of the fleet's 4"),
                                   (0, 0, "given to another node"),
                                   (0, 2, "not among the fleet's 2"),
                                   (0, None, "nothing to run"),
                                   (-1, None, "malformed"),
                                   (True, None, "malformed")]:
        with pytest.raises(JoinRefused, match=why):
            service.allocate(vehicles, replica)
    assert service.allocate(None, 1) == (3, 1, 1)  # all that are left


class Pool:
    def __init__(self) -> None:
        self.idle_vehicles = {"vehicle-1@d": ("n", 0), "vehicle-2@d": ("n", 0)}


def test_a_vehicle_whose_session_ended_leaves_the_idle_pool_and_nothing_else_does() -> None:
    registry = Pool()
    liveness = Liveness(registry, frozenset({"vehicle-1@d", "vehicle-2@d"}))
    assert liveness.session_ended("vehicle-1@d")
    assert not liveness.session_ended("vehicle-1@d")  # gone already: counted, not idle
    assert not liveness.session_ended("passenger-x@d")
    assert list(idle_pool(registry)) == ["vehicle-2@d"]
    assert liveness.gone == {"vehicle-1@d": 2}


def test_the_server_tells_the_watcher_of_vehicles_only() -> None:
    assert watched("vehicle-3", "main-manager", "vehicle-")
    assert not watched("passenger-ab", "main-manager", "vehicle-")
    assert not watched("main-manager", "main-manager", "")
    assert unavailable_presence("vehicle-3@d/r", "main-manager@d/s") == (
        b'<presence from="vehicle-3@d/r" to="main-manager@d/s" type="unavailable" />')
