"""CSV intake: closed-won deals as a spreadsheet, for `revops deal submit FILE.csv`.

One row per contract line. The deal-level columns are repeated on every row of the deal,
and rows are grouped into deals by `deal_id` (first appearance fixes the order; the rows of
a deal need not be adjacent). The columns are the `DealSubmission` fields, derived from the
model so that a new field is a new column: deal-level columns first, in model order, then
the `DealLine` fields of the row's line. A nested model's fields are named after the field
that holds the model, unless they already carry that prefix: `customer.name` is
`customer_name`, `customer.customer_id` stays `customer_id`, `customer.billing_contact.email`
is `billing_contact_email`, `customer.billing_address.city` is `billing_address_city`. The
milestone schedule sits in one deal-level `milestones` column:
`milestone_id|line_id|description|due_date|amount` per milestone, milestones separated by
`;`, with `\\|`, `\\;` and `\\\\` for a literal bar, semicolon or backslash. A list of line
ids (`discount_applies_to`) is one cell with the ids separated by `;` (`B;C`).

Values: numbers are plain decimals with a point and no thousands separators (`1200.50`),
dates are ISO (`2026-10-01`), booleans are `true`/`false` (also `yes`/`no`, `1`/`0`), an
empty cell of an optional column means "not given" (the model's default applies). Rows are
numbered as a spreadsheet shows them: the header is row 1.

`parse_deals_csv` checks types and formats at the cell, so every error names its row and
column ("row 7, column quantity: 'ten' is not a number"), and returns per deal either a dict
that `DealSubmission.model_validate` accepts or the errors. Conditional rules (a PO number
when required, totals that add up) are QA gates, not parse errors. `deals_to_csv` is the
inverse.
"""

from __future__ import annotations

import csv
import difflib
import io
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from enum import Enum
from types import UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError

from models.deal import DealLine, DealSubmission, Milestone

Kind = Literal["text", "decimal", "date", "bool", "milestones", "ids"]
Level = Literal["deal", "line"]

# The list field whose elements are rows (one per contract line), and the list field whose
# elements are packed into one cell.
ROW_FIELD = "lines"
PACKED_FIELD = "milestones"


@dataclass(frozen=True)
class Column:
    """One CSV column and where its value goes in the `DealSubmission` dict."""

    name: str
    path: tuple[str, ...]  # keys into the deal dict (for a line column, into one line)
    kind: Kind = "text"
    required: bool = False
    level: Level = "deal"


def _columns() -> tuple[Column, ...]:
    """The column spec, derived from the models so that a new field is a new column.

    Deal-level columns come first in model order, nested models flattened in place and
    named `<nested field>_<field>` (`billing_contact` + `email`), then the line columns.
    """
    deal = tuple(_flatten(DealSubmission, (), "", required=True))
    line = tuple(_flatten(DealLine, (), "", required=True, level="line"))
    return deal + line


def _flatten(
    model: type[BaseModel],
    path: tuple[str, ...],
    prefix: str,
    *,
    required: bool,
    level: Level = "deal",
) -> Iterator[Column]:
    for name, field in model.model_fields.items():
        if model is DealSubmission and name == ROW_FIELD:
            continue
        annotation = _unwrap_optional(field.annotation)
        here = (*path, name)
        needed = required and field.is_required()
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            yield from _flatten(annotation, here, name, required=needed, level=level)
            continue
        column = name if not prefix or name.startswith(f"{prefix}_") else f"{prefix}_{name}"
        yield Column(column, here, _kind(annotation, name), needed, level)


def _unwrap_optional(annotation: Any) -> Any:
    """`X | None` and `Annotated[X, ...]` → X (a union of several types stays as it is)."""
    if get_origin(annotation) is Annotated:
        return _unwrap_optional(get_args(annotation)[0])
    if get_origin(annotation) in (Union, UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        return _unwrap_optional(args[0]) if len(args) == 1 else annotation
    return annotation


def _kind(annotation: Any, name: str) -> Kind:
    if name == PACKED_FIELD:
        return "milestones"
    if get_origin(annotation) is list:
        return "ids"
    if annotation is bool:
        return "bool"
    if isinstance(annotation, type) and issubclass(annotation, Decimal):
        return "decimal"
    if isinstance(annotation, type) and issubclass(annotation, date):
        return "date"
    return "text"


COLUMNS: tuple[Column, ...] = _columns()
COLUMN_NAMES: tuple[str, ...] = tuple(c.name for c in COLUMNS)
_BY_NAME: dict[str, Column] = {c.name: c for c in COLUMNS}
_BY_PATH: dict[tuple[str, ...], Column] = {c.path: c for c in COLUMNS}
MILESTONE_FIELDS: tuple[str, ...] = tuple(Milestone.model_fields)
_MILESTONE_KINDS: dict[str, Kind] = {
    name: _kind(_unwrap_optional(field.annotation), name)
    for name, field in Milestone.model_fields.items()
}

_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)$")
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_TRUE = frozenset({"true", "yes", "y", "1"})
_FALSE = frozenset({"false", "no", "n", "0"})


