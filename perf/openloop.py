"""An open-loop HTTP load generator: requests are sent at scheduled times (Poisson arrivals)
whether or not earlier ones have answered, and each latency is measured from its scheduled
time, so a slow server cannot slow the load down and hide its own queueing (no coordinated
omission). A fixed pool of keep-alive connections (asyncio, uvloop when installed) takes the
requests as they fall due; it reports its own CPU so one can see it is not the bottleneck.

    python -m perf.openloop http://127.0.0.1:4000/orders --rate 2000 --seconds 10 \\
        --body '{"productId": 1, "qty": 1}'
"""

import argparse
import asyncio
import itertools
import random
import statistics
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import urlsplit

try:
    import uvloop
except ImportError:  # plain asyncio works too, with a little more CPU per request
    uvloop = None


@dataclass
class Result:
    rate: float  # offered requests/s
    seconds: float
    sent: int = 0
    statuses: Counter = field(default_factory=Counter)
    errors: Counter = field(default_factory=Counter)
    latencies_ms: list[float] = field(default_factory=list)
    # Per answer, the second of the run it was scheduled in and whether it got the expected
    # status; per failure (no answer), that second: for a long hold's timeline (per_second()).
    scheduled_s: list[int] = field(default_factory=list)
    answered_with: list[int] = field(default_factory=list)
    failed_at_s: list[int] = field(default_factory=list)
    generator_cpu: float = 0.0  # fraction of one core used by this generator
    connections: int = 0

    @property
    def completed(self) -> int:
        return sum(self.statuses.values())

    def percentile(self, p: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]

    def failed(self, expected_status: int) -> int:
        wrong = sum(n for status, n in self.statuses.items() if status != expected_status)
        return wrong + sum(self.errors.values())

    def per_second(self, expected_status: int) -> list[dict]:
        """Each second of the run by when its requests were scheduled: answered, p50/p99 and
        failures (a wrong status or no answer)."""
        seconds: list[dict] = [
            {"second": n, "answered": 0, "failed": 0, "latencies": []}
            for n in range(int(self.seconds) + 1)
        ]
        for second, latency, status in zip(
            self.scheduled_s, self.latencies_ms, self.answered_with, strict=True
        ):
            bucket = seconds[min(second, len(seconds) - 1)]
            bucket["answered"] += 1
            bucket["latencies"].append(latency)
            bucket["failed"] += status != expected_status
        for second in self.failed_at_s:
            seconds[min(second, len(seconds) - 1)]["failed"] += 1
        for bucket in seconds:
            ordered = sorted(bucket.pop("latencies"))
            for p in (50, 99):
                value = (
                    ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] if ordered else None
                )
                bucket[f"p{p}_ms"] = None if value is None else round(value, 2)
        return seconds[: int(self.seconds)]

    def summary(self) -> dict:
        return {
            "offered_rps": self.rate,
            "seconds": self.seconds,
            "sent": self.sent,
            "completed_rps": round(self.completed / self.seconds, 1),
            "p50_ms": round(self.percentile(50), 2),
            "p95_ms": round(self.percentile(95), 2),
            "p99_ms": round(self.percentile(99), 2),
            "max_ms": round(max(self.latencies_ms, default=float("nan")), 2),
            "mean_ms": round(statistics.fmean(self.latencies_ms), 2) if self.latencies_ms else None,
            "statuses": dict(self.statuses),
            "errors": dict(self.errors),
            "generator_cpu": round(self.generator_cpu, 3),
            "connections": self.connections,
        }


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> int:
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    start = head.lower().find(b"content-length:")
    if start >= 0:
        length = int(head[start + 15 : head.index(b"\r\n", start)])
        if length:
            await reader.readexactly(length)
    return status


