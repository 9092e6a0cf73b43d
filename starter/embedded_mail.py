"""The embedded mailbox: a local SMTP server (aiosmtpd) that keeps each message it receives as
an `.eml` file under `<state_dir>/mail/`, so the embedded stack delivers notifications over
real SMTP and an operator can read them (any mail client opens `.eml` files).

    with EmbeddedMailbox(state_dir / "mail", port=8025) as mailbox:
        ...  # send to 127.0.0.1:mailbox.port
        for message in mailbox.messages():
            print(message["Subject"])

`revops up` / `revops demo` run it when `SMTP_HOST` is unset (starter/services.py). It binds
127.0.0.1 only, takes mail for any address, relays nothing and needs no login.

Entered with `async with`, it serves on the caller's event loop, beside the worker that sends
to it; entered with plain `with`, on a thread of its own (aiosmtpd's `Controller`), for
callers without a running loop. The worker and the mailbox share one process and one GIL
either way, and handing every line of every message between two threads cost more CPU than
receiving it (`bench/README.md`, eleventh session).
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import tempfile
import uuid
from contextlib import suppress
from datetime import UTC, datetime
from email.message import EmailMessage
from email.parser import BytesHeaderParser, BytesParser
from email.policy import compat32
from email.policy import default as default_policy
from pathlib import Path
from types import TracebackType
from typing import Any

import structlog
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from activities.notifications import SmtpSettings
from starter.ports import port_free
from starter.settings import Settings

LOCALHOST = "127.0.0.1"
log = structlog.get_logger(__name__)


def smtp_settings(settings: Settings, mailbox_port: int | None = None) -> SmtpSettings:
    """The SMTP server notifications go to: the configured one (`SMTP_HOST`), else the
    embedded mailbox on 127.0.0.1 (`mailbox_port`, default `EMBEDDED_SMTP_PORT`)."""
    if settings.smtp_host is None:
        return SmtpSettings(
            host=LOCALHOST,
            port=mailbox_port or settings.embedded_smtp_port,
            mail_from=settings.mail_from,
            timeout=settings.smtp_timeout,
        )
    return SmtpSettings(
        host=settings.smtp_host,
        port=settings.smtp_port,
        username=settings.smtp_username,
        password=settings.smtp_password,
        starttls=settings.smtp_starttls,
        use_tls=settings.smtp_use_tls,
        timeout=settings.smtp_timeout,
        mail_from=settings.mail_from,
    )


def eml_name(message_id: str | None, received: datetime) -> str:
    """`<UTC timestamp>-<Message-ID made file-safe>.eml`; sorts in order of arrival."""
    safe = re.sub(r"[^A-Za-z0-9._@+-]+", "_", (message_id or "").strip().strip("<>"))
    safe = safe.strip("._")[:120] or f"no-message-id-{uuid.uuid4().hex[:12]}"
    return f"{received:%Y%m%dT%H%M%S.%fZ}-{safe}.eml"


class _StoreHandler:
    """aiosmtpd handler: write each message (with the envelope as X-MailFrom / X-RcptTo
    headers, as aiosmtpd's own Message handler does) atomically into `mail_dir`."""

    def __init__(self, mail_dir: Path) -> None:
        self.mail_dir = mail_dir

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        envelope_headers = (
            f"X-MailFrom: {envelope.mail_from}\r\nX-RcptTo: {', '.join(envelope.rcpt_tos)}\r\n"
        ).encode()
        self._store(envelope_headers + raw, message_id(raw))
        return "250 Message accepted for delivery"

    def _store(self, data: bytes, message_id: str | None) -> Path:
        name = eml_name(message_id, datetime.now(UTC))
        if not self.mail_dir.is_dir():  # made at start; an operator may have removed it since
            self.mail_dir.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.mail_dir, prefix=".incoming-", suffix=".tmp")
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        target = self.mail_dir / name
        n = 1
        while target.exists():  # the same Message-ID in the same microsecond
            target = self.mail_dir / f"{name[:-4]}-{n}.eml"
            n += 1
        os.replace(tmp, target)  # readers never see a half-written file
        return target


def message_id(raw: bytes) -> str | None:
    """The Message-ID of a message as received, read from its header block only (the
    `compat32` parser: the text as sent, no header objects to build)."""
    head = re.split(rb"\r?\n\r?\n", raw, maxsplit=1)[0]
    found = BytesHeaderParser(policy=compat32).parsebytes(head).get("Message-ID")
    return " ".join(str(found).split()) if found is not None else None  # unfolded


class _Controller(Controller):
    """aiosmtpd's Controller, able to listen on port 0 (a free port the OS picks)."""

    def _trigger_server(self) -> None:
        if self.port == 0 and isinstance(self.server, asyncio.Server):
            self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()  # type: ignore[no-untyped-call]


