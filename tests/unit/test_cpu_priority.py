"""`make bench` puts the machine's RabbitMQ behind the web for the run, and back afterwards."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from perf.cpu_priority import BACKGROUND_NICE, in_background
from service_kit.process.worker import autogroup, session_nice

# A process with a few threads, in a session of its own (as the machine's services run).
THREADED = """
import threading, time
for _ in range(3):
    threading.Thread(target=time.sleep, args=(60,), daemon=True).start()
time.sleep(60)
"""


def priorities(pid: int) -> tuple[list[int], int | None]:
    threads = sorted(
        os.getpriority(os.PRIO_PROCESS, int(t.name)) for t in Path(f"/proc/{pid}/task").iterdir()
    )
    return threads, session_nice(pid)


@pytest.fixture
def service():
    process = subprocess.Popen([sys.executable, "-c", THREADED], start_new_session=True)
    deadline = time.monotonic() + 10
    while len(list(Path(f"/proc/{process.pid}/task").iterdir())) < 4:
        assert time.monotonic() < deadline, "the threads did not start"
        time.sleep(0.01)
    yield process.pid
    process.kill()
    process.wait()


def test_a_process_runs_in_the_background_for_the_block_only(service):
    before = priorities(service)
    with in_background(service) as done:
        during = priorities(service)
    assert priorities(service) == before
    if os.geteuid() != 0:
        assert during == before and done.startswith("unchanged")
        return
    threads, group = during
    assert threads == [BACKGROUND_NICE] * 4 and "4 threads" in done
    assert group == (BACKGROUND_NICE if autogroup(service).exists() else None)