async def _run(
    url: str,
    method: str,
    body: bytes,
    rate: float,
    seconds: float,
    connections: int,
    timeout_s: float,
    headers: dict[str, str],
    unique_header: str | None,
) -> Result:
    parts = urlsplit(url)
    host, port = parts.hostname, parts.port or 80
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}:{port}", "Connection: keep-alive"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    if body:
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    request = ("\r\n".join(lines) + "\r\n\r\n").encode() + body
    if unique_header:  # a header of its own per request (e.g. an Idempotency-Key): made ahead
        head, _, rest = request.partition(b"\r\n")
        run_id = uuid.uuid4().hex[:12]
        requests = (
            head + f"\r\n{unique_header}: {run_id}-{n}".encode() + b"\r\n" + rest
            for n in itertools.count()
        )
    else:
        requests = itertools.repeat(request)

    result = Result(rate=rate, seconds=seconds)
    due: asyncio.Queue[float | None] = asyncio.Queue()
    latencies, statuses, errors = result.latencies_ms, result.statuses, result.errors
    scheduled_s, answered_with, failed_at_s = (
        result.scheduled_s,
        result.answered_with,
        result.failed_at_s,
    )
    clock = time.perf_counter

    async def connection() -> None:
        """One keep-alive connection taking the next due request whenever it is free; a
        request waiting for a free connection keeps its scheduled time, so waiting counts."""
        reader = writer = None
        while (scheduled := await due.get()) is not None:
            try:
                if reader is not None and reader.at_eof():  # the server closed it while idle
                    writer.close()
                    reader = writer = None
                if writer is None:
                    reader, writer = await asyncio.open_connection(host, port)
                status = await _exchange(reader, writer, next(requests))
                latencies.append((clock() - scheduled) * 1000)
                statuses[status] += 1
                scheduled_s.append(int(scheduled - started))
                answered_with.append(status)
            except Exception as exc:  # every failure is counted, none stops the run
                errors[type(exc).__name__] += 1
                failed_at_s.append(int(scheduled - started))
                if writer is not None:
                    writer.close()
                reader = writer = None
        if writer is not None:
            writer.close()

    workers = [asyncio.create_task(connection()) for _ in range(connections)]
    cpu_started = time.process_time()
    started = clock()  # the connections measure their seconds from here too
    scheduled = started
    end = started + seconds
    while True:
        scheduled += random.expovariate(rate)
        if scheduled >= end:
            break
        delay = scheduled - clock()
        if delay > 0.0005:
            await asyncio.sleep(delay)
        due.put_nowait(scheduled)
        result.sent += 1
    for _ in workers:
        due.put_nowait(None)
    _, unfinished = await asyncio.wait(workers, timeout=timeout_s)
    for worker in unfinished:
        worker.cancel()
        errors["Timeout"] += 1
    while not due.empty():  # scheduled, never sent: the connections were all still busy
        if (never_sent := due.get_nowait()) is not None:
            errors["NotSent"] += 1
            failed_at_s.append(int(never_sent - started))
    wall = clock() - started
    result.generator_cpu = (time.process_time() - cpu_started) / wall
    result.connections = connections
    return result


def run(
    url: str,
    *,
    rate: float,
    seconds: float,
    method: str = "GET",
    body: bytes = b"",
    connections: int = 256,
    timeout_s: float = 10.0,
    headers: dict[str, str] | None = None,
    unique_header: str | None = None,
) -> Result:
    """`unique_header` names a header sent with another value in every request."""
    random.seed(20261121)
    runner = uvloop.run if uvloop is not None else asyncio.run
    return runner(
        _run(url, method, body, rate, seconds, connections, timeout_s, headers or {}, unique_header)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("--rate", type=float, required=True)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--body", default="")
    args = parser.parse_args()
    method = "POST" if args.body else "GET"
    result = run(
        args.url, rate=args.rate, seconds=args.seconds, method=method, body=args.body.encode()
    )
    for key, value in result.summary().items():
        print(f"{key:>14}: {value}")


if __name__ == "__main__":
    main()
