"""Finance export formatting: amounts at the currency's minor unit, accounts split into number
and name, RFC 4180 CSV, typed XLSX cells.

The rows below are one invoice of Maison Verdier (EUR) and one of a Kuwaiti customer (KWD,
3 minor-unit places), plus a JPY licence line (no minor unit):

    journal 7  invoice:LLEU-000002  1100 Accounts receivable  75,744.00 EUR debit
    journal 7  invoice:LLEU-000002  2400 Deferred revenue                  63,120.00 EUR credit
    journal 9  invoice:LLME-000001  1100 Accounts receivable   1,234.567 KWD debit
    schedule   hs-deal-90410 L1 point_in_time 2026-11-01     16,200,000 JPY
"""

from __future__ import annotations

import contextlib
import csv
import io
from dataclasses import replace
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, cast

import openpyxl  # type: ignore[import-untyped]
import pytest

from starter.exports import (
    JOURNAL_COLUMNS,
    SCHEDULE_COLUMNS,
    CsvSheet,
    CurrencyTotals,
    ExportFormat,
    ExportOptionError,
    InexactAmount,
    JournalRow,
    ScheduleFilter,
    ScheduleRow,
    UnbalancedJournal,
    XlsxSheet,
    check_journal_balanced,
    csv_cell,
    export_journal,
    format_amount,
    parse_format,
    parse_period,
    row_values,
    schedules_filename,
    split_account,
    xlsx_number,
)

MEMO = 'Credit for "goodwill", per CFO\nsecond line'


def journal_row(**changes: Any) -> JournalRow:
    base = JournalRow(
        journal_no=7, posting_key="invoice:LLEU-000002", entry_date=date(2026, 11, 2),
        period="2026-11", line_no=1, account_number="1100",
        account_name="Accounts receivable", debit=Decimal("75744.0000"),
        credit=Decimal("0.0000"), currency="EUR", memo="Invoice LLEU-000002",
        customer_id="maison-verdier", customer_name="Maison Verdier SAS",
        issuing_entity="LLEU", deal_id="hs-deal-90407", contract_id="hs-deal-90407",
        contract_line=None, product=None, document_number="LLEU-000002",
    )  # fmt: skip
    return replace(base, **changes)


def schedule_row(**changes: Any) -> ScheduleRow:
    base = ScheduleRow(
        deal_id="hs-deal-90410", contract_id="hs-deal-90410", customer_id="kagawa",
        customer_name="Kagawa Precision K.K.", schedule_version=1, entry_no=1, line_id="L1",
        product="Ledgerline On-Prem perpetual license", obligation_kind="point_in_time",
        period="2026-11", recognition_date=date(2026, 11, 1), amount=Decimal("16200000.0000"),
        currency="JPY", milestone_id=None, requires_event=False,
    )  # fmt: skip
    return replace(base, **changes)


# --- amounts --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "currency", "text"),
    [
        ("75744.0000", "EUR", "75744.00"),
        ("0.0500", "USD", "0.05"),
        ("16200000.0000", "JPY", "16200000"),
        ("1234.5670", "KWD", "1234.567"),
        ("0.0010", "BHD", "0.001"),
        ("1E+3", "USD", "1000.00"),
        ("-0.0000", "USD", "0.00"),
        ("99999999999999.9900", "USD", "99999999999999.99"),
    ],
)
def test_an_amount_is_a_plain_decimal_at_its_currencys_minor_unit(
    amount: str, currency: str, text: str
) -> None:
    assert format_amount(Decimal(amount), currency) == text


def test_an_amount_finer_than_the_minor_unit_is_refused_not_rounded() -> None:
    with pytest.raises(InexactAmount, match=r"1\.2345 USD has more decimals than the 2"):
        format_amount(Decimal("1.2345"), "USD")
    with pytest.raises(InexactAmount, match="the 0 minor-unit places of JPY"):
        format_amount(Decimal("100.5"), "JPY")


@pytest.mark.parametrize(
    ("amount", "currency"),
    [("75744.00", "EUR"), ("1234.567", "KWD"), ("0.005", "BHD"), ("16200000", "JPY"),
     ("9999999999999.99", "USD"), ("0.10", "USD")],
)  # fmt: skip
def test_an_xlsx_number_rounds_back_to_the_decimal_at_the_minor_unit(
    amount: str, currency: str
) -> None:
    number = xlsx_number(Decimal(amount), currency)

    assert isinstance(number, float)
    assert format_amount(Decimal(number).quantize(Decimal(amount)), currency) == format_amount(
        Decimal(amount), currency
    )


