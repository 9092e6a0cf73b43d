"""Business-time arithmetic for exception-case SLAs: deadlines in an owner's working hours."""

from __future__ import annotations

import time as wall_clock
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from models.business_time import BusinessCalendar, expand_holidays

NEW_YORK = ZoneInfo("America/New_York")
LONDON = ZoneInfo("Europe/London")
KOLKATA = ZoneInfo("Asia/Kolkata")
WEEKDAYS = [1, 2, 3, 4, 5]
ONE_DAY = timedelta(days=1)


def us_finance() -> BusinessCalendar:
    return BusinessCalendar(
        name="us-finance",
        timezone="America/New_York",
        working_days=WEEKDAYS,
        day_start=time(9),
        day_end=time(17),
        holidays=expand_holidays("US", None, [2026, 2027]),
    )


def ny(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=NEW_YORK)


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def is_within_working_hours_inclusive_end(calendar: BusinessCalendar, at: datetime) -> bool:
    """Wall-clock oracle, independent of the module's UTC intervals: read on the calendar's
    local clock, `at` is on a working day that is not a holiday, between day_start and
    day_end with both ends included (a deadline may be exactly day_end). Exact for calendars
    whose day_start and day_end are clear of the zone's clock changes."""
    local = at.astimezone(ZoneInfo(calendar.timezone))
    day = local.date()
    return (
        day.isoweekday() in calendar.working_days
        and day not in calendar.holidays
        and calendar.day_start <= local.time() <= calendar.day_end
    )


# -- the SLA examples ---------------------------------------------------------------------


def test_48_business_hours_over_christmas() -> None:
    # Opened Fri 2026-12-18 15:00 EST, 9-17 Mon-Fri, US federal holidays:
    #   Fri 12-18 15:00-17:00   2 h  (2)
    #   Mon 12-21 .. Thu 12-24  4 x 8 h  (34)   Christmas Eve is not a federal holiday
    #   Fri 12-25 Christmas Day, Sat, Sun: skipped
    #   Mon 12-28               8 h  (42)
    #   Tue 12-29 09:00 + 6 h = 15:00 EST = 20:00 UTC  (48)
    calendar = us_finance()
    opened = ny(2026, 12, 18, 15)
    deadline = calendar.add_business_hours(opened, 48)
    assert deadline == utc(2026, 12, 29, 20)
    assert deadline.tzinfo is UTC
    assert deadline.astimezone(NEW_YORK) == ny(2026, 12, 29, 15)
    assert calendar.business_hours_between(opened, deadline) == 48


def test_4_hours_opened_on_saturday_lands_monday_1300() -> None:
    deadline = us_finance().add_business_hours(ny(2026, 12, 5, 10, 30), 4)
    assert deadline == ny(2026, 12, 7, 13)


def test_4_hours_opened_at_1600_lands_next_working_day_at_noon() -> None:
    # Tue 16:00-17:00 is 1 h, Wed 09:00 + 3 h.
    assert us_finance().add_business_hours(ny(2026, 12, 1, 16), 4) == ny(2026, 12, 2, 12)
    # Fri 16:00: the next working day is Monday.
    assert us_finance().add_business_hours(ny(2026, 12, 4, 16), 4) == ny(2026, 12, 7, 12)


def test_a_deadline_may_be_exactly_day_end() -> None:
    calendar = us_finance()
    assert calendar.add_business_hours(ny(2026, 12, 7, 13), 4) == ny(2026, 12, 7, 17)
    assert calendar.add_business_hours(ny(2026, 12, 7, 9), 8) == ny(2026, 12, 7, 17)
    assert calendar.add_business_hours(ny(2026, 12, 11, 13), 4) == ny(2026, 12, 11, 17)  # a Fri
    # day_end itself is not working time: counting from it starts the next morning.
    assert not calendar.is_working_time(ny(2026, 12, 7, 17))
    assert calendar.is_working_time(ny(2026, 12, 7, 16, 59, 59))
    assert calendar.next_working_moment(ny(2026, 12, 7, 17)) == ny(2026, 12, 8, 9)
    assert calendar.add_business_hours(ny(2026, 12, 7, 17), 4) == ny(2026, 12, 8, 13)
    # One second more than the day holds does roll over.
    assert calendar.add_business_hours(ny(2026, 12, 7, 13), Decimal(4) + Decimal(1) / 3600) == (
        ny(2026, 12, 8, 9, 0, 1)
    )