class EmbeddedMailbox:
    """A local SMTP server writing `.eml` files: `start()` / `stop()` or `with` on a thread of
    its own, `serve()` / `close()` or `async with` on the running event loop. `port=0` picks
    a free port (see `port` once started)."""

    def __init__(self, mail_dir: Path, port: int = 8025, host: str = LOCALHOST) -> None:
        self.mail_dir = mail_dir
        self.host = host
        self._port = port
        self._controller: _Controller | None = None
        self._server: asyncio.Server | None = None
        self._sessions: set[SMTP] = set()  # connected clients of `_server`

    @classmethod
    def for_settings(cls, settings: Settings) -> EmbeddedMailbox:
        """The stack's mailbox: `<state_dir>/mail`, on `EMBEDDED_SMTP_PORT`, or on a free port
        when that one is taken (another stack's mailbox, a test session)."""
        port = settings.embedded_smtp_port
        if not port_free(LOCALHOST, port):
            log.warning("mailbox.port_taken", port=port, using="a free port")
            port = 0
        return cls(settings.state_dir / "mail", port)

    @property
    def port(self) -> int:
        return self._controller.port if self._controller else self._port

    @property
    def running(self) -> bool:
        return self._controller is not None or self._server is not None

    def smtp_settings(self, mail_from: str = "revops@localhost") -> SmtpSettings:
        return SmtpSettings(host=self.host, port=self.port, mail_from=mail_from)

    def start(self) -> EmbeddedMailbox:
        """Serve on a thread of its own (for callers without a running event loop)."""
        if self.running:
            return self
        self._prepare()
        controller = _Controller(
            _StoreHandler(self.mail_dir),
            hostname=self.host,
            port=self._port,
            server_hostname="revops-mailbox",
            ready_timeout=10.0,
        )
        try:
            controller.start()
        except BaseException as exc:
            _close_failed(controller)
            raise RuntimeError(
                f"the embedded mailbox could not listen on {self.host}:{self._port}: {exc}"
            ) from exc
        self._controller = controller
        log.info("mailbox.started", address=f"{self.host}:{self.port}", dir=str(self.mail_dir))
        return self

    def stop(self) -> None:
        controller, self._controller = self._controller, None
        if controller is not None:
            self._port = controller.port
            controller.stop()

    async def serve(self) -> EmbeddedMailbox:
        """Serve on the running event loop."""
        if self.running:
            return self
        self._prepare()
        handler = _StoreHandler(self.mail_dir)

        def session() -> SMTP:
            smtp = _Session(handler, self._sessions, hostname="revops-mailbox")
            self._sessions.add(smtp)
            return smtp

        try:
            server = await asyncio.get_running_loop().create_server(session, self.host, self._port)
        except OSError as exc:
            raise RuntimeError(
                f"the embedded mailbox could not listen on {self.host}:{self._port}: {exc}"
            ) from exc
        self._server, self._port = server, server.sockets[0].getsockname()[1]
        log.info("mailbox.started", address=f"{self.host}:{self.port}", dir=str(self.mail_dir))
        return self

    async def close(self) -> None:
        """Stop listening and hang up on the clients still connected."""
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        for smtp in list(self._sessions):
            if smtp.transport is not None:
                smtp.transport.close()
        await server.wait_closed()

    def _prepare(self) -> None:
        # aiosmtpd logs every sender and recipient at INFO: keep addresses out of the logs.
        logging.getLogger("mail.log").setLevel(logging.WARNING)
        self.mail_dir.mkdir(parents=True, exist_ok=True)

    def paths(self) -> list[Path]:
        """The stored messages' files, oldest first."""
        return sorted(self.mail_dir.glob("*.eml")) if self.mail_dir.is_dir() else []

    def messages(self) -> list[EmailMessage]:
        """The stored messages, parsed, oldest first."""
        parser = BytesParser(policy=default_policy)
        return [parser.parsebytes(p.read_bytes()) for p in self.paths()]

    def __enter__(self) -> EmbeddedMailbox:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def __aenter__(self) -> EmbeddedMailbox:
        return await self.serve()

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.close()


class _Session(SMTP):
    """One client's SMTP session on the event-loop mailbox; leaves `sessions` when it ends."""

    def __init__(self, handler: _StoreHandler, sessions: set[SMTP], hostname: str) -> None:
        super().__init__(handler, hostname=hostname)
        self._sessions = sessions

    def connection_lost(self, error: Exception | None) -> None:
        self._sessions.discard(self)
        super().connection_lost(error)


def _close_failed(controller: Controller) -> None:
    """After a failed start: end the server thread and close its loop."""
    with suppress(Exception):  # the thread may never have run; nothing else to undo
        controller.stop(no_assert=True)
    if not controller.loop.is_closed() and not controller.loop.is_running():
        controller.loop.close()
