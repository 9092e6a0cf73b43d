"""Finance exports: the journal of a period and the recognition schedules, as CSV or XLSX.

Both are read from PostgreSQL with a server-side cursor inside one read-only, repeatable-read
transaction (one consistent snapshot, a batch of rows in memory at a time) and written row by
row to a `.part` file that replaces the target only when the export is complete. The layouts
(one row per journal line, one row per schedule entry) are documented in `docs/exports.md`.

The CSV is the exact one: amounts are decimal strings at the currency's minor unit. XLSX
stores numbers as doubles; each amount cell is checked to round back to its Decimal at the
minor unit, and an amount a double cannot hold that exactly is refused (use the CSV).
"""

from __future__ import annotations

import asyncio
import csv
import re
from collections.abc import AsyncGenerator, Sequence
from contextlib import aclosing
from dataclasses import dataclass, field, fields
from datetime import date
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import xlsxwriter  # type: ignore[import-untyped]

from models.money import minor_units, quantize

if TYPE_CHECKING:
    from activities.db import DbConnection

FETCH_BATCH = 2_000  # rows the cursor brings per round trip
WIDTH_SAMPLE_ROWS = 1_000  # XLSX column widths are sized on these first rows
_PERIOD = re.compile(r"[0-9]{4}-(0[1-9]|1[0-2])")
_ACCOUNT = re.compile(r"^([0-9][0-9.-]*)\s+(\S.*)$")


class ExportError(Exception):
    """The data cannot be exported as asked (the message says why)."""


class UnbalancedJournal(ExportError):
    """Debits differ from credits in the period or in one entry (the database forbids it)."""


class InexactAmount(ExportError):
    """An amount has more decimals than its currency's minor unit, or more digits than XLSX."""


class ExportOptionError(ValueError):
    """A bad option or parameter: `option`, the `rule` it breaks and the `value` given."""

    def __init__(self, option: str, rule: str, value: str) -> None:
        super().__init__(f"{option}: {rule} (got {value!r})")
        self.option, self.rule, self.value = option, rule, value


class ExportFormat(StrEnum):
    CSV = "csv"
    XLSX = "xlsx"

    @property
    def media_type(self) -> str:
        if self is ExportFormat.CSV:
            return "text/csv; charset=utf-8"
        return "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def parse_format(value: str, option: str = "format") -> ExportFormat:
    try:
        return ExportFormat(value.lower())
    except ValueError:
        raise ExportOptionError(option, "must be csv or xlsx", value) from None


def parse_period(value: str, option: str = "period") -> str:
    """`value` if it is a month as YYYY-MM, else an `ExportOptionError` naming `option`."""
    if not _PERIOD.fullmatch(value):
        raise ExportOptionError(option, "must be a month as YYYY-MM, e.g. 2026-11", value)
    return value


def split_account(account: str) -> tuple[str, str]:
    """('4000', 'Revenue') from '4000 Revenue'; an account without a number keeps its name."""
    match = _ACCOUNT.match(account.strip())
    return (match.group(1), match.group(2)) if match else ("", account.strip())


def exact_amount(amount: Decimal, currency: str) -> Decimal:
    """`amount` at `currency`'s minor unit; refused if that would change its value."""
    exact = quantize(amount, currency)
    if exact != amount:
        raise InexactAmount(
            f"{amount} {currency} has more decimals than the {minor_units(currency)} "
            f"minor-unit places of {currency}"
        )
    return abs(exact) if exact.is_zero() else exact  # never '-0.00'


def format_amount(amount: Decimal, currency: str) -> str:
    """'1200.00' (USD), '150000' (JPY), '12.345' (KWD): plain, no grouping, no exponent."""
    return f"{exact_amount(amount, currency):f}"


def xlsx_number(amount: Decimal, currency: str) -> float:
    """The double an XLSX cell stores for `amount`, checked to round back to it exactly."""
    exact = exact_amount(amount, currency)
    number = float(exact)
    if quantize(Decimal(number), currency) != exact:
        raise InexactAmount(
            f"{exact} {currency} has more digits than an XLSX number holds: use the CSV export"
        )
    return number


