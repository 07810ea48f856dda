"""Which rates `make bench` holds for 60 s, in which order."""

from perf.bench import rates_to_hold


def step(rate: int, passed: bool, drained_within_s: float) -> dict:
    return {"offered_rps": rate, "passed": passed, "drained_within_s": drained_within_s}


def test_rates_whose_backlog_would_drain_in_time_are_held_first_best_first():
    steps = [
        step(1000, True, 0.6),  # the events' own way through the system
        step(1500, True, 1.1),
        step(2000, True, 3.0),  # 0.6 + 2.4 × 6 = 15 s after a 60 s hold: in time
        step(2500, True, 8.0),  # 0.6 + 7.4 × 6 = 45 s: too late
        step(3000, False, 9.0),
    ]
    assert rates_to_hold(steps, stretch=6) == [2000, 1500, 1000]
    assert rates_to_hold(steps, stretch=6, most=5) == [2000, 1500, 1000, 2500]


def test_without_a_drain_time_every_passed_rate_is_likely():
    steps = [step(1000, True, None), step(2000, True, None), step(3000, False, None)]
    assert rates_to_hold(steps, stretch=6) == [2000, 1000]
