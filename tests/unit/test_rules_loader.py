"""Loading rules/*.yaml (STYLE rule 12): the shipped rules load with a content-hash version,
and a broken file is refused with a message naming the file, the line and the field, so an
operator can fix it without reading Python. Each test breaks a copy of rules/ in tmp_path."""

from __future__ import annotations

import re
import shutil
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from models.rules import RuleSet
from starter.rules_loader import RULE_FILES, RulesError, load_rule_book, load_rules, rules_version
from starter.settings import PROJECT_ROOT

SHIPPED = PROJECT_ROOT / "rules"


def copy_of_rules(tmp_path: Path) -> Path:
    target = tmp_path / "rules"
    shutil.copytree(SHIPPED, target)
    return target


def edit(path: Path, old: str, new: str) -> None:
    """Replace the one occurrence of `old` in `path` (which must be there)."""
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, f"{old!r} not found once in {path.name}"
    path.write_text(text.replace(old, new), encoding="utf-8")


def problems_loading(directory: Path) -> list[str]:
    with pytest.raises(RulesError) as refused:
        load_rules(directory)
    return refused.value.problems


# --- the shipped rules ----------------------------------------------------------------------


def test_shipped_rules_load_with_a_twelve_hex_digit_version(rules: RuleSet) -> None:
    assert re.fullmatch(r"[0-9a-f]{12}", rules.version)
    assert set(RULE_FILES.values()) <= {p.name for p in SHIPPED.glob("*.yaml")}
    assert rules.qa.max_discount_percent == 30
    assert rules.tax_rates["US-NY"].name == "NY sales tax 8.875%"
    assert rules.entities["LL-UK"].default_for_currencies == ["GBP"]


def test_version_depends_on_content_not_on_where_the_rules_live(
    rules: RuleSet, tmp_path: Path
) -> None:
    assert load_rules(copy_of_rules(tmp_path)).version == rules.version


def test_version_changes_when_a_rule_file_changes(rules: RuleSet, tmp_path: Path) -> None:
    """qa.yaml: max_discount_percent 30 -> 25."""
    directory = copy_of_rules(tmp_path)
    edit(directory / "qa.yaml", "max_discount_percent: 30", "max_discount_percent: 25")

    changed = load_rules(directory)

    assert changed.version != rules.version
    assert re.fullmatch(r"[0-9a-f]{12}", changed.version)
    assert changed.qa.max_discount_percent == 25


def test_version_changes_with_a_comment_edit_too(rules: RuleSet, tmp_path: Path) -> None:
    """The version hashes the text as reviewed, comments included."""
    directory = copy_of_rules(tmp_path)
    edit(directory / "routes.yaml", "# Where each", "# Where every")

    assert load_rules(directory).version != rules.version


def test_version_ignores_files_outside_the_rule_set(rules: RuleSet, tmp_path: Path) -> None:
    directory = copy_of_rules(tmp_path)
    (directory / "README.md").write_text("edited\n", encoding="utf-8")

    assert load_rules(directory).version == rules.version


def test_version_hashes_file_names_and_contents() -> None:
    """Moving a text from one file to another is a different rule set."""
    assert rules_version({"a.yaml": "x: 1"}) != rules_version({"b.yaml": "x: 1"})
    assert rules_version({"a.yaml": "x: 1"}) != rules_version({"a.yaml": "x: 2"})
    assert rules_version({"a.yaml": "x: 1", "b.yaml": ""}) == rules_version(
        {"b.yaml": "", "a.yaml": "x: 1"}
    )


# --- refused with file, line and field ------------------------------------------------------


def test_out_of_range_threshold_is_refused_naming_file_line_and_field(tmp_path: Path) -> None:
    """qa.yaml line 2: max_discount_percent: 130 (a percentage, at most 100)."""
    directory = copy_of_rules(tmp_path)
    edit(directory / "qa.yaml", "max_discount_percent: 30", "max_discount_percent: 130")

    assert problems_loading(directory) == [
        f"{directory / 'qa.yaml'} line 2, field max_discount_percent: "
        "Input should be less than or equal to 100"
    ]


def test_nested_value_is_refused_with_its_dotted_field(tmp_path: Path) -> None:
    """credit_policy.yaml line 11, under mid_market: credit_limit_usd: -5."""
    directory = copy_of_rules(tmp_path)
    edit(directory / "credit_policy.yaml", "credit_limit_usd: 100000", "credit_limit_usd: -5")

    assert problems_loading(directory) == [
        f"{directory / 'credit_policy.yaml'} line 11, field mid_market.credit_limit_usd: "
        "Input should be greater than or equal to 0"
    ]


