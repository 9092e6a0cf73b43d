"""Money and allocation (SPEC §5 "parts always sum to the whole to the cent"): worked
examples, then properties of `allocate` over any currency, total and weights."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from models.money import (
    CurrencyMismatch,
    Money,
    allocate,
    minor_units,
    money_sum,
    quantize,
    quantum,
)
from tests.builders import usd

# --- minor units and rounding ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("currency", "digits", "smallest"),
    [("USD", 2, "0.01"), ("EUR", 2, "0.01"), ("JPY", 0, "1"), ("KWD", 3, "0.001")],
)
def test_each_currency_has_its_iso_minor_unit(currency: str, digits: int, smallest: str) -> None:
    assert minor_units(currency) == digits
    assert quantum(currency) == Decimal(smallest)


@pytest.mark.parametrize(
    ("amount", "currency", "held"),
    [
        ("1200", "USD", "1200.00"),
        ("2.345", "USD", "2.35"),
        ("2.3449", "USD", "2.34"),
        ("-2.345", "USD", "-2.35"),
        ("2.5", "JPY", "3"),
        ("149999.4", "JPY", "149999"),
        ("1.0005", "KWD", "1.001"),
        ("1.0004", "KWD", "1.000"),
    ],
)
def test_amount_is_held_at_the_minor_unit_rounding_half_up(
    amount: str, currency: str, held: str
) -> None:
    """Half-up (away from zero on a tie), not banker's rounding: 2.345 USD is 2.35 and
    2.5 JPY is 3 yen. The held amount carries exactly the currency's digits."""
    money = Money.of(amount, currency)

    assert money.amount == Decimal(held)
    assert str(money.amount) == held


def test_quantize_rounds_half_up_to_the_currency() -> None:
    assert quantize(Decimal("0.125"), "USD") == Decimal("0.13")
    assert quantize(Decimal("0.5"), "JPY") == Decimal("1")
    assert quantize(Decimal("-0.0005"), "KWD") == Decimal("-0.001")


def test_float_amount_is_refused() -> None:
    with pytest.raises(ValidationError, match="not floats"):
        Money(amount=1.1, currency="USD")


def test_float_amount_is_refused_by_the_of_factory_too() -> None:
    """1.005 as a float is 1.00499999...: it would silently become 1.00 USD."""
    with pytest.raises(TypeError, match="not floats"):
        Money.of(1.005, "USD")  # type: ignore[arg-type]


def test_malformed_currency_code_is_refused() -> None:
    with pytest.raises(ValidationError, match="currency"):
        Money.of("10", "usd")


def test_amounts_in_different_currencies_do_not_add_subtract_or_compare() -> None:
    dollars, euros = usd("10"), Money.of("10", "EUR")

    with pytest.raises(CurrencyMismatch, match="cannot combine USD and EUR"):
        _ = dollars + euros
    with pytest.raises(CurrencyMismatch, match="cannot combine USD and EUR"):
        _ = dollars - euros
    with pytest.raises(CurrencyMismatch, match="cannot combine USD and EUR"):
        _ = dollars < euros


def test_money_sum_refuses_a_foreign_amount() -> None:
    with pytest.raises(CurrencyMismatch):
        money_sum([usd("1"), Money.of("1", "GBP")], "USD")


def test_arithmetic_stays_at_the_minor_unit() -> None:
    """10.00 USD * 0.08875 = 0.8875 -> 0.89; 0.10 + 0.20 is exactly 0.30."""
    assert usd("10").times(Decimal("0.08875")) == usd("0.89")
    assert usd("0.10") + usd("0.20") == usd("0.30")
    assert usd("5") - usd("7.5") == usd("-2.50")
    assert -usd("3") == usd("-3")
    assert money_sum([], "JPY") == Money.zero("JPY")


@pytest.mark.parametrize(
    ("amount", "currency", "shown"),
    [
        ("1200", "USD", "1,200.00 USD"),
        ("150000", "JPY", "150,000 JPY"),
        ("1234.5678", "KWD", "1,234.568 KWD"),
        ("-5000", "USD", "-5,000.00 USD"),
        ("0", "EUR", "0.00 EUR"),
    ],
)
def test_money_is_shown_with_thousands_separators_and_currency_digits(
    amount: str, currency: str, shown: str
) -> None:
    assert Money.of(amount, currency).format() == shown
    assert str(Money.of(amount, currency)) == shown


def test_amount_rounding_to_zero_is_shown_without_a_minus_sign() -> None:
    """Tax at 8.875% on a 0.04 USD credit is -0.00355, held as zero."""
    assert usd("-0.04").times(Decimal("0.08875")).format() == "0.00 USD"
    assert Money.of("-0.4", "JPY").format() == "0 JPY"


