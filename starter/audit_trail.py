"""Proving the audit trail intact, and reading one subject's history.

`audit_event` is append-only and hash-chained (migration 0002): a trigger numbers each event
from `audit_event_seq`, sets `prev_hash` to the hash of the event before it and `hash` to
sha256 over the event's fields, as `audit_event_digest(e)` spells them:

    concat_ws('|', seq, <occurred_at in UTC as YYYY-MM-DD"T"HH24:MI:SS.US>,
              idempotency_key, actor, action, subject,
              coalesce(before::text, ''), coalesce(after::text, ''), coalesce(reason_code, ''),
              coalesce(rules_version, ''), coalesce(workflow_id, ''), coalesce(run_id, ''),
              coalesce(prev_hash, ''))

`verify_chain` rebuilds that text in Python (`digest_text`) and hashes it here: it never calls
the database function, so a replaced `audit_event_digest` cannot vouch for an altered row. What
it takes from PostgreSQL are the stored values themselves: jsonb as PostgreSQL prints it
(`before::text`, the exact text the hash covers; `jsonb_text` is the same rendering done in
Python for values built here) and the timestamp as a datetime.

Byte-for-byte pitfalls of the digest text (all handled here):

- `concat_ws` drops a NULL argument *with its separator*; only the first six fields can be NULL
  that way, and of those only the timestamp in practice: `to_char` of +-infinity is NULL;
- the other seven are `coalesce`d to '', so NULL and '' hash the same (a reason code changed
  from NULL to '' goes unnoticed), and the values are not escaped: moving a '|' from the end
  of one field to the start of the next keeps the hash;
- the timestamp is UTC with exactly six fractional digits (`.000000`), years zero-padded to
  four digits and wider beyond 9999; Python's datetime covers years 1 to 9999 only, so a value
  outside that range (or infinite) is rendered by PostgreSQL's `to_char` instead;
- jsonb text is canonical, not what was written: keys sorted by byte length, then bytes;
  duplicate keys dropped (last wins); `", "` and `": "` separators; numbers as numeric prints
  them (`1e2` is `100`, `1.0` stays `1.0`, never an exponent); only `"`, `\\` and control
  characters escaped (`\\u0001` in lower-case hex); everything else raw UTF-8.

Sequence gaps cannot tell a deletion from normal operation: `nextval` is not transactional,
so a rolled-back insert leaves a gap, and so does every repeated write of an existing key
(`INSERT ... ON CONFLICT DO NOTHING` fires the BEFORE INSERT trigger, which draws a number,
before the conflict is found; retried activities do this all the time). Gaps are counted and
reported, never judged. A deletion is caught by the `prev_hash` link of the event after it
instead. What the sequence can prove is the other direction: a seq above the sequence's last
value was never issued by it (a row inserted or renumbered by hand).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import asyncpg

    from activities.db import DbConnection

# The timestamps Python's datetime can hold; PostgreSQL renders the others itself.
_IN_RANGE = "occurred_at BETWEEN '0001-01-01 00:00:00+00' AND '9999-12-31 23:59:59.999999+00'"

# The select list `audit_row` reads (from `audit_event`, unqualified).
AUDIT_ROW_COLUMNS = f"""seq, idempotency_key,
    CASE WHEN {_IN_RANGE} THEN occurred_at END AS occurred_at,
    CASE WHEN NOT ({_IN_RANGE}) THEN
        to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US') END AS occurred_text,
    actor, action, subject, before::text AS before_json, after::text AS after_json,
    reason_code, rules_version, workflow_id, run_id, prev_hash, hash"""

ALTERED = "hash does not match contents (row altered)"
HASH_MISSING = "hash is missing (row written with the chain trigger disabled)"
FIRST_HAS_PREDECESSOR = (
    "prev_hash names a predecessor but no earlier row exists "
    "(rows deleted before this one, or this row's prev_hash altered)"
)


def prev_hash_mismatch(previous_seq: int, current_seq: int) -> str:
    missing = ""
    if current_seq - previous_seq > 1:
        first, last = previous_seq + 1, current_seq - 1
        numbers = f"seq {first}" if first == last else f"seq {first} to {last}"
        missing = f"; {numbers} not present"
    return (
        f"prev_hash does not match the previous row (seq {previous_seq}): a row was deleted or "
        f"reordered before this one, or the previous row was altered and its hash recomputed"
        f"{missing}"
    )


def seq_never_issued(seq: int, last_issued: int | None) -> str:
    issued = "has issued nothing" if last_issued is None else f"has issued up to {last_issued}"
    return (
        f"seq {seq} was never issued by audit_event_seq (it {issued}): "
        f"row inserted or renumbered by hand"
    )


# --- the digest, in Python -------------------------------------------------------------------


def format_timestamp(value: datetime) -> str:
    """`to_char(value AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US')`."""
    if value.tzinfo is None:
        raise ValueError("occurred_at must be timezone-aware (timestamptz)")
    t = value.astimezone(UTC)
    return (
        f"{t.year:04d}-{t.month:02d}-{t.day:02d}T"
        f"{t.hour:02d}:{t.minute:02d}:{t.second:02d}.{t.microsecond:06d}"
    )


# How PostgreSQL's jsonb text escapes a string: these by name, other control characters as
# \u00XX (lower-case hex), everything else as is.
_JSONB_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n",
                  "\r": "\\r", "\t": "\\t"}  # fmt: skip


def _jsonb_string(text: str) -> str:
    escaped = (_JSONB_ESCAPES.get(ch) or (f"\\u{ord(ch):04x}" if ch < " " else ch) for ch in text)
    return '"' + "".join(escaped) + '"'


def _jsonb_number(value: int | float | Decimal) -> str:
    if isinstance(value, int):
        return str(value)
    number = value if isinstance(value, Decimal) else Decimal(repr(value))
    if not number.is_finite():
        raise ValueError(f"jsonb has no {value}")
    if number.is_zero():
        number = number.copy_abs()  # numeric has no negative zero
    return format(number, "f")


def _key_order(key: str) -> tuple[int, bytes]:
    raw = key.encode("utf-8")
    return len(raw), raw


def jsonb_text(value: Any) -> str:
    """`value::jsonb::text`: how PostgreSQL prints a JSON value once it is stored as jsonb."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, (int, float, Decimal)):
        return _jsonb_number(value)
    if isinstance(value, str):
        return _jsonb_string(value)
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise TypeError("jsonb object keys are strings")
        items = sorted(value.items(), key=lambda kv: _key_order(kv[0]))
        return "{" + ", ".join(f"{_jsonb_string(k)}: {jsonb_text(v)}" for k, v in items) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(jsonb_text(v) for v in value) + "]"
    raise TypeError(f"not a JSON value: {type(value).__name__}")


