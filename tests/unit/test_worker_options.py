"""The worker's options that operators set: how many activities one worker runs at once."""

from __future__ import annotations

from typing import Any, cast
from unittest.mock import patch

import asyncpg
import httpx
import pydantic
import pytest
from temporalio.client import Client

import worker as worker_module
from starter.settings import Settings


def built_worker_options(**kwargs: Any) -> dict[str, Any]:
    """The keyword options `build_worker` gives temporalio's `Worker` (nothing connects)."""
    captured: dict[str, Any] = {}
    with patch.object(worker_module, "Worker", lambda *_, **options: captured.update(options)):
        worker_module.build_worker(cast(Client, object()), cast(asyncpg.Pool, object()),
                                   cast(httpx.AsyncClient, object()), "revops", **kwargs)  # fmt: skip
    return captured


def test_a_worker_runs_200_activities_at_once_by_default() -> None:
    assert Settings().worker_max_concurrent_activities == 200
    assert built_worker_options()["max_concurrent_activities"] == 200


def test_the_setting_comes_from_the_environment_and_reaches_the_worker(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("WORKER_MAX_CONCURRENT_ACTIVITIES", "75")
    limit = Settings().worker_max_concurrent_activities
    assert limit == 75
    assert built_worker_options(max_concurrent_activities=limit)["max_concurrent_activities"] == 75


def test_a_worker_that_runs_no_activity_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKER_MAX_CONCURRENT_ACTIVITIES", "0")
    with pytest.raises(pydantic.ValidationError) as refused:
        Settings()
    assert "worker_max_concurrent_activities" in str(refused.value)
    assert "greater than or equal to 1" in str(refused.value)
