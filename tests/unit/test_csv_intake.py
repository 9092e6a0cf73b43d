"""CSV intake: one row per contract line, deal-level columns repeated, errors by row and column.

Rows are numbered as a spreadsheet shows them: the header is row 1. The small files here
are built from the sample book: `hs-deal-90401` (Northwind Logistics, two lines) sits on
rows 2 and 3, `hs-deal-90418` (Albion Mutual, one line with four milestones) on row 4.
"""

from __future__ import annotations

import csv
import io
import json
from functools import cache
from typing import Any

import pytest

from models.deal import DealSubmission
from starter.csv_intake import (
    COLUMN_NAMES,
    COLUMNS,
    CsvDeal,
    CsvIntakeError,
    deals_to_csv,
    parse_deals_csv,
)
from starter.settings import PROJECT_ROOT

SAMPLE_DIR = PROJECT_ROOT / "starter" / "sample_data"


@cache
def _book_json() -> str:
    return (SAMPLE_DIR / "book.json").read_text(encoding="utf-8")


def _book() -> list[dict[str, Any]]:
    book: list[dict[str, Any]] = json.loads(_book_json())
    return book


def _deal(deal_id: str) -> dict[str, Any]:
    return next(d for d in _book() if d["deal_id"] == deal_id)


def _small_table() -> list[list[str]]:
    """Header, hs-deal-90401 on rows 2-3, hs-deal-90418 on row 4."""
    text = deals_to_csv([_deal("hs-deal-90401"), _deal("hs-deal-90418")])
    return list(csv.reader(io.StringIO(text)))