def test_an_amount_with_more_digits_than_a_double_holds_is_refused_for_xlsx() -> None:
    with pytest.raises(InexactAmount, match="use the CSV export"):
        xlsx_number(Decimal("1234567890123456.78"), "USD")


# --- accounts, options, cells ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("account", "split"),
    [
        ("4000 Revenue", ("4000", "Revenue")),
        ("1100 Accounts receivable", ("1100", "Accounts receivable")),
        ("2400  Deferred revenue ", ("2400", "Deferred revenue")),
        ("4000.10 Revenue - support", ("4000.10", "Revenue - support")),
        ("Suspense", ("", "Suspense")),
    ],
)
def test_an_account_splits_into_number_and_name(account: str, split: tuple[str, str]) -> None:
    assert split_account(account) == split


@pytest.mark.parametrize("period", ["2026-13", "2026-1", "26-11", "2026-11\n", "2026/11", ""])
def test_a_malformed_period_is_refused_naming_the_option_and_the_rule(period: str) -> None:
    with pytest.raises(ExportOptionError) as raised:
        parse_period(period, "from")

    assert raised.value.option == "from"
    assert raised.value.rule == "must be a month as YYYY-MM, e.g. 2026-11"


def test_a_period_range_ending_before_it_starts_is_refused_on_to() -> None:
    with pytest.raises(ExportOptionError, match=r"to: must not be before from \(2026-11\)"):
        ScheduleFilter(period_from="2026-11", period_to="2026-10")


def test_format_is_csv_or_xlsx_in_any_case() -> None:
    assert parse_format("XLSX") is ExportFormat.XLSX
    with pytest.raises(ExportOptionError, match="format: must be csv or xlsx"):
        parse_format("pdf")


def test_cells_are_iso_dates_and_lowercase_booleans_and_empty_for_none() -> None:
    assert csv_cell(date(2027, 1, 14), "USD") == "2027-01-14"
    assert csv_cell(True, "USD") == "true"
    assert csv_cell(None, "USD") == ""
    assert csv_cell(42, "JPY") == "42"


def test_a_schedules_filename_names_the_filter_and_only_safe_characters() -> None:
    which = ScheduleFilter(deal_id="hs deal/1", period_from="2026-11", all_versions=True)

    assert schedules_filename(which, ExportFormat.XLSX) == "schedules-hs_deal_1-2026-11-all-versions.xlsx"  # fmt: skip


# --- CSV ------------------------------------------------------------------------------------


def test_csv_is_utf8_with_crlf_and_quotes_a_memo_with_commas_quotes_and_newlines(
    tmp_path: Path,
) -> None:
    path = tmp_path / "journal.csv"
    sheet = CsvSheet(path, JOURNAL_COLUMNS)
    row = journal_row(memo=MEMO, customer_name="Société Générale")
    sheet.add(row_values(row), row.currency)
    sheet.close()

    raw = path.read_bytes()
    assert raw.startswith(b"journal_no,posting_key,entry_date,period,line_no,account_number,")
    assert not raw.startswith(b"\xef\xbb\xbf")  # no byte-order mark
    assert b',"Credit for ""goodwill"", per CFO\nsecond line",' in raw
    assert "Société Générale".encode() in raw
    assert raw.endswith(b"\r\n")
    header, record = list(csv.reader(io.StringIO(raw.decode("utf-8"), newline="")))
    assert dict(zip(header, record, strict=True)) == {
        "journal_no": "7", "posting_key": "invoice:LLEU-000002", "entry_date": "2026-11-02",
        "period": "2026-11", "line_no": "1", "account_number": "1100",
        "account_name": "Accounts receivable", "debit": "75744.00", "credit": "0.00",
        "currency": "EUR", "memo": MEMO, "customer_id": "maison-verdier",
        "customer_name": "Société Générale", "issuing_entity": "LLEU",
        "deal_id": "hs-deal-90407", "contract_id": "hs-deal-90407", "contract_line": "",
        "product": "", "document_number": "LLEU-000002",
    }  # fmt: skip


def test_csv_schedule_rows_carry_jpy_without_decimals_and_kwd_with_three(tmp_path: Path) -> None:
    path = tmp_path / "schedules.csv"
    sheet = CsvSheet(path, SCHEDULE_COLUMNS)
    for row in (schedule_row(), schedule_row(currency="KWD", amount=Decimal("1234.5670"),
                                             requires_event=True, milestone_id="M1")):  # fmt: skip
        sheet.add(row_values(row), row.currency)
    sheet.close()

    lines = path.read_bytes().decode("utf-8").split("\r\n")
    assert lines[0] == ",".join(SCHEDULE_COLUMNS)
    assert ",2026-11,2026-11-01,16200000,JPY,,false" in lines[1]
    assert ",2026-11,2026-11-01,1234.567,KWD,M1,true" in lines[2]