@dataclass(frozen=True)
class CsvError:
    """A problem in the file, located by spreadsheet row (header = 1) and column name."""

    row: int | None
    column: str | None
    message: str

    def __str__(self) -> str:
        where = [f"row {self.row}"] if self.row is not None else []
        where += [f"column {self.column}"] if self.column is not None else []
        return f"{', '.join(where)}: {self.message}" if where else self.message


@dataclass(frozen=True)
class CsvDeal:
    """One deal of the file: its rows and either a dict for `DealSubmission` or errors.

    `deal_id` is None for a row that names no deal. `data` is set only when `errors` is
    empty, and then `DealSubmission.model_validate(data)` succeeds.
    """

    deal_id: str | None
    rows: tuple[int, ...]
    data: dict[str, Any] | None
    errors: tuple[CsvError, ...]

    @property
    def ok(self) -> bool:
        return not self.errors


class CsvIntakeError(ValueError):
    """The file cannot be read as deals at all (no header, unknown or missing columns)."""

    def __init__(self, errors: Sequence[CsvError]) -> None:
        self.errors = tuple(errors)
        super().__init__("\n".join(str(e) for e in self.errors))


class _CellError(ValueError):
    """A cell value that does not convert; the message is the rule it breaks."""


# ---------------------------------------------------------------------------------------------
# Parsing


def parse_deals_csv(text: str) -> list[CsvDeal]:
    """Parse a deals CSV into one `CsvDeal` per deal id, in order of first appearance.

    Raises `CsvIntakeError` when the header makes the file unreadable; every other problem
    is reported on the deal it belongs to, so good deals in the same file still go through.
    """
    records = _read_records(text.removeprefix("\ufeff"))
    if not records:
        raise CsvIntakeError([CsvError(1, None, "the file is empty; expected a header row")])
    header = [name.strip() for name in records[0]]
    _check_header(header)
    groups: dict[str | None, list[tuple[int, list[str]]]] = {}
    deal_index = header.index("deal_id")
    for number, cells in enumerate(records[1:], start=2):
        if not any(cell.strip() for cell in cells):
            continue  # blank rows (a spreadsheet's trailing lines) carry nothing
        key = cells[deal_index].strip() if deal_index < len(cells) else ""
        groups.setdefault(key or None, []).append((number, cells))
    deals: list[CsvDeal] = []
    for deal_id, rows in groups.items():
        if deal_id is None:
            deals.extend(_orphan(number) for number, _ in rows)
        else:
            deals.append(_parse_deal(deal_id, header, rows))
    return deals


def _read_records(text: str) -> list[list[str]]:
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        return list(reader)
    except csv.Error as exc:
        raise CsvIntakeError([CsvError(reader.line_num, None, f"not valid CSV: {exc}")]) from exc


def _check_header(header: list[str]) -> None:
    errors: list[CsvError] = []
    seen: dict[str, int] = {}
    for position, name in enumerate(header, start=1):
        if not name:
            errors.append(CsvError(1, None, f"header cell {position} is empty"))
        elif name in seen:
            errors.append(
                CsvError(1, name, f"column appears twice (positions {seen[name]} and {position})")
            )
        elif name not in _BY_NAME:
            hint = difflib.get_close_matches(name, COLUMN_NAMES, n=1)
            suffix = f"; did you mean {hint[0]}?" if hint else ""
            errors.append(CsvError(1, name, f"unknown column{suffix}"))
        seen.setdefault(name, position)
    errors += [
        CsvError(1, c.name, "required column is missing from the header")
        for c in COLUMNS
        if c.required and c.name not in seen
    ]
    if errors:
        raise CsvIntakeError(errors)


def _orphan(number: int) -> CsvDeal:
    error = CsvError(number, "deal_id", "required value is empty; every row must name its deal")
    return CsvDeal(deal_id=None, rows=(number,), data=None, errors=(error,))


