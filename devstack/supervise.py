"""`make run`'s supervisor: starts every process of the Procfile, prefixes their output with
their names, and restarts one that dies (saying which and why) after a back-off that grows while
it keeps dying, as compose's and Kubernetes' restart policies do; the others go on serving.
SIGINT, SIGTERM, SIGHUP or the end of its parent (make) stops them all: SIGTERM to each process
group, SIGKILL to whatever is left when the grace period ends (a second signal a second or more
after the first: at once). A supervisor killed outright takes its children with it (Linux).

    python -m devstack.supervise Procfile [--grace SECONDS]

Kept rather than honcho, supervisord or circus: honcho stops every process when one dies (no
restarts), supervisord and circus run as daemons from their own configuration files (circus also
brings ZeroMQ), and none prefixes a foreground Procfile run and stops with make as this does.
"""

import argparse
import contextlib
import ctypes
import ctypes.util
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

FIRST_BACKOFF_S = 1.0
MOST_BACKOFF_S = 30.0
STEADY_AFTER_S = 30.0  # a process that ran this long starts again from the first back-off
GRACE_S = 20.0  # SIGTERM, then SIGKILL: longer than the services' own drain
TICK_S = 0.05  # how soon the main loop notices a signal or a dead child
ESCALATE_AFTER_S = 1.0  # a signal this long after the first one means "now" (Ctrl-C twice)
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
PR_SET_PDEATHSIG = 1


def read_procfile(path: Path) -> dict[str, str]:
    """Process name → shell command, in the file's order."""
    commands = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, command = line.partition(":")
            commands[name.strip()] = command.strip()
    return commands


def why(returncode: int) -> str:
    if returncode < 0:
        return f"killed by {signal.Signals(-returncode).name}"
    return f"exited with status {returncode}"


def _die_with_parent_hook() -> object:
    """What runs in the child between fork and exec: ask Linux to SIGKILL it when the thread
    that forked it (the supervisor's main thread) ends, however it ends. Resolved here, before
    any fork, so that the child only makes one foreign call (reader threads run meanwhile)."""
    libc_name = ctypes.util.find_library("c")
    if not sys.platform.startswith("linux") or libc_name is None:
        return None
    prctl = ctypes.CDLL(libc_name, use_errno=True).prctl
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    kill = int(signal.SIGKILL)

    def die_with_parent() -> None:
        prctl(PR_SET_PDEATHSIG, kill, 0, 0, 0)

    return die_with_parent


@dataclass
class Supervised:
    name: str
    command: str
    process: subprocess.Popen | None = None
    started_at: float = 0.0
    backoff_s: float = FIRST_BACKOFF_S
    restart_at: float | None = None
    readers: list[threading.Thread] = field(default_factory=list)


class Supervisor:
    def __init__(
        self, commands: dict[str, str], out: IO[str] = sys.stdout, grace_s: float = GRACE_S
    ) -> None:
        self._children = [Supervised(name, command) for name, command in commands.items()]
        self._width = max(len(name) for name in commands)
        self._out = out
        self._grace_s = grace_s
        self._lock = threading.Lock()  # the output's; never taken in a signal handler
        self._signals: list[int] = []  # appended by the handler, read by the main loop
        self._die_with_parent = _die_with_parent_hook()

    def say(self, name: str, line: str) -> None:
        with self._lock:
            self._out.write(f"{time.strftime('%H:%M:%S')} {name:<{self._width}} | {line}\n")
            self._out.flush()

    def record_signal(self, signum: int, _frame: object) -> None:
        """The signal handler: it only records. Anything more (a lock, an Event, output) could
        re-enter what the main thread was doing when the signal arrived, and hang there."""
        self._signals.append(signum)

    def start(self, child: Supervised) -> None:
        # A session of its own: Ctrl-C reaches the supervisor only, which drains each process,
        # and the worker's nice value applies to its own session's scheduling group.
        child.process = subprocess.Popen(
            ["/bin/sh", "-c", child.command],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            bufsize=1,
            start_new_session=True,
            preexec_fn=self._die_with_parent,  # one prctl call, resolved before any fork
        )
        child.started_at, child.restart_at = time.monotonic(), None
        self.say("supervise", f"started {child.name} (pid {child.process.pid})")
        # Daemon threads: a grandchild that keeps the pipe open cannot hold the exit up.
        reader = threading.Thread(
            target=self._relay_output, args=(child, child.process), daemon=True
        )
        reader.start()
        child.readers.append(reader)

    def _relay_output(self, child: Supervised, process: subprocess.Popen) -> None:
        for line in process.stdout:
            self.say(child.name, line.rstrip("\n"))

    def run(self) -> None:
        parent = os.getppid()
        for child in self._children:
            if self._signals:
                break
            self.start(child)
        while not self._signals:
            time.sleep(TICK_S)
            if os.getppid() != parent:  # make went away without a signal reaching us
                break
            now = time.monotonic()
            for child in self._children:
                if child.process is None:
                    continue
                if child.restart_at is not None:
                    if now >= child.restart_at and not self._signals:
                        self.start(child)
                elif child.process.poll() is not None:
                    self._schedule_restart(child, now)
        self.stop_all()

    def _schedule_restart(self, child: Supervised, now: float) -> None:
        if now - child.started_at >= STEADY_AFTER_S:
            child.backoff_s = FIRST_BACKOFF_S
        self.say(
            "supervise",
            f"{child.name} (pid {child.process.pid}) {why(child.process.returncode)}; "
            f"restarting it in {child.backoff_s:.0f}s",
        )
        child.restart_at = now + child.backoff_s
        child.backoff_s = min(child.backoff_s * 2, MOST_BACKOFF_S)

    def stop_all(self) -> None:
        """SIGTERM every process group, SIGKILL them when the grace period ends or a signal
        comes a second or more after the first: always done within the grace period (and
        the moment it takes the kernel to reap)."""
        started = time.monotonic()
        deadline = started + self._grace_s
        seen = len(self._signals)
        running = [c for c in self._children if c.process and c.process.poll() is None]
        stopped = list(running)
        self.say("supervise", f"stopping {', '.join(c.name for c in running) or 'nothing'}")
        for child in running:
            self._signal(child, signal.SIGTERM)
        while running and time.monotonic() < deadline:
            if len(self._signals) > seen and time.monotonic() - started >= ESCALATE_AFTER_S:
                self.say("supervise", "asked again: SIGKILL")
                break
            seen = len(self._signals)
            time.sleep(TICK_S)
            running = [c for c in running if c.process.poll() is None]
        for child in running:
            self.say("supervise", f"{child.name} did not stop in time: SIGKILL")
        for child in stopped:  # the groups' stragglers too, whatever became of their leaders
            self._signal(child, signal.SIGKILL)
        for child in running:
            child.process.wait()
        for child in self._children:
            for reader in child.readers:
                reader.join(timeout=max(deadline - time.monotonic(), 0.1))

    @staticmethod
    def _signal(child: Supervised, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(child.process.pid, signum)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("procfile", type=Path)
    parser.add_argument(
        "--grace", type=float, default=GRACE_S, help="seconds between SIGTERM and SIGKILL"
    )
    arguments = parser.parse_args()
    supervisor = Supervisor(read_procfile(arguments.procfile), grace_s=arguments.grace)
    for signum in STOP_SIGNALS:
        signal.signal(signum, supervisor.record_signal)
    supervisor.run()


if __name__ == "__main__":
    main()
