"""The soak's memory verdict: a process is judged on the second half of its own sampled time."""

from __future__ import annotations

from fleetbid.service.soak import FLAT_MB_PER_MIN, memory_trend


def series(minutes: float, shape: object, every: float = 0.1) -> list[tuple[float, float]]:
    points, t = [], 0.0
    while t <= minutes + 1e-9:
        points.append((round(t, 2), shape(t)))  # type: ignore[operator]
        t += every
    return points


def test_a_warm_up_that_ends_before_the_second_half_is_flat() -> None:
    # 10 minutes: +3 MB/min for 4.9 minutes (caches filling), then flat. Judged after the
    # first quarter (the old rule) this read 0.73 MB/min, "not flat".
    trend = memory_trend(series(10.0, lambda t: 200.0 + 3.0 * min(t, 4.9)))
    assert trend["judged"] and trend["judged_from_min"] == 5.0
    assert abs(trend["slope_mb_per_min"]) <= FLAT_MB_PER_MIN


def test_a_steady_leak_is_not_flat_and_a_brief_process_is_not_judged() -> None:
    leak = memory_trend(series(10.0, lambda t: 200.0 + 0.8 * t))
    assert leak["judged"] and leak["slope_mb_per_min"] > FLAT_MB_PER_MIN
    brief = memory_trend([(6.0 + p, v) for p, v in series(3.0, lambda t: 200.0 + 2.0 * t)])
    assert not brief["judged"] and brief["judged_from_min"] == 7.5


def test_a_process_that_exited_mid_run_is_shown_not_judged() -> None:
    # A replica host the soak killed at minute 10 of 30: still in its warm-up (+0.9 MB/min).
    killed = memory_trend(series(9.8, lambda t: 220.0 + 0.9 * t), run_end=30.0)
    assert not killed["judged"] and killed["exited_at_min"] == 9.8
    assert killed["slope_mb_per_min"] > FLAT_MB_PER_MIN  # shown as it was
    alive = memory_trend(series(30.0, lambda t: 220.0 + 0.9 * t), run_end=30.0)
    assert alive["judged"] and alive["exited_at_min"] is None  # a leak that lives is judged