def test_a_holiday_monday_is_skipped() -> None:
    # Labor Day, Mon 2026-09-07: Fri 15:00-17:00 is 2 h, then Tue 09:00 + 2 h.
    assert us_finance().add_business_hours(ny(2026, 9, 4, 15), 4) == ny(2026, 9, 8, 11)
    assert not us_finance().is_working_day(date(2026, 9, 7))
    assert not us_finance().is_working_time(ny(2026, 9, 7, 10))


def test_zero_hours_is_the_next_working_moment() -> None:
    calendar = us_finance()
    assert calendar.add_business_hours(ny(2026, 12, 8, 10, 15), 0) == ny(2026, 12, 8, 10, 15)
    assert calendar.add_business_hours(ny(2026, 12, 8, 7), 0) == ny(2026, 12, 8, 9)
    assert calendar.add_business_hours(ny(2026, 12, 24, 18), 0) == ny(2026, 12, 28, 9)


def test_fractional_hours_are_counted_to_the_second() -> None:
    calendar = us_finance()
    start = ny(2026, 12, 8, 9)
    assert calendar.add_business_hours(start, Decimal("0.25")) == ny(2026, 12, 8, 9, 15)
    assert calendar.add_business_hours(start, 1.5) == ny(2026, 12, 8, 10, 30)
    assert calendar.add_business_hours(start, Decimal("2.5001")) == ny(2026, 12, 8, 11, 30, 0)
    assert calendar.add_business_hours(start, Decimal("0.000139")) == ny(2026, 12, 8, 9, 0, 1)
    assert calendar.business_hours_between(start, ny(2026, 12, 8, 9, 20)) == Decimal(1) / 3


def test_europe_london_with_english_bank_holidays() -> None:
    london = BusinessCalendar(
        name="uk-ops",
        timezone="Europe/London",
        working_days=WEEKDAYS,
        day_start=time(9),
        day_end=time(17, 30),
        holidays=expand_holidays("GB", "ENG", [2026]),
    )
    assert london.hours_per_day() == Decimal("8.5")
    # Thu 2026-04-02 16:00 BST: 1.5 h that day; Good Friday, the weekend and Easter Monday
    # are skipped; Tue 04-07 8.5 h (10); Wed 04-08 09:00 + 2 h = 11:00 BST = 10:00 UTC.
    opened = datetime(2026, 4, 2, 16, tzinfo=LONDON)
    assert london.add_business_hours(opened, 12) == utc(2026, 4, 8, 10)
    assert london.add_business_hours(opened, 10) == datetime(2026, 4, 7, 17, 30, tzinfo=LONDON)
    # Clocks went forward on Sun 2026-03-29: Fri 16:00 GMT + 4 h is Mon 11:30 BST (10:30 UTC).
    friday = datetime(2026, 3, 27, 16, tzinfo=LONDON)
    assert london.add_business_hours(friday, 4) == utc(2026, 3, 30, 10, 30)


def test_asia_kolkata_half_hour_offset_and_six_day_week() -> None:
    india = BusinessCalendar(
        name="in-ops",
        timezone="Asia/Kolkata",
        working_days=[1, 2, 3, 4, 5, 6],
        day_start=time(9, 30),
        day_end=time(18, 30),
        holidays=expand_holidays("IN", None, [2026]),
    )
    # Thu 2026-10-01 17:00 IST: 1.5 h; Fri 10-02 Gandhi Jayanti; Sat 9 h (10.5); Sun off;
    # Mon 9 h (19.5); Tue 10-06 09:30 + 0.5 h = 10:00 IST = 04:30 UTC.
    opened = datetime(2026, 10, 1, 17, tzinfo=KOLKATA)
    assert india.add_business_hours(opened, 20) == utc(2026, 10, 6, 4, 30)
    assert india.is_working_time(datetime(2026, 10, 3, 12, tzinfo=KOLKATA))  # a Saturday


