"""Business time: SLA deadlines counted in an owner's working hours, not wall-clock hours.

- **What counts**: the time inside a working day's interval [day_start, day_end), local wall
  time in the calendar's IANA zone, on a working weekday that is not a holiday. Counting
  starts at `next_working_moment(start)`; everything else is skipped.
- **The day_end rule**: a deadline may land exactly on a day's `day_end` (9-17, 13:00 + 4 h is
  17:00 that day, not 09:00 the next morning), although `day_end` itself is not working time.
- **DST**: the working day is day_start..day_end on the local wall clock, whatever its UTC
  length; what is counted is the time that really elapses inside it, so a day whose working
  hours contain a clock change is an hour shorter or longer. A boundary at a wall time that
  happens twice is its first occurrence; one at a wall time the clocks skip is the jump.
- Pure and deterministic (safe in Temporal workflows): no clock, no I/O beyond the zone
  data; time always comes in as an aware `datetime`, and every instant out is in UTC.
  Hours are counted to the second (a fraction of a second rounds half-up).

Holidays come in expanded (`expand_holidays`, from the `holidays` package): expand them
outside workflow code and pass the dates in, so that a package upgrade never changes a
running workflow's deadlines.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


def _zone_class() -> type[ZoneInfo]:
    """The class that makes zones: CPython's C `_zoneinfo.ZoneInfo`, which `zoneinfo`
    re-exports, taken from its own module.

    Why not `zoneinfo.ZoneInfo`: where a workflow imports this module without passing it
    through, the Temporal sandbox hands it a wrapped `zoneinfo.ZoneInfo` (the wrapper forbids
    clear_cache, from_file and reset_tzpath), and the zones that wrapper makes are wrappers too,
    which datetime refuses ("tzinfo argument must be None or of a tzinfo subclass, not type
    '_RestrictedProxy'"). `_zoneinfo` is not wrapped. Only ZoneInfo(key) is called, which the
    sandbox allows anyway. Without the C module (not CPython) it falls back to `zoneinfo`.
    """
    try:
        accelerated: type[ZoneInfo] = importlib.import_module("_zoneinfo").ZoneInfo
    except (ImportError, AttributeError):
        return ZoneInfo
    return accelerated


_ZoneInfo = _zone_class()
ONE_DAY = timedelta(days=1)
ONE_SECOND = timedelta(seconds=1)
_MICROSECONDS_PER_HOUR = Decimal(3_600_000_000)
# Every stretch of this many days holds a working day unless the calendar lists more holidays
# than that; beyond it a search for the next working day gives up instead of looping.
_SEARCH_DAYS = 400


def _require_aware(at: datetime, what: str) -> datetime:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware, got naive {at.isoformat()}")
    return at.astimezone(UTC)


def _as_duration(hours: Decimal | int | float) -> timedelta:
    """`hours` as a duration, rounded half-up to the second; negative or not finite refused."""
    if isinstance(hours, bool) or not isinstance(hours, Decimal | int | float):
        raise TypeError(f"business hours must be a Decimal, int or float, got {hours!r}")
    value = Decimal(str(hours)) if isinstance(hours, float) else Decimal(hours)
    if not value.is_finite():
        raise ValueError(f"business hours must be a finite number, got {hours!r}")
    if value < 0:
        raise ValueError(f"business hours cannot be negative, got {hours}")
    seconds = (value * 3600).quantize(Decimal(1), rounding=ROUND_HALF_UP)
    return timedelta(seconds=int(seconds))


def _hours(duration: timedelta) -> Decimal:
    return Decimal(duration // timedelta(microseconds=1)) / _MICROSECONDS_PER_HOUR


def _wall_to_utc(day: date, wall: time, zone: ZoneInfo) -> datetime:
    """The instant the local clock of `zone` reads `wall` on `day`.

    A wall time that happens twice (clocks going back) is its first occurrence. One that never
    happens (clocks jumping forward over it) is the jump itself: the first instant whose wall
    time is at or past it, so that boundaries stay in order.
    """
    local = datetime.combine(day, wall, tzinfo=zone)
    instant = local.astimezone(UTC)
    if instant.astimezone(zone).utcoffset() == local.utcoffset():
        return instant  # the wall time exists (read with the offset that holds at that instant)
    # In a gap: fold=0 reads it with the offset before the jump (an instant after the jump),
    # fold=1 with the offset after it (an instant before). Jumps are on whole seconds.
    before, after = local.replace(fold=1).astimezone(UTC), instant
    target = local.replace(tzinfo=None)
    while after - before > ONE_SECOND:
        middle = before + (after - before) // 2
        if middle.astimezone(zone).replace(tzinfo=None) >= target:
            after = middle
        else:
            before = middle
    return after


class BusinessCalendar(BaseModel):
    """An owner's working week: zone, working weekdays, daily hours and public holidays."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1, description="e.g. 'us-finance'")
    timezone: str = Field(description="IANA zone name, e.g. 'America/New_York'")
    working_days: list[int] = Field(description="ISO weekdays, 1 = Monday .. 7 = Sunday")
    day_start: time = Field(description="Local wall time the working day starts, e.g. 09:00")
    day_end: time = Field(description="Local wall time the working day ends, after day_start")
    holidays: dict[date, str] = Field(default_factory=dict, description="date -> holiday name")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            _ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown IANA time zone {value!r}") from exc
        return value

    @field_validator("working_days")
    @classmethod
    def _weekdays(cls, value: list[int]) -> list[int]:
        if not value:
            raise ValueError("working_days cannot be empty")
        if len(set(value)) != len(value):
            raise ValueError(f"working_days has duplicates: {value}")
        if any(not 1 <= day <= 7 for day in value):
            raise ValueError(f"working_days are ISO weekdays 1 (Mon) to 7 (Sun), got {value}")
        return sorted(value)

    @field_validator("day_start", "day_end")
    @classmethod
    def _wall_time(cls, value: time) -> time:
        if value.tzinfo is not None:
            raise ValueError("day_start and day_end are local wall times, without a zone")
        return value

    @model_validator(mode="after")
    def _day_order(self) -> Self:
        if self.day_end <= self.day_start:
            raise ValueError(
                f"day_end {self.day_end.isoformat()} must be after "
                f"day_start {self.day_start.isoformat()}"
            )
        return self

    @property
    def zone(self) -> ZoneInfo:
        return _ZoneInfo(self.timezone)  # cached by zoneinfo: the file is read once per process

    # -- days -------------------------------------------------------------------------------

    def is_working_day(self, day: date) -> bool:
        """A working weekday that is not a holiday."""
        return day.isoweekday() in self.working_days and day not in self.holidays

    def hours_per_day(self) -> Decimal:
        """The nominal working hours of a day (wall clock): 8 for 09:00-17:00."""
        return _hours(
            datetime.combine(date.min, self.day_end) - datetime.combine(date.min, self.day_start)
        )

    def _interval(self, day: date) -> tuple[datetime, datetime] | None:
        """The UTC instants [start, end) of `day`'s working hours; None if it has none."""
        if not self.is_working_day(day):
            return None
        start = _wall_to_utc(day, self.day_start, self.zone)
        end = _wall_to_utc(day, self.day_end, self.zone)
        return (start, end) if end > start else None

    def _next_interval(self, after: date) -> tuple[date, datetime, datetime]:
        """The first day after `after` with working hours, and its interval."""
        day = after
        for _ in range(_SEARCH_DAYS + len(self.holidays)):
            day += ONE_DAY
            interval = self._interval(day)
            if interval is not None:
                return day, *interval
        raise ValueError(f"calendar {self.name!r} has no working day after {after.isoformat()}")

    def _local_day(self, at: datetime) -> date:
        return at.astimezone(self.zone).date()

    # -- instants ---------------------------------------------------------------------------

    def is_working_time(self, at: datetime) -> bool:
        """True on [day_start, day_end) of a working day that is not a holiday."""
        at = _require_aware(at, "at")
        interval = self._interval(self._local_day(at))
        return interval is not None and interval[0] <= at < interval[1]

    def _locate(self, at: datetime) -> tuple[date, datetime, datetime, datetime]:
        """The first working moment at or after `at` (UTC): its day, the moment itself and
        that day's working interval."""
        day = self._local_day(at)
        interval = self._interval(day)
        if interval is not None and at < interval[1]:
            return day, max(at, interval[0]), *interval
        day, start, end = self._next_interval(day)
        return day, start, start, end

    def next_working_moment(self, at: datetime) -> datetime:
        """`at` itself (in UTC) if it is working time, else the next day_start."""
        return self._locate(_require_aware(at, "at"))[1]

    def add_business_hours(self, start: datetime, hours: Decimal | int | float) -> datetime:
        """The instant `hours` working hours after `next_working_moment(start)`, in UTC.

        The result may be exactly a day's day_end (the deadline is that evening, not the next
        morning). 0 hours gives next_working_moment(start); negative hours are refused.
        """
        remaining = _as_duration(hours)
        day, cursor, _, end = self._locate(_require_aware(start, "start"))
        while remaining > end - cursor:
            remaining -= end - cursor
            day, cursor, end = self._next_interval(day)
        return cursor + remaining

    def add_business_days(self, start: datetime, days: int) -> datetime:
        """`days` working days after `next_working_moment(start)`, at the same offset into the
        working day (Wed 14:00 + 5 is the next Wed 14:00; a holiday adds a day), in UTC.

        The offset is the time elapsed since that day's start, so it is the same wall time
        except across a day whose working hours contain a clock change; it never runs past
        the target day's end.
        """
        if isinstance(days, bool) or not isinstance(days, int):
            raise TypeError(f"business days must be an int, got {days!r}")
        if days < 0:
            raise ValueError(f"business days cannot be negative, got {days}")
        day, cursor, day_start, day_end = self._locate(_require_aware(start, "start"))
        offset = cursor - day_start
        for _ in range(days):
            day, day_start, day_end = self._next_interval(day)
        return min(day_start + offset, day_end)

    def business_hours_between(self, start: datetime, end: datetime) -> Decimal:
        """Working hours elapsed from `start` to `end` (0 when end <= start)."""
        start = _require_aware(start, "start")
        end = _require_aware(end, "end")
        if end <= start:
            return Decimal(0)
        total = timedelta(0)
        day, last = self._local_day(start), self._local_day(end)
        while day <= last:
            interval = self._interval(day)
            if interval is not None:
                overlap = min(end, interval[1]) - max(start, interval[0])
                if overlap > timedelta(0):
                    total += overlap
            day += ONE_DAY
        return _hours(total)


def expand_holidays(country: str, subdivision: str | None, years: Iterable[int]) -> dict[date, str]:
    """Public holidays of `country` (ISO 3166-1, e.g. 'US', 'GB') and optional `subdivision`
    ('ENG') in `years`, from the `holidays` package, observed days included (US Independence
    Day on a Saturday is also observed the Friday before). Unknown codes raise ValueError.

    Call it outside workflow code and give the result to `BusinessCalendar.holidays`: the
    package's rules change between versions, and inside the Temporal sandbox it cannot even be
    imported (its dateutil dependency calls time.localtime, which the sandbox forbids).
    """
    # Imported here: it takes 0.1 s to load and workflow code never needs it.
    import holidays as holiday_rules

    try:
        found = holiday_rules.country_holidays(country, subdiv=subdivision, years=list(years))
    except NotImplementedError as exc:
        if country not in holiday_rules.list_supported_countries(include_aliases=True):
            raise ValueError(f"unknown holiday country {country!r}") from exc
        raise ValueError(f"unknown subdivision {subdivision!r} of country {country!r}") from exc
    return {day: str(name) for day, name in sorted(found.items())}
