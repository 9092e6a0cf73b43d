"""`starter.event_loop`: which loop the entry points (and these tests) run on."""

from __future__ import annotations

import asyncio
import inspect
import sys
from collections.abc import Iterator

import pydantic
import pytest

from starter import event_loop
from starter.settings import get_settings


@pytest.fixture(autouse=True)
def fresh_settings() -> Iterator[None]:
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


async def _loop_module() -> str:
    return type(asyncio.get_running_loop()).__module__


async def test_async_tests_run_on_the_loop_the_product_runs_on() -> None:
    assert (await _loop_module()).startswith("uvloop")


def test_entry_points_run_on_uvloop_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EVENT_LOOP", raising=False)
    assert event_loop.run(_loop_module()).startswith("uvloop")


def test_event_loop_asyncio_gives_the_standard_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVENT_LOOP", "asyncio")
    assert event_loop.run(_loop_module()) == "asyncio.unix_events"


def test_an_unknown_event_loop_is_refused_naming_the_setting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("EVENT_LOOP", "tokio")
    main = _loop_module()
    with pytest.raises(pydantic.ValidationError, match="event_loop") as refused:
        event_loop.run(main)
    assert "'uvloop' or 'asyncio'" in str(refused.value)
    assert inspect.getcoroutinestate(main) == "CORO_CLOSED"  # no "never awaited" warning


def test_without_uvloop_installed_the_message_says_what_to_do(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("EVENT_LOOP", raising=False)
    monkeypatch.setitem(sys.modules, "uvloop", None)  # import uvloop now raises ImportError
    with pytest.raises(SystemExit, match=r"uvloop is not installed.*set EVENT_LOOP=asyncio"):
        event_loop.run(_loop_module())