def test_spring_forward_weekend_keeps_local_nine_to_five() -> None:
    calendar = us_finance()
    # US clocks go forward on Sun 2026-03-08. Fri 15:00 EST (20:00 UTC) + 4 h: 2 h on Friday,
    # Mon 09:00 EDT + 2 h = 11:00 EDT = 15:00 UTC (not 16:00 UTC, as a fixed offset would say).
    opened = ny(2026, 3, 6, 15)
    assert opened == utc(2026, 3, 6, 20)
    assert calendar.add_business_hours(opened, 4) == utc(2026, 3, 9, 15)
    assert calendar.next_working_moment(ny(2026, 3, 7, 12)) == utc(2026, 3, 9, 13)
    assert calendar.is_working_time(utc(2026, 3, 9, 13))  # 09:00 EDT
    assert not calendar.is_working_time(utc(2026, 3, 9, 12, 59, 59))  # 08:59:59 EDT
    assert calendar.business_hours_between(opened, utc(2026, 3, 9, 15)) == 4


def test_fall_back_weekend_keeps_local_nine_to_five() -> None:
    calendar = us_finance()
    # Clocks go back on Sun 2026-11-01: Fri 15:00 EDT (19:00 UTC) + 4 h = Mon 11:00 EST.
    opened = ny(2026, 10, 30, 15)
    assert opened == utc(2026, 10, 30, 19)
    assert calendar.add_business_hours(opened, 4) == utc(2026, 11, 2, 16)
    # Wed 10-28 09:00 EDT + 40 h (five days) = Tue 11-03 17:00 EST.
    assert calendar.add_business_hours(ny(2026, 10, 28, 9), 40) == utc(2026, 11, 3, 22)
    assert calendar.is_working_time(utc(2026, 11, 2, 14))  # 09:00 EST
    assert not calendar.is_working_time(utc(2026, 11, 2, 13, 30))  # 08:30 EST, 09:30 in EDT


def test_a_clock_change_inside_working_hours_changes_that_day_length() -> None:
    # Every day 00:00-23:00: the spring-forward day really has 22 working hours, the
    # fall-back day 24; the nominal day is 23.
    around_the_clock = BusinessCalendar(
        name="noc",
        timezone="America/New_York",
        working_days=[1, 2, 3, 4, 5, 6, 7],
        day_start=time(0),
        day_end=time(23),
    )
    assert around_the_clock.hours_per_day() == 23
    spring = around_the_clock.business_hours_between(ny(2026, 3, 7), ny(2026, 3, 9))
    assert spring == 23 + 22
    fall = around_the_clock.business_hours_between(ny(2026, 10, 31), ny(2026, 11, 2))
    assert fall == 23 + 24
    assert around_the_clock.add_business_hours(ny(2026, 3, 8), 22) == ny(2026, 3, 8, 23)


def test_a_boundary_the_clocks_skip_or_repeat() -> None:
    early = BusinessCalendar(
        name="early", timezone="America/New_York", working_days=[7],
        day_start=time(2, 30), day_end=time(10),
    )  # fmt: skip
    # 02:30 does not exist on 2026-03-08: the day starts when the clocks jump (03:00 EDT).
    assert early.next_working_moment(ny(2026, 3, 8, 0)) == utc(2026, 3, 8, 7)
    repeated = BusinessCalendar(
        name="repeated", timezone="America/New_York", working_days=[7],
        day_start=time(1, 30), day_end=time(10),
    )  # fmt: skip
    # 01:30 happens twice on 2026-11-01: the day starts at the first (EDT, 05:30 UTC).
    assert repeated.next_working_moment(ny(2026, 11, 1, 0)) == utc(2026, 11, 1, 5, 30)
    assert repeated.business_hours_between(utc(2026, 11, 1), utc(2026, 11, 2)) == 9.5


# -- business days and the inverse ----------------------------------------------------------


