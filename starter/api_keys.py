"""API keys: random secrets shown once; the database keeps only their sha256."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

import asyncpg

from models.rules import Role

KEY_PREFIX = "rvk"


@dataclass(frozen=True)
class ApiPrincipal:
    """The authenticated caller. A key is named `<person id>` or `<person id>:<label>` (one
    person may hold several keys, e.g. `maria.santos:laptop`); the person is the actor whose
    roles the role directory gives on case resolutions. `role` gates intake."""

    name: str
    role: Role

    @property
    def person(self) -> str:
        return self.name.split(":", 1)[0]


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class ApiKeyExists(ValueError):
    """Key names are unique: the name is the actor every action is recorded under."""


async def create_api_key(pool: asyncpg.Pool, name: str, role: Role) -> str:
    """Store a new key for `name` acting as `role`; returns the secret (never stored)."""
    key = f"{KEY_PREFIX}_{secrets.token_urlsafe(32)}"
    try:
        await pool.execute(
            "INSERT INTO api_key (name, role, key_prefix, key_hash) VALUES ($1, $2, $3, $4)",
            name, role.value, key[:10], _digest(key),
        )  # fmt: skip
    except asyncpg.UniqueViolationError:
        raise ApiKeyExists(
            f"an API key named {name!r} exists already; choose another name"
        ) from None
    return key


async def authenticate(pool: asyncpg.Pool, presented: str | None) -> ApiPrincipal | None:
    if not presented or not presented.startswith(f"{KEY_PREFIX}_"):
        return None
    row = await pool.fetchrow(
        "SELECT name, role FROM api_key WHERE key_hash = $1 AND revoked_at IS NULL",
        _digest(presented),
    )
    return ApiPrincipal(name=row["name"], role=Role(row["role"])) if row else None
