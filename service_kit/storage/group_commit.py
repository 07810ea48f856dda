"""Group commit: the writes of concurrent requests of one process share one transaction.

A request hands its item to `submit` and waits; one committer (a greenlet under gunicorn's
gevent worker, where `threading` and `queue` are cooperative; a thread elsewhere) takes every
item waiting, commits them together, runs `after_commit`, then wakes their requests. So each
request still answers only once its own write is durable, but N requests cost one commit (one
fsync) instead of N, and the per-statement work is shared too.

Batches adapt to the load, as a database's leader/follower group commit does: a write that
finds no commit running is committed at once, and what comes in during a commit makes the next
batch, so a lone order waits for nothing but its own commit. Only when writes come so often that
an interval of `interval_s` would gather `SPACED_BATCH` of them or more (a moving average of the
time between them) are commits started at most every `interval_s`: a commit's CPU is then shared
by more orders, and the wait costs latency only under load (docs/performance.md)."""

import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

from service_kit.errors import OutcomeUnknown
from service_kit.telemetry import metrics, tracing

Item = TypeVar("Item")
Result = TypeVar("Result")
_log = logging.getLogger(__name__)
# Commits are spaced only once an interval would gather this many writes: below that, the wait
# would cost every order latency for little CPU.
SPACED_BATCH = 8


class _Pending(Generic[Item, Result]):
    __slots__ = ("item", "result", "error", "done", "batch_size")

    def __init__(self, item: Item) -> None:
        self.item = item
        self.batch_size = 0
        self.result: Result | None = None
        self.error: BaseException | None = None
        self.done = threading.Event()


class GroupCommit(Generic[Item, Result]):
    def __init__(
        self,
        commit: Callable[[Sequence[Item]], Sequence[Result | BaseException]],
        *,
        name: str = "writes",
        after_commit: Callable[[Sequence[Result]], None] = lambda results: None,
        max_batch: int = 500,
        wait_s: float = 10.0,
        interval_s: float = 0.0,
    ) -> None:
        self._commit = commit
        self._name = name  # of its metrics and spans
        self._batch_sizes = metrics.group_commit_batch.labels(name)
        self._durations = metrics.group_commit_duration.labels(name)
        self._interval_s = interval_s
        self._last_started = 0.0  # perf_counter() when the last commit started
        self._last_size = 0  # of the last batch
        # Seconds between writes, a moving average over batches (of the gaps, not of their
        # inverses: a rate averaged per batch is dominated by the shortest gaps).
        self._gap = float("inf")
        self._after_commit = after_commit
        self._max_batch = max_batch
        self._wait_s = wait_s
        self._queue: queue.SimpleQueue[_Pending[Item, Result]] = queue.SimpleQueue()
        self._committer_pid: int | None = None  # the process whose committer is running
        self._lock = threading.Lock()

    def submit(self, item: Item) -> Result:
        """Blocks until the item is committed; raises what the commit raised, for the batch or
        for this item."""
        pending: _Pending[Item, Result] = _Pending(item)
        self._ensure_committer()
        if tracing.recording():
            with tracing.span(f"group commit {self._name}") as span:
                self._queue.put(pending)
                done = pending.done.wait(self._wait_s)
                span.set_attribute("group_commit.batch_size", pending.batch_size)
        else:  # not even the context manager: this is every order's path
            self._queue.put(pending)
            done = pending.done.wait(self._wait_s)
        if not done:
            # The batch may still commit: only a retry with the same Idempotency-Key can tell.
            raise OutcomeUnknown(f"the database did not answer within {self._wait_s:.0f} s")
        if pending.error is not None:
            raise pending.error
        return pending.result  # type: ignore[return-value]

    def _ensure_committer(self) -> None:
        # Started lazily, so that it belongs to the process using it (gunicorn forks workers),
        # and again if it ever ended. A plain check: `Thread.is_alive()` on every request took
        # a measurable share of a web worker's CPU (gevent's lock behind it).
        if self._committer_pid == os.getpid():
            return
        with self._lock:
            if self._committer_pid != os.getpid():
                self._committer_pid = os.getpid()
                try:
                    threading.Thread(target=self._run, name="group-commit", daemon=True).start()
                except BaseException:
                    self._committer_pid = None
                    raise

    def _run(self) -> None:
        try:
            while True:
                self._commit_batch(self._next_batch())
        finally:  # whatever ended it, the next request starts another committer
            self._committer_pid = None

    def _next_batch(self) -> list[_Pending[Item, Result]]:
        batch = [self._queue.get()]
        now = time.perf_counter()
        if self._last_size:
            gap = (now - self._last_started) / self._last_size
            self._gap = gap if self._gap == float("inf") else self._gap + 0.2 * (gap - self._gap)
        if self._gap * SPACED_BATCH < self._interval_s:
            # Under load: space the commits to gather bigger batches.
            wait = self._last_started + self._interval_s - now
            if wait > 0:
                time.sleep(wait)
        while len(batch) < self._max_batch:
            try:
                batch.append(self._queue.get_nowait())
            except queue.Empty:
                break
        return batch

    def _commit_batch(self, batch: list[_Pending[Item, Result]]) -> None:
        self._batch_sizes.observe(len(batch))
        started = self._last_started = time.perf_counter()
        self._last_size = len(batch)
        try:
            results = self._commit([pending.item for pending in batch])
            self._durations.observe(time.perf_counter() - started)
            for pending, result in zip(batch, results, strict=True):
                if isinstance(result, BaseException):  # this item's own failure
                    pending.error = result
                else:
                    pending.result = result
        except BaseException as exc:  # every waiting request gets the failure
            for pending in batch:
                pending.error = exc
        else:
            try:
                self._after_commit(results)
            except Exception:  # committed is committed: a failed follow-up is only logged
                _log.exception("after-commit step failed")
        finally:
            for pending in batch:
                pending.batch_size = len(batch)
                pending.done.set()
