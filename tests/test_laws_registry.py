"""When the MainManager's registry withdraws an auction: the law's deadlines, else the run's."""

from __future__ import annotations

import pytest

from fleetbid.behaviours.registry import withdrawal_time
from fleetbid.core.config import RunConfig
from fleetbid.laws.book import builtin_laws
from fleetbid.laws.schema import law_from_dict


def test_default_law_uses_the_runs_patience_and_window() -> None:
    config = RunConfig(patience_s=600.0, bid_timeout_s=30.0, speed=10.0)
    law = builtin_laws()["sealed-first-price"]
    assert withdrawal_time(config, law, 100.0) == pytest.approx(100 + 600 + 3 * 30)


def test_a_laws_deadlines_override_the_run() -> None:
    config = RunConfig(patience_s=600.0, bid_timeout_s=30.0, speed=10.0)
    law = law_from_dict({"name": "quick", "auction": {"type": "vickrey"},
                         "deadlines": {"patience_s": 120.0, "bid_window_s": 5.0}})
    assert withdrawal_time(config, law, 0.0) == pytest.approx(120 + 15)
