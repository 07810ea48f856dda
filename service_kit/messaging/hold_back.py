"""Event work that steps aside while the machine is busy with requests.

On a box the web workers share with the event workers, a worker at nice 19 still slows requests
down: the database runs its statements at full priority and its batches wake on the web's cores.
So a worker's order-flow tasks wait before each batch while the processes at normal priority
(the web workers, the database, the load's own clients) keep more than ENTER_SHARE of the
machine's CPUs busy, and go on once that falls below LEAVE_SHARE, or after `most_s` held. After
a hold they work at least as long as it lasted before holding again, unless each of them has
worked off what waited: the order flow never holds more than `most_s` at a stretch nor, while
it is behind, more than half the time, and a flow that has caught up leaves the machine to the
next burst at once (a burst soon after another then gets it too). A load that outlasts `most_s` is
not a burst: deferring its events only piles them up, so the flow works beside it until the
machine quiets (below LEAVE_SHARE) and holds only for the next burst. A burst of requests gets
the machine, and its events are applied behind it (docs/performance.md).

The measure is Linux's /proc/stat, which counts the user time of niced processes (the workers,
the broker at nice 10) apart from the rest; their kernel time still counts as busy, but for this
process's own. Elsewhere nothing is held."""

import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

from service_kit.telemetry import metrics

# Shares of all the machine's CPUs. Entering is judged while the workers run, when the share
# includes what their own statements cost the database; leaving is judged while they hold.
ENTER_SHARE = 0.5
LEAVE_SHARE = 0.4
SAMPLE_S = 0.5
_STAT = Path("/proc/stat")
_log = logging.getLogger(__name__)


def cpu_ticks() -> tuple[float, float] | None:
    """(CPU time busy but for niced user time and this process's own kernel time, CPU time in
    all), in clock ticks since boot; None where /proc/stat cannot be read."""
    try:
        with _STAT.open() as stat:
            fields = [int(f) for f in stat.readline().split()[1:9]]
        user, _nice, system, _idle, _iowait, irq, softirq, _steal = fields
    except (OSError, ValueError):
        return None
    own_kernel = os.times().system * os.sysconf("SC_CLK_TCK")
    return user + system + irq + softirq - own_kernel, float(sum(fields))


class HoldBack:
    """Shared by a worker's tasks (threads): one judgement of the machine for all of them."""

    def __init__(
        self,
        most_s: float,
        *,
        read: Callable[[], tuple[float, float] | None] = cpu_ticks,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._most_s = most_s
        self._read, self._clock = read, clock
        self._lock = threading.Lock()
        self._last = read() if most_s > 0 else None
        self._next_sample = clock() + SAMPLE_S
        self.busy_share = 0.0  # of the last sample
        self._held_since: float | None = None
        self._free_until = 0.0
        self._load_outlasted_hold = False
        self._tasks: set[str] = set()  # those that tell whether they are behind
        self._behind: set[str] = set()  # of those, the ones with work waiting since the hold

    def wait_turn(self, stop: threading.Event, keep_alive: Callable[[], None]) -> None:
        """Returns when the caller may take its next batch (at once unless the machine is busy)
        or is asked to stop, calling `keep_alive` (the broker's heartbeats, a lease) while it
        waits."""
        while not stop.is_set() and self.holding():
            keep_alive()
            stop.wait(SAMPLE_S / 5)

    def tell(self, task: str, *, caught_up: bool) -> None:
        """A task says, when it starts (not caught up) and after each round, whether it left
        nothing waiting (it took fewer than a full batch, or has nothing to do: a relay standing
        by). The time owed to the flow after a hold counts only while one of them is behind: what
        the hold deferred has otherwise been worked off."""
        with self._lock:
            self._tasks.add(task)
            if caught_up:
                self._behind.discard(task)
            else:
                self._behind.add(task)

    def _owed_time(self, now: float) -> bool:
        # Where no task tells, it cannot be known whether the flow has caught up.
        return now < self._free_until and (bool(self._behind) or not self._tasks)

    def holding(self) -> bool:
        if self._last is None:
            return False
        with self._lock:
            now = self._clock()
            if now >= self._next_sample:
                self._sample(now)
            if self._held_since is None:
                if self._load_outlasted_hold:
                    self._load_outlasted_hold = self.busy_share >= LEAVE_SHARE
                    return False
                if self._owed_time(now) or self.busy_share < ENTER_SHARE:
                    return False
                self._held_since = now
                metrics.worker_holding_back.set(1)
                return True
            held_s = now - self._held_since
            if self.busy_share >= LEAVE_SHARE and held_s < self._most_s:
                return True
            self._free_until = now + held_s
            self._behind = set(self._tasks)
            if held_s >= self._most_s:
                self._load_outlasted_hold = True
                _log.info(
                    "held back %.0fs while the machine was busy; working beside the load "
                    "until it eases",
                    held_s,
                )
            self._held_since = None
            metrics.worker_holding_back.set(0)
            metrics.worker_held_back.inc(held_s)
            return False

    def _sample(self, now: float) -> None:
        self._next_sample = now + SAMPLE_S
        current = self._read()
        if current is None or self._last is None:
            return
        busy, total = (c - last for c, last in zip(current, self._last, strict=True))
        if total > 0:  # else no tick has passed: the last judgement stands
            self.busy_share = max(0.0, busy) / total
            self._last = current
