"""The event loop every entry point runs on: uvloop, unless the setting `EVENT_LOOP=asyncio`.

The worker spends much of its time in event-loop work: asyncpg and SMTP round trips, and the
Temporal SDK handing each workflow activation to a thread and back. uvloop (libuv) does that
work with less CPU than the standard loop (`bench/README.md` has the figures). The standard
loop stays one setting away, for debugging (`PYTHONASYNCIODEBUG` and `loop.set_debug` work
best on it) and for platforms uvloop does not support (Windows).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from starter.settings import get_settings

T = TypeVar("T")


def loop_factory(choice: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """What `asyncio.Runner` builds for `choice`: uvloop's loop, or None (the standard one).
    Exits with a message naming `EVENT_LOOP` when uvloop is asked for and not installed."""
    if choice == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        raise SystemExit(
            "EVENT_LOOP=uvloop, but uvloop is not installed (it does not support Windows): "
            "install it, or set EVENT_LOOP=asyncio"
        ) from None
    return uvloop.new_event_loop


def run(main: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run(main)` on the loop the settings choose."""
    try:
        factory = loop_factory(get_settings().event_loop)
    except BaseException:
        main.close()  # never started: no "was never awaited" warning on top of the error
        raise
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(main)
