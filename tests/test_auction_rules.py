"""The auction's pure rules: equilibrium bid, ranking, proxy groups, the bid book."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fleetbid.auction.book import BidBook, Offer
from fleetbid.auction.rules import equilibrium_bid, group_count, rank_key, split_groups

times = st.floats(min_value=0.0, max_value=1e5, allow_nan=False)


def test_equilibrium_bid_formula() -> None:
    assert equilibrium_bid(4, 100.0) == pytest.approx(0.75 / 100.0)
    assert equilibrium_bid(1, 100.0) == 0.0  # a lone bidder: (n-1)/n = 0
    assert equilibrium_bid(2, 0.0) == pytest.approx(0.5)  # T floored at 1 s
    with pytest.raises(ValueError):
        equilibrium_bid(0, 10.0)
    with pytest.raises(ValueError):
        equilibrium_bid(3, math.nan)


@given(st.integers(min_value=1, max_value=500), times, times)
def test_with_a_common_n_the_higher_bid_is_the_shorter_trip(n: int, t1: float, t2: float) -> None:
    b1, b2 = equilibrium_bid(n, t1), equilibrium_bid(n, t2)
    if max(t1, 1.0) < max(t2, 1.0) and n > 1:
        assert b1 > b2


@given(st.lists(st.tuples(times, st.integers(0, 50)), min_size=1, max_size=60,
                unique_by=lambda t: t[1]),
       st.integers(min_value=1, max_value=10))
def test_any_grouping_elects_the_same_winner(trips: list[tuple[float, int]], k: int) -> None:
    """Proxies forward only their group's best: the global best survives any partition."""
    n = len(trips)
    offers = [Offer(f"v{i:03d}@d", equilibrium_bid(n, t), max(t, 1.0)) for t, i in trips]
    direct = min(offers, key=Offer.key)
    by_vehicle = {o.vehicle: o for o in offers}
    groups = split_groups(list(by_vehicle), min(k, n))
    assert sorted(v for g in groups for v in g) == sorted(by_vehicle)  # disjoint cover
    local = [min((by_vehicle[v] for v in g), key=Offer.key) for g in groups]
    assert min(local, key=Offer.key) == direct
    assert direct.eta_s == min(o.eta_s for o in offers)


def test_group_count() -> None:
    assert group_count(100, None, 10) == 10  # about √n groups
    assert group_count(30, None, 10) == 5
    assert group_count(1, None, 10) == 1
    assert group_count(25, 0, 10) == 0  # no proxy
    assert group_count(25, 3, 10) == 3
    assert group_count(2, 3, 10) == 2  # never more groups than bidders
    assert group_count(100, None, 4) == 4  # nor than proxies launched
    assert group_count(0, None, 4) == 0


def test_rank_key_breaks_ties_by_eta_then_jid() -> None:
    assert rank_key(0.0, 5.0, "b") < rank_key(0.0, 6.0, "a")
    assert rank_key(0.0, 5.0, "a") < rank_key(0.0, 5.0, "b")
    assert rank_key(0.2, 9.0, "z") < rank_key(0.1, 1.0, "a")


def test_bid_book_tracks_answers_and_strikes() -> None:
    book = BidBook(frozenset({"a", "b", "c"}))
    book.add_bid(Offer("a", 0.3, 10))
    book.add_bid(Offer("b", 0.5, 6))
    assert not book.complete()
    book.add_decline("c")
    assert book.complete()
    assert book.best() == Offer("b", 0.5, 6)
    book.strike("b")  # b was assigned elsewhere: the next best stands
    assert book.best() == Offer("a", 0.3, 10)
    with pytest.raises(ValueError):
        book.add_bid(Offer("a", 0.9, 1))  # no second bid
    with pytest.raises(KeyError):
        book.add_bid(Offer("stranger", 0.9, 1))
    book.strike("a")
    assert book.best() is None