# --- rows ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class JournalRow:
    """One journal line in the general-ledger import layout (columns in `docs/exports.md`)."""

    journal_no: int
    posting_key: str
    entry_date: date
    period: str
    line_no: int
    account_number: str
    account_name: str
    debit: Decimal
    credit: Decimal
    currency: str
    memo: str
    customer_id: str | None
    customer_name: str | None
    issuing_entity: str | None
    deal_id: str
    contract_id: str | None
    contract_line: str | None
    product: str | None
    document_number: str | None


@dataclass(frozen=True)
class ScheduleRow:
    """One recognition-schedule entry (columns in `docs/exports.md`)."""

    deal_id: str
    contract_id: str | None
    customer_id: str | None
    customer_name: str | None
    schedule_version: int
    entry_no: int
    line_id: str
    product: str | None
    obligation_kind: str
    period: str
    recognition_date: date
    amount: Decimal
    currency: str
    milestone_id: str | None
    requires_event: bool


JOURNAL_COLUMNS = tuple(f.name for f in fields(JournalRow))
SCHEDULE_COLUMNS = tuple(f.name for f in fields(ScheduleRow))


def row_values(row: JournalRow | ScheduleRow) -> list[Any]:
    return [getattr(row, name) for name in _columns(row)]


def _columns(row: JournalRow | ScheduleRow) -> tuple[str, ...]:
    return JOURNAL_COLUMNS if isinstance(row, JournalRow) else SCHEDULE_COLUMNS


