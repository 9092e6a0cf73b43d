"""Finance exports on the real stack: the journal of a period and recognition schedules, as
CSV and XLSX, through the Python API, the HTTP route and the command line.

Three deals of the sample book are booked under fresh ids:

    hs-deal-90401  Northwind Logistics   EUR  subscription, invoiced at signing:
                   154,462.00 = 129,800.00 + USt 19% 24,662.00; transaction price 129,800.00
    hs-deal-90410  Kagawa Precision      JPY  perpetual licence (recognised on 2026-11-01) and
                   support; transaction price 27,000,000 (no minor unit)
    hs-deal-90418  Albion Mutual         GBP  four milestones: billed and recognised on
                   acceptance only, so every schedule entry needs an event

and two entries are posted by hand in 1903-07, a period no workflow posts in:

    it:export:kwd  1100 Accounts receivable  1,234.567 KWD Dr / 4000 Revenue  1,234.567 KWD Cr
                   memo: Refund, "goodwill"<newline>per CFO
    it:export:jpy  1100 Accounts receivable    150,000 JPY Dr / 2400 Deferred revenue Cr
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import openpyxl  # type: ignore[import-untyped]
import pytest

from models.money import quantize
from models.rules import Role
from starter.api import ApiContext, create_app
from starter.api_keys import create_api_key
from starter.export_routes import export_router
from starter.exports import (
    JOURNAL_COLUMNS,
    SCHEDULE_COLUMNS,
    ExportFormat,
    ScheduleFilter,
    export_journal,
    export_schedules,
)
from starter.intake import Intake
from starter.services import Services
from starter.settings import PROJECT_ROOT
from tests.integration.helpers import book_deal, unique_deal_id, wait_for_outcome

pytestmark = pytest.mark.integration

BOOKED = ("hs-deal-90401", "hs-deal-90410", "hs-deal-90418")
HAND_PERIOD = "1903-07"
MEMO = 'Refund, "goodwill"\nper CFO'
AMOUNT_COLUMNS = {"debit", "credit", "amount"}


@dataclass
class Booked:
    deals: dict[str, dict[str, Any]]  # book id -> the deal as submitted (fresh ids)
    period: str  # the period the workflows posted the deals' entries in
    hand_keys: list[str]  # keys of the entries posted by hand in HAND_PERIOD


async def post_by_hand(services: Services, deal_id: str) -> list[str]:
    run = uuid.uuid4().hex[:8]
    entries = [
        (f"it:export:kwd:{run}", MEMO, "KWD", "1234.567", "4000 Revenue"),
        (f"it:export:jpy:{run}", "Yen, deferred", "JPY", "150000", "2400 Deferred revenue"),
    ]
    async with services.pool.acquire() as conn, conn.transaction():
        for key, memo, currency, amount, credit_account in entries:
            entry_id = await conn.fetchval(
                """INSERT INTO journal_entry (key, entry_date, period, deal_id, description)
                   VALUES ($1, $2, $3, $4, $5) RETURNING id""",
                key, date(1903, 7, 31), HAND_PERIOD, deal_id, memo,
            )  # fmt: skip
            await conn.executemany(
                """INSERT INTO journal_line (entry_id, account, debit, credit, currency)
                   VALUES ($1, $2, $3, $4, $5)""",
                [(entry_id, "1100 Accounts receivable", Decimal(amount), Decimal(0), currency),
                 (entry_id, credit_account, Decimal(0), Decimal(amount), currency)],
            )  # fmt: skip
    return [key for key, *_ in entries]


@pytest.fixture(scope="module")
async def booked(services: Services) -> Booked:
    intake = Intake(services.pool, services.client, services.rules, services.settings.task_queue)
    deals = {book_id: book_deal(book_id, unique_deal_id()) for book_id in BOOKED}
    for deal in deals.values():
        submitted = await intake.submit_deal("file", deal, json.dumps(deal), submitted_by="it")
        assert submitted.started, submitted.message
    await asyncio.gather(
        *(wait_for_outcome(services.client, f"deal-{d['deal_id']}") for d in deals.values())
    )
    periods = await services.pool.fetch(
        "SELECT DISTINCT period FROM journal_entry WHERE deal_id = ANY($1::text[])",
        [d["deal_id"] for d in deals.values()],
    )
    assert len(periods) == 1, periods
    hand_keys = await post_by_hand(services, f"it-export-{uuid.uuid4().hex[:8]}")
    return Booked(deals, periods[0]["period"], hand_keys)


def read_csv(path: Path) -> list[dict[str, str]]:
    text = path.read_bytes().decode("utf-8")
    return list(csv.DictReader(io.StringIO(text, newline="")))


def read_xlsx(path: Path) -> list[dict[str, Any]]:
    sheet = openpyxl.load_workbook(path).worksheets[0]
    cells = list(sheet.iter_rows())
    header = [c.value for c in cells[0]]
    return [dict(zip(header, row, strict=True)) for row in cells[1:]]


def balances(rows: list[dict[str, str]]) -> dict[str, tuple[Decimal, Decimal]]:
    totals: dict[str, tuple[Decimal, Decimal]] = {}
    for r in rows:
        debit, credit = totals.get(r["currency"], (Decimal(0), Decimal(0)))
        totals[r["currency"]] = (debit + Decimal(r["debit"]), credit + Decimal(r["credit"]))
    return totals


def assert_xlsx_matches_csv(
    xlsx_rows: list[dict[str, Any]], csv_rows: list[dict[str, str]]
) -> None:
    """Same rows; amounts are numbers equal to the CSV's Decimals at the minor unit, with the
    currency's number format; dates are date cells."""
    assert len(xlsx_rows) == len(csv_rows)
    places = {0: "#,##0", 2: "#,##0.00", 3: "#,##0.000"}
    for cells, text in zip(xlsx_rows, csv_rows, strict=True):
        for name, cell in cells.items():
            if name in AMOUNT_COLUMNS:
                exact = Decimal(text[name])
                assert cell.data_type == "n", name
                assert quantize(Decimal(cell.value), text["currency"]) == exact
                assert cell.number_format == places[-exact.as_tuple().exponent]  # type: ignore[operator]
            elif name in {"entry_date", "recognition_date"}:
                assert cell.is_date and cell.number_format == "yyyy-mm-dd"
                assert cell.value.date().isoformat() == text[name]
            elif name == "requires_event":
                assert cell.value is (text[name] == "true")
            else:
                assert ("" if cell.value is None else str(cell.value)) == text[name], name