def _json_value(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def _note_in(value: Any) -> str | None:
    if not isinstance(value, dict):
        return None
    for holder in (value, value.get("resolution")):
        if isinstance(holder, dict):
            note = holder.get("note")
            if isinstance(note, str) and note:
                return note
    return None


@dataclass(frozen=True)
class AuditRow:
    """One audit event as stored. jsonb columns are kept as PostgreSQL prints them (the text
    the hash covers); `before` and `after` are those texts parsed."""

    seq: int
    idempotency_key: str
    occurred_at: datetime | None  # None when Python cannot hold it (see occurred_text)
    actor: str
    action: str
    subject: str
    before_json: str | None
    after_json: str | None
    reason_code: str | None
    rules_version: str | None
    workflow_id: str | None
    run_id: str | None
    prev_hash: str | None
    hash: str | None
    # PostgreSQL's own rendering of an occurred_at outside years 1 to 9999 (None if infinite).
    occurred_text: str | None = None

    @property
    def before(self) -> Any:
        return _json_value(self.before_json)

    @property
    def after(self) -> Any:
        return _json_value(self.after_json)

    @property
    def note(self) -> str | None:
        """A free-text note, from `after` (also a case resolution's) or else `before`."""
        return _note_in(self.after) or _note_in(self.before)

    @property
    def when(self) -> str:
        """occurred_at in UTC, as the digest spells it."""
        if self.occurred_at is not None:
            return format_timestamp(self.occurred_at)
        return self.occurred_text or "(not a finite time)"

    @property
    def hash_matches(self) -> bool:
        return self.hash is not None and self.hash == audit_event_digest(self)

    def to_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "occurred_at": self.when + "Z" if self.occurred_at is not None else self.when,
            "actor": self.actor,
            "action": self.action,
            "subject": self.subject,
            "reason_code": self.reason_code,
            "note": self.note,
            "rules_version": self.rules_version,
            "workflow_id": self.workflow_id,
            "run_id": self.run_id,
            "before": self.before,
            "after": self.after,
            "idempotency_key": self.idempotency_key,
            "prev_hash": self.prev_hash,
            "hash": self.hash,
            "hash_matches": self.hash_matches,
        }


def audit_row(record: asyncpg.Record | dict[str, Any]) -> AuditRow:
    """An `AuditRow` from a row selected with `AUDIT_ROW_COLUMNS`."""
    return AuditRow(
        seq=record["seq"],
        idempotency_key=record["idempotency_key"],
        occurred_at=record["occurred_at"],
        actor=record["actor"],
        action=record["action"],
        subject=record["subject"],
        before_json=record["before_json"],
        after_json=record["after_json"],
        reason_code=record["reason_code"],
        rules_version=record["rules_version"],
        workflow_id=record["workflow_id"],
        run_id=record["run_id"],
        prev_hash=record["prev_hash"],
        hash=record["hash"],
        occurred_text=record["occurred_text"],
    )


