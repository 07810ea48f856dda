"""The worker process of a service: a few long-running tasks (outbox relay, consumers), each in
its own thread with its own broker connection (pika connections are per thread). SIGTERM or
SIGINT asks every task to stop; each finishes and acks the batch in hand, then the process
exits."""

import logging
import signal
import threading
from collections.abc import Callable, Mapping, Sequence

from service_kit.broker import Broker
from service_kit.consumer import consume
from service_kit.events import Event

Task = Callable[[threading.Event], None]
_log = logging.getLogger(__name__)


def consumer_task(
    connect: Callable[[], Broker], queue: str, handler: Callable[[Sequence[Event]], None]
) -> Task:
    """A task that applies the events of `queue` with `handler` until asked to stop."""
    return lambda stop: consume(connect, queue, handler, stop)


def run_tasks(name: str, tasks: Mapping[str, Task]) -> None:
    stop = threading.Event()

    def request_stop(signum: int, _frame: object) -> None:
        _log.info("%s: %s received, finishing the work in hand", name, signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    threads = [
        threading.Thread(target=_run, args=(task_name, task, stop), name=task_name)
        for task_name, task in tasks.items()
    ]
    for thread in threads:
        thread.start()
    _log.info("%s: running %s", name, ", ".join(tasks))
    while any(thread.is_alive() for thread in threads):
        for thread in threads:
            thread.join(timeout=0.5)
        if not stop.is_set() and not all(thread.is_alive() for thread in threads):
            _log.error("%s: a task ended unexpectedly; stopping", name)
            stop.set()
    _log.info("%s: stopped", name)


def _run(task_name: str, task: Task, stop: threading.Event) -> None:
    try:
        task(stop)
    except Exception:
        _log.exception("task %s crashed", task_name)
        raise
