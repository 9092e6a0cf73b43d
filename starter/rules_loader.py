"""Load `rules/*.yaml` into a validated, versioned `RuleSet` (the edge where policy is parsed).

An invalid file is refused with a `RulesError` whose lines name the file, the line and the
field, so an operator can fix it without reading Python.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

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
}


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
    for field, name in RULE_FILES.items():
        path = directory / name
        if not path.is_file():
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


def load_rules(directory: Path) -> RuleSet:
    """Validate every rule file in `directory` and return the versioned rule set."""
    texts, data, problems = _read(directory)
    if problems:
        raise RulesError(problems)
    try:
        return RuleSet.model_validate({**data, "version": rules_version(texts)})
    except ValidationError as exc:
        raise RulesError(_describe(directory, texts, exc)) from None


def _describe(directory: Path, texts: dict[str, str], exc: ValidationError) -> list[str]:
    problems = []
    for error in exc.errors():
        loc = list(error["loc"])
        field = str(loc[0]) if loc else "entities"
        name = RULE_FILES.get(field, "?")
        inner = loc[1:]
        line = _line_of(yaml.compose(texts[name]), inner) if name in texts else None
        where = f" line {line}" if line else ""
        dotted = ".".join(str(p) for p in inner) or "(file)"
        problems.append(f"{directory / name}{where}, field {dotted}: {error['msg']}")
    return problems
