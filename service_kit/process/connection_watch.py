"""Deadlines for a web worker's connections, and room for new ones when it is full.

A connection that waits on its client holds one of the worker's `worker_connections` slots: an
idle keep-alive connection, one whose request head (line and headers) has not fully arrived,
or one whose body has not fully arrived. Each phase has a deadline (`ConnectionLimits`); a
sweep every half second shuts the read side of every connection past its deadline, which ends
the read in progress: an idle connection closes, a late head or body gets a 400. When a new
connection takes the worker's last slot, the connection that has waited longest on its client
(idle first, then one sending its head, then its body) is shut to make room, so idle or
trickling clients cannot keep a normal request out. A connection whose request has arrived in
full (the application working on it) is in no phase, and never shut.
"""

import contextlib
import socket
import time
from typing import Any

import gevent

from service_kit.config import ConnectionLimits

SWEEP_INTERVAL_S = 0.5


class ConnectionWatch:
    """The connections of one web worker that wait on their clients, by phase; each dict keeps
    its connections in the order they entered the phase, with their deadlines."""

    def __init__(self, limits: ConnectionLimits) -> None:
        self.limits = limits
        self._idle: dict[Any, float] = {}
        self._head: dict[Any, float] = {}
        self._body: dict[Any, float] = {}

    # Phases, called by the connection's handler.

    def idle(self, handler: Any) -> None:
        self._body.pop(handler, None)
        self._idle[handler] = time.monotonic() + self.limits.idle_timeout_s

    def reading_head(self, handler: Any) -> None:
        self._idle.pop(handler, None)
        self._head[handler] = time.monotonic() + self.limits.header_timeout_s

    def reading_body(self, handler: Any) -> None:
        self._head.pop(handler, None)
        self._body[handler] = time.monotonic() + self.limits.body_timeout_s

    def working(self, handler: Any) -> None:
        """The request has arrived in full: nothing to wait for until it is answered."""
        self.forget(handler)

    def forget(self, handler: Any) -> None:
        for phase in (self._idle, self._head, self._body):
            phase.pop(handler, None)

    # What the worker does with them.

    def make_room(self, newcomer: Any, free_slots: int) -> None:
        """Called as `newcomer` starts, with the slots left: if it took the last one, shut the
        longest waiter."""
        if free_slots > 0:
            return
        for phase in (self._idle, self._head, self._body):
            for handler in phase:
                if handler is not newcomer:
                    self._shut(handler, phase)
                    return

    def sweep(self) -> None:
        now = time.monotonic()
        for phase in (self._idle, self._head, self._body):
            for handler in [h for h, deadline in phase.items() if deadline < now]:
                self._shut(handler, phase)

    def shut_idle(self) -> None:
        """On shutdown: idle connections would hold the worker until its graceful timeout."""
        for handler in list(self._idle):
            self._shut(handler, self._idle)

    def run(self, worker: Any) -> None:
        """The sweep, for as long as the worker lives (a greenlet of its own)."""
        while True:
            gevent.sleep(SWEEP_INTERVAL_S)
            self.sweep()
            if not worker.alive:
                self.shut_idle()

    @staticmethod
    def _shut(handler: Any, phase: dict[Any, float]) -> None:
        del phase[handler]
        # The read in progress ends (it reads the end of the stream); answers can still be written.
        # The connection may be closed, or its socket gone, already.
        with contextlib.suppress(OSError, AttributeError):
            handler.socket.shutdown(socket.SHUT_RD)
