"""`make bench` runs this machine's RabbitMQ as infra/docker-compose.yml deploys the broker:
behind the web on the CPU (all of its work is asynchronous to requests: the relay publishes
after the commit). For the run only, and what was found is put back afterwards."""

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from service_kit.process.worker import autogroup, session_nice

# Not 19, the workers' value: the broker's share must still carry every event of the hold, or
# the backlog after a 60 s hold at 2000 orders/s outlasts the 30 s allowed (measured here: 19
# settled within 31 s, p99 46 ms; 10 within 22 s, p99 42 ms; 0 within 19 s, p99 54 ms).
BACKGROUND_NICE = 10


@contextlib.contextmanager
def in_background(pid: int, nice: int = BACKGROUND_NICE) -> Iterator[str]:
    """Lowers a process's CPU priority the ways Linux honours it: the nice value of each of its
    threads, and of its session's scheduling group where the kernel groups sessions
    (autogroups: there, a thread's nice value only counts within its session). Yields what was
    done, for the report. Only where it can be undone (root): raising a priority back needs
    the privilege."""
    if os.geteuid() != 0:
        yield "unchanged (putting it back would need root)"
        return
    threads = {int(tid.name): os.getpriority(os.PRIO_PROCESS, int(tid.name)) for tid in _tasks(pid)}
    group_nice = session_nice(pid)
    try:
        for tid in threads:
            _set_nice(tid, nice)
        if group_nice is not None:
            autogroup(pid).write_text(str(nice))
        yield (
            f"nice {nice} for the run ({len(threads)} threads"
            + (", and its session's group" if group_nice is not None else "")
            + "), put back after"
        )
    finally:
        if group_nice is not None:
            autogroup(pid).write_text(str(group_nice))
        for tid, before in threads.items():
            _set_nice(tid, before)


def _tasks(pid: int) -> list[Path]:
    return list(Path(f"/proc/{pid}/task").iterdir())


def _set_nice(tid: int, nice: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # a thread that ended meanwhile
        os.setpriority(os.PRIO_PROCESS, tid, nice)
