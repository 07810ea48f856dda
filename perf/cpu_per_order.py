"""CPU per order at one fixed rate, whether or not the machine holds it within the latency
limit: the figure to compare between two versions of the code in interleaved runs, on a
machine whose speed drifts (make bench's ratio needs a rate held; on a slow spell none may be).

    .venv/bin/python -m perf.cpu_per_order [--rate 600] [--seconds 30]

Starts the stack make bench starts (this machine's MariaDB, Redis, RabbitMQ; every order with a
token and a new Idempotency-Key), sends a warm-up, then `--rate` orders/s open-loop for
`--seconds`, waits for every order to settle, and prints each process's CPU per order, with the
bare Flask endpoint's CPU per request at the same rate as the machine's speed of the moment."""

import argparse
import contextlib

from devstack.real_stack import real_stack
from perf import cpu_priority, openloop, soak
from perf.bench import (
    CpuPerOrder,
    measure_ceiling,
    seconds_to_drain,
    seconds_to_settle,
    servers_on_this_machine,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=int, default=600)
    parser.add_argument("--seconds", type=float, default=30)
    args = parser.parse_args()
    with contextlib.ExitStack() as run:
        broker = servers_on_this_machine().get("rabbitmq")
        if broker:
            run.enter_context(cpu_priority.in_background(broker))
        bare = measure_ceiling(5, [args.rate])["cpu_us_per_request"]
        with real_stack() as stack:
            services = stack.services
            request, _ = soak.order_request(services)
            url = f"{services.order_url}/orders"
            openloop.run(url, rate=300, seconds=3, **request)
            seconds_to_drain(stack)
            parts = {name: process.pid for name, process in services.processes.items()}
            parts.update(servers_on_this_machine())
            with CpuPerOrder(parts) as cpu:
                result = openloop.run(url, rate=args.rate, seconds=args.seconds, **request)
            settled_s = seconds_to_settle(stack)
    summary = result.summary()
    per_order = cpu.per_order(result.statuses[201])
    print(f"bare request at 2000/s: {bare} µs of CPU each (the machine's speed)")
    print(
        f"{args.rate} orders/s for {args.seconds:.0f} s: {result.statuses[201]} created, "
        f"p50 {summary['p50_ms']} ms, p99 {summary['p99_ms']} ms, settled within {settled_s:.1f} s"
    )
    others = {status: n for status, n in result.statuses.items() if status != 201}
    if others or result.errors:
        print(f"  not created: {others or ''} {dict(result.errors) or ''}")
    print("CPU per order (µs): " + ", ".join(f"{k} {v}" for k, v in per_order.items()))
    print(f"order web / bare request: {per_order['order'] / bare:.3f}")


if __name__ == "__main__":
    main()