def _text(table: list[list[str]]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(table)
    return out.getvalue()


def _set(table: list[list[str]], row: int, column: str, value: str) -> None:
    table[row - 1][table[0].index(column)] = value


def _by_id(deals: list[CsvDeal]) -> dict[str | None, CsvDeal]:
    return {deal.deal_id: deal for deal in deals}


def _messages(deal: CsvDeal) -> list[str]:
    return [str(error) for error in deal.errors]


# --- round trip ---------------------------------------------------------------------------------


def test_the_sample_book_round_trips_through_csv() -> None:
    book = _book()
    parsed = parse_deals_csv(deals_to_csv(book))
    assert [deal.deal_id for deal in parsed] == [raw["deal_id"] for raw in book]
    for deal, raw in zip(parsed, book, strict=True):
        assert deal.ok, _messages(deal)
        assert deal.data is not None
        submission = DealSubmission.model_validate(deal.data)
        expected = DealSubmission.model_validate(raw)
        assert submission == expected
        assert submission.model_dump(mode="json") == expected.model_dump(mode="json")


def test_committed_book_csv_is_generated_from_book_json() -> None:
    committed = (SAMPLE_DIR / "book.csv").read_text(encoding="utf-8")
    assert committed == deals_to_csv(_book())


def test_rows_are_numbered_from_the_header_and_grouped_per_deal() -> None:
    deals = parse_deals_csv(_text(_small_table()))
    assert [(d.deal_id, d.rows) for d in deals] == [("hs-deal-90401", (2, 3)),
                                                    ("hs-deal-90418", (4,))]  # fmt: skip


def test_columns_are_the_model_fields_with_nested_ones_flattened() -> None:
    """Deal-level columns first (nested models flattened in place), then the line columns."""
    header = _small_table()[0]
    assert tuple(header) == COLUMN_NAMES
    assert len(set(header)) == len(header)
    assert header[:4] == ["deal_id", "customer_id", "customer_name", "customer_legal_entity"]
    assert header[-12:] == [
        "line_id", "product", "product_type", "quantity", "list_price", "net_price",
        "standalone_selling_price", "discount_percent", "discount_expiry", "recognition",
        "ssp_highly_variable", "usage_metric",
    ]  # fmt: skip
    assert {
        "billing_contact_name", "billing_contact_email", "billing_contact_phone",
        "billing_address_line1", "billing_address_city", "billing_address_country",
        "customer_tax_registration_number", "customer_payment_method", "milestones",
        "total_contract_value", "annual_recurring_value", "po_required", "po_number",
        "tax_exempt", "exemption_certificate", "billing_entity", "closed_won_date",
    } <= set(header)  # fmt: skip


def test_required_columns_are_the_required_model_fields() -> None:
    assert {c.name for c in COLUMNS if c.required} == {
        "deal_id", "customer_id", "customer_name", "customer_legal_entity",
        "billing_contact_name", "billing_contact_email", "billing_address_line1",
        "billing_address_city", "billing_address_country", "currency",
        "total_contract_value", "annual_recurring_value", "start_date", "end_date",
        "billing_frequency", "payment_terms", "po_required", "tax_jurisdiction",
        "recognition_type", "assigned_ae", "commission_plan_id", "line_id", "product",
        "product_type", "quantity", "list_price", "net_price", "standalone_selling_price",
    }  # fmt: skip


def test_milestone_text_with_separators_survives_the_round_trip() -> None:
    """A description may contain '|', ';' and '\\': they are escaped in the milestones cell."""
    deal = _deal("hs-deal-90418")
    deal["milestones"][0]["description"] = r"Design; sign-off | phase 1 \ EMEA"
    parsed = parse_deals_csv(deals_to_csv([deal]))
    assert parsed[0].data is not None
    assert parsed[0].data["milestones"][0]["description"] == r"Design; sign-off | phase 1 \ EMEA"


def test_a_tied_discount_is_one_cell_of_line_ids_and_a_rule_it_breaks_names_its_column() -> None:
    """hs-deal-90401 has lines L1 and L2: the discount tied to L2 is the cell `L2`; naming a
    line the deal lacks is refused at the deal's first row, column discount_applies_to."""
    deal = {**_deal("hs-deal-90401"), "discount_applies_to": ["L2"],
            "discount_evidence": "L2 sells alone at 20% off the list price"}  # fmt: skip
    table = list(csv.reader(io.StringIO(deals_to_csv([deal]))))
    assert {row[table[0].index("discount_applies_to")] for row in table[1:]} == {"L2"}
    parsed = parse_deals_csv(_text(table))
    assert parsed[0].data is not None
    assert parsed[0].data["discount_applies_to"] == ["L2"]
    for row in (2, 3):
        _set(table, row, "discount_applies_to", "L2;L9")
    assert _messages(parse_deals_csv(_text(table))[0]) == [
        "row 2, column discount_applies_to: L9 is not a line of this deal (L1, L2)"
    ]


# --- cell errors name row and column ------------------------------------------------------------


def test_a_quantity_that_is_not_a_number_names_row_and_column() -> None:
    table = _small_table()
    _set(table, 3, "quantity", "ten")
    deal = _by_id(parse_deals_csv(_text(table)))["hs-deal-90401"]
    assert deal.data is None
    assert _messages(deal) == ["row 3, column quantity: 'ten' is not a number"]


def test_a_number_with_a_thousands_separator_is_refused_with_a_hint() -> None:
    table = _small_table()
    _set(table, 2, "list_price", "1,100.00")
    deal = _by_id(parse_deals_csv(_text(table)))["hs-deal-90401"]
    assert _messages(deal) == [
        "row 2, column list_price: '1,100.00' is not a number "
        "(write 1200.50: a point for decimals, no thousands separators)"
    ]


def test_bad_date_and_bad_boolean_are_each_reported() -> None:
    table = _small_table()
    _set(table, 4, "discount_expiry", "31/10/2027")
    for row in (2, 3):
        _set(table, row, "po_required", "maybe")
    deals = _by_id(parse_deals_csv(_text(table)))
    assert _messages(deals["hs-deal-90418"]) == [
        "row 4, column discount_expiry: '31/10/2027' is not a date (expected YYYY-MM-DD)"
    ]
    assert _messages(deals["hs-deal-90401"]) == [
        "row 2, column po_required: 'maybe' is not true or false"
    ]


def test_an_empty_required_cell_is_reported() -> None:
    table = _small_table()
    _set(table, 4, "product", "")
    deal = _by_id(parse_deals_csv(_text(table)))["hs-deal-90418"]
    assert _messages(deal) == ["row 4, column product: required value is empty"]


def test_model_rules_are_reported_at_their_row_and_column() -> None:
    """The e-mail is deal-level (first row of the deal); the product type is on line row 3."""
    table = _small_table()
    for row in (2, 3):
        _set(table, row, "billing_contact_email", "katrin.vogel")
    _set(table, 3, "product_type", "saas")
    messages = _messages(_by_id(parse_deals_csv(_text(table)))["hs-deal-90401"])
    assert len(messages) == 2
    assert messages[0].startswith("row 2, column billing_contact_email: 'katrin.vogel': value is")
    assert messages[1].startswith("row 3, column product_type: 'saas': Input should be")


def test_a_milestone_with_missing_fields_names_the_milestone() -> None:
    table = _small_table()
    _set(table, 4, "milestones", "90418-M1|L1|Discovery|2026-12-18")
    deal = _by_id(parse_deals_csv(_text(table)))["hs-deal-90418"]
    assert _messages(deal) == [
        "row 4, column milestones: milestone 1 has 4 fields, expected 5 "
        "(milestone_id|line_id|description|due_date|amount)"
    ]


def test_a_milestone_amount_that_is_not_a_number_names_the_milestone() -> None:
    table = _small_table()
    _set(table, 4, "milestones", "90418-M1|L1|Discovery|2026-12-18|21.600,00")
    deal = _by_id(parse_deals_csv(_text(table)))["hs-deal-90418"]
    assert _messages(deal) == [
        "row 4, column milestones: milestone 1 (90418-M1), amount: '21.600,00' is not a number "
        "(write 1200.50: a point for decimals, no thousands separators)"
    ]


def test_a_line_id_used_twice_in_a_deal_is_an_error() -> None:
    table = _small_table()
    _set(table, 3, "line_id", "L1")
    deal = _by_id(parse_deals_csv(_text(table)))["hs-deal-90401"]
    assert _messages(deal) == [
        "row 3, column line_id: 'L1' is already used on row 2 of deal hs-deal-90401"
    ]


# --- rows of one deal ---------------------------------------------------------------------------


def test_deal_level_values_that_disagree_name_both_rows() -> None:
    table = _small_table()
    _set(table, 3, "currency", "USD")
    deal = _by_id(parse_deals_csv(_text(table)))["hs-deal-90401"]
    assert deal.data is None
    assert _messages(deal) == [
        "row 3, column currency: 'USD' on row 3 differs from 'EUR' on row 2; "
        "every row of deal hs-deal-90401 must repeat the same deal-level values"
    ]


def test_a_blank_deal_level_cell_on_a_later_row_is_a_disagreement_too() -> None:
    table = _small_table()
    _set(table, 3, "po_number", "")
    messages = _messages(_by_id(parse_deals_csv(_text(table)))["hs-deal-90401"])
    assert messages == [
        "row 3, column po_number: '' on row 3 differs from '4500187236' on row 2; "
        "every row of deal hs-deal-90401 must repeat the same deal-level values"
    ]


def test_an_error_in_one_deal_leaves_the_others_ready() -> None:
    table = _small_table()
    _set(table, 2, "quantity", "-")
    deals = _by_id(parse_deals_csv(_text(table)))
    assert not deals["hs-deal-90401"].ok
    assert deals["hs-deal-90418"].ok
    assert deals["hs-deal-90418"].data is not None
    DealSubmission.model_validate(deals["hs-deal-90418"].data)


def test_rows_of_a_deal_need_not_be_adjacent() -> None:
    table = _small_table()
    table[2], table[3] = table[3], table[2]  # 90401, 90418, 90401
    deals = parse_deals_csv(_text(table))
    assert [(d.deal_id, d.rows, d.ok) for d in deals] == [
        ("hs-deal-90401", (2, 4), True),
        ("hs-deal-90418", (3,), True),
    ]


def test_a_row_without_a_deal_id_is_reported_on_its_own() -> None:
    table = _small_table()
    _set(table, 4, "deal_id", "")
    deals = parse_deals_csv(_text(table))
    orphan = _by_id(deals)[None]
    assert orphan.rows == (4,)
    assert _messages(orphan) == [
        "row 4, column deal_id: required value is empty; every row must name its deal"
    ]


def test_a_row_with_too_many_cells_is_reported() -> None:
    table = _small_table()
    table[3].append("San Francisco")
    deal = _by_id(parse_deals_csv(_text(table)))["hs-deal-90418"]
    assert _messages(deal) == [
        f"row 4: has {len(COLUMN_NAMES) + 1} cells but the header has {len(COLUMN_NAMES)} "
        "columns (a value with an unquoted comma?)"
    ]


def test_a_byte_order_mark_and_blank_rows_are_ignored() -> None:
    table = _small_table()
    table.insert(3, [""] * len(COLUMN_NAMES))
    deals = parse_deals_csv("\ufeff" + _text(table))
    assert [(d.deal_id, d.rows, d.ok) for d in deals] == [
        ("hs-deal-90401", (2, 3), True),
        ("hs-deal-90418", (5,), True),
    ]


def test_optional_columns_may_be_left_out_of_the_header() -> None:
    table = _small_table()
    keep = [i for i, name in enumerate(table[0]) if name not in {"billing_entity", "recognition"}]
    deals = parse_deals_csv(_text([[row[i] for i in keep] for row in table]))
    assert all(d.ok for d in deals)


# --- header errors ------------------------------------------------------------------------------


def test_a_missing_required_column_is_refused_naming_it() -> None:
    table = _small_table()
    drop = table[0].index("quantity")
    with pytest.raises(CsvIntakeError) as caught:
        parse_deals_csv(_text([row[:drop] + row[drop + 1 :] for row in table]))
    assert str(caught.value) == "row 1, column quantity: required column is missing from the header"
    assert [(e.row, e.column) for e in caught.value.errors] == [(1, "quantity")]


def test_an_unknown_column_is_refused_with_the_likely_name() -> None:
    table = _small_table()
    _set(table, 1, "po_number", "po_numer")
    with pytest.raises(CsvIntakeError) as caught:
        parse_deals_csv(_text(table))
    assert str(caught.value) == "row 1, column po_numer: unknown column; did you mean po_number?"


def test_a_duplicated_column_is_refused() -> None:
    table = _small_table()
    for row in table:
        row.append(row[table[0].index("currency")])
    with pytest.raises(CsvIntakeError) as caught:
        parse_deals_csv(_text(table))
    first, again = COLUMN_NAMES.index("currency") + 1, len(COLUMN_NAMES) + 1
    assert str(caught.value) == (
        f"row 1, column currency: column appears twice (positions {first} and {again})"
    )


def test_an_empty_file_is_refused() -> None:
    with pytest.raises(CsvIntakeError, match="the file is empty"):
        parse_deals_csv("")


def test_a_header_without_rows_holds_no_deals() -> None:
    assert parse_deals_csv(",".join(COLUMN_NAMES) + "\n") == []
