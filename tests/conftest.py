"""Fixtures shared by every tier: the real rule set from `rules/`."""

from __future__ import annotations

import pytest

from models.rules import RuleSet
from starter.rules_loader import load_rules
from starter.settings import PROJECT_ROOT


@pytest.fixture(scope="session")
def rules() -> RuleSet:
    return load_rules(PROJECT_ROOT / "rules")
