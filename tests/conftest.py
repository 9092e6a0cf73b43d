"""Fixtures shared by every tier: the real rule set from `rules/`, and the event loop the
product runs on (`starter.event_loop`: uvloop) for every async test."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pytest

from models.rules import RuleSet
from starter.event_loop import loop_factory
from starter.rules_loader import load_rules
from starter.settings import PROJECT_ROOT, get_settings


def pytest_asyncio_loop_factories() -> Mapping[str, Callable[..., Any]] | None:
    """Async tests run on the loop the worker, the API and the CLI run on (None: the
    standard one, when EVENT_LOOP=asyncio)."""
    choice = get_settings().event_loop
    factory = loop_factory(choice)
    return {choice: factory} if factory else None


@pytest.fixture(scope="session")
def rules() -> RuleSet:
    return load_rules(PROJECT_ROOT / "rules")