def digest_text(row: AuditRow) -> str:
    """The text `audit_event_digest(row)` hashes, byte for byte (see the module docstring)."""
    occurred = (
        format_timestamp(row.occurred_at) if row.occurred_at is not None else row.occurred_text
    )
    plain: list[str | None] = [
        str(row.seq), occurred, row.idempotency_key, row.actor, row.action, row.subject,
    ]  # fmt: skip
    coalesced = [
        row.before_json, row.after_json, row.reason_code, row.rules_version,
        row.workflow_id, row.run_id, row.prev_hash,
    ]  # fmt: skip
    # concat_ws skips NULL arguments; the coalesced ones are never NULL.
    return "|".join([*(p for p in plain if p is not None), *(c or "" for c in coalesced)])


def audit_event_digest(row: AuditRow) -> str:
    """The hash the chain trigger stores for `row`: hex sha256 of `digest_text(row)`."""
    return hashlib.sha256(digest_text(row).encode("utf-8")).hexdigest()


# --- verifying the chain ---------------------------------------------------------------------


@dataclass(frozen=True)
class BrokenLink:
    """A row where the chain does not hold, and everything wrong with it."""

    seq: int
    idempotency_key: str
    action: str
    subject: str
    problems: tuple[str, ...]

    def describe(self) -> str:
        return (
            f"seq {self.seq} (key {self.idempotency_key}, {self.action} on {self.subject}): "
            + "; ".join(self.problems)
        )


@dataclass(frozen=True)
class ChainReport:
    rows_checked: int
    broken_rows: int
    first_broken: BrokenLink | None
    first_seq: int | None
    last_seq: int | None
    last_hash: str | None  # the head: record it to notice later removal of the newest rows
    unused_seq_numbers: int  # gaps between rows: rolled-back or repeated writes, or deletions
    sequence_last_value: int | None  # None when the sequence could not be read

    @property
    def ok(self) -> bool:
        return self.broken_rows == 0

    def to_json(self) -> dict[str, Any]:
        broken = self.first_broken
        return {
            "ok": self.ok,
            "rows_checked": self.rows_checked,
            "broken_rows": self.broken_rows,
            "first_broken": None
            if broken is None
            else {
                "seq": broken.seq,
                "idempotency_key": broken.idempotency_key,
                "action": broken.action,
                "subject": broken.subject,
                "problems": list(broken.problems),
            },
            "first_seq": self.first_seq,
            "last_seq": self.last_seq,
            "last_hash": self.last_hash,
            "unused_seq_numbers": self.unused_seq_numbers,
            "sequence_last_value": self.sequence_last_value,
        }


@dataclass
class ChainChecker:
    """Checks rows fed in seq order; independent of any database (see `verify_chain`)."""

    sequence_last_value: int | None = None
    check_sequence: bool = True
    rows_checked: int = 0
    broken_rows: int = 0
    first_broken: BrokenLink | None = None
    first_seq: int | None = None
    unused_seq_numbers: int = 0
    _previous: AuditRow | None = field(default=None, repr=False)

    def problems(self, row: AuditRow) -> list[str]:
        found: list[str] = []
        if row.hash is None:
            found.append(HASH_MISSING)
        elif row.hash != audit_event_digest(row):
            found.append(ALTERED)
        previous = self._previous
        if previous is None:
            if row.prev_hash is not None:
                found.append(FIRST_HAS_PREDECESSOR)
        else:
            if row.seq <= previous.seq:
                found.append(f"seq {row.seq} does not follow seq {previous.seq}")
            if row.prev_hash != previous.hash:
                found.append(prev_hash_mismatch(previous.seq, row.seq))
        if self.check_sequence and (
            row.seq < 1 or self.sequence_last_value is None or row.seq > self.sequence_last_value
        ):
            found.append(seq_never_issued(row.seq, self.sequence_last_value))
        return found

    def feed(self, row: AuditRow) -> None:
        found = self.problems(row)
        if found:
            self.broken_rows += 1
            if self.first_broken is None:
                self.first_broken = BrokenLink(
                    row.seq, row.idempotency_key, row.action, row.subject, tuple(found)
                )
        if self._previous is None:
            self.first_seq = row.seq
        elif row.seq > self._previous.seq:
            self.unused_seq_numbers += row.seq - self._previous.seq - 1
        self.rows_checked += 1
        self._previous = row

    def feed_all(self, rows: Iterable[AuditRow]) -> ChainReport:
        for row in rows:
            self.feed(row)
        return self.report()

    def report(self) -> ChainReport:
        last = self._previous
        return ChainReport(
            rows_checked=self.rows_checked,
            broken_rows=self.broken_rows,
            first_broken=self.first_broken,
            first_seq=self.first_seq,
            last_seq=last.seq if last else None,
            last_hash=last.hash if last else None,
            unused_seq_numbers=self.unused_seq_numbers,
            sequence_last_value=self.sequence_last_value if self.check_sequence else None,
        )


