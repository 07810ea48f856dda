"""`make run`'s supervisor: starts every process of the Procfile, prefixes their output with
their names, and restarts one that dies (saying which and why) after a back-off that grows while
it keeps dying, as compose's and Kubernetes' restart policies do; the others go on serving.
SIGINT, SIGTERM or the end of its parent (make) stops them all, gracefully first.

    python -m devstack.supervise Procfile
"""

import argparse
import contextlib
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
    def __init__(self, commands: dict[str, str], out: IO[str] = sys.stdout) -> None:
        self._children = [Supervised(name, command) for name, command in commands.items()]
        self._width = max(len(name) for name in commands)
        self._out = out
        self._lock = threading.Lock()
        self._stopping = threading.Event()

    def say(self, name: str, line: str) -> None:
        with self._lock:
            self._out.write(f"{time.strftime('%H:%M:%S')} {name:<{self._width}} | {line}\n")
            self._out.flush()

    def start(self, child: Supervised) -> None:
        # A session of its own: Ctrl-C reaches the supervisor only, which drains each process.
        child.process = subprocess.Popen(
            ["/bin/sh", "-c", child.command],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            bufsize=1,
            start_new_session=True,
        )
        child.started_at, child.restart_at = time.monotonic(), None
        self.say("supervise", f"started {child.name} (pid {child.process.pid})")
        reader = threading.Thread(target=self._relay_output, args=(child, child.process))
        reader.start()
        child.readers.append(reader)

    def _relay_output(self, child: Supervised, process: subprocess.Popen) -> None:
        for line in process.stdout:
            self.say(child.name, line.rstrip("\n"))

    def run(self) -> None:
        parent = os.getppid()
        for child in self._children:
            self.start(child)
        while not self._stopping.wait(0.2):
            if os.getppid() != parent:  # make went away without a signal reaching us
                break
            now = time.monotonic()
            for child in self._children:
                if child.restart_at is not None:
                    if now >= child.restart_at:
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

    def request_stop(self, signum: int, _frame: object) -> None:
        self._stopping.set()

    def stop_all(self) -> None:
        running = [c for c in self._children if c.process and c.process.poll() is None]
        self.say("supervise", f"stopping {', '.join(c.name for c in running) or 'nothing'}")
        for child in running:
            self._signal(child, signal.SIGTERM)
        deadline = time.monotonic() + GRACE_S
        for child in running:
            try:
                child.process.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                self.say("supervise", f"{child.name} did not stop in {GRACE_S:.0f}s: SIGKILL")
                self._signal(child, signal.SIGKILL)
                child.process.wait()
        for child in self._children:
            for reader in child.readers:
                reader.join(timeout=5)

    @staticmethod
    def _signal(child: Supervised, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.process.pid, signum)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("procfile", type=Path)
    supervisor = Supervisor(read_procfile(parser.parse_args().procfile))
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, supervisor.request_stop)
    supervisor.run()


if __name__ == "__main__":
    main()
