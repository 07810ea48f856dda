"""`make bench` draws its run (perf/chart.py): a PNG from the figures it writes."""

import struct

from perf import chart


def _step(rate: int, p99: float, passed: bool) -> dict:
    return {
        "offered_rps": rate,
        "completed_rps": rate * 0.99,
        "p50_ms": p99 / 4,
        "p99_ms": p99,
        "passed": passed,
    }


def test_a_run_is_drawn_as_a_png(tmp_path):
    ceiling = {"steps": [_step(1000, 5, True), _step(1500, 80, False)], "best_rps": 1000}
    figures = {
        "orders": {
            "steps": [_step(250, 10, True), _step(500, 60, False)],
            "best_rps": 250,
            "sustained": {
                "seconds": 60,
                "offered_rps": 250,
                "cpu_us_per_order": {"order": 300, "mariadb": 90, "total": 390},
            },
        },
        "ceiling": {"before": ceiling, "after": ceiling, "best_rps": 1000},
        "reads": {"steps": [_step(1000, 4, True)]},
        "ratio_orders_to_ceiling": 0.25,
        "accounting": {"nothing_lost": True},
    }
    path = tmp_path / "bench.png"
    chart.draw(figures, path)
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (1440, 440)


def test_a_long_hold_is_drawn_second_by_second(tmp_path):
    timeline = [
        {
            "second": n,
            "answered": 100,
            "failed": 0,
            "p50_ms": 3.0,
            "p99_ms": 9.0 + n % 7,
            "pending_orders": 20,
            "outbox_rows": 5,
            "queued_events": {"product-service.order-created": n % 3},
            "cpu_s_order": 0.5,
            "group_commit_batch_count": 30,
            "group_commit_s_sum": 0.03,
            "group_commit_s_count": 30,
            "Com_commit": 40,
            "gc_pause_s_sum": 0.001,
        }
        for n in range(120)
    ]
    figures = {"timeline": timeline, "p50_ms": 3.0, "p99_ms": 15.0, "passed": True}
    path = tmp_path / "hold.png"
    chart.draw_hold(figures, path, title="POST /orders at 100/s")
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", data[16:24]) == (1440, 720)
