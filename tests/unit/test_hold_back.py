"""The order flow's hold-back: while processes at normal priority keep the machine busy, a
worker's batches wait, at most a bounded time, then work as long before holding again (or until
they have caught up), or while a load that outlasted the bound lasts."""

import os
import threading
import time

from service_kit.messaging import hold_back
from service_kit.messaging.broker import OutgoingMessage
from service_kit.messaging.consumer import consume
from service_kit.messaging.hold_back import ENTER_SHARE, LEAVE_SHARE, SAMPLE_S, HoldBack
from service_kit.messaging.spool import SpoolBroker
from service_kit.telemetry import metrics
from tests.helpers import Machine, order_created


def holding_after(machine: Machine, holder: HoldBack, seconds: float, share: float) -> bool:
    machine.run(seconds, share)
    return holder.holding()


def test_a_busy_machine_holds_the_order_flow_until_it_quiets() -> None:
    machine = Machine()
    holder = HoldBack(60, read=machine.read, clock=machine.clock)
    assert not holding_after(machine, holder, SAMPLE_S, ENTER_SHARE - 0.05)
    assert holding_after(machine, holder, SAMPLE_S, ENTER_SHARE + 0.1)
    assert metrics.worker_holding_back._value.get() == 1
    # Held, the workers' own statements no longer load the database: the share falls a little.
    assert holding_after(machine, holder, SAMPLE_S, LEAVE_SHARE + 0.05)
    assert holding_after(machine, holder, 10, LEAVE_SHARE + 0.05)
    assert not holding_after(machine, holder, SAMPLE_S, LEAVE_SHARE - 0.05)
    assert metrics.worker_holding_back._value.get() == 0


def test_a_hold_lasts_at_most_its_bound_then_the_flow_works_while_the_load_lasts() -> None:
    machine = Machine()
    holder = HoldBack(30, read=machine.read, clock=machine.clock)
    held_before = metrics.worker_held_back._value.get()
    assert holding_after(machine, holder, SAMPLE_S, 0.9)
    assert holding_after(machine, holder, 29, 0.9)
    assert not holding_after(machine, holder, 1, 0.9)  # 30 s held: no event waits longer
    assert metrics.worker_held_back._value.get() - held_before >= 30
    # The load outlasted the bound: deferring more only piles events up, the flow works beside
    # it for as long as it lasts, and holds again only for a burst after the machine quiets.
    for _ in range(10):
        assert not holding_after(machine, holder, 30, 0.9)
    assert not holding_after(machine, holder, SAMPLE_S, LEAVE_SHARE + 0.05)
    assert not holding_after(machine, holder, SAMPLE_S, LEAVE_SHARE - 0.05)
    assert holding_after(machine, holder, SAMPLE_S, 0.9)


def test_after_a_hold_the_flow_works_as_long_as_it_held() -> None:
    """A machine busy but for a moment now and then cannot chain holds: the order flow keeps at
    least half the time."""
    machine = Machine()
    holder = HoldBack(60, read=machine.read, clock=machine.clock)
    assert holding_after(machine, holder, SAMPLE_S, 0.9)
    assert holding_after(machine, holder, 20, 0.9)
    assert not holding_after(machine, holder, SAMPLE_S, LEAVE_SHARE - 0.05)  # a quiet moment
    for _ in range(40):  # 20 s busy again: not held
        assert not holding_after(machine, holder, SAMPLE_S, 0.9)
    assert holding_after(machine, holder, 1, 0.9)


def test_a_flow_that_has_caught_up_after_a_hold_leaves_the_machine_to_the_next_burst() -> None:
    """The time owed to the flow after a hold is for working off what it deferred: once each
    task has taken less than a full batch, a burst gets the machine at once."""
    machine = Machine()
    holder = HoldBack(60, read=machine.read, clock=machine.clock)
    holder.tell("relay", caught_up=True)
    holder.tell("consumer", caught_up=True)
    assert holding_after(machine, holder, SAMPLE_S, 0.9)
    assert holding_after(machine, holder, 20, 0.9)
    assert not holding_after(machine, holder, SAMPLE_S, LEAVE_SHARE - 0.05)  # the burst ended
    holder.tell("relay", caught_up=False)
    holder.tell("relay", caught_up=True)
    holder.tell("consumer", caught_up=False)
    assert not holding_after(machine, holder, SAMPLE_S, 0.9)  # the consumer is still behind
    holder.tell("consumer", caught_up=True)
    assert holding_after(machine, holder, SAMPLE_S, 0.9)


