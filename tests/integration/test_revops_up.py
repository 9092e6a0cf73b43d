"""`revops up` as an operator runs it: it prints the URLs, serves, stops everything on
Ctrl-C leaving no process behind, and a restart finds the earlier workflows again."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psutil
import pytest

from starter.demo import BOOK
from starter.ports import free_ports
from starter.settings import PROJECT_ROOT

pytestmark = pytest.mark.integration


def environment(state_dir: Path) -> dict[str, str]:
    temporal, ui, pg, api = free_ports(4)
    env = {k: v for k, v in os.environ.items() if k not in {"TEMPORAL_ADDRESS", "DATABASE_URL"}}
    return {**env, "STATE_DIR": str(state_dir), "TEMPORAL_PORT": str(temporal), "TEMPORAL_UI_PORT": str(ui),
            "POSTGRES_PORT": str(pg), "API_PORT": str(api), "COLUMNS": "200"}  # fmt: skip


def start_up(env: dict[str, str]) -> tuple[subprocess.Popen[str], list[str]]:
    process = subprocess.Popen(
        [sys.executable, "-m", "starter.cli", "up"], env=env, cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    lines: list[str] = []
    deadline = time.monotonic() + 120
    assert process.stdout is not None
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line.rstrip())
        if line.startswith("Running."):
            return process, lines
    process.kill()
    raise AssertionError("revops up did not come up:\n" + "\n".join(lines))


def interrupt(process: subprocess.Popen[str]) -> None:
    process.send_signal(signal.SIGINT)
    process.wait(timeout=60)


def leftovers(state_dir: Path) -> list[str]:
    found = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if str(state_dir) in cmdline:
            found.append(f"{proc.info['pid']}: {cmdline[:120]}")
    return found


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    live = {**env, "TEMPORAL_ADDRESS": f"127.0.0.1:{env['TEMPORAL_PORT']}",
            "DATABASE_URL": f"postgresql://revops@127.0.0.1:{env['POSTGRES_PORT']}/revops"}  # fmt: skip
    return subprocess.run([sys.executable, "-m", "starter.cli", *args], env=live, cwd=PROJECT_ROOT,
                          capture_output=True, text=True, timeout=120)  # fmt: skip


def test_up_serves_stops_cleanly_and_a_restart_finds_earlier_workflows(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    env = environment(state_dir)
    deal = json.loads(BOOK.read_text())[0]
    deal["deal_id"] = f"up-{uuid.uuid4().hex[:8]}"
    deal_file = tmp_path / "deal.json"
    deal_file.write_text(json.dumps(deal))

    process, lines = start_up(env)
    try:
        printed = "\n".join(lines)
        assert f"Temporal Web UI  http://127.0.0.1:{env['TEMPORAL_UI_PORT']}" in printed
        assert (
            f"HTTP API         http://127.0.0.1:{env['API_PORT']}" in printed and "/docs" in printed
        )
        submitted = cli(env, "deal", "submit", str(deal_file))
        assert f"started workflow deal-{deal['deal_id']}" in submitted.stdout, (
            submitted.stdout + submitted.stderr
        )
        for _ in range(60):
            status = cli(env, "deal", "status", deal["deal_id"])
            if "completed" in status.stdout:
                break
            time.sleep(1)
        assert "completed" in status.stdout, status.stdout
    finally:
        interrupt(process)
    assert process.returncode == 0
    assert leftovers(state_dir) == []

    process, _ = start_up(env)
    try:
        status = cli(env, "deal", "status", deal["deal_id"])
        assert "completed" in status.stdout, status.stdout + status.stderr
        assert "invoice " in status.stdout
    finally:
        interrupt(process)
    assert leftovers(state_dir) == []
