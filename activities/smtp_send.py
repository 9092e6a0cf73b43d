"""Submitting messages over SMTP, and reading an SMTP failure as permanent or transient.

Shared by the activities that send e-mail and want to tell Temporal whether a retry can
help: a 5xx answer is permanent (retrying sends the same refused message again), a 4xx
answer, a refused connection or a timeout is transient, and a server that lacks what the
settings require (STARTTLS, AUTH) is a configuration error no retry fixes.

`SmtpSessions` keeps a few open sessions to the server and sends the next message on one of
them, as a mail relay's clients do: a billing run e-mails thousands of invoices, and a new
session each (TCP, greeting, EHLO, STARTTLS, AUTH, QUIT) costs the relay and this worker
more than the message itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from email.message import EmailMessage
from enum import StrEnum
from typing import TYPE_CHECKING

import aiosmtplib

if TYPE_CHECKING:  # notifications.py sends through this module
    from activities.notifications import SmtpSettings


class FailureKind(StrEnum):
    PERMANENT = "permanent"  # 5xx: the server will not take it as it is
    TRANSIENT = "transient"  # 4xx, connection refused or lost, timeout: try again later
    CONFIGURATION = "configuration"  # the server cannot do what the settings require


@dataclass(frozen=True)
class SmtpFailure:
    """One failed submission, as the caller reports it.

    `step` names what was refused ("the recipient", "the sender", "the message", ...);
    `code` and `reply` are the server's answer (no code when there was no answer);
    `recipients` are the addresses the server refused, if it refused recipients.
    """

    kind: FailureKind
    step: str
    code: int | None
    reply: str
    recipients: tuple[str, ...] = ()

    @property
    def answer(self) -> str:
        """'550 5.1.1 User unknown', or the error when the server gave no answer."""
        return f"{self.code} {self.reply}" if self.code is not None else self.reply


_STEPS: dict[type[Exception], str] = {
    aiosmtplib.SMTPSenderRefused: "the sender",
    aiosmtplib.SMTPRecipientRefused: "the recipient",
    aiosmtplib.SMTPDataError: "the message",
    aiosmtplib.SMTPAuthenticationError: "the login",
    aiosmtplib.SMTPHeloError: "the greeting",
    aiosmtplib.SMTPConnectResponseError: "the connection",
}


@dataclass
class _Session:
    client: aiosmtplib.SMTP
    loop: asyncio.AbstractEventLoop
    sent: int = 0
    idle_since_ns: int = 0  # time.monotonic_ns() when last put back


class SmtpSessions:
    """Up to `max_sessions` open SMTP sessions to one server, each reused for up to
    `messages_per_session` messages while it has been idle less than `max_idle`.

    A session that has been idle a while is checked with NOOP before it carries a message
    (the server may have dropped it); one that fails in any way is closed, never reused.
    A message is never submitted twice here: what failed is for the caller (and Temporal's
    retry) to decide.
    """

    def __init__(
        self,
        smtp: SmtpSettings,
        *,
        max_sessions: int = 8,
        messages_per_session: int = 50,
        max_idle: timedelta = timedelta(seconds=30),
        check_after: timedelta = timedelta(seconds=2),
    ) -> None:
        self.smtp = smtp
        self.messages_per_session = messages_per_session
        self.max_idle = max_idle
        self.check_after = check_after
        self.max_sessions = max_sessions
        self._idle: list[_Session] = []
        self._slots: asyncio.BoundedSemaphore | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.opened = 0  # sessions opened so far (for tests and metrics)
        _ALL.add(self)

    async def submit(
        self, message: EmailMessage, recipients: Sequence[str]
    ) -> dict[str, aiosmtplib.SMTPResponse]:
        """Send `message` to `recipients` (envelope) from `smtp.envelope_from`; returns the
        recipients the server refused while accepting others. Raises what aiosmtplib raises
        (read it with `classify`)."""
        async with self._slots_here():
            session = await self._take()
            try:
                errors, _ = await session.client.send_message(
                    message,
                    sender=self.smtp.envelope_from,
                    recipients=list(dict.fromkeys(recipients)),
                )
            except BaseException:
                session.client.close()
                raise
            session.sent += 1
            if session.sent >= self.messages_per_session:
                await _quit(session)
            else:
                session.idle_since_ns = time.monotonic_ns()
                self._idle.append(session)
            return errors

    async def close(self) -> None:
        """QUIT every idle session (those in use close after their message)."""
        idle, self._idle = self._idle, []
        loop = asyncio.get_running_loop()
        for session in idle:
            if session.loop is loop:
                await _quit(session)
            else:
                _discard(session)

    def _slots_here(self) -> asyncio.BoundedSemaphore:
        """The session limit, bound to the running event loop (a worker has one; a test
        suite may run several one after the other, and sessions do not move between them)."""
        loop = asyncio.get_running_loop()
        if self._slots is None or self._loop is not loop:
            for session in self._idle:
                _discard(session)
            self._idle = []
            self._slots, self._loop = asyncio.BoundedSemaphore(self.max_sessions), loop
        return self._slots

    async def _take(self) -> _Session:
        loop = asyncio.get_running_loop()
        while self._idle:
            session = self._idle.pop()
            idle_for = timedelta(microseconds=(time.monotonic_ns() - session.idle_since_ns) // 1000)
            if not session.client.is_connected:
                session.client.close()
            elif idle_for >= self.max_idle:
                await _quit(session)
            elif idle_for < self.check_after or await _answers(session):
                return session
        return await self._open(loop)

    async def _open(self, loop: asyncio.AbstractEventLoop) -> _Session:
        smtp = self.smtp
        client = aiosmtplib.SMTP(
            hostname=smtp.host,
            port=smtp.port,
            username=smtp.username,
            password=smtp.password.get_secret_value() if smtp.password else None,
            use_tls=smtp.use_tls,
            start_tls=smtp.starttls,
            timeout=smtp.timeout,
        )
        await client.connect()
        self.opened += 1
        return _Session(client, loop)


_ALL: weakref.WeakSet[SmtpSessions] = weakref.WeakSet()


async def close_smtp_sessions() -> None:
    """QUIT the idle sessions of every `SmtpSessions` (a worker's last step)."""
    for sessions in list(_ALL):
        await sessions.close()


async def _answers(session: _Session) -> bool:
    """Whether an idle session still takes commands (NOOP); closes it when not."""
    try:
        await session.client.noop()
    except (aiosmtplib.SMTPException, OSError):
        session.client.close()
        return False
    return True


def _discard(session: _Session) -> None:
    """Drop a session of an event loop that may be closed by now (a finished test's)."""
    with contextlib.suppress(RuntimeError):  # closing a transport of a closed loop
        session.client.close()


async def _quit(session: _Session) -> None:
    try:
        with contextlib.suppress(aiosmtplib.SMTPException, OSError):  # it is going anyway
            await session.client.quit()
    finally:
        session.client.close()


def _by_code(code: int) -> FailureKind:
    return FailureKind.PERMANENT if code >= 500 else FailureKind.TRANSIENT


def classify(exc: Exception) -> SmtpFailure:
    """What `submit`'s exception means for a retry."""
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        refused = exc.recipients
        permanent = all(r.code >= 500 for r in refused)
        first = min(refused, key=lambda r: r.code) if refused else None
        return SmtpFailure(
            kind=FailureKind.PERMANENT if permanent and refused else FailureKind.TRANSIENT,
            step="the recipient",
            code=first.code if first else None,
            reply="; ".join(f"{r.code} {r.message}" for r in refused) if refused else str(exc),
            recipients=tuple(r.recipient for r in refused),
        )
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        step = next((s for t, s in _STEPS.items() if isinstance(exc, t)), "the session")
        recipients = (exc.recipient,) if isinstance(exc, aiosmtplib.SMTPRecipientRefused) else ()
        return SmtpFailure(_by_code(exc.code), step, exc.code, exc.message, recipients)
    if isinstance(exc, aiosmtplib.SMTPNotSupported) or type(exc) is aiosmtplib.SMTPException:
        # aiosmtplib's plain SMTPException: no STARTTLS or AUTH where the settings need it
        return SmtpFailure(FailureKind.CONFIGURATION, "the settings", None, str(exc))
    if isinstance(exc, ValueError):  # an address the server cannot take (non-ASCII, no SMTPUTF8)
        return SmtpFailure(FailureKind.PERMANENT, "the recipient", None, str(exc))
    return SmtpFailure(
        FailureKind.TRANSIENT, "the connection", None, f"{type(exc).__name__}: {exc}"
    )
