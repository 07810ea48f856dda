"""`make run`'s supervisor (devstack/supervise.py) on a Procfile of sleeping Python processes:
bursts of SIGTERM and SIGINT always stop it, with every child, within the grace period; a child
that ignores SIGTERM is SIGKILLed when the grace period ends; a SIGKILLed supervisor takes its
children with it."""

import contextlib
import os
import random
import re
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from devstack.processes import ROOT

GRACE_S = 3.0
SLEEPER = f'exec {sys.executable} -I -S -c "import time; time.sleep(120)"'
STUBBORN = (
    f"exec {sys.executable} -I -S -c "
    '"import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(120)"'
)


def procfile(folder: Path, **commands: str) -> Path:
    path = folder / "Procfile"
    path.write_text("".join(f"{name}: {command}\n" for name, command in commands.items()))
    return path


def start(path: Path, children: int, grace_s: float = GRACE_S) -> tuple[subprocess.Popen, list]:
    """The supervisor, once it has started every child (its signal handlers are in place by
    then), and the children's pids."""
    supervisor = subprocess.Popen(
        [sys.executable, "-m", "devstack.supervise", str(path), "--grace", str(grace_s)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    pids = []
    while len(pids) < children:
        line = supervisor.stdout.readline()
        assert line, f"the supervisor ended before starting its children: {pids}"
        if started := re.search(r"started \S+ \(pid (\d+)\)", line):
            pids.append(int(started[1]))
    return supervisor, pids


def alive(pid: int) -> bool:
    """Running, or stopped and not yet reaped by whoever adopted it (a zombie is gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


def wait_gone(pids: list[int], timeout_s: float) -> list[int]:
    deadline = time.monotonic() + timeout_s
    while (left := [pid for pid in pids if alive(pid)]) and time.monotonic() < deadline:
        time.sleep(0.02)
    return left


def kill_left(supervisor: subprocess.Popen, pids: list[int]) -> None:
    for pid in [supervisor.pid, *pids]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    supervisor.wait()


def burst_run(path: Path, seed: int) -> str | None:
    """One run: a burst of 1 to 8 SIGTERMs and SIGINTs, some a few milliseconds apart, right
    after start or a little later. What went wrong, or None."""
    randomly = random.Random(seed)
    supervisor, pids = start(path, children=3)
    try:
        time.sleep(randomly.choice([0, 0, 0.01, 0.05]))
        sent = time.monotonic()
        for _ in range(randomly.randint(1, 8)):
            supervisor.send_signal(randomly.choice([signal.SIGTERM, signal.SIGINT]))
            if randomly.random() < 0.5:
                time.sleep(randomly.random() * 0.005)
        try:
            supervisor.communicate(timeout=GRACE_S + 1)
        except subprocess.TimeoutExpired:
            return f"run {seed}: the supervisor did not exit within {GRACE_S + 1}s"
        took = time.monotonic() - sent
        if left := wait_gone(pids, 0.5):
            return f"run {seed}: children {left} outlived the supervisor"
        if took > GRACE_S + 1:
            return f"run {seed}: stopping took {took:.1f}s"
        return None
    finally:
        kill_left(supervisor, pids)


def test_bursts_of_signals_always_stop_it_and_every_child(tmp_path):
    path = procfile(tmp_path, web=SLEEPER, worker=SLEEPER, other=SLEEPER)
    with ThreadPoolExecutor(max_workers=4) as pool:
        failures = [f for f in pool.map(lambda seed: burst_run(path, seed), range(100)) if f]
    assert failures == []


def test_a_child_that_ignores_sigterm_is_killed_when_the_grace_period_ends(tmp_path):
    supervisor, pids = start(procfile(tmp_path, stubborn=STUBBORN, quick=SLEEPER), 2, 1.0)
    try:
        time.sleep(0.2)  # its Python has set SIGTERM aside by now
        sent = time.monotonic()
        supervisor.send_signal(signal.SIGTERM)
        output, _ = supervisor.communicate(timeout=5)
        assert time.monotonic() - sent < 1.0 + 0.8
        assert "stubborn did not stop in time: SIGKILL" in output
        assert wait_gone(pids, 0.5) == []
    finally:
        kill_left(supervisor, pids)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_a_killed_supervisor_takes_its_children_with_it(tmp_path):
    for _ in range(5):
        supervisor, pids = start(procfile(tmp_path, a=SLEEPER, b=STUBBORN, c=SLEEPER), 3)
        try:
            supervisor.kill()
            supervisor.wait()
            assert wait_gone(pids, 2.0) == []
        finally:
            kill_left(supervisor, pids)


def test_a_child_that_dies_is_restarted(tmp_path):
    path = procfile(tmp_path, web=SLEEPER)
    supervisor, pids = start(path, 1)
    try:
        os.kill(pids[0], signal.SIGKILL)
        restarted = supervisor.stdout.readline() + supervisor.stdout.readline()
        assert "killed by SIGKILL; restarting it in 1s" in restarted
        assert re.search(r"started web \(pid (\d+)\)", restarted)
        pids.append(int(re.search(r"started web \(pid (\d+)\)", restarted)[1]))
        supervisor.send_signal(signal.SIGINT)
        supervisor.communicate(timeout=5)
        assert wait_gone(pids, 0.5) == []
    finally:
        kill_left(supervisor, pids)
