"""The embedded stack end to end: real PostgreSQL and the real Temporal dev server."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import psutil
import pytest
from temporalio.api.operatorservice.v1 import (
    ListSearchAttributesRequest,
    RemoveSearchAttributesRequest,
)
from temporalio.client import Client

from starter.embedded_postgres import EmbeddedPostgres
from starter.embedded_temporal import TemporalError
from starter.ports import free_ports
from starter.settings import Settings
from starter.stack import EmbeddedStack, StackInfo, is_running, running_stack, stop_stack
from workflows import search_attributes

pytestmark = pytest.mark.integration


@pytest.fixture
def settings(tmp_path: Path) -> Iterator[Settings]:
    temporal_port, ui_port, pg_port = free_ports(3)
    settings = Settings(
        state_dir=tmp_path / "state",
        temporal_address=None,
        database_url=None,
        temporal_port=temporal_port,
        temporal_ui_port=ui_port,
        postgres_port=pg_port,
    )
    yield settings
    stop_stack(settings)  # whatever a failing test left behind


def _stack_processes(info: StackInfo, state_dir: Path) -> list[psutil.Process]:
    """Live (non-zombie) processes of the stack: recorded pids, their children, state-dir users."""
    pids = {piece.pid for piece in (info.temporal, info.postgres) if piece is not None}
    found: list[psutil.Process] = []
    for proc in psutil.process_iter(["pid", "cmdline", "status"]):
        if proc.info["status"] == psutil.STATUS_ZOMBIE:
            continue
        cmdline = " ".join(proc.info["cmdline"] or [])
        try:
            parent = proc.ppid()
        except psutil.Error:
            continue
        if proc.pid in pids or parent in pids or str(state_dir) in cmdline:
            found.append(proc)
    return found


async def _custom_search_attributes(info: StackInfo) -> dict[str, int]:
    client = await Client.connect(info.temporal_address, namespace=info.temporal_namespace)
    listed = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=info.temporal_namespace)
    )
    return dict(listed.custom_attributes)


def _expected_search_attributes() -> dict[str, int]:
    keys = search_attributes.ALL
    return {key.name: key.indexed_value_type.value for key in keys}


async def test_stack_starts_persists_and_stops_cleanly(settings: Settings) -> None:
    assert not is_running(settings)

    stack = EmbeddedStack(settings)
    info = await asyncio.to_thread(stack.start)
    assert stack.started == ["postgres", "temporal"]
    assert is_running(settings)
    assert info.temporal is not None and info.postgres is not None
    assert info.temporal_address == f"127.0.0.1:{settings.temporal_port}"
    assert info.temporal_ui_url == f"http://127.0.0.1:{settings.temporal_ui_port}"
    assert info.database_url == f"postgresql://revops@127.0.0.1:{settings.postgres_port}/revops"
    recorded = json.loads((settings.state_dir / "stack.json").read_text())
    assert recorded["temporal"]["pid"] == info.temporal.pid
    assert recorded["postgres"]["pid"] == info.postgres.pid

    # Temporal: a client connects and every custom search attribute is registered.
    client = await Client.connect(info.temporal_address, namespace=info.temporal_namespace)
    assert (await client.count_workflows()).count == 0
    assert await _custom_search_attributes(info) == _expected_search_attributes()

    # PostgreSQL: the app role owns the app database and can write to it.
    conn = await asyncpg.connect(info.database_url)
    try:
        assert await conn.fetchval("SELECT current_user") == "revops"
        await conn.execute("CREATE TABLE probe (id int PRIMARY KEY, note text)")
        await conn.execute("INSERT INTO probe VALUES (1, 'survives a restart')")
    finally:
        await conn.close()

    # Everything listens on 127.0.0.1 only.
    for pid in (info.temporal.pid, info.postgres.pid):
        listening = [c for c in psutil.Process(pid).net_connections("inet") if c.status == "LISTEN"]
        assert listening and all(c.laddr.ip == "127.0.0.1" for c in listening)

    # A key removed from (or never in) an existing database is registered again at next start.
    await client.operator_service.remove_search_attributes(
        RemoveSearchAttributesRequest(
            search_attributes=[search_attributes.CHECK_ID.name],
            namespace=info.temporal_namespace,
        )
    )

    assert search_attributes.CHECK_ID.name not in await _custom_search_attributes(info)

    processes = _stack_processes(info, settings.state_dir)
    assert len(processes) >= 3  # temporal, postmaster and its background workers
    await asyncio.to_thread(stack.stop)
    _, alive = psutil.wait_procs(processes, timeout=10)
    assert [p for p in alive if p.status() != psutil.STATUS_ZOMBIE] == []
    assert _stack_processes(info, settings.state_dir) == []
    assert not is_running(settings)
    assert not (settings.state_dir / "stack.json").exists()

    # Restart on the same state dir: the row and the search attributes are still there.
    with EmbeddedStack(settings) as again:
        assert again.started == ["postgres", "temporal"]
        conn = await asyncpg.connect(again.database_url)
        try:
            assert (
                await conn.fetchval("SELECT note FROM probe WHERE id = 1") == "survives a restart"
            )
        finally:
            await conn.close()
        assert await _custom_search_attributes(again.info) == _expected_search_attributes()

        # Another command reuses the running stack and leaves it up when it is done.
        reuser = EmbeddedStack(settings)
        reused = await asyncio.to_thread(reuser.start)
        assert reuser.started == []
        assert reused.temporal == again.info.temporal
        assert reused.postgres == again.info.postgres
        reuser.stop()
        assert is_running(settings)
        second_run = again.info

    assert _stack_processes(second_run, settings.state_dir) == []
    assert running_stack(settings) is None


def test_failed_start_leaves_nothing_running(settings: Settings) -> None:
    with socket.socket() as squatter:  # another program holds the Temporal port
        squatter.bind(("127.0.0.1", settings.temporal_port))
        squatter.listen()
        stack = EmbeddedStack(settings)
        with pytest.raises(TemporalError, match=f"port {settings.temporal_port}"):
            stack.start()
    assert stack.started == []
    assert running_stack(settings) is None
    assert not (settings.state_dir / "stack.json").exists()
    assert EmbeddedPostgres(settings.state_dir, settings.postgres_port).running_pid() is None


def test_production_settings_start_nothing(tmp_path: Path) -> None:
    settings = Settings(
        state_dir=tmp_path / "state",
        temporal_address="temporal.example.internal:7233",
        database_url="postgresql://app@db.example.internal:5432/revops",
    )
    with EmbeddedStack(settings) as stack:
        assert stack.started == []
        assert stack.info.temporal is None and stack.info.postgres is None
        assert stack.temporal_address == "temporal.example.internal:7233"
        assert stack.database_url == "postgresql://app@db.example.internal:5432/revops"
        assert stack.temporal_ui_url is None
        assert is_running(settings)
    assert not (settings.state_dir / "stack.json").exists()
