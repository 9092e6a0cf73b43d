"""The operating layer's rules (SPEC §3): who owns a failed check, how long they have, who
takes over when the SLA passes, who the people in each role are, and which calendar their
business hours follow.

`OperatingRules` is validated at load like the rest of `rules/` and shares its version. It is
stored by version in the database; a case workflow asks for its own `CaseRouting` (the levels
of its chain with their people and calendars) when it opens, so deal workflows never carry
the directory or the calendars.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, time
from decimal import Decimal
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from models.business_time import BusinessCalendar, expand_holidays
from models.rules import CheckRoute, Role
from models.validation import EmailAddress

Hours = Annotated[Decimal, Field(gt=0, le=10_000)]


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class EscalationLevelRule(_Strict):
    role: Role
    sla_business_hours: Hours


class EscalationChain(_Strict):
    """The levels above a check's owner, in order, and who is told at each escalation."""

    levels: list[EscalationLevelRule] = Field(min_length=1)
    stakeholders: list[Role] = Field(default_factory=list)


class Person(_Strict):
    name: str = Field(min_length=1)
    email: EmailAddress
    roles: list[Role] = Field(min_length=1)


class CalendarSpec(_Strict):
    """A working calendar as written in `calendars.yaml` (holidays not yet expanded)."""

    timezone: str
    country: str = Field(pattern=r"^[A-Z]{2}$")
    subdivision: str | None = None
    working_days: list[Annotated[int, Field(ge=1, le=7)]] = Field(min_length=1)
    day_start: time
    day_end: time
    company_days_off: dict[date, str] = Field(default_factory=dict)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown IANA time zone {value!r}") from None
        return value

    @model_validator(mode="after")
    def _known_country(self) -> CalendarSpec:
        expand_holidays(self.country, self.subdivision, [2026])  # raises naming what is unknown
        return self

    def expand(self, name: str, years: Iterable[int]) -> BusinessCalendar:
        public = expand_holidays(self.country, self.subdivision, years)
        return BusinessCalendar(
            name=name, timezone=self.timezone, working_days=self.working_days,
            day_start=self.day_start, day_end=self.day_end,
            holidays={**public, **self.company_days_off},
        )  # fmt: skip


class CalendarRules(_Strict):
    calendars: dict[str, CalendarSpec] = Field(min_length=1)
    default: str
    roles: dict[Role, str] = Field(default_factory=dict, description="role -> calendar name")

    @model_validator(mode="after")
    def _names_exist(self) -> CalendarRules:
        for where, name in [("default", self.default), *[(f"roles.{r}", n) for r, n in self.roles.items()]]:  # fmt: skip
            if name not in self.calendars:
                raise ValueError(
                    f"{where}: no calendar named {name!r} (have {', '.join(self.calendars)})"
                )
        return self


class OverridePolicy(_Strict):
    signoff_role: Role = Field(description="Who gives the retrospective QA sign-off")
    signoff_business_days: int = Field(ge=1, le=30)
    max_expiry_days: int = Field(ge=1, le=3660)


class Contact(_Strict):
    """A person to notify or who may act, as a case sees them."""

    person: str
    name: str
    email: EmailAddress


class CaseLevel(_Strict):
    """One level of a case's chain: level 0 is the check's owner."""

    level: int
    role: Role
    sla_business_hours: Decimal
    calendar: BusinessCalendar
    people: list[Contact]


class CaseRouting(_Strict):
    """Everything a case workflow needs from the rules, resolved for its check."""

    check_id: str
    rules_version: str
    levels: list[CaseLevel] = Field(min_length=1)
    stakeholders: list[Contact]
    signoff_role: Role
    signoff_business_days: int
    signoff_calendar: BusinessCalendar
    signoff_people: list[Contact]
    max_expiry_days: int
    reason_codes: dict[str, str]
    roles_of: dict[str, list[Role]] = Field(description="person -> roles (the directory)")

    def holds(self, person: str, role: Role) -> bool:
        return role in self.roles_of.get(person, [])