def csv_cell(value: Any, currency: str) -> str:
    """A cell as CSV text: amounts (every Decimal) at `currency`'s minor unit, ISO dates."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return format_amount(value, currency)
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


# --- writers ------------------------------------------------------------------------------------


class _Sheet(Protocol):
    def add(self, values: Sequence[Any], currency: str) -> None: ...
    def close(self) -> None: ...


class CsvSheet:
    """RFC 4180: UTF-8 (no BOM), CRLF line ends, fields quoted when they need it."""

    def __init__(self, path: Path, headers: Sequence[str]) -> None:
        self._handle = path.open("w", encoding="utf-8", newline="")
        self._writer = csv.writer(self._handle, lineterminator="\r\n")
        self._writer.writerow(headers)

    def add(self, values: Sequence[Any], currency: str) -> None:
        self._writer.writerow([csv_cell(v, currency) for v in values])

    def close(self) -> None:
        self._handle.close()


class XlsxSheet:
    """One sheet, written row by row (xlsxwriter's constant-memory mode): typed number and
    date cells, a number format per currency's minor units, frozen header, autofilter."""

    def __init__(self, path: Path, name: str, headers: Sequence[str]) -> None:
        self._book = xlsxwriter.Workbook(str(path), {"constant_memory": True})
        self._sheet = self._book.add_worksheet(name)
        self._date = self._book.add_format({"num_format": "yyyy-mm-dd"})
        self._amounts: dict[int, Any] = {}
        self._widths = [len(h) for h in headers]
        self._rows = 0
        bold = self._book.add_format({"bold": True, "bottom": 1})
        for col, header in enumerate(headers):
            self._sheet.write_string(0, col, header, bold)
        self._sheet.freeze_panes(1, 0)

    def _amount_format(self, currency: str) -> Any:
        places = minor_units(currency)
        if places not in self._amounts:
            pattern = "#,##0" + ("." + "0" * places if places else "")
            self._amounts[places] = self._book.add_format({"num_format": pattern})
        return self._amounts[places]

    def add(self, values: Sequence[Any], currency: str) -> None:
        self._rows += 1
        for col, value in enumerate(values):
            self._cell(col, value, currency)
        if self._rows <= WIDTH_SAMPLE_ROWS:  # widths follow the first rows' content
            for col, value in enumerate(values):
                self._widths[col] = max(self._widths[col], len(csv_cell(value, currency)) + 2)

    def _cell(self, col: int, value: Any, currency: str) -> None:
        row, sheet = self._rows, self._sheet
        if value is None:
            return
        if isinstance(value, bool):
            sheet.write_boolean(row, col, value)
        elif isinstance(value, Decimal):
            sheet.write_number(
                row, col, xlsx_number(value, currency), self._amount_format(currency)
            )
        elif isinstance(value, int):
            sheet.write_number(row, col, value)
        elif isinstance(value, date):
            sheet.write_datetime(row, col, value, self._date)
        else:  # write_string, never write(): a text starting with '=' stays text
            sheet.write_string(row, col, str(value))

    def close(self) -> None:
        for col, width in enumerate(self._widths):
            self._sheet.set_column(col, col, min(width + 1, 60))
        self._sheet.autofilter(0, 0, self._rows, len(self._widths) - 1)
        self._book.close()


def _open(fmt: ExportFormat, path: Path, sheet: str, headers: Sequence[str]) -> _Sheet:
    if fmt is ExportFormat.CSV:
        return CsvSheet(path, headers)
    return XlsxSheet(path, sheet, headers)


def _add_all(sheet: _Sheet, rows: Sequence[JournalRow | ScheduleRow]) -> None:
    for row in rows:
        sheet.add(row_values(row), row.currency)


async def _write(
    rows: AsyncGenerator[JournalRow | ScheduleRow, None],
    fmt: ExportFormat,
    out: Path,
    sheet_name: str,
    headers: Sequence[str],
) -> None:
    """Write every row to `out.part`, then rename it to `out`; nothing is left on failure.

    Rows are written a batch at a time in a worker thread (xlsxwriter spends about 15 µs per
    cell), so the event loop that also runs the API and the worker is never held for long."""
    partial = out.with_name(out.name + ".part")
    sheet = _open(fmt, partial, sheet_name, headers)
    try:
        batch: list[JournalRow | ScheduleRow] = []
        async with aclosing(rows):
            async for row in rows:
                batch.append(row)
                if len(batch) == FETCH_BATCH:
                    await asyncio.to_thread(_add_all, sheet, batch)
                    batch = []
        await asyncio.to_thread(_add_all, sheet, batch)
        await asyncio.to_thread(sheet.close)  # XLSX zips everything here
        partial.replace(out)
    finally:
        if partial.exists():
            if isinstance(sheet, CsvSheet):
                sheet.close()
            partial.unlink()


# --- the journal --------------------------------------------------------------------------------

_PRODUCT = """(SELECT x->>'product' FROM jsonb_array_elements(c.deal->'lines') x
                WHERE x->>'line_id' = {line} LIMIT 1)"""

JOURNAL_SQL = f"""
SELECT e.id, e.key, e.entry_date, e.period, e.description, e.deal_id,
       l.account, l.debit, l.credit, l.currency, l.line_id,
       c.contract_id, coalesce(c.customer_id, i.customer_id) AS customer_id, cu.name AS customer,
       coalesce(i.entity_code, first_invoice.entity_code) AS entity, i.number AS document,
       {_PRODUCT.format(line="l.line_id")} AS product
FROM journal_entry e
JOIN journal_line l ON l.entry_id = e.id
LEFT JOIN invoice i ON e.key LIKE 'invoice:%' AND i.number = substr(e.key, 9)
LEFT JOIN contract c ON c.deal_id = e.deal_id
LEFT JOIN customer cu ON cu.customer_id = coalesce(c.customer_id, i.customer_id)
LEFT JOIN LATERAL (SELECT entity_code FROM invoice WHERE deal_id = e.deal_id
                   ORDER BY invoice_date, number LIMIT 1) first_invoice ON true
WHERE e.period = $1
ORDER BY e.id, l.id
"""

TOTALS_SQL = """
SELECT l.currency, sum(l.debit) AS debits, sum(l.credit) AS credits
FROM journal_entry e JOIN journal_line l ON l.entry_id = e.id
WHERE e.period = $1 GROUP BY l.currency ORDER BY l.currency
"""

UNBALANCED_ENTRIES_SQL = """
SELECT e.key, l.currency, sum(l.debit) AS debits, sum(l.credit) AS credits
FROM journal_entry e JOIN journal_line l ON l.entry_id = e.id
WHERE e.period = $1 GROUP BY e.id, e.key, l.currency HAVING sum(l.debit) <> sum(l.credit)
ORDER BY e.id LIMIT 5
"""


@dataclass
class CurrencyTotals:
    debits: Decimal = Decimal(0)
    credits: Decimal = Decimal(0)


@dataclass
class JournalSummary:
    """What a journal export holds: its lines, entries and per-currency totals."""

    period: str
    lines: int = 0
    entries: int = 0
    totals: dict[str, CurrencyTotals] = field(default_factory=dict)


def _gap(currency: str, debits: Decimal, credits: Decimal) -> str:
    places = minor_units(currency)
    return (
        f"debits {debits:,.{places}f} {currency} != credits {credits:,.{places}f} {currency} "
        f"({debits - credits:,.{places}f} apart)"
    )


async def check_journal_balanced(conn: DbConnection, period: str) -> dict[str, CurrencyTotals]:
    """The period's totals per currency; `UnbalancedJournal` if an entry or the period does
    not balance. The database refuses unbalanced entries at commit, so this cannot happen
    unless that guarantee was removed: an export is refused rather than hand over a broken
    journal."""
    bad = await conn.fetch(UNBALANCED_ENTRIES_SQL, period)
    if bad:
        where = "; ".join(
            f"entry {r['key']}: {_gap(r['currency'], r['debits'], r['credits'])}" for r in bad
        )
        raise UnbalancedJournal(f"journal {period} does not balance, export refused: {where}")
    totals = {
        r["currency"]: CurrencyTotals(r["debits"], r["credits"])
        for r in await conn.fetch(TOTALS_SQL, period)
    }
    for currency, t in totals.items():
        if t.debits != t.credits:
            raise UnbalancedJournal(
                f"journal {period} does not balance, export refused: "
                f"{_gap(currency, t.debits, t.credits)}"
            )
    return totals


async def journal_rows(
    conn: DbConnection, period: str, summary: JournalSummary
) -> AsyncGenerator[JournalRow, None]:
    """The period's lines in posting order (entry id, then line id), counted into `summary`.
    Runs inside a transaction (the cursor needs one)."""
    entry_id, line_no = None, 0
    async for r in conn.cursor(JOURNAL_SQL, period, prefetch=FETCH_BATCH):
        if r["id"] != entry_id:
            entry_id, line_no = r["id"], 0
            summary.entries += 1
        line_no += 1
        summary.lines += 1
        totals = summary.totals.setdefault(r["currency"], CurrencyTotals())
        totals.debits += r["debit"]
        totals.credits += r["credit"]
        number, name = split_account(r["account"])
        yield JournalRow(
            journal_no=r["id"], posting_key=r["key"], entry_date=r["entry_date"],
            period=r["period"], line_no=line_no, account_number=number, account_name=name,
            debit=r["debit"], credit=r["credit"], currency=r["currency"],
            memo=r["description"], customer_id=r["customer_id"], customer_name=r["customer"],
            issuing_entity=r["entity"], deal_id=r["deal_id"], contract_id=r["contract_id"],
            contract_line=r["line_id"], product=r["product"], document_number=r["document"],
        )  # fmt: skip


async def export_journal(
    conn: DbConnection, period: str, fmt: ExportFormat, out: Path
) -> JournalSummary:
    """Write the journal of `period` to `out`: refused (nothing written) if it is unbalanced."""
    parse_period(period)
    summary = JournalSummary(period)
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        expected = await check_journal_balanced(conn, period)
        rows = journal_rows(conn, period, summary)
        await _write(rows, fmt, out, f"Journal {period}", JOURNAL_COLUMNS)
    if summary.totals != expected:  # same snapshot: the file holds what the totals said
        out.unlink(missing_ok=True)
        raise ExportError(f"journal {period}: the exported lines do not add up to its totals")
    return summary


# --- recognition schedules ----------------------------------------------------------------------

SCHEDULES_SQL = f"""
SELECT s.deal_id, c.contract_id, c.customer_id, cu.name AS customer, s.version, s.entry_no,
       s.line_id, {_PRODUCT.format(line="s.line_id")} AS product, s.kind, s.period,
       s.recognition_date, s.amount, s.currency, s.milestone_id, s.requires_event
FROM recognition_schedule s
LEFT JOIN contract c ON c.deal_id = s.deal_id
LEFT JOIN customer cu ON cu.customer_id = c.customer_id
WHERE ($1::text IS NULL OR s.deal_id = $1)
  AND ($2::text IS NULL OR s.period >= $2) AND ($3::text IS NULL OR s.period <= $3)
  AND ($4 OR s.version = (SELECT max(m.version) FROM recognition_schedule m
                          WHERE m.deal_id = s.deal_id))
ORDER BY s.deal_id, s.version, s.entry_no
"""


@dataclass(frozen=True)
class ScheduleFilter:
    """Which schedule entries to export: one deal or all, a period range, latest or all
    versions (the latest version per deal by default)."""

    deal_id: str | None = None
    period_from: str | None = None
    period_to: str | None = None
    all_versions: bool = False

    def __post_init__(self) -> None:
        if self.period_from is not None:
            parse_period(self.period_from, "from")
        if self.period_to is not None:
            parse_period(self.period_to, "to")
        if self.period_from and self.period_to and self.period_from > self.period_to:
            raise ExportOptionError(
                "to", f"must not be before from ({self.period_from})", self.period_to
            )


@dataclass
class ScheduleSummary:
    """What a schedules export holds: entries, deals and the amount per currency."""

    entries: int = 0
    deals: set[str] = field(default_factory=set)
    totals: dict[str, Decimal] = field(default_factory=dict)


async def schedule_rows(
    conn: DbConnection, which: ScheduleFilter, summary: ScheduleSummary
) -> AsyncGenerator[ScheduleRow, None]:
    """Schedule entries by deal, version and entry number. Runs inside a transaction."""
    args = (which.deal_id, which.period_from, which.period_to, which.all_versions)
    async for r in conn.cursor(SCHEDULES_SQL, *args, prefetch=FETCH_BATCH):
        summary.entries += 1
        summary.deals.add(r["deal_id"])
        summary.totals[r["currency"]] = summary.totals.get(r["currency"], Decimal(0)) + r["amount"]
        yield ScheduleRow(
            deal_id=r["deal_id"], contract_id=r["contract_id"], customer_id=r["customer_id"],
            customer_name=r["customer"], schedule_version=r["version"], entry_no=r["entry_no"],
            line_id=r["line_id"], product=r["product"], obligation_kind=r["kind"],
            period=r["period"], recognition_date=r["recognition_date"], amount=r["amount"],
            currency=r["currency"], milestone_id=r["milestone_id"],
            requires_event=r["requires_event"],
        )  # fmt: skip


async def export_schedules(
    conn: DbConnection, which: ScheduleFilter, fmt: ExportFormat, out: Path
) -> ScheduleSummary:
    """Write the schedule entries `which` selects to `out`."""
    summary = ScheduleSummary()
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        rows = schedule_rows(conn, which, summary)
        await _write(rows, fmt, out, "Recognition schedules", SCHEDULE_COLUMNS)
    return summary


def journal_filename(period: str, fmt: ExportFormat) -> str:
    return f"journal-{period}.{fmt.value}"


def schedules_filename(which: ScheduleFilter, fmt: ExportFormat) -> str:
    parts = ["schedules", which.deal_id, which.period_from, which.period_to]
    if which.all_versions:
        parts.append("all-versions")
    name = "-".join(p for p in parts if p)
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name) + f".{fmt.value}"
