"""One real embedded stack per test session: Temporal dev server and PostgreSQL from their
PyPI wheels, migrated, with the worker and the HTTP API running in this process.

Set TEMPORAL_ADDRESS / DATABASE_URL to run the same tests against servers of your own.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from starter.ports import free_ports
from starter.services import Services, running_services
from starter.settings import Settings
from starter.stack import stop_stack
from tests.fakes.hubspot_server import FakeHubSpotServer

# The private-app token the worker presents to the fake HubSpot API.
HUBSPOT_ACCESS_TOKEN = "pat-eu1-it-7d3e1b90-4c2a-4f58-9e61-0a8b5c2d7f14"


@pytest.fixture(scope="session")
def hubspot_server() -> Iterator[FakeHubSpotServer]:
    """The fake HubSpot CRM API for the whole session; the worker reads deals from it."""
    with FakeHubSpotServer(token=HUBSPOT_ACCESS_TOKEN) as running:
        yield running


@pytest.fixture(scope="session")
def stack_settings(
    tmp_path_factory: pytest.TempPathFactory, hubspot_server: FakeHubSpotServer
) -> Iterator[Settings]:
    temporal_port, ui_port, pg_port, api_port = free_ports(4)
    settings = Settings(
        state_dir=Path(tmp_path_factory.mktemp("stack")) / "state",
        temporal_address=os.environ.get("TEMPORAL_ADDRESS"),
        database_url=os.environ.get("DATABASE_URL"),
        temporal_port=temporal_port,
        temporal_ui_port=ui_port,
        postgres_port=pg_port,
        api_port=api_port,
        task_queue="revops-it",
        hubspot_client_secret="it-hubspot-client-secret-3f9a",
        hubspot_api_base=hubspot_server.base_url,
        hubspot_access_token=HUBSPOT_ACCESS_TOKEN,
    )
    yield settings
    stop_stack(settings)


@pytest.fixture(scope="session")
async def services(stack_settings: Settings) -> AsyncIterator[Services]:
    async with running_services(stack_settings) as running:
        yield running