def _parse_deal(deal_id: str, header: list[str], rows: list[tuple[int, list[str]]]) -> CsvDeal:
    numbers = tuple(number for number, _ in rows)
    table, errors = _as_cells(header, rows)
    if not table:
        return CsvDeal(deal_id, numbers, None, tuple(errors))
    errors += _disagreements(deal_id, table)
    first_row, first_cells = table[0]
    data: dict[str, Any] = {}
    for column in (c for c in COLUMNS if c.level == "deal"):
        _convert_into(data, column, first_cells.get(column.name, ""), first_row, errors)
    data["lines"] = []
    for number, cells in table:
        line: dict[str, Any] = {}
        for column in (c for c in COLUMNS if c.level == "line"):
            _convert_into(line, column, cells.get(column.name, ""), number, errors)
        data["lines"].append(line)
    errors += _duplicate_lines(deal_id, table)
    errors += _model_errors(data, first_row, [number for number, _ in table], errors)
    if errors:
        return CsvDeal(deal_id, numbers, None, tuple(errors))
    return CsvDeal(deal_id, numbers, data, ())


_Table = list[tuple[int, dict[str, str]]]


def _as_cells(
    header: list[str], rows: list[tuple[int, list[str]]]
) -> tuple[_Table, list[CsvError]]:
    """Rows as column → stripped cell; a row whose width differs from the header is an error."""
    table: _Table = []
    errors: list[CsvError] = []
    for number, cells in rows:
        if len(cells) == len(header):
            table.append((number, {h: c.strip() for h, c in zip(header, cells, strict=True)}))
        else:
            message = (
                f"has {len(cells)} cells but the header has {len(header)} columns "
                "(a value with an unquoted comma?)"
            )
            errors.append(CsvError(number, None, message))
    return table, errors


def _duplicate_lines(deal_id: str, table: _Table) -> list[CsvError]:
    errors: list[CsvError] = []
    seen: dict[str, int] = {}
    for number, cells in table:
        line_id = cells.get("line_id", "")
        if line_id and line_id in seen:
            message = f"{line_id!r} is already used on row {seen[line_id]} of deal {deal_id}"
            errors.append(CsvError(number, "line_id", message))
        seen.setdefault(line_id, number)
    return errors


def _disagreements(deal_id: str, rows: _Table) -> list[CsvError]:
    """Deal-level cells that differ from the deal's first row, one error per column."""
    errors: list[CsvError] = []
    first_row, first = rows[0]
    for column in (c for c in COLUMNS if c.level == "deal"):
        expected = first.get(column.name, "")
        for number, cells in rows[1:]:
            value = cells.get(column.name, "")
            if value != expected:
                message = (
                    f"{value!r} on row {number} differs from {expected!r} on row {first_row}; "
                    f"every row of deal {deal_id} must repeat the same deal-level values"
                )
                errors.append(CsvError(number, column.name, message))
                break
    return errors


def _convert_into(
    target: dict[str, Any], column: Column, raw: str, row: int, errors: list[CsvError]
) -> None:
    """Convert one cell and store it at the column's path; record an error instead."""
    if not raw:
        if column.required:
            errors.append(CsvError(row, column.name, "required value is empty"))
        elif column.kind == "milestones":
            _put(target, column.path, [])
        return
    try:
        _put(target, column.path, _convert(column.kind, raw))
    except _CellError as exc:
        errors.append(CsvError(row, column.name, str(exc)))


def _convert(kind: Kind, raw: str) -> Any:
    if kind == "decimal":
        return _number(raw)
    if kind == "date":
        return _date(raw)
    if kind == "bool":
        if raw.lower() in _TRUE:
            return True
        if raw.lower() in _FALSE:
            return False
        raise _CellError(f"{raw!r} is not true or false")
    if kind == "milestones":
        return [_milestone(i, fields) for i, fields in enumerate(_split_milestones(raw), 1)]
    if kind == "ids":
        return [part.strip() for part in raw.split(";")]
    return raw


def _number(raw: str) -> Decimal:
    if _NUMBER.match(raw):
        return Decimal(raw)
    hint = " (write 1200.50: a point for decimals, no thousands separators)" if "," in raw else ""
    raise _CellError(f"{raw!r} is not a number{hint}")


def _date(raw: str) -> date:
    problem = _CellError(f"{raw!r} is not a date (expected YYYY-MM-DD)")
    if not _ISO_DATE.match(raw):
        raise problem
    try:
        return date.fromisoformat(raw)  # 2026-02-30 matches the pattern but is no date
    except ValueError:
        raise problem from None