# --- allocate: worked examples --------------------------------------------------------------


def amounts(parts: list[Money]) -> list[str]:
    return [str(part.amount) for part in parts]


def test_hundred_dollars_over_three_equal_weights_gives_the_odd_cent_to_the_first() -> None:
    """100.00 / 3 = 33.333...: floors 33.33 * 3 = 99.99, one cent left, equal remainders,
    so it goes to the earliest part."""
    parts = allocate(usd("100"), [Decimal(1)] * 3)

    assert amounts(parts) == ["33.34", "33.33", "33.33"]


def test_leftover_cents_go_to_the_largest_remainders() -> None:
    """10.00 by weights 1, 2, 3 (of 6): exact 1.6666, 3.3333, 5.0000; floors 1.66, 3.33,
    5.00 = 9.99; the one cent goes to the largest remainder (.0066 on the first)."""
    parts = allocate(usd("10"), [Decimal(1), Decimal(2), Decimal(3)])

    assert amounts(parts) == ["1.67", "3.33", "5.00"]


def test_negative_total_is_split_like_its_positive_with_the_sign_kept() -> None:
    """A -100.00 USD credit over three equal lines: -33.34, -33.33, -33.33."""
    parts = allocate(usd("-100"), [Decimal(1)] * 3)

    assert amounts(parts) == ["-33.34", "-33.33", "-33.33"]
    assert money_sum(parts, "USD") == usd("-100")


def test_yen_are_split_in_whole_yen() -> None:
    """1,000 JPY / 3: 334, 333, 333."""
    parts = allocate(Money.of("1000", "JPY"), [Decimal(1)] * 3)

    assert amounts(parts) == ["334", "333", "333"]


def test_dinar_are_split_to_the_fils() -> None:
    """1.000 KWD / 3: 0.334, 0.333, 0.333."""
    parts = allocate(Money.of("1", "KWD"), [Decimal(1)] * 3)

    assert amounts(parts) == ["0.334", "0.333", "0.333"]


def test_zero_weight_part_gets_nothing() -> None:
    parts = allocate(usd("0.05"), [Decimal(1), Decimal(0), Decimal(1)])

    assert amounts(parts) == ["0.03", "0.00", "0.02"]


@pytest.mark.parametrize(
    ("weights", "message"),
    [
        ([], "at least one weight"),
        ([Decimal(0), Decimal(0)], "sum to zero"),
        ([Decimal(2), Decimal(-1)], "cannot be negative"),
    ],
)
def test_allocate_refuses_weights_it_cannot_split_by(weights: list[Decimal], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        allocate(usd("100"), weights)


# --- allocate: properties -------------------------------------------------------------------

CURRENCIES = st.sampled_from(["USD", "EUR", "JPY", "KRW", "KWD", "BHD", "INR"])
WEIGHTS = st.lists(
    st.one_of(
        st.integers(0, 10**6).map(Decimal),
        st.decimals(min_value=0, max_value=10**4, places=4, allow_nan=False),
    ),
    min_size=1,
    max_size=12,
).filter(lambda ws: sum(ws) > 0)


@st.composite
def totals(draw: st.DrawFn) -> Money:
    currency = draw(CURRENCIES)
    units = draw(st.integers(-(10**14), 10**14))
    return Money(amount=Decimal(units) * quantum(currency), currency=currency)


@given(totals(), WEIGHTS)
def test_parts_sum_exactly_to_the_total(total: Money, weights: list[Decimal]) -> None:
    parts = allocate(total, weights)

    assert len(parts) == len(weights)
    assert all(part.currency == total.currency for part in parts)
    assert money_sum(parts, total.currency) == total


@given(totals(), WEIGHTS)
def test_each_part_is_within_one_minor_unit_of_its_exact_share(
    total: Money, weights: list[Decimal]
) -> None:
    parts = allocate(total, weights)
    weight_sum = sum(Fraction(w) for w in weights)
    unit = Fraction(quantum(total.currency))

    for part, weight in zip(parts, weights, strict=True):
        exact = Fraction(total.amount) * Fraction(weight) / weight_sum
        assert abs(Fraction(part.amount) - exact) < unit


@given(totals(), WEIGHTS)
def test_zero_weight_parts_get_zero(total: Money, weights: list[Decimal]) -> None:
    parts = allocate(total, weights)

    for part, weight in zip(parts, weights, strict=True):
        if weight == 0:
            assert part.is_zero()


@given(totals(), WEIGHTS)
def test_no_part_has_the_opposite_sign_of_the_total(total: Money, weights: list[Decimal]) -> None:
    parts = allocate(total, weights)

    assert all(part.amount * total.amount >= 0 for part in parts)