def test_add_business_days_keeps_the_time_of_day() -> None:
    calendar = us_finance()
    assert calendar.add_business_days(ny(2026, 12, 2, 14), 5) == ny(2026, 12, 9, 14)
    assert calendar.add_business_days(ny(2026, 12, 2, 14), 1) == ny(2026, 12, 3, 14)
    assert calendar.add_business_days(ny(2026, 12, 2, 14), 0) == ny(2026, 12, 2, 14)
    # Across the spring-forward weekend: same wall time, one hour less in UTC.
    assert calendar.add_business_days(ny(2026, 3, 6, 14), 1) == utc(2026, 3, 9, 18)


def test_add_business_days_across_a_holiday() -> None:
    # Wed 12-23 14:00 + 5: Thu 24, (Christmas), Mon 28, Tue 29, Wed 30, Thu 31.
    calendar = us_finance()
    assert calendar.add_business_days(ny(2026, 12, 23, 14), 5) == ny(2026, 12, 31, 14)
    # Thanksgiving, Thu 2026-11-26: Wed 25 + 1 is Fri 27.
    assert calendar.add_business_days(ny(2026, 11, 25, 10), 1) == ny(2026, 11, 27, 10)


def test_add_business_days_from_outside_working_hours() -> None:
    calendar = us_finance()
    # Saturday: counting starts Mon 09:00, so one day later is Tue 09:00.
    assert calendar.add_business_days(ny(2026, 12, 5, 11), 1) == ny(2026, 12, 8, 9)
    # Exactly day_end is outside working hours: Wed 17:00 counts from Thu 09:00.
    assert calendar.add_business_days(ny(2026, 12, 2, 17), 1) == ny(2026, 12, 4, 9)
    with pytest.raises(ValueError, match="negative"):
        calendar.add_business_days(ny(2026, 12, 2, 17), -1)


def test_business_hours_between() -> None:
    calendar = us_finance()
    assert calendar.business_hours_between(ny(2026, 12, 18, 15), ny(2026, 12, 29, 15)) == 48
    assert calendar.business_hours_between(ny(2026, 12, 8, 10), ny(2026, 12, 8, 10)) == 0
    assert calendar.business_hours_between(ny(2026, 12, 9), ny(2026, 12, 8)) == 0
    assert calendar.business_hours_between(ny(2026, 12, 5), ny(2026, 12, 7)) == 0  # weekend
    assert calendar.business_hours_between(ny(2026, 12, 7, 16), ny(2026, 12, 8, 9, 30)) == 1.5


def test_ten_thousand_hours_is_fast() -> None:
    calendar = us_finance()
    opened = ny(2026, 12, 18, 15)
    timings = []
    for _ in range(3):
        began = wall_clock.perf_counter()
        deadline = calendar.add_business_hours(opened, 10_000)
        timings.append(wall_clock.perf_counter() - began)
    assert min(timings) < 0.05
    assert calendar.business_hours_between(opened, deadline) == 10_000


# -- refusals -------------------------------------------------------------------------------


def test_naive_datetimes_are_refused() -> None:
    calendar = us_finance()
    naive = datetime(2026, 12, 8, 10)
    with pytest.raises(ValueError, match="timezone-aware"):
        calendar.add_business_hours(naive, 4)
    with pytest.raises(ValueError, match="timezone-aware"):
        calendar.is_working_time(naive)
    with pytest.raises(ValueError, match="timezone-aware"):
        calendar.business_hours_between(ny(2026, 12, 8), naive)


def test_negative_or_non_finite_hours_are_refused() -> None:
    calendar = us_finance()
    with pytest.raises(ValueError, match="negative"):
        calendar.add_business_hours(ny(2026, 12, 8, 10), -1)
    with pytest.raises(ValueError, match="finite"):
        calendar.add_business_hours(ny(2026, 12, 8, 10), Decimal("NaN"))
    with pytest.raises(ValueError, match="finite"):
        calendar.add_business_hours(ny(2026, 12, 8, 10), float("inf"))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"timezone": "Mars/Olympus_Mons"}, "unknown IANA time zone 'Mars/Olympus_Mons'"),
        ({"day_end": time(9)}, "day_end 09:00:00 must be after day_start 09:00:00"),
        ({"working_days": []}, "cannot be empty"),
        ({"working_days": [1, 1]}, "duplicates"),
        ({"working_days": [0, 8]}, "ISO weekdays"),
        ({"shift": "night"}, "Extra inputs are not permitted"),
    ],
)
def test_invalid_calendars_are_refused(overrides: dict[str, object], message: str) -> None:
    fields: dict[str, object] = {
        "name": "x",
        "timezone": "UTC",
        "working_days": WEEKDAYS,
        "day_start": time(9),
        "day_end": time(17),
        **overrides,
    }
    with pytest.raises(ValidationError, match=message):
        BusinessCalendar.model_validate(fields)


