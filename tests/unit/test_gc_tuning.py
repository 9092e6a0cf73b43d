"""`starter.gc_tuning.worker_gc`: the worker's collector settings, and Python's back after."""

from __future__ import annotations

import gc

import pydantic
import pytest

from starter.gc_tuning import worker_gc
from starter.settings import Settings


class Node:
    """A container that can sit in a reference cycle."""

    def __init__(self) -> None:
        self.other: Node | None = None


def test_the_worker_heap_is_frozen_and_the_young_threshold_raised_until_exit() -> None:
    before = gc.get_threshold()
    with worker_gc(50_000):
        assert gc.get_threshold() == (50_000, *before[1:])
        assert gc.get_freeze_count() > 1_000  # modules, classes: everything alive at start
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_cycles_made_after_the_freeze_are_still_collected() -> None:
    with worker_gc(50_000):
        a, b = Node(), Node()
        a.other, b.other = b, a
        ids = {id(a), id(b)}
        del a, b
        gc.collect()
        assert not ids & {id(o) for o in gc.get_objects() if isinstance(o, Node)}


def test_zero_keeps_pythons_defaults() -> None:
    before = gc.get_threshold()
    with worker_gc(0):
        assert gc.get_threshold() == before
        assert gc.get_freeze_count() == 0


def test_the_setting_defaults_to_50000_and_refuses_a_negative_threshold(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert Settings().gc_young_threshold == 50_000
    monkeypatch.setenv("GC_YOUNG_THRESHOLD", "-1")
    with pytest.raises(pydantic.ValidationError, match="gc_young_threshold") as refused:
        Settings()
    assert "greater than or equal to 0" in str(refused.value)
