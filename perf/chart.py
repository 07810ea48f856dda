"""`make bench`'s run drawn as one PNG beside its JSON: offered against completed rate and
p50/p99 for each step (orders, the bare ceiling, cached reads), and each process's CPU per order
during the hold."""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402

P99_LIMIT_MS = 50.0


def draw(figures: dict, path: Path) -> None:
    series = {
        "POST /orders": figures["orders"]["steps"],
        "ceiling (bare Flask)": figures["ceiling"]["before"]["steps"]
        + figures["ceiling"]["after"]["steps"],
        "GET /products/{id} (cached)": figures["reads"]["steps"],
    }
    fig, axes = plt.subplots(1, 3, figsize=(18, 5.5), layout="constrained")
    rates, latency, cpu = axes
    for name, steps in series.items():
        offered = [step["offered_rps"] for step in steps]
        rates.plot(offered, [step["completed_rps"] for step in steps], "o", label=name, ms=4)
        passed = [step for step in steps if step["passed"]]
        failed = [step for step in steps if not step["passed"]]
        line = latency.plot(
            [s["offered_rps"] for s in passed], [s["p99_ms"] for s in passed], "o", ms=4
        )[0]
        latency.plot(
            [s["offered_rps"] for s in failed],
            [s["p99_ms"] for s in failed],
            "x",
            color=line.get_color(),
            ms=6,
        )
        latency.plot(
            offered,
            [step["p50_ms"] for step in steps],
            ".",
            color=line.get_color(),
            alpha=0.5,
            label=f"{name}: p99 (x failed), p50 (dots)",
        )
    top = max((s["offered_rps"] for steps in series.values() for s in steps), default=1)
    rates.plot([0, top], [0, top], ":", color="grey", label="completed = offered")
    rates.set(xlabel="offered (requests/s)", ylabel="completed (requests/s)")
    rates.set_title("each 10 s step (5 s for the ceiling and reads)")
    rates.legend(fontsize=8)
    latency.axhline(P99_LIMIT_MS, color="red", lw=0.8, ls="--", label="p99 limit")
    latency.set(xlabel="offered (requests/s)", ylabel="latency (ms)", yscale="log")
    latency.set_title("latency from the scheduled send (open loop)")
    latency.legend(fontsize=7)
    sustained = figures["orders"]["sustained"] or {}
    parts = {k: v for k, v in sustained.get("cpu_us_per_order", {}).items() if k != "total"}
    cpu.barh(list(parts), list(parts.values()), color="tab:blue")
    for y, value in enumerate(parts.values()):
        cpu.text(value, y, f" {value}", va="center", fontsize=8)
    cpu.invert_yaxis()
    held = figures["orders"]["best_rps"]
    total = sustained.get("cpu_us_per_order", {}).get("total")
    cpu.set(xlabel="CPU µs per order")
    cpu.set_title(
        f"during the {sustained.get('seconds', 0):.0f} s hold at {sustained.get('offered_rps')}/s"
        f" ({'held' if held else 'not held'}; total {total} µs)"
    )
    ratio = figures.get("ratio_orders_to_ceiling")
    orders = f"held {held} req/s" if held else "held at no rate"
    fig.suptitle(
        f"make bench: POST /orders {orders}, ceiling {figures['ceiling']['best_rps']}"
        f" req/s, ratio {ratio or '-'}; nothing lost: {figures['accounting']['nothing_lost']}"
    )
    fig.savefig(path, dpi=80)
    plt.close(fig)


def draw_hold(figures: dict, path: Path, *, title: str) -> None:
    """A long hold over time, second by second (perf/soak.py): latency, answers, backlog,
    each process's CPU, the group commit and GC pauses."""
    timeline = figures["timeline"]
    t = [s["second"] for s in timeline]
    fig, axes = plt.subplots(2, 3, figsize=(18, 9), layout="constrained", sharex=True)
    (latency, rates, backlog), (cpu, commits, pauses) = axes
    latency.plot(t, [s["p99_ms"] for s in timeline], lw=0.8, label="p99")
    latency.plot(t, [s["p50_ms"] for s in timeline], lw=0.8, label="p50")
    latency.axhline(P99_LIMIT_MS, color="red", lw=0.8, ls="--", label="p99 limit")
    latency.set(ylabel="ms (of the requests scheduled in each second)", yscale="log")
    rates.plot(t, [s["answered"] for s in timeline], lw=0.8, label="answered")
    rates.plot(t, [s["failed"] for s in timeline], lw=0.8, label="failed")
    rates.set(ylabel="requests in the second")
    backlog.plot(t, [s.get("pending_orders") for s in timeline], lw=0.8, label="PENDING orders")
    backlog.plot(t, [s.get("outbox_rows") for s in timeline], lw=0.8, label="outbox rows")
    queues = sorted({q for s in timeline for q in s.get("queued_events") or {}})
    for queue in queues:
        backlog.plot(
            t, [(s.get("queued_events") or {}).get(queue) for s in timeline], lw=0.6, label=queue
        )
    backlog.set(ylabel="waiting")
    for name in sorted({k for s in timeline for k in s if k.startswith("cpu_s_")}):
        cpu.plot(t, [s.get(name, 0) for s in timeline], lw=0.7, label=name[6:])
    cpu.set(ylabel="CPU seconds per second", xlabel="second of the hold")
    commits.plot(
        t,
        [s.get("group_commit_batch_count") for s in timeline],
        lw=0.8,
        label="group commits",
    )
    commits.plot(t, [s.get("Com_commit") for s in timeline], lw=0.6, label="MariaDB commits")
    commits.plot(t, [s.get("Innodb_data_fsyncs") for s in timeline], lw=0.6, label="MariaDB fsyncs")
    commits.set(ylabel="per second", xlabel="second of the hold")
    pauses.plot(
        t,
        [1000 * s["gc_pause_s_sum"] if "gc_pause_s_sum" in s else None for s in timeline],
        lw=0.8,
        label="GC pauses (ms in the second)",
    )
    pauses.plot(
        t,
        [
            1000 * s.get("group_commit_s_sum") / s["group_commit_s_count"]
            if s.get("group_commit_s_count")
            else None
            for s in timeline
        ],
        lw=0.8,
        label="group commit transaction, mean (ms)",
    )
    pauses.set(ylabel="ms", xlabel="second of the hold")
    for axis in axes.flat:
        axis.legend(fontsize=7)
    d = figures.get("drift", {})
    fig.suptitle(
        f"{title}: p50 {figures['p50_ms']} ms, p99 {figures['p99_ms']} ms, "
        f"{'held' if figures['passed'] else 'not held'}; drift within limit: "
        f"{d.get('within_limit')}"
    )
    fig.savefig(path, dpi=80)
    plt.close(fig)