class OperatingRules(_Strict):
    version: str
    routes: dict[str, CheckRoute]
    escalation: dict[str, EscalationChain]
    directory: dict[str, Person]
    calendars: dict[str, BusinessCalendar]
    role_calendars: dict[Role, str]
    default_calendar: str
    overrides: OverridePolicy
    reason_codes: dict[str, str]

    @model_validator(mode="after")
    def _nothing_owned_by_nobody(self) -> OperatingRules:
        staffed = {role for person in self.directory.values() for role in person.roles}
        problems: list[str] = []
        for check_id, route in self.routes.items():
            if route.escalation is not None and route.escalation not in self.escalation:
                problems.append(
                    f"routes.{check_id}: no escalation chain named {route.escalation!r}"
                )
            elif route.escalation is not None:
                first = self.escalation[route.escalation].levels[0].role
                if first is route.owner_role:
                    problems.append(
                        f"routes.{check_id}: chain {route.escalation!r} escalates to "
                        f"{first.value}, which already owns the check"
                    )
            if route.owner_role not in staffed:
                problems.append(
                    f"routes.{check_id}: nobody in the directory holds {route.owner_role}"
                )
        for name, chain in self.escalation.items():
            for n, level in enumerate(chain.levels):
                if level.role not in staffed:
                    problems.append(
                        f"escalation.{name}.levels.{n}: nobody in the directory holds {level.role}"
                    )
            for role in chain.stakeholders:
                if role not in staffed:
                    problems.append(
                        f"escalation.{name}.stakeholders: nobody in the directory holds {role}"
                    )
        if self.overrides.signoff_role not in staffed:
            problems.append(
                f"overrides.signoff_role: nobody in the directory holds {self.overrides.signoff_role}"
            )
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def calendar_for(self, role: Role) -> BusinessCalendar:
        return self.calendars[self.role_calendars.get(role, self.default_calendar)]

    def contacts(self, role: Role) -> list[Contact]:
        return [
            Contact(person=pid, name=p.name, email=p.email)
            for pid, p in sorted(self.directory.items()) if role in p.roles
        ]  # fmt: skip

    def levels_for(self, check_id: str) -> list[tuple[Role, Decimal]]:
        """(role, SLA hours) per level, owner first; an unrouted check goes to sales_ops."""
        route = self.routes.get(check_id, CheckRoute(owner_role=Role.SALES_OPS))
        levels = [(route.owner_role, route.sla_business_hours)]
        if route.escalation is not None:
            levels += [
                (lv.role, lv.sla_business_hours) for lv in self.escalation[route.escalation].levels
            ]
        return levels

    def routing_for(self, check_id: str) -> CaseRouting:
        route = self.routes.get(check_id, CheckRoute(owner_role=Role.SALES_OPS))
        chain = self.escalation.get(route.escalation) if route.escalation else None
        levels = [
            CaseLevel(level=n, role=role, sla_business_hours=hours,
                      calendar=self.calendar_for(role), people=self.contacts(role))
            for n, (role, hours) in enumerate(self.levels_for(check_id))
        ]  # fmt: skip
        stakeholder_roles = chain.stakeholders if chain else []
        signoff = self.overrides.signoff_role
        return CaseRouting(
            check_id=check_id, rules_version=self.version, levels=levels,
            stakeholders=[c for role in stakeholder_roles for c in self.contacts(role)],
            signoff_role=signoff, signoff_business_days=self.overrides.signoff_business_days,
            signoff_calendar=self.calendar_for(signoff), signoff_people=self.contacts(signoff),
            max_expiry_days=self.overrides.max_expiry_days, reason_codes=self.reason_codes,
            roles_of={pid: list(p.roles) for pid, p in self.directory.items()},
        )  # fmt: skip


class OperatingRulesSource(_Strict):
    """The operating layer's rule files as written, before calendars are expanded."""

    routes: dict[str, CheckRoute]
    escalation: dict[str, EscalationChain]
    directory: dict[str, Person]
    calendars: CalendarRules
    overrides: OverridePolicy
    reason_codes: dict[str, str]

    def build(self, version: str, years: Iterable[int]) -> OperatingRules:
        """The validated rules, each calendar's public holidays expanded for `years`."""
        years = list(years)
        return OperatingRules(
            version=version, routes=self.routes, escalation=self.escalation,
            directory=self.directory,
            calendars={name: spec.expand(name, years) for name, spec in self.calendars.calendars.items()},
            role_calendars=self.calendars.roles, default_calendar=self.calendars.default,
            overrides=self.overrides, reason_codes=self.reason_codes,
        )  # fmt: skip