def test_a_task_behind_again_or_not_yet_heard_from_keeps_the_time_owed() -> None:
    machine = Machine()
    holder = HoldBack(60, read=machine.read, clock=machine.clock)
    holder.tell("consumer", caught_up=False)  # started, no round yet
    assert holding_after(machine, holder, SAMPLE_S, 0.9)
    assert holding_after(machine, holder, 20, 0.9)
    assert not holding_after(machine, holder, SAMPLE_S, LEAVE_SHARE - 0.05)
    holder.tell("relay", caught_up=True)
    assert not holding_after(machine, holder, SAMPLE_S, 0.9)  # the consumer not heard from
    holder.tell("consumer", caught_up=True)
    holder.tell("consumer", caught_up=False)  # the relay's last events reached it
    assert not holding_after(machine, holder, SAMPLE_S, 0.9)
    holder.tell("consumer", caught_up=True)
    assert holding_after(machine, holder, SAMPLE_S, 0.9)


def test_nothing_is_held_when_switched_off_or_where_the_machine_cannot_be_read() -> None:
    machine = Machine()
    off = HoldBack(0, read=machine.read, clock=machine.clock)
    unreadable = HoldBack(60, read=lambda: None, clock=machine.clock)
    for _ in range(5):
        machine.run(SAMPLE_S, 1.0)
        assert not off.holding()
        assert not unreadable.holding()


def test_the_machines_cpu_time_is_read_from_proc_stat() -> None:
    first = hold_back.cpu_ticks()
    deadline = time.monotonic() + 0.3
    while time.monotonic() < deadline:  # this test's own CPU (user time), at normal priority
        sum(range(1000))
    second = hold_back.cpu_ticks()
    assert first is not None and second is not None
    busy, total = (b - a for a, b in zip(first, second, strict=True))
    cpus = os.cpu_count() or 1
    assert total >= 25 * cpus  # 0.3 s of every CPU at 100 ticks a second, less rounding
    assert 20 <= busy <= total  # at least this test's own 0.3 s of one CPU


def test_a_consumer_applies_nothing_while_held_and_everything_once_released(tmp_path) -> None:
    machine = Machine()
    holder = HoldBack(2, read=machine.read, clock=time.monotonic)
    time.sleep(SAMPLE_S)
    machine.run(SAMPLE_S, 1.0)  # always busy: released only by the bound
    assert holder.holding()
    url = f"sqlite:///{tmp_path}/events.db"
    SpoolBroker(url).publish(
        [OutgoingMessage(e.type, e.to_json().encode(), e.id) for e in map(_created, range(1, 6))]
    )
    applied: list[int] = []
    pings: list[float] = []
    stop = threading.Event()

    class Pinged(SpoolBroker):
        def ping(self) -> None:
            pings.append(time.monotonic())
            machine.run(SAMPLE_S, 1.0)

    consumer = threading.Thread(
        target=consume,
        args=(lambda: Pinged(url), "product-service.order-created", _count(applied), stop),
        kwargs={"hold_back": holder, "linger_s": 0.1},
        daemon=True,
    )
    started = time.monotonic()
    consumer.start()
    try:
        time.sleep(1.2)
        assert applied == [] and len(pings) >= 5  # held, the connection kept alive
        deadline = time.monotonic() + 10
        while sum(applied) < 5 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert sum(applied) == 5
        assert time.monotonic() - started >= 1.5
    finally:
        stop.set()
        consumer.join(timeout=10)


def test_a_consumer_that_empties_its_queue_tells_the_hold_back_it_has_caught_up(tmp_path) -> None:
    machine = Machine()
    holder = HoldBack(60, read=machine.read, clock=machine.clock)
    queue = "product-service.order-created"
    url = f"sqlite:///{tmp_path}/events.db"
    SpoolBroker(url).publish(
        [OutgoingMessage(e.type, e.to_json().encode(), e.id) for e in map(_created, range(1, 3))]
    )
    holder.tell(queue, caught_up=False)  # as `consume` does when it starts
    assert holding_after(machine, holder, SAMPLE_S, 0.9)
    assert holding_after(machine, holder, 20, 0.9)
    assert not holding_after(machine, holder, SAMPLE_S, LEAVE_SHARE - 0.05)
    assert not holding_after(machine, holder, SAMPLE_S, 0.9)  # 20 s owed, the queue not empty
    stop = threading.Event()
    applied: list[int] = []

    def apply_then_stop(batch) -> None:  # noqa: ANN001
        applied.append(len(batch))
        stop.set()

    consumer = threading.Thread(
        target=consume,
        args=(lambda: SpoolBroker(url), queue, apply_then_stop, stop),
        kwargs={"hold_back": holder, "linger_s": 0.1},
        daemon=True,
    )
    consumer.start()
    consumer.join(timeout=10)
    assert not consumer.is_alive() and applied == [2]
    assert holding_after(machine, holder, SAMPLE_S, 0.9)  # a round of less than a batch


def _created(n: int):  # noqa: ANN202
    return order_created(n, 1, 1)


def _count(applied: list[int]):  # noqa: ANN202
    return lambda batch: applied.append(len(batch))