# --- the journal ----------------------------------------------------------------------------


async def test_a_periods_journal_exports_every_line_balanced_as_csv_and_xlsx(
    services: Services, booked: Booked, tmp_path: Path
) -> None:
    in_db = [
        (r["key"], r["account"], r["debit"], r["credit"], r["currency"])
        for r in await services.pool.fetch(
            """SELECT e.key, l.account, l.debit, l.credit, l.currency FROM journal_entry e
               JOIN journal_line l ON l.entry_id = e.id WHERE e.period = $1
               ORDER BY e.id, l.id""",
            booked.period,
        )
    ]
    async with services.pool.acquire() as conn:
        summary = await export_journal(conn, booked.period, ExportFormat.CSV, tmp_path / "j.csv")
        await export_journal(conn, booked.period, ExportFormat.XLSX, tmp_path / "j.xlsx")
    rows = read_csv(tmp_path / "j.csv")

    assert len(rows) == summary.lines >= len(in_db)  # other workflows may post meanwhile
    keys = {line[0] for line in in_db}
    assert [
        (r["posting_key"], f"{r['account_number']} {r['account_name']}", Decimal(r["debit"]),
         Decimal(r["credit"]), r["currency"]) for r in rows if r["posting_key"] in keys
    ] == in_db  # fmt: skip
    assert [int(r["journal_no"]) for r in rows] == sorted(int(r["journal_no"]) for r in rows)
    for currency, (debits, credits) in balances(rows).items():
        assert debits == credits, currency

    northwind = booked.deals["hs-deal-90401"]
    invoice = [r for r in rows if r["deal_id"] == northwind["deal_id"] and r["document_number"]]
    assert [(r["line_no"], r["account_number"], r["account_name"], r["debit"], r["credit"])
            for r in invoice] == [("1", "1100", "Accounts receivable", "154462.00", "0.00"),
                                  ("2", "2400", "Deferred revenue", "0.00", "129800.00"),
                                  ("3", "2300", "Tax payable", "0.00", "24662.00")]  # fmt: skip
    assert {r["customer_name"] for r in invoice} == {northwind["customer"]["name"]}
    assert {r["issuing_entity"] for r in invoice} == {"LL-EU"}
    assert invoice[0]["posting_key"] == f"invoice:{invoice[0]['document_number']}"

    kagawa = booked.deals["hs-deal-90410"]
    revenue = [
        r for r in rows if r["deal_id"] == kagawa["deal_id"] and r["account_number"] == "4000"
    ]
    products = {line["line_id"]: line["product"] for line in kagawa["lines"]}
    assert revenue and all(r["product"] == products[r["contract_line"]] for r in revenue)
    assert all("." not in r["credit"] for r in revenue)  # JPY: no minor unit

    assert_xlsx_matches_csv(read_xlsx(tmp_path / "j.xlsx"), rows)


