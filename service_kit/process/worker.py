"""The worker process of a service: a few long-running tasks (outbox relay, consumers), each in
its own thread with its own broker connection (pika connections are per thread). SIGTERM or
SIGINT asks every task to stop; each finishes and acks the batch in hand, then the process
exits."""

import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from service_kit import logs
from service_kit.config import ServiceConfig
from service_kit.messaging.broker import Broker
from service_kit.messaging.consumer import consume
from service_kit.messaging.events import Event
from service_kit.messaging.hold_back import HoldBack
from service_kit.process import memory
from service_kit.process.files import run_dir
from service_kit.storage.db import exit_unless_reachable
from service_kit.telemetry import metrics, tracing

Task = Callable[[threading.Event], None]
_log = logging.getLogger(__name__)
HEARTBEAT_EVERY_S = 5.0
HEALTHY_WITHIN_S = 30.0


def heartbeat_file(name: str) -> Path:
    """Touched while every task of worker `name` runs; its age is the container healthcheck.
    Under var/run, private to the service: not a fixed name in a folder every user can write."""
    return run_dir() / f"{name.replace(' ', '-')}.heartbeat"


def observe(service: str, config: ServiceConfig, *collectors: object) -> None:
    """A worker's logs as configured, its spans exported if configured, and its metrics (with
    `collectors`, read when scraped) on <S>_WORKER_METRICS_PORT unless that is 0. First of all
    its CPU priority: the threads these start (the metrics server, the span exporter) inherit
    it."""
    _lower_priority(config.worker_nice)
    logs.configure(config.log_level, config.log_format)
    exit_unless_reachable(config.database_url, f"{service} worker")
    tracing.configure(service)
    for collector in collectors:
        metrics.register(collector)
    metrics.time_gc_pauses()
    if config.worker_metrics_port:
        try:
            metrics.serve(config.host, config.worker_metrics_port)
        except OSError as exc:
            _log.error("%s: metrics port %d: %s", service, config.worker_metrics_port, exc)
            raise SystemExit(2) from None


def consumer_task(
    connect: Callable[[], Broker],
    queue: str,
    handler: Callable[[Sequence[Event]], None],
    hold_back: HoldBack | None = None,
) -> Task:
    """A task that applies the events of `queue` with `handler` until asked to stop; with
    `hold_back`, each batch waits its turn while the machine is busy with requests."""
    return lambda stop: consume(connect, queue, handler, stop, hold_back=hold_back)


def run_tasks(name: str, tasks: Mapping[str, Task], *, nice: int = 0) -> None:
    """Runs every task in its own thread at CPU priority `nice` (0-19): on a shared box the web
    workers' requests go first, the events they leave behind are applied in the time left
    (docs/performance.md)."""
    _lower_priority(nice)
    stop = threading.Event()
    received: list[int] = []

    def record_signal(signum: int, _frame: object) -> None:
        # Only recorded: setting the Event (or logging) here could re-enter a lock the main
        # thread holds at that moment (its own stop.set(), a log line) and hang there.
        received.append(signum)

    signal.signal(signal.SIGTERM, record_signal)
    signal.signal(signal.SIGINT, record_signal)
    memory.settle_garbage_collector()  # what the tasks are built with stays for the process
    threads = [
        threading.Thread(target=_run, args=(task_name, task, stop), name=task_name)
        for task_name, task in tasks.items()
    ]
    for thread in threads:
        thread.start()
    _log.info("%s: running %s", name, ", ".join(tasks))
    heartbeat, last_beat = heartbeat_file(name), 0.0
    while any(thread.is_alive() for thread in threads):
        time.sleep(0.1)
        if received and not stop.is_set():
            signum = signal.Signals(received[0]).name
            _log.info("%s: %s received, finishing the work in hand", name, signum)
            stop.set()
        if not stop.is_set() and not all(thread.is_alive() for thread in threads):
            _log.error("%s: a task ended unexpectedly; stopping", name)
            stop.set()
        if not stop.is_set() and time.monotonic() - last_beat >= HEARTBEAT_EVERY_S:
            heartbeat.touch()
            last_beat = time.monotonic()
    heartbeat.unlink(missing_ok=True)
    _log.info("%s: stopped", name)


def _lower_priority(nice: int) -> None:
    # Before any task thread starts: on Linux each thread has its own nice value, inherited by
    # the threads it creates.
    try:
        os.setpriority(os.PRIO_PROCESS, 0, max(nice, os.getpriority(os.PRIO_PROCESS, 0)))
    except OSError as exc:
        _log.warning("could not set the worker's nice value to %d: %s", nice, exc)
    _lower_session_priority(nice)


def _lower_session_priority(nice: int) -> None:
    """With Linux's autogroups on (`kernel.sched_autogroup_enabled`, the default on many
    distributions), the CPU is shared between sessions first, and a nice value only counts
    against processes of the same session. `make run` (devstack/supervise.py), the tests and
    `make bench` start each process in a session of its own, so the worker competed with the
    web workers at full weight whatever its nice value: its session gets the same nice. Only a
    session this process leads: another may hold the web workers too."""
    current = session_nice()
    if os.getsid(0) != os.getpid() or current is None:
        return
    try:
        autogroup().write_text(str(max(nice, current)))
    except OSError as exc:
        _log.warning("could not set the worker's session nice value to %d: %s", nice, exc)


def autogroup(pid: int | str = "self") -> Path:
    """Linux: the file of a process's session's scheduling group (autogroup)."""
    return Path(f"/proc/{pid}/autogroup")


def session_nice(pid: int | str = "self") -> int | None:
    """The nice value of a process's session's scheduling group; None where the kernel has no
    autogroups."""
    try:
        return int(autogroup(pid).read_text().split()[-1])  # "/autogroup-36 nice 0"
    except (OSError, ValueError, IndexError):
        return None


def _run(task_name: str, task: Task, stop: threading.Event) -> None:
    try:
        task(stop)
    except Exception:
        _log.exception("task %s crashed", task_name)
        raise


def is_healthy(name: str) -> bool:
    try:
        return time.time() - os.stat(heartbeat_file(name)).st_mtime < HEALTHY_WITHIN_S
    except FileNotFoundError:
        return False


if __name__ == "__main__":
    # Healthcheck: `python -m service_kit.process.worker "product-service worker"`.
    sys.exit(0 if is_healthy(sys.argv[1]) else 1)
