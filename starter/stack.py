"""The embedded stack: a real PostgreSQL and the real Temporal dev server, from PyPI wheels.

    with EmbeddedStack(get_settings()) as stack:
        print(stack.temporal_address, stack.temporal_ui_url, stack.database_url)

Pieces already running for the same state dir are reused (and left running by `stop()`);
pieces configured for production (`TEMPORAL_ADDRESS`, `DATABASE_URL`) are never started.
`stop_stack(settings)` stops every embedded piece, whoever started it.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from types import TracebackType
from typing import Any

from starter.embedded_postgres import EmbeddedPostgres, PostgresInfo
from starter.embedded_temporal import EmbeddedTemporal, TemporalInfo, port_open
from starter.settings import Settings

__all__ = [
    "EmbeddedStack",
    "PostgresInfo",
    "StackInfo",
    "TemporalInfo",
    "is_running",
    "running_stack",
    "stop_stack",
]


@dataclass(frozen=True)
class StackInfo:
    """Where everything is. `temporal` / `postgres` are None for production (external) pieces."""

    temporal_address: str
    temporal_namespace: str
    database_url: str
    temporal: TemporalInfo | None
    postgres: PostgresInfo | None

    @classmethod
    def of(
        cls, settings: Settings, temporal: TemporalInfo | None, postgres: PostgresInfo | None
    ) -> StackInfo:
        return cls(
            settings.effective_temporal_address,
            settings.temporal_namespace,
            settings.effective_database_url,
            temporal,
            postgres,
        )

    @property
    def temporal_ui_url(self) -> str | None:
        return self.temporal.ui_url if self.temporal else None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(json.dumps(asdict(self), default=str))  # Path -> str
        return data


def _pieces(settings: Settings) -> tuple[EmbeddedPostgres | None, EmbeddedTemporal | None]:
    """The embedded pieces the settings call for (None where production serves instead)."""
    postgres = temporal = None
    if settings.embedded_database:
        postgres = EmbeddedPostgres(settings.state_dir, settings.postgres_port)
    if settings.embedded_temporal:
        temporal = EmbeddedTemporal(
            settings.state_dir,
            settings.temporal_port,
            settings.temporal_ui_port,
            settings.temporal_namespace,
        )
    return postgres, temporal


def _snapshot(settings: Settings) -> StackInfo:
    postgres, temporal = _pieces(settings)
    return StackInfo.of(
        settings, temporal.info() if temporal else None, postgres.info() if postgres else None
    )


def _record(settings: Settings) -> None:
    """Write what runs now to `<state_dir>/stack.json` (pids, addresses, logs); none: remove it."""
    path = settings.state_dir / "stack.json"
    info = _snapshot(settings)
    if info.temporal is None and info.postgres is None:
        path.unlink(missing_ok=True)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {"recorded_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **info.to_json()}
    path.write_text(json.dumps(data, indent=2) + "\n")


def running_stack(settings: Settings) -> StackInfo | None:
    """The stack as it runs now, or None unless every embedded piece is up and listening."""
    info = _snapshot(settings)
    if settings.embedded_database and (info.postgres is None or not port_open(info.postgres.port)):
        return None
    if settings.embedded_temporal and (
        info.temporal is None or not port_open(settings.temporal_port)
    ):
        return None
    return info


def is_running(settings: Settings) -> bool:
    """True when every embedded piece the settings call for is up (trivially so in production)."""
    return running_stack(settings) is not None


def stop_stack(settings: Settings, timeout: float = 20.0) -> None:
    """Stop every embedded piece running for this state dir, whoever started it."""
    postgres, temporal = _pieces(settings)
    if temporal:
        temporal.stop(timeout)
    if postgres:
        postgres.stop()
    _record(settings)


class EmbeddedStack:
    """Starts what is missing (PostgreSQL, then Temporal); `stop()` stops what it started."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.postgres, self.temporal = _pieces(settings)
        self.started: list[str] = []  # the pieces this object started: "postgres", "temporal"
        self._info: StackInfo | None = None

    @property
    def info(self) -> StackInfo:
        if self._info is None:
            raise RuntimeError("the stack is not started: call start() first")
        return self._info

    @property
    def temporal_address(self) -> str:
        return self.info.temporal_address

    @property
    def temporal_ui_url(self) -> str | None:
        return self.info.temporal_ui_url

    @property
    def database_url(self) -> str:
        return self.info.database_url

    def start(self, timeout: float = 60.0) -> StackInfo:
        """Start the missing pieces, reuse running ones; on failure stop what was started."""
        pg_info = t_info = None
        try:
            if self.postgres:
                if self.postgres.running_pid() is None:
                    self.started.append("postgres")
                pg_info = self.postgres.start(timeout)
            if self.temporal:
                if self.temporal.running_process() is None:
                    self.started.append("temporal")
                t_info = self.temporal.start(timeout)
        except BaseException:
            self.stop()
            raise
        self._info = StackInfo.of(self.settings, t_info, pg_info)
        _record(self.settings)
        return self._info

    def stop(self, timeout: float = 20.0) -> None:
        """Stop the pieces this object started (Temporal first); reused pieces stay up."""
        if self.temporal and "temporal" in self.started:
            self.temporal.stop(timeout)
        if self.postgres and "postgres" in self.started:
            self.postgres.stop()
        self.started.clear()
        self._info = None
        _record(self.settings)

    def __enter__(self) -> EmbeddedStack:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