def test_zones_are_the_standard_zoneinfo_objects() -> None:
    # The module takes its ZoneInfo class from `_zoneinfo` (for the workflow sandbox): it must
    # be the very class, and cache, that `zoneinfo` gives everyone else.
    assert us_finance().zone is NEW_YORK


def test_calendar_is_frozen() -> None:
    with pytest.raises(ValidationError):
        us_finance().name = "other"  # type: ignore[misc]


# -- holidays (the package's actual output, holidays 0.109) ---------------------------------


def test_us_holidays_include_christmas_and_the_observed_independence_day() -> None:
    us = expand_holidays("US", None, [2026])
    assert us[date(2026, 12, 25)] == "Christmas Day"
    # July 4th 2026 is a Saturday: the package lists both the day and the Friday observed.
    assert us[date(2026, 7, 3)] == "Independence Day (observed)"
    assert us[date(2026, 7, 4)] == "Independence Day"
    assert date(2026, 12, 24) not in us
    assert list(us) == sorted(us)


def test_england_has_the_boxing_day_substitute() -> None:
    england = expand_holidays("GB", "ENG", [2026])
    # Boxing Day 2026 is a Saturday: the substitute is Monday 12-28.
    assert england[date(2026, 12, 26)] == "Boxing Day"
    assert england[date(2026, 12, 28)] == "Boxing Day (observed)"
    assert date(2026, 4, 3) in england  # Good Friday
    assert date(2026, 4, 6) in england  # Easter Monday


def test_india_has_holidays() -> None:
    india = expand_holidays("IN", None, [2026])
    assert india[date(2026, 1, 26)] == "Republic Day"
    assert date(2026, 10, 2) in india


def test_unknown_country_or_subdivision_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown holiday country 'XX'"):
        expand_holidays("XX", None, [2026])
    with pytest.raises(ValueError, match="unknown subdivision 'ZZZ' of country 'GB'"):
        expand_holidays("GB", "ZZZ", [2026])


# -- properties -----------------------------------------------------------------------------

# Zones whose clock changes all happen before 04:00 local, so that calendars starting at 04:00
# or later never have a boundary at a changing wall time (the wall-clock oracle is exact).
ZONES = (
    "America/New_York",
    "Europe/London",
    "Europe/Berlin",
    "Australia/Sydney",
    "Asia/Kolkata",
    "Asia/Kathmandu",
    "Pacific/Chatham",
    "UTC",
)
PROPERTY_SETTINGS = settings(max_examples=200, deadline=None)


# Strategies are built once: building them inside a composite costs more than the test.
QUARTER_HOURS_FROM_04_TO_16 = st.integers(4 * 4, 16 * 4)
HOLIDAY_LISTS = st.lists(
    st.integers(0, 3 * 366).map(lambda n: date(2026, 1, 1) + n * ONE_DAY), max_size=8
)
WORKING_DAY_SETS = st.sets(st.integers(1, 7), min_size=1)
ZONE_NAMES = st.sampled_from(ZONES)