def test_bad_list_item_is_refused_with_its_index(tmp_path: Path) -> None:
    """credit_policy.yaml line 16, smb allowed_terms: [net_15, net_90]; net_90 is item 1."""
    directory = copy_of_rules(tmp_path)
    edit(
        directory / "credit_policy.yaml",
        "allowed_terms: [net_15, upfront]\nnew_customer",
        "allowed_terms: [net_15, net_90]\nnew_customer",
    )

    assert problems_loading(directory) == [
        f"{directory / 'credit_policy.yaml'} line 16, field smb.allowed_terms.1: "
        "Input should be 'net_15', 'net_30', 'net_45', 'net_60' or 'upfront'"
    ]


def test_unknown_role_in_a_route_is_refused_under_the_dotted_check_id(tmp_path: Path) -> None:
    """routes.yaml line 6: structural.po_present routed to 'accounting', not a role."""
    directory = copy_of_rules(tmp_path)
    edit(
        directory / "routes.yaml",
        "structural.po_present:            {owner_role: billing,",
        "structural.po_present:            {owner_role: accounting,",
    )

    [problem] = problems_loading(directory)

    assert problem.startswith(
        f"{directory / 'routes.yaml'} line 6, field structural.po_present.owner_role: "
        "Input should be 'sales_ops', 'legal', 'billing'"
    )


def test_misspelt_field_is_refused_and_the_missing_one_named(tmp_path: Path) -> None:
    """qa.yaml line 2: max_discount_percnt (typo) instead of max_discount_percent."""
    directory = copy_of_rules(tmp_path)
    edit(directory / "qa.yaml", "max_discount_percent: 30", "max_discount_percnt: 30")
    qa = directory / "qa.yaml"

    assert problems_loading(directory) == [
        f"{qa} line 2, field max_discount_percent: Field required",
        f"{qa} line 2, field max_discount_percnt: Extra inputs are not permitted",
    ]


def test_every_broken_file_is_reported_at_once(tmp_path: Path) -> None:
    """tax_rates.yaml line 8: GB rate 'twenty'; entities.yaml line 24: prefix 'lluk'."""
    directory = copy_of_rules(tmp_path)
    edit(
        directory / "tax_rates.yaml",
        'rate_percent: "20", name: "VAT 20%"',
        'rate_percent: "twenty", name: "VAT 20%"',
    )
    edit(directory / "entities.yaml", "invoice_prefix: LLUK", "invoice_prefix: lluk")

    problems = problems_loading(directory)

    assert problems == [
        f"{directory / 'tax_rates.yaml'} line 8, field GB.rate_percent: "
        "Input should be a valid decimal",
        f"{directory / 'entities.yaml'} line 24, field LL-UK.invoice_prefix: "
        "String should match pattern '^[A-Z0-9-]{1,12}$'",
    ]


def test_refusal_reads_as_one_line_per_problem(tmp_path: Path) -> None:
    directory = copy_of_rules(tmp_path)
    edit(directory / "qa.yaml", "max_discount_percent: 30", "max_discount_percent: 130")

    with pytest.raises(RulesError) as refused:
        load_rules(directory)

    assert str(refused.value) == (
        f"invalid rules:\n  {directory / 'qa.yaml'} line 2, field max_discount_percent: "
        "Input should be less than or equal to 100"
    )


# --- missing files, broken YAML, inconsistent entities --------------------------------------


def test_missing_rule_file_is_named(tmp_path: Path) -> None:
    directory = copy_of_rules(tmp_path)
    (directory / "tax_rates.yaml").unlink()

    assert problems_loading(directory) == [f"{directory / 'tax_rates.yaml'}: file is missing"]


def test_invalid_yaml_is_named_with_its_line(tmp_path: Path) -> None:
    """qa.yaml: a list left open on line 1, so line 2 cannot be parsed."""
    directory = copy_of_rules(tmp_path)
    (directory / "qa.yaml").write_text("max_discount_percent: [30\narr_tcv_tolerance_percent: 2\n")

    assert problems_loading(directory) == [
        f"{directory / 'qa.yaml'} line 2: not valid YAML (expected ',' or ']', but got ':')"
    ]


def test_missing_file_and_invalid_yaml_are_reported_together(tmp_path: Path) -> None:
    """routes.yaml deleted and qa.yaml broken: both named, in rule-file order."""
    directory = copy_of_rules(tmp_path)
    (directory / "routes.yaml").unlink()
    (directory / "qa.yaml").write_text("max_discount_percent: [30\narr_tcv_tolerance_percent: 2\n")

    assert problems_loading(directory) == [
        f"{directory / 'qa.yaml'} line 2: not valid YAML (expected ',' or ']', but got ':')",
        f"{directory / 'routes.yaml'}: file is missing",
    ]


def test_empty_rule_file_is_refused_naming_the_file(tmp_path: Path) -> None:
    directory = copy_of_rules(tmp_path)
    (directory / "qa.yaml").write_text("")

    assert problems_loading(directory) == [
        f"{directory / 'qa.yaml'}, field (file): "
        "Input should be a valid dictionary or instance of QaThresholds"
    ]