async def test_hand_posted_kwd_and_jpy_entries_export_exactly_with_a_quoted_memo(
    services: Services, booked: Booked, tmp_path: Path
) -> None:
    async with services.pool.acquire() as conn:
        await export_journal(conn, HAND_PERIOD, ExportFormat.CSV, tmp_path / "hand.csv")
    raw = (tmp_path / "hand.csv").read_bytes()
    rows = [r for r in read_csv(tmp_path / "hand.csv") if r["posting_key"] in booked.hand_keys]

    assert raw.split(b"\r\n")[0].decode() == ",".join(JOURNAL_COLUMNS)
    assert [(r["posting_key"], r["line_no"], r["account_number"], r["debit"], r["credit"],
             r["currency"]) for r in rows] == [
        (booked.hand_keys[0], "1", "1100", "1234.567", "0.000", "KWD"),
        (booked.hand_keys[0], "2", "4000", "0.000", "1234.567", "KWD"),
        (booked.hand_keys[1], "1", "1100", "150000", "0", "JPY"),
        (booked.hand_keys[1], "2", "2400", "0", "150000", "JPY"),
    ]  # fmt: skip
    assert rows[0]["memo"] == MEMO and rows[0]["entry_date"] == "1903-07-31"
    assert b',"Refund, ""goodwill""\nper CFO",' in raw
    assert rows[0]["customer_id"] == rows[0]["contract_id"] == ""  # no contract behind it


# --- recognition schedules ------------------------------------------------------------------


async def test_each_contracts_schedule_sums_to_its_transaction_price(
    services: Services, booked: Booked, tmp_path: Path
) -> None:
    exported: dict[str, list[dict[str, str]]] = {}
    for book_id, deal in booked.deals.items():
        which = ScheduleFilter(deal_id=deal["deal_id"])
        async with services.pool.acquire() as conn:
            summary = await export_schedules(conn, which, ExportFormat.CSV, tmp_path / "s.csv")
            await export_schedules(conn, which, ExportFormat.XLSX, tmp_path / "s.xlsx")
        rows = exported[book_id] = read_csv(tmp_path / "s.csv")
        currency = deal["currency"]
        price = sum(
            (quantize(Decimal(line["quantity"]) * Decimal(line["net_price"]), currency)
             for line in deal["lines"]), Decimal(0),
        )  # fmt: skip

        assert sum(Decimal(r["amount"]) for r in rows) == price == summary.totals[currency]
        products = {line["line_id"]: line["product"] for line in deal["lines"]}
        assert {(r["line_id"], r["product"]) for r in rows} <= set(products.items())
        assert {r["customer_name"] for r in rows} == {deal["customer"]["name"]}
        assert {r["currency"] for r in rows} == {currency}
        assert [int(r["entry_no"]) for r in rows] == list(range(1, len(rows) + 1))
        assert_xlsx_matches_csv(read_xlsx(tmp_path / "s.xlsx"), rows)

    albion = exported["hs-deal-90418"]
    assert {(r["obligation_kind"], r["requires_event"]) for r in albion} == {("milestone", "true")}
    assert len({r["milestone_id"] for r in albion}) == 4


