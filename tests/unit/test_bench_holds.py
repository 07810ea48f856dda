"""Which rates `make bench` holds for 60 s, in which order, and how it waits for the drain."""

from perf.bench import rates_to_hold, seconds_until_confirmed


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


def test_rates_that_would_not_drain_in_time_are_held_only_when_none_would():
    steps = [step(1000, True, 0.6), step(2000, True, 8.0), step(2500, True, 9.0)]
    assert rates_to_hold(steps, stretch=6) == [1000]
    # The failed step's short drain is the events' own way: none of the others would settle.
    steps = [step(1000, True, 8.0), step(2000, True, 9.0), step(2500, True, 10.0)]
    steps.append(step(3000, False, 0.5))
    assert rates_to_hold(steps, stretch=6) == [2500, 2000, 1000]


def test_each_hold_is_at_least_a_tenth_below_the_one_that_failed_before_it():
    steps = [step(rate, True, 0.7) for rate in range(2500, 4500, 250)] + [step(4500, False, 0.8)]
    assert rates_to_hold(steps, stretch=6) == [4250, 3750, 3250]
    assert rates_to_hold(steps, stretch=6, most=5) == [4250, 3750, 3250, 2750]  # 2500 > 2475


def test_without_a_drain_time_every_passed_rate_is_likely():
    steps = [step(1000, True, None), step(2000, True, None), step(3000, False, None)]
    assert rates_to_hold(steps, stretch=6) == [2000, 1000]


def test_a_long_hold_drifts_when_its_last_minute_is_slower_than_its_first():
    from perf import openloop, soak

    def hold(last_minute_ms: float | None, last_pending: int) -> dict:
        """`last_minute_ms` None: no request of the last minute was answered."""
        result = openloop.Result(rate=100, seconds=120)
        for second in range(120):
            for _ in range(100):
                if second >= 60 and last_minute_ms is None:
                    result.failed_at_s.append(second)
                    result.errors["ReadTimeout"] += 1
                    continue
                result.scheduled_s.append(second)
                result.latencies_ms.append(10.0 if second < 60 else last_minute_ms)
                result.answered_with.append(201)
        result.statuses[201] = len(result.latencies_ms)
        timeline = [
            {**answers, "pending_orders": 50 if answers["second"] < 60 else last_pending}
            for answers in result.per_second(201)
        ]
        by_minute = soak.minutes(timeline)
        assert [m["answered"] for m in by_minute] == [6000, 0 if last_minute_ms is None else 6000]
        return soak.drift(by_minute, result)

    steady = hold(11.0, 55)  # +10% p99, a backlog within a second's orders
    assert steady["within_limit"] and steady["p99_drift"] == 0.1
    assert not hold(13.0, 55)["within_limit"]  # +30% p99
    assert not hold(10.0, 400)["within_limit"]  # the backlog grew by more than 1 s of orders
    collapsed = hold(None, 55)  # nothing answered in the last minute (a 10-minute overload)
    assert not collapsed["within_limit"] and collapsed["last_minute_p99_ms"] is None
    soak.print_minutes({"minutes": [], "drift": collapsed})  # said, not a crash


def test_a_failure_counts_in_the_second_it_was_scheduled_in():
    from perf import openloop

    result = openloop.Result(rate=10, seconds=3)
    result.scheduled_s += [0, 1]
    result.latencies_ms += [5.0, 7.0]
    result.answered_with += [201, 500]
    result.failed_at_s.append(2)
    seconds = result.per_second(201)
    assert [(s["answered"], s["failed"]) for s in seconds] == [(1, 0), (1, 1), (0, 1)]
    assert seconds[0]["p50_ms"] == 5.0 and seconds[2]["p99_ms"] is None


def test_a_request_the_generator_never_got_to_send_counts_as_failed():
    """A server that answers nothing: two connections stay busy, everything scheduled behind
    them is counted as failed in the second it was scheduled in, none is left out."""
    import socket

    from perf import openloop

    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(16)
        url = f"http://127.0.0.1:{server.getsockname()[1]}/"
        result = openloop.run(url, rate=100, seconds=1, connections=2, timeout_s=0.5)
    assert result.sent > 50
    assert result.errors["Timeout"] == 2
    assert result.errors["NotSent"] == result.sent - 2 == len(result.failed_at_s)
    assert result.failed(200) == result.sent


def test_the_accounting_allows_stored_orders_only_for_requests_sent_and_never_answered():
    from perf.bench import nothing_lost

    def accounting(created: int, stored: int, unanswered: int, applied: int | None = None) -> dict:
        each = stored if applied is None else applied
        return {
            "responses_201": created,
            "orders_stored": stored,
            "sent_unanswered": unanswered,
            "order_created_applied_by_product": each,
            "order_created_logged_by_order": stored,
            "stock_decrement": stored,
            "orders_confirmed": stored,
            "outbox_left": 0,
        }

    assert nothing_lost(accounting(1000, 1000, 0))
    assert nothing_lost(accounting(1000, 1256, 256))  # cancelled in flight, stored anyway
    assert not nothing_lost(accounting(1000, 1257, 256))  # one more than was ever sent
    assert not nothing_lost(accounting(1000, 999, 256))  # a 201 without its order
    assert not nothing_lost(accounting(1000, 1000, 0, applied=1001))  # applied twice


def test_the_long_holds_backlog_is_read_from_the_services_counters():
    """PENDING orders as created less settled, from two processes' /metrics pages: no scan of
    the orders table while the hold runs (prometheus_client's exposition format)."""
    from perf import soak

    web = (
        "# TYPE orders_created_total counter\n"
        "orders_created_total 1200.0\n"
        "# TYPE group_commit_batch_size histogram\n"
        'group_commit_batch_size_bucket{le="+Inf"} 100.0\n'
        "group_commit_batch_size_count 100.0\n"
        "group_commit_batch_size_sum 1200.0\n"
    )
    worker = (
        "# TYPE orders_created_total counter\n"
        "orders_created_total 0.0\n"
        "# TYPE orders_settled_total counter\n"
        'orders_settled_total{status="CONFIRMED"} 900.0\n'
        'orders_settled_total{status="REJECTED"} 50.0\n'
    )
    sums = [soak.metric_sums(page) for page in (web, worker)]
    assert sums[0] == {
        "orders_created_total": 1200.0,
        "group_commit_batch_count": 100.0,
        "group_commit_batch_sum": 1200.0,
    }
    assert sums[1] == {"orders_created_total": 0.0, "orders_settled_total": 950.0}


def test_the_rows_are_counted_only_once_the_counters_say_done_and_must_agree():
    counter_readings = iter([False, False, True, True, True])
    row_readings = iter([False, True])  # the first confirmation finds an order still PENDING
    rows_counted = []

    def stored() -> bool:
        rows_counted.append(True)
        return next(row_readings)

    waited = seconds_until_confirmed(lambda: next(counter_readings), stored, give_up_s=10)
    assert len(rows_counted) == 2
    assert 1.5 <= waited < 3  # four polls half a second apart, done at the fourth


def test_a_drain_that_never_ends_is_given_up():
    waited = seconds_until_confirmed(lambda: True, lambda: False, give_up_s=0.6)
    assert 0.6 <= waited < 2