def test_currency_defaulting_to_two_entities_is_refused(tmp_path: Path) -> None:
    """entities.yaml: LL-EU also claims USD, already the default of LL-US."""
    directory = copy_of_rules(tmp_path)
    edit(directory / "entities.yaml", "[EUR, CHF]", "[EUR, CHF, USD]")

    [problem] = problems_loading(directory)

    assert problem.startswith(f"{directory / 'entities.yaml'}")
    assert problem.endswith("entities.LL-EU: USD is already the default of LL-US")


def test_entity_whose_code_differs_from_its_key_is_refused(tmp_path: Path) -> None:
    directory = copy_of_rules(tmp_path)
    edit(directory / "entities.yaml", "  code: LL-EU", "  code: LL-NL")

    [problem] = problems_loading(directory)

    assert problem.startswith(f"{directory / 'entities.yaml'}")
    assert problem.endswith("entities.LL-EU: code field is 'LL-NL', must match key")


def test_key_listed_twice_in_a_rule_file_is_refused(tmp_path: Path) -> None:
    """tax_rates.yaml gains a second US-NY row at line 19: which rate applies is ambiguous."""
    directory = copy_of_rules(tmp_path)
    tax_rates = directory / "tax_rates.yaml"
    tax_rates.write_text(
        tax_rates.read_text(encoding="utf-8") + 'US-NY: {rate_percent: "4", name: "NY 4%"}\n',
        encoding="utf-8",
    )

    assert problems_loading(directory) == [
        f"{tax_rates} line 19: not valid YAML (key 'US-NY' appears twice (first on line 3))"
    ]


# --- the operating layer: directory, escalation chains, calendars ---------------------------


def test_route_naming_a_missing_escalation_chain_is_refused(tmp_path: Path) -> None:
    directory = copy_of_rules(tmp_path)
    edit(directory / "routes.yaml", "sla_business_hours: 48, escalation: legal}",
         "sla_business_hours: 48, escalation: lawyers}")  # fmt: skip

    assert problems_loading(directory) == [
        f"{directory / 'routes.yaml'}: routes.business.nonstandard_terms: "
        "no escalation chain named 'lawyers'"
    ]


def test_a_role_nobody_in_the_directory_holds_is_refused(tmp_path: Path) -> None:
    """Nothing may be owned by nobody: remove the only CFO and both chains naming cfo fail."""
    directory = copy_of_rules(tmp_path)
    edit(directory / "directory.yaml",
         "samuel.ortiz:    {name: Samuel Ortiz, email: samuel.ortiz@ledgerline.example, roles: [cfo]}\n",
         "")  # fmt: skip

    problems = problems_loading(directory)

    escalation = directory / "escalation.yaml"
    assert (
        f"{escalation}: escalation.finance.levels.1: nobody in the directory holds cfo" in problems
    )
    assert (
        f"{escalation}: escalation.credit.levels.1: nobody in the directory holds cfo" in problems
    )


def test_person_with_a_bad_email_is_refused_naming_the_person(tmp_path: Path) -> None:
    directory = copy_of_rules(tmp_path)
    edit(directory / "directory.yaml", "email: grace.liu@ledgerline.example", "email: grace.liu")

    [problem] = problems_loading(directory)

    assert problem.startswith(f"{directory / 'directory.yaml'} line 6, field grace.liu.email:")


def test_calendar_with_an_unknown_time_zone_is_refused(tmp_path: Path) -> None:
    directory = copy_of_rules(tmp_path)
    edit(directory / "calendars.yaml", "timezone: Asia/Kolkata", "timezone: Asia/Bombay-ish")

    [problem] = problems_loading(directory)

    assert str(directory / "calendars.yaml") in problem and "Asia/Bombay-ish" in problem


def test_shipped_routing_staffs_every_level_and_expands_holidays() -> None:
    book = load_rule_book(SHIPPED)
    routing = book.operating.routing_for("business.nonstandard_terms")
    assert [(lv.role.value, lv.sla_business_hours) for lv in routing.levels] == [
        ("legal", Decimal(48)), ("vp_finance", Decimal(24)), ("cfo", Decimal(24)),
    ]  # fmt: skip
    assert routing.levels[0].calendar.timezone == "Europe/London"
    assert [c.person for c in routing.levels[0].people] == ["grace.liu"]
    us = book.operating.calendars["us"]
    assert (
        us.holidays[date(2026, 12, 25)]
        and us.holidays[date(2026, 11, 27)] == "Day after Thanksgiving"
    )


def test_a_chain_that_escalates_to_the_owner_itself_is_refused(tmp_path: Path) -> None:
    directory = copy_of_rules(tmp_path)
    edit(directory / "routes.yaml", "escalation: credit_limit}", "escalation: credit}")

    assert problems_loading(directory) == [
        f"{directory / 'routes.yaml'}: routes.business.credit_limit: chain 'credit' escalates "
        "to vp_finance, which already owns the check"
    ]
