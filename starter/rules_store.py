"""Every rule set that deals and cases run under is kept in `rule_set`, by version.

Whoever loads rules to start work (the embedded stack, the worker, the CLI) stores them
first, so a case opened under a version can always read its routing, and `revops rules
replay` can compare any two versions. Storing is idempotent: the version is a content hash.
"""

from __future__ import annotations

import asyncpg

from starter.rules_loader import RuleBook


async def store_rule_book(pool: asyncpg.Pool, book: RuleBook) -> bool:
    """Store `book` unless its version is there already; True when stored now."""
    status: str = await pool.execute(
        """INSERT INTO rule_set (version, policy, operating, files) VALUES ($1, $2, $3, $4)
           ON CONFLICT (version) DO NOTHING""",
        book.version, book.policy.model_dump(mode="json"),
        book.operating.model_dump(mode="json"), book.texts,
    )  # fmt: skip
    return status.endswith(" 1")
