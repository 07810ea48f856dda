"""The garbage collector of a long-running process, settled once its start-up is done."""

import gc


def settle_garbage_collector() -> None:
    """Once a process has loaded what it keeps (the parsed specs, compiled validators,
    SQLAlchemy metadata...), those objects are moved out of the collector's sight, and young
    collections run less often. Full collections had scanned all of them again and again,
    stalling a web worker's requests and pausing the event workers (docs/performance.md)."""
    gc.freeze()
    gc.set_threshold(10_000, 20, 100)
