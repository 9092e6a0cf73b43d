"""Database plumbing for the edges: migrations (Alembic) and the asyncpg pool."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def _alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    async_url = database_url.replace("postgresql://", "postgresql+asyncpg://", 1)
    config.set_main_option("sqlalchemy.url", async_url.replace("%", "%%"))
    return config


def migrate(database_url: str) -> None:
    """Bring the schema to the newest revision (safe to run on every start)."""
    command.upgrade(_alembic_config(database_url), "head")


async def migrate_async(database_url: str) -> None:
    await asyncio.to_thread(migrate, database_url)


def downgrade(database_url: str, revision: str) -> None:
    """Take the schema back to `revision` ("0008", or "base" for nothing). Data only the
    later revisions could hold is lost (each migration's downgrade says what)."""
    command.downgrade(_alembic_config(database_url), revision)
