"""Load `rules/*.yaml` into a validated, versioned `RuleSet` (the edge where policy is parsed).

An invalid file is refused with a `RulesError` whose lines name the file, the line and the
field, so an operator can fix it without reading Python.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from models.routing import OperatingRules, OperatingRulesSource
from models.rules import RuleSet

# RuleSet field → the file that holds it.
RULE_FILES: dict[str, str] = {
    "qa": "qa.yaml",
    "credit": "credit_policy.yaml",
    "routes": "routes.yaml",
    "ownership": "ownership.yaml",
    "reason_codes": "reason_codes.yaml",
    "tax_rates": "tax_rates.yaml",
    "entities": "entities.yaml",
    "integrations": "integrations.yaml",
}
# OperatingRulesSource field -> the file that holds it (routes and reason codes are shared).
OPERATING_FILES: dict[str, str] = {
    "routes": "routes.yaml",
    "escalation": "escalation.yaml",
    "directory": "directory.yaml",
    "calendars": "calendars.yaml",
    "overrides": "overrides.yaml",
    "reason_codes": "reason_codes.yaml",
}
ALL_FILES: dict[str, str] = {**RULE_FILES, **OPERATING_FILES}
# RuleSet fields whose file may be left out: the field's defaults apply then.
OPTIONAL_FILES: dict[str, str] = {"close": "close.yaml", "billing": "billing.yaml"}


@dataclass(frozen=True)
class RuleBook:
    """Every rule file, validated: the policy deals run under and the operating layer's rules,
    under one version."""

    policy: RuleSet
    operating: OperatingRules
    texts: dict[str, str]

    @property
    def version(self) -> str:
        return self.policy.version


def holiday_years(today: date) -> range:
    """Years whose public holidays calendars hold: last year to three years ahead."""
    return range(today.year - 1, today.year + 4)


class RulesError(ValueError):
    """The rules directory is invalid; `problems` holds one readable line per fault."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("invalid rules:\n" + "\n".join(f"  {p}" for p in problems))
        self.problems = problems


class _UniqueKeyLoader(yaml.SafeLoader):
    """Safe YAML that refuses a key given twice in one mapping (which value applies would be
    a guess: plain YAML keeps the last one silently)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        first_line: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in first_line:
                raise yaml.constructor.ConstructorError(
                    None, None,
                    f"key {key!r} appears twice (first on line {first_line[key]})",
                    key_node.start_mark,
                )  # fmt: skip
            first_line[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


def rules_version(files: dict[str, str]) -> str:
    """Content hash of the rule files (name and text), 12 hex digits."""
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(name.encode() + b"\0" + files[name].encode() + b"\0")
    return digest.hexdigest()[:12]


def _line_of(node: yaml.Node | None, path: Sequence[int | str]) -> int | None:
    """1-based line of the YAML node at `path`, or of the deepest node found on the way."""
    if node is None:
        return None
    for key in path:
        child: yaml.Node | None = None
        if isinstance(node, yaml.MappingNode):
            child = next((v for k, v in node.value if k.value == str(key)), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
            child = node.value[key]
        if child is None:
            break
        node = child
    return node.start_mark.line + 1


def _read(directory: Path) -> tuple[dict[str, str], dict[str, Any], list[str]]:
    texts: dict[str, str] = {}
    data: dict[str, Any] = {}
    problems: list[str] = []
    for field, name in {**ALL_FILES, **OPTIONAL_FILES}.items():
        path = directory / name
        if not path.is_file():
            if field not in OPTIONAL_FILES:
                problems.append(f"{path}: file is missing")
            continue
        texts[name] = path.read_text(encoding="utf-8")
        try:
            data[field] = yaml.load(texts[name], Loader=_UniqueKeyLoader)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" line {mark.line + 1}" if mark else ""
            problems.append(f"{path}{where}: not valid YAML ({getattr(exc, 'problem', exc)})")
    return texts, data, problems


def load_rule_book(directory: Path, today: date | None = None) -> RuleBook:
    """Validate every rule file in `directory`; holidays are expanded around `today`.

    The version hashes the files, the `holidays` package version and the years expanded, so
    a calendar that changes because the package did also changes the version.
    """
    texts, data, problems = _read(directory)
    if problems:
        raise RulesError(problems)
    years = holiday_years(today or date.today())
    marker = (
        f"holidays {importlib.metadata.version('holidays')} years {years.start}-{years.stop - 1}"
    )
    version = rules_version({**texts, "(holidays)": marker})
    try:
        optional = {f: data[f] for f in OPTIONAL_FILES if f in data}
        policy = RuleSet.model_validate(
            {f: data[f] for f in RULE_FILES} | optional | {"version": version}
        )
    except ValidationError as exc:
        raise RulesError(
            _describe(directory, texts, exc, {**RULE_FILES, **OPTIONAL_FILES})
        ) from None
    try:
        source = OperatingRulesSource.model_validate({f: data[f] for f in OPERATING_FILES})
    except ValidationError as exc:
        raise RulesError(_describe(directory, texts, exc, OPERATING_FILES)) from None
    try:
        operating = source.build(version, years)
    except (ValidationError, ValueError) as exc:
        raise RulesError(_cross_file_problems(directory, exc)) from None
    return RuleBook(policy=policy, operating=operating, texts=texts)


def load_rules(directory: Path) -> RuleSet:
    """The policy part of the rule book (what deal workflows run under)."""
    return load_rule_book(directory).policy


def _cross_file_problems(directory: Path, exc: Exception) -> list[str]:
    """Problems found across files (a route naming a missing chain, a role nobody holds)."""
    messages = (
        [str(e["msg"]).removeprefix("Value error, ") for e in exc.errors()]
        if isinstance(exc, ValidationError)
        else [str(exc)]
    )
    problems = []
    for message in messages:
        for part in message.split("; "):
            field = part.split(".", 1)[0].split(":", 1)[0]
            name = OPERATING_FILES.get(field, "?")
            problems.append(f"{directory / name}: {part}")
    return problems


def _describe(
    directory: Path, texts: dict[str, str], exc: ValidationError, files: dict[str, str]
) -> list[str]:
    problems = []
    for error in exc.errors():
        loc = list(error["loc"])
        field = str(loc[0]) if loc else "entities"
        name = files.get(field, "?")
        inner = loc[1:]
        line = _line_of(yaml.compose(texts[name]), inner) if name in texts else None
        where = f" line {line}" if line else ""
        dotted = ".".join(str(p) for p in inner) or "(file)"
        problems.append(f"{directory / name}{where}, field {dotted}: {error['msg']}")
    return problems