# --- XLSX -----------------------------------------------------------------------------------


def test_xlsx_has_typed_cells_a_format_per_minor_unit_frozen_header_and_autofilter(
    tmp_path: Path,
) -> None:
    path = tmp_path / "journal.xlsx"
    sheet = XlsxSheet(path, "Journal 2026-11", JOURNAL_COLUMNS)
    rows = [
        journal_row(),
        journal_row(currency="KWD", debit=Decimal("1234.5670"), memo="=HYPERLINK(1)"),
        journal_row(currency="JPY", debit=Decimal("16200000"), line_no=2),
    ]
    for row in rows:
        sheet.add(row_values(row), row.currency)
    sheet.close()

    ws = openpyxl.load_workbook(path)["Journal 2026-11"]
    col = {name: i + 1 for i, name in enumerate(JOURNAL_COLUMNS)}
    assert [c.value for c in ws[1]] == list(JOURNAL_COLUMNS)
    assert ws.freeze_panes == "A2"
    assert ws.auto_filter.ref == "A1:S4"
    debits = [ws.cell(r, col["debit"]) for r in (2, 3, 4)]
    assert [(c.data_type, c.number_format) for c in debits] == [
        ("n", "#,##0.00"), ("n", "#,##0.000"), ("n", "#,##0"),
    ]  # fmt: skip
    for cell, row in zip(debits, rows, strict=True):
        assert Decimal(cell.value).quantize(row.debit) == row.debit
    entry_date = ws.cell(2, col["entry_date"])
    assert entry_date.value == datetime(2026, 11, 2)
    assert entry_date.number_format == "yyyy-mm-dd"
    assert ws.cell(2, col["journal_no"]).value == 7
    memo = ws.cell(3, col["memo"])
    assert (memo.data_type, memo.value) == ("s", "=HYPERLINK(1)")  # text, never a formula
    assert ws.cell(2, col["contract_line"]).value is None
    assert ws.column_dimensions["K"].width > len("memo")  # widths follow the content


# --- the balance check ----------------------------------------------------------------------


class LedgerStub:
    """Answers the balance check's two queries as a database that lost its balance trigger
    would: `unbalanced` entries, then per-currency `totals`."""

    def __init__(self, unbalanced: list[dict[str, Any]], totals: list[dict[str, Any]]) -> None:
        self.unbalanced, self.totals = unbalanced, totals

    async def fetch(self, sql: str, *args: Any) -> list[dict[str, Any]]:
        return self.unbalanced if "HAVING" in sql else self.totals

    def transaction(self, **options: Any) -> contextlib.AbstractAsyncContextManager[None]:
        return contextlib.nullcontext()


def usd(debits: str, credits: str) -> dict[str, Any]:
    return {"currency": "USD", "debits": Decimal(debits), "credits": Decimal(credits)}


async def test_an_unbalanced_entry_refuses_the_export_naming_the_entry_and_both_sums(
    tmp_path: Path,
) -> None:
    """invoice:LLUS-000042 debits 1,200.00 USD, credits 1,150.00 USD: 50.00 apart."""
    ledger = LedgerStub([{"key": "invoice:LLUS-000042", **usd("1200", "1150")}], [])
    out = tmp_path / "journal.csv"

    with pytest.raises(UnbalancedJournal) as refused:
        await export_journal(cast(Any, ledger), "2026-11", ExportFormat.CSV, out)

    assert str(refused.value) == (
        "journal 2026-11 does not balance, export refused: entry invoice:LLUS-000042: "
        "debits 1,200.00 USD != credits 1,150.00 USD (50.00 apart)"
    )
    assert list(tmp_path.iterdir()) == []  # nothing written, not even a partial file


async def test_a_period_whose_totals_differ_is_refused_and_a_balanced_one_gives_its_totals() -> (
    None
):
    with pytest.raises(UnbalancedJournal, match=r"debits 10.00 USD != credits 9.99 USD \(0.01"):
        await check_journal_balanced(cast(Any, LedgerStub([], [usd("10", "9.99")])), "2026-11")

    totals = await check_journal_balanced(cast(Any, LedgerStub([], [usd("10", "10")])), "2026-11")

    assert totals == {"USD": CurrencyTotals(Decimal(10), Decimal(10))}