@st.composite
def calendars(draw: st.DrawFn) -> BusinessCalendar:
    """Zone, working days, hours from 04:00-16:00 to at most 23:45 in quarter hours (at least
    one hour long), and a few holidays in 2026-2028."""
    start = draw(QUARTER_HOURS_FROM_04_TO_16)
    end = start + draw(st.integers(4, 23 * 4 + 3 - start))
    return BusinessCalendar(
        name="drawn",
        timezone=draw(ZONE_NAMES),
        working_days=sorted(draw(WORKING_DAY_SETS)),
        day_start=time(start // 4, start % 4 * 15),
        day_end=time(end // 4, end % 4 * 15),
        holidays=dict.fromkeys(draw(HOLIDAY_LISTS), "holiday"),
    )


# Aware instants in 2026-2027, given in UTC or in a local zone.
instants = st.builds(
    lambda at, zone: at.replace(tzinfo=UTC).astimezone(zone),
    st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 31)),
    st.sampled_from([UTC, NEW_YORK, LONDON, KOLKATA]),
)
hours = st.one_of(
    st.integers(0, 500),
    st.decimals(min_value=0, max_value=500, places=4, allow_nan=False, allow_infinity=False),
)
HALF_SECOND_IN_HOURS = Decimal("0.5") / 3600


@PROPERTY_SETTINGS
@given(calendars(), instants, hours)
def test_deadlines_are_working_time_and_invert_business_hours_between(
    calendar: BusinessCalendar, start: datetime, h: Decimal | int
) -> None:
    deadline = calendar.add_business_hours(start, h)
    assert deadline.tzinfo is UTC
    # (1) never outside working time, except exactly a day_end
    assert is_within_working_hours_inclusive_end(calendar, deadline), deadline.isoformat()
    # (4) business_hours_between inverts add_business_hours, to the second
    elapsed = calendar.business_hours_between(start, deadline)
    assert abs(elapsed - h) <= HALF_SECOND_IN_HOURS, (elapsed, h)
    moment = calendar.next_working_moment(start)
    assert calendar.is_working_time(moment)
    assert is_within_working_hours_inclusive_end(calendar, moment)


@PROPERTY_SETTINGS
@given(calendars(), instants, instants, hours, hours)
def test_deadlines_are_monotone_in_hours_and_in_start(
    calendar: BusinessCalendar,
    start1: datetime,
    start2: datetime,
    h1: Decimal | int,
    h2: Decimal | int,
) -> None:
    assert_monotone(calendar, start1, start2, h1, h2)


def assert_monotone(
    calendar: BusinessCalendar, start1: datetime, start2: datetime,
    h1: Decimal | int, h2: Decimal | int,
) -> tuple[datetime, datetime, Decimal | int]:  # fmt: skip
    """(2) h1 <= h2 implies add(start, h1) <= add(start, h2); (3) start1 <= start2 implies
    add(start1, h) <= add(start2, h). Returns the earlier start, its deadline and hours."""
    start1, start2 = sorted([start1, start2])
    h1, h2 = sorted([h1, h2])
    deadline = calendar.add_business_hours(start1, h1)
    assert deadline <= calendar.add_business_hours(start1, h2)
    assert deadline <= calendar.add_business_hours(start2, h1)
    return start1, deadline, h1


NIGHT_ZONES = st.sampled_from(("America/New_York", "Europe/London", "Australia/Sydney"))
HALF_HOURS = st.sampled_from((0, 30))


@st.composite
def night_calendars(draw: st.DrawFn) -> BusinessCalendar:
    """Calendars whose working hours take in the small hours, where clocks change."""
    start = draw(st.integers(0, 3))
    return BusinessCalendar(
        name="night",
        timezone=draw(NIGHT_ZONES),
        working_days=sorted(draw(WORKING_DAY_SETS)),
        day_start=time(start, draw(HALF_HOURS)),
        day_end=time(draw(st.integers(start + 1, 23)), draw(HALF_HOURS)),
    )


@settings(max_examples=150, deadline=None)
@given(night_calendars(), instants, instants, hours, hours)
def test_properties_hold_across_clock_changes_inside_working_hours(
    calendar: BusinessCalendar,
    start1: datetime,
    start2: datetime,
    h1: Decimal | int,
    h2: Decimal | int,
) -> None:
    start, deadline, hours = assert_monotone(calendar, start1, start2, h1, h2)
    # Working time, or the end of a working interval (working time just before it).
    just_before = deadline - timedelta(microseconds=1)
    assert calendar.is_working_time(deadline) or calendar.is_working_time(just_before)
    assert abs(calendar.business_hours_between(start, deadline) - hours) <= HALF_SECOND_IN_HOURS