def _split_milestones(raw: str) -> Iterator[list[str]]:
    """Split `a|b|c;d|e|f` into field lists, honouring backslash escapes."""
    fields: list[str] = []
    current: list[str] = []
    chars = iter(raw)
    for char in chars:
        if char == "\\":
            current.append(next(chars, "\\"))
        elif char == "|":
            fields.append("".join(current).strip())
            current = []
        elif char == ";":
            fields.append("".join(current).strip())
            current = []
            if any(fields):
                yield fields
            fields = []
        else:
            current.append(char)
    fields.append("".join(current).strip())
    if any(fields):
        yield fields


def _milestone(index: int, fields: list[str]) -> dict[str, Any]:
    if len(fields) != len(MILESTONE_FIELDS):
        raise _CellError(
            f"milestone {index} has {len(fields)} fields, expected {len(MILESTONE_FIELDS)} "
            f"({'|'.join(MILESTONE_FIELDS)})"
        )
    milestone: dict[str, Any] = {}
    for name, raw in zip(MILESTONE_FIELDS, fields, strict=True):
        kind = _MILESTONE_KINDS[name]
        try:
            milestone[name] = _convert(kind, raw) if raw and kind != "text" else raw
        except _CellError as exc:
            raise _CellError(f"milestone {index} ({fields[0]}), {name}: {exc}") from exc
    return milestone


def _put(target: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    for key in path[:-1]:
        target = target.setdefault(key, {})
    target[path[-1]] = value


def _model_errors(
    data: dict[str, Any], first_row: int, line_rows: list[int], known: list[CsvError]
) -> list[CsvError]:
    """Validate against `DealSubmission`; map its errors to rows and columns.

    Errors the CSV checks already reported are dropped: the model only repeats them ("field
    required" for a cell that was empty or did not convert, also for a whole nested model
    when none of its cells made it).
    """
    try:
        DealSubmission.model_validate(data)
    except ValidationError as exc:
        taken = {(e.row, e.column) for e in known}
        paths = {_BY_NAME[e.column].path for e in known if e.column in _BY_NAME}
        out = []
        for err in exc.errors():
            loc = tuple(str(part) for part in err["loc"])
            if err["type"] == "missing" and any(p[: len(loc)] == loc for p in paths):
                continue
            located = _locate(err, first_row, line_rows)
            if (located.row, located.column) not in taken:
                out.append(located)
        return out
    return []


def _locate(err: Mapping[str, Any], first_row: int, line_rows: list[int]) -> CsvError:
    loc = tuple(err["loc"])
    value = err.get("input")
    shown = f"{value!r}: " if isinstance(value, str | Decimal | date | bool) else ""
    message = f"{shown}{err['msg']}"
    if loc[:1] == ("lines",) and len(loc) >= 3 and isinstance(loc[1], int):
        return CsvError(line_rows[loc[1]], str(loc[2]), message)
    if loc[:1] == ("lines",):
        return CsvError(first_row, "line_id", message)
    if loc[:1] == ("milestones",) and len(loc) >= 2 and isinstance(loc[1], int):
        where = f"milestone {loc[1] + 1}" + (f", {loc[2]}" if len(loc) > 2 else "")
        return CsvError(first_row, "milestones", f"{where}: {message}")
    column = _BY_PATH.get(tuple(str(part) for part in loc))
    return CsvError(first_row, column.name if column else ".".join(map(str, loc)), message)


# ---------------------------------------------------------------------------------------------
# Writing


def deals_to_csv(deals: list[dict[str, Any]]) -> str:
    """Write deals (dicts `DealSubmission` accepts) as CSV, one row per contract line.

    Each deal is validated first, so the output is canonical and parses back to equal deals.
    """
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMN_NAMES)
    for raw in deals:
        deal = DealSubmission.model_validate(raw).model_dump()
        deal_cells = [_cell(c, _get(deal, c.path)) for c in COLUMNS if c.level == "deal"]
        for line in deal["lines"]:
            line_cells = [_cell(c, _get(line, c.path)) for c in COLUMNS if c.level == "line"]
            writer.writerow(deal_cells + line_cells)
    return out.getvalue()


def _get(source: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = source
    for key in path:
        value = value[key]
    return value


def _cell(column: Column, value: Any) -> str:
    if column.kind == "milestones":
        return ";".join(
            "|".join(_escape(_text(milestone[f])) for f in MILESTONE_FIELDS) for milestone in value
        )
    if column.kind == "ids" and value is not None:
        return ";".join(value)
    return _text(value)


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Enum):
        return str(value.value)
    return str(value)


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace(";", "\\;")
