"""The worker's sandbox (`worker.workflow_runner`), and the check it leaves to the source.

The runner keeps the SDK's restrictions on modules but does not check the builtins `open`,
`input` and `breakpoint` at run time (that check slows every `isinstance` in the process;
see the runner's docstring). This module makes the same check on every workflow module's
source instead.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import worker
from starter.settings import PROJECT_ROOT

IO_BUILTINS = frozenset({"open", "input", "breakpoint"})
WORKFLOW_MODULES = [
    *sorted((PROJECT_ROOT / "workflows").glob("*.py")),
    PROJECT_ROOT / "bench" / "baseline.py",  # the benchmark's workflows run in the same sandbox
]


def io_builtin_calls(source: str) -> list[str]:
    """'line N: open()' for each call of a builtin that does I/O or waits for a person,
    in the order of the source."""
    calls = [
        (node.lineno, node.func.id)
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in IO_BUILTINS
    ]
    return [f"line {line}: {name}()" for line, name in sorted(calls)]


@pytest.mark.parametrize("path", WORKFLOW_MODULES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_workflow_code_calls_no_io_builtin(path: Path) -> None:
    assert io_builtin_calls(path.read_text()) == []


def test_the_source_check_finds_each_io_builtin() -> None:
    source = (
        "def run(self):\n"
        "    with open('rules.yaml') as f:\n"
        "        text = f.read()\n"
        "    answer = input('approve? ')\n"
        "    breakpoint()\n"
        "    return len(text)\n"
    )
    assert io_builtin_calls(source) == ["line 2: open()", "line 4: input()", "line 5: breakpoint()"]


def test_the_sandbox_restricts_modules_but_not_the_builtins() -> None:
    restrictions = worker.workflow_runner().restrictions
    members = restrictions.invalid_module_members.children
    assert "__builtins__" not in members
    for module in ("datetime", "random", "os", "threading", "time"):
        assert module in members, module
    assert {"email_validator", "idna"} <= restrictions.passthrough_modules