@asynccontextmanager
async def _snapshot(conn: DbConnection) -> AsyncIterator[None]:
    """One consistent view for the whole walk (a server-side cursor needs a transaction):
    a read-only repeatable-read transaction, or a savepoint in the caller's transaction."""
    if conn.is_in_transaction():
        async with conn.transaction():
            yield
    else:
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            yield


async def _sequence_last_value(conn: DbConnection) -> tuple[bool, int | None]:
    """(readable, the last value audit_event_seq issued or None if it issued none)."""
    readable = await conn.fetchval(
        """SELECT CASE WHEN to_regclass('audit_event_seq') IS NULL THEN false
                       ELSE has_sequence_privilege('audit_event_seq', 'SELECT') END"""
    )
    if not readable:
        return False, None
    row = await conn.fetchrow("SELECT last_value, is_called FROM audit_event_seq")
    assert row is not None
    return True, row["last_value"] if row["is_called"] else None


async def verify_chain(conn: DbConnection, *, batch_size: int = 1000) -> ChainReport:
    """Walk every audit event in seq order through a server-side cursor (`batch_size` rows at
    a time) and check that each row's hash matches its contents (recomputed here, not by the
    database), that its prev_hash is the previous row's hash (the first row's is NULL), and
    that its seq was issued by `audit_event_seq`.

    Outside a transaction the walk runs in its own read-only repeatable-read snapshot, so
    events written meanwhile are neither half-seen nor mistaken for forged numbers; inside the
    caller's transaction it sees what that transaction sees.
    """
    async with _snapshot(conn):
        # Read first: every row this snapshot shows drew its seq before this read.
        readable, last_value = await _sequence_last_value(conn)
        checker = ChainChecker(sequence_last_value=last_value, check_sequence=readable)
        query = f"SELECT {AUDIT_ROW_COLUMNS} FROM audit_event ORDER BY seq"
        async for record in conn.cursor(query, prefetch=batch_size):
            checker.feed(audit_row(record))
    return checker.report()


# --- one subject's history -------------------------------------------------------------------

_BY_SUBJECT = f"SELECT {AUDIT_ROW_COLUMNS} FROM audit_event WHERE subject = $1 ORDER BY seq"
_CASE_SUBJECT = "SELECT subject FROM exception_case WHERE case_id = $1"
# A case's events carry its id in `after` or were written by its workflow (notifications).
_OF_CASE = "(after->>'case_id' = $1 OR workflow_id = $1)"
_BY_CASE = f"""SELECT {AUDIT_ROW_COLUMNS} FROM audit_event
    WHERE subject = $2 AND {_OF_CASE} ORDER BY seq"""
_BY_CASE_ANYWHERE = f"SELECT {AUDIT_ROW_COLUMNS} FROM audit_event WHERE {_OF_CASE} ORDER BY seq"


async def _case_history(conn: DbConnection, case_id: str) -> list[AuditRow]:
    subject = await conn.fetchval(_CASE_SUBJECT, case_id)
    if subject is not None:
        records = await conn.fetch(_BY_CASE, case_id, subject)
    else:  # not in the operators' list (yet): look through every event
        records = await conn.fetch(_BY_CASE_ANYWHERE, case_id)
    return [audit_row(r) for r in records]


async def subject_history(conn: DbConnection, subject: str) -> list[AuditRow]:
    """Every event of `subject`, in seq order: who, what, when, why, under which rules, from
    which workflow run, before and after.

    `subject` is taken as written when it has a kind (`deal:hs-deal-90401`); a case id
    (`case-deal-<deal id>-<check id>`, its workflow id) gives that case's events (their
    subject is the deal; the case id is in `after`, or the case workflow wrote them); anything
    else is a deal id (`deal:<id>`), or failing that a deal workflow id (`deal-<id>`).
    """
    wanted = subject.strip()
    if ":" in wanted:
        return [audit_row(r) for r in await conn.fetch(_BY_SUBJECT, wanted)]
    if wanted.startswith("case-"):
        rows = await _case_history(conn, wanted)
        if rows:
            return rows
    rows = [audit_row(r) for r in await conn.fetch(_BY_SUBJECT, f"deal:{wanted}")]
    if not rows and wanted.startswith("deal-"):
        rows = [audit_row(r) for r in await conn.fetch(_BY_SUBJECT, f"deal:{wanted[5:]}")]
    return rows
