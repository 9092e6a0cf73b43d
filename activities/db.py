"""Shared database helpers for the activities: the pool and the audit write."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING, Any, TypeAlias

import asyncpg
from temporalio import activity

if TYPE_CHECKING:
    from asyncpg.pool import PoolConnectionProxy

    # What `pool.acquire()` yields and what helpers accept: a pooled or a plain connection.
    DbConnection: TypeAlias = (
        asyncpg.Connection[asyncpg.Record] | PoolConnectionProxy[asyncpg.Record]
    )
else:
    DbConnection = asyncpg.Connection

from models.audit import AuditEvent


async def _init_connection(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Nothing to reset when a connection goes back to the pool: this code sets only
    transaction-scoped state (`SET LOCAL`, `pg_advisory_xact_lock`), and asyncpg itself rolls
    back an unfinished transaction first. The default reset (`RESET ALL`, `UNLISTEN *`,
    `CLOSE ALL`, unlocking session advisory locks) would cost a round trip per release.
    Code that must change the session (the benchmarks acting as the owner) uses `as_owner`."""


@contextlib.asynccontextmanager
async def as_owner(conn: DbConnection) -> AsyncIterator[None]:
    """Act as the login role (the tables' owner) instead of the application role, for DDL
    and maintenance, and go back to the application role afterwards, whatever happens."""
    await conn.execute("SET ROLE NONE")
    try:
        yield
    finally:
        await conn.execute("RESET ROLE")


async def create_pool(database_url: str, *, max_size: int = 10) -> asyncpg.Pool:
    """An asyncpg pool whose connections read and write jsonb as Python values."""
    pool = await asyncpg.create_pool(
        database_url, min_size=1, max_size=max_size, init=_init_connection, reset=_keep_session
    )
    assert pool is not None
    return pool


def workflow_ids() -> tuple[str | None, str | None]:
    """The calling workflow's id and run id, when called from an activity."""
    if not activity.in_activity():
        return None, None
    info = activity.info()
    return info.workflow_id, info.workflow_run_id


async def insert_audit_event(conn: DbConnection, event: AuditEvent) -> bool:
    """Append `event` unless its key is already there; True when it was written now.

    The hash chain is extended by a trigger; call this inside the effect's transaction so
    the effect and its audit record commit together.
    """
    return await insert_audit_events(conn, [event]) == 1


async def insert_audit_events(conn: DbConnection, events: Sequence[AuditEvent]) -> int:
    """Append `events` in their order, in one statement, skipping keys already there; how
    many were written now. As `insert_audit_event`, inside the effect's transaction."""
    workflow_id, run_id = workflow_ids()
    rows = ", ".join(
        "(" + ", ".join(f"${n * _AUDIT_COLUMNS + i}" for i in range(1, _AUDIT_COLUMNS + 1)) + ")"
        for n in range(len(events))
    )
    status: str = await conn.execute(
        f"""INSERT INTO audit_event (idempotency_key, actor, action, subject, before, after,
                reason_code, rules_version, workflow_id, run_id)
            VALUES {rows} ON CONFLICT (idempotency_key) DO NOTHING""",
        *(value for e in events for value in (
            e.key, e.actor, e.action, e.subject, e.before, e.after, e.reason_code,
            e.rules_version, workflow_id, run_id)),
    )  # fmt: skip
    return int(status.rsplit(" ", 1)[1])


_AUDIT_COLUMNS = 10


def jsonable(value: Any) -> Any:
    """A pydantic model (or list of them) as plain JSON values for a jsonb column."""
    if isinstance(value, list):
        return [jsonable(v) for v in value]
    dump = getattr(value, "model_dump", None)
    return dump(mode="json") if dump else value
