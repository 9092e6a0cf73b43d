"""Garbage-collector settings for the long-running worker (setting `GC_YOUNG_THRESHOLD`).

CPython's cyclic collector walks its oldest generation whenever the objects that survived
into it have grown by a quarter. A worker's heap is large and grows slowly: imported modules,
the rule book, connection pools, and the sandbox of every workflow in the worker's cache
(up to 1,000). In the standard-path benchmark each of those full passes took about half a
second, 8.5% of the process's CPU, and every workflow task and activity in the process
stood still meanwhile (`bench/README.md`). Two standard remedies, both here:

- **Freeze what exists once the worker has started.** `gc.freeze()` moves every object
  alive at that point (modules, classes, settings, pools) into a permanent generation that
  no collection walks again. None of it is garbage: it lives as long as the process.
- **A larger youngest generation.** A collection is triggered after `GC_YOUNG_THRESHOLD`
  more allocations than deallocations of container objects (Python's default is 700). An
  activation's or an activity's temporary objects then die by reference counting before a
  collection sees them, and far fewer survive into the older generations, so the full
  passes come rarely. It costs memory: at most that many extra young objects at a time.

`0` leaves Python's defaults alone. Garbage is still collected either way; only how often
the collector looks, and at what, changes.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def worker_gc(young_threshold: int) -> Iterator[None]:
    """Freeze the started worker's heap and raise the youngest generation's threshold to
    `young_threshold` (0: change nothing); on exit, Python's earlier settings return."""
    if young_threshold == 0:
        yield
        return
    before = gc.get_threshold()
    gc.collect()  # what is garbage now should not be frozen
    gc.freeze()
    gc.set_threshold(young_threshold, *before[1:])
    try:
        yield
    finally:
        gc.set_threshold(*before)
        gc.unfreeze()