async def test_schedules_filter_by_period_range_and_keep_the_latest_version_unless_asked(
    services: Services, booked: Booked, tmp_path: Path
) -> None:
    northwind = booked.deals["hs-deal-90401"]["deal_id"]  # 2026-10-01 .. 2027-09-30, 2 lines
    deal_id = f"it-export-{uuid.uuid4().hex[:8]}"
    await services.pool.executemany(
        """INSERT INTO recognition_schedule (deal_id, version, entry_no, line_id, period,
               recognition_date, amount, currency, kind, requires_event)
           VALUES ($1, $2, $3, 'L1', '2026-11', '2026-11-30', $4, 'USD', 'ratable', false)""",
        [(deal_id, 1, 1, Decimal("60.00")), (deal_id, 1, 2, Decimal("40.00")),
         (deal_id, 2, 1, Decimal("100.00"))],
    )  # fmt: skip
    out = tmp_path / "r.csv"

    async def export(which: ScheduleFilter) -> list[dict[str, str]]:
        async with services.pool.acquire() as conn:
            await export_schedules(conn, which, ExportFormat.CSV, out)
        return read_csv(out)

    ranged = await export(ScheduleFilter(northwind, "2026-12", "2027-02"))
    assert sorted({r["period"] for r in ranged}) == ["2026-12", "2027-01", "2027-02"]
    assert len(ranged) == 6
    latest = await export(ScheduleFilter(deal_id))
    assert [(r["schedule_version"], r["amount"]) for r in latest] == [("2", "100.00")]
    every = await export(ScheduleFilter(deal_id, all_versions=True))
    assert [(r["schedule_version"], r["entry_no"]) for r in every] == [
        ("1", "1"), ("1", "2"), ("2", "1"),
    ]  # fmt: skip
    assert read_csv(out)[0].keys() == set(SCHEDULE_COLUMNS)


# --- HTTP and CLI ---------------------------------------------------------------------------


@pytest.fixture
async def exports_api(services: Services) -> AsyncIterator[httpx.AsyncClient]:
    """The API app with the export router, called in process."""
    ctx = ApiContext(services.settings, services.pool, services.client, services.rules)
    app = create_app(ctx=ctx)
    if not any(getattr(r, "path", "") == "/exports/journal" for r in app.routes):
        app.include_router(export_router)
    app.state.ctx = ctx
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
        yield client


async def test_the_export_routes_need_an_api_key_and_answer_with_an_attachment(
    services: Services, booked: Booked, exports_api: httpx.AsyncClient
) -> None:
    refused = await exports_api.get("/exports/journal", params={"period": HAND_PERIOD})
    assert refused.status_code == 401
    key = await create_api_key(services.pool, f"it-finance:{uuid.uuid4().hex[:8]}", Role.FINANCE)
    auth = {"Authorization": f"Bearer {key}"}

    journal = await exports_api.get(
        "/exports/journal", params={"period": HAND_PERIOD}, headers=auth
    )
    assert journal.status_code == 200, journal.text
    assert journal.headers["content-type"] == "text/csv; charset=utf-8"
    assert journal.headers["content-disposition"] == 'attachment; filename="journal-1903-07.csv"'
    assert b',"Refund, ""goodwill""\nper CFO",' in journal.content

    deal_id = booked.deals["hs-deal-90410"]["deal_id"]
    sheet = await exports_api.get(
        "/exports/schedules", params={"deal": deal_id, "format": "xlsx"}, headers=auth
    )
    assert sheet.status_code == 200, sheet.text
    assert sheet.headers["content-type"] == ExportFormat.XLSX.media_type
    assert f'filename="schedules-{deal_id}.xlsx"' in sheet.headers["content-disposition"]
    assert sheet.content[:2] == b"PK"  # a zip: the XLSX container

    bad = await exports_api.get("/exports/journal", params={"period": "1903-13"}, headers=auth)
    assert bad.status_code == 422
    assert bad.json()["detail"] == [{"field": "period", "input": "'1903-13'",
                                     "rule": "must be a month as YYYY-MM, e.g. 2026-11"}]  # fmt: skip
    pdf = await exports_api.get("/exports/schedules", params={"format": "pdf"}, headers=auth)
    assert pdf.status_code == 422 and pdf.json()["detail"][0]["field"] == "format"


def export_cli(services: Services, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": services.settings.effective_database_url}
    return subprocess.run(
        [sys.executable, "-m", "starter.export_commands", *args], env=env, cwd=PROJECT_ROOT,
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip


async def test_the_cli_writes_the_file_and_names_a_bad_option_and_its_rule(
    services: Services, booked: Booked, tmp_path: Path
) -> None:
    del booked
    out = tmp_path / "hand.xlsx"
    done = await asyncio.to_thread(export_cli, services, "journal", HAND_PERIOD, "--out", str(out))
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"journal {HAND_PERIOD}:" in done.stdout
    assert "KWD  debits 1,234.567 KWD = credits 1,234.567 KWD" in done.stdout
    assert openpyxl.load_workbook(out).worksheets[0].title == f"Journal {HAND_PERIOD}"

    bad = await asyncio.to_thread(
        export_cli, services, "schedules", "--from", "2026-11", "--to", "2026-1"
    )
    assert bad.returncode == 2
    assert "--to: must be a month as YYYY-MM, e.g. 2026-11 (got '2026-1')" in bad.stdout
