"""`SmtpSessions` against a real aiosmtpd server on 127.0.0.1: messages share a session, a
session the server dropped is replaced before a message goes out on it, a refused message
closes its session, and nothing is submitted twice."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from datetime import timedelta
from email.message import EmailMessage

import aiosmtplib
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from activities.notifications import SmtpSettings
from activities.smtp_send import FailureKind, SmtpSessions, classify, close_smtp_sessions
from starter.ports import free_ports


class CountingHandler:
    """Keeps the Subject of every message and counts sessions; answers DATA with 554 for
    subjects in `refuse`."""

    def __init__(self) -> None:
        self.subjects: list[str] = []
        self.sessions: set[int] = set()
        self.refuse: set[str] = set()

    async def handle_EHLO(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        self.sessions.add(id(session))
        session.host_name = hostname
        return responses

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = (envelope.original_content or b"").decode()
        subject = next(line[9:] for line in content.splitlines() if line.startswith("Subject: "))
        if subject in self.refuse:
            return "554 5.6.0 Message refused: content rejected"
        self.subjects.append(subject)
        return "250 Message accepted"


class MailServer:
    def __init__(self) -> None:
        logging.getLogger("mail.log").setLevel(logging.WARNING)
        (self.port,) = free_ports(1)
        self.handler = CountingHandler()
        self.controller: Controller | None = None

    def start(self) -> None:
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    @property
    def smtp(self) -> SmtpSettings:
        return SmtpSettings(host="127.0.0.1", port=self.port, mail_from="billing@example.com")


@pytest.fixture
def server() -> Iterator[MailServer]:
    mail = MailServer()
    mail.start()
    try:
        yield mail
    finally:
        mail.stop()


def message(subject: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "billing@example.com"
    msg["To"] = "ap@customer.example"
    msg["Subject"] = subject
    msg.set_content(f"{subject}\n")
    return msg


async def test_messages_share_one_session_until_its_limit(server: MailServer) -> None:
    sessions = SmtpSessions(server.smtp, messages_per_session=3)
    for n in range(7):
        assert await sessions.submit(message(f"invoice {n}"), ["ap@customer.example"]) == {}
    await sessions.close()
    assert server.handler.subjects == [f"invoice {n}" for n in range(7)]
    assert sessions.opened == len(server.handler.sessions) == 3  # 3 + 3 + 1


async def test_concurrent_messages_open_no_more_sessions_than_allowed(server: MailServer) -> None:
    sessions = SmtpSessions(server.smtp, max_sessions=2)
    await asyncio.gather(
        *(sessions.submit(message(f"reminder {n}"), ["ap@customer.example"]) for n in range(10))
    )
    await sessions.close()
    assert sorted(server.handler.subjects) == sorted(f"reminder {n}" for n in range(10))
    assert sessions.opened <= 2


async def test_a_session_the_server_dropped_is_replaced_and_nothing_is_sent_twice(
    server: MailServer,
) -> None:
    sessions = SmtpSessions(server.smtp, check_after=timedelta(0))  # NOOP before every reuse
    await sessions.submit(message("first"), ["ap@customer.example"])
    server.stop()  # the idle session dies with the server
    server.start()
    await sessions.submit(message("second"), ["ap@customer.example"])
    await sessions.close()
    assert server.handler.subjects == ["first", "second"]
    assert sessions.opened == 2


async def test_a_refused_message_closes_its_session_and_reads_as_permanent(
    server: MailServer,
) -> None:
    server.handler.refuse.add("bad")
    sessions = SmtpSessions(server.smtp)
    await sessions.submit(message("good 1"), ["ap@customer.example"])
    with pytest.raises(aiosmtplib.SMTPDataError) as refused:
        await sessions.submit(message("bad"), ["ap@customer.example"])
    failure = classify(refused.value)
    assert (failure.kind, failure.step, failure.code) == (FailureKind.PERMANENT, "the message", 554)
    await sessions.submit(message("good 2"), ["ap@customer.example"])
    await close_smtp_sessions()
    assert server.handler.subjects == ["good 1", "good 2"]
    assert sessions.opened == 2  # the refused message's session was not reused


async def test_no_server_is_a_transient_failure() -> None:
    (port,) = free_ports(1)
    sessions = SmtpSessions(SmtpSettings(host="127.0.0.1", port=port, timeout=5))
    with pytest.raises(aiosmtplib.SMTPConnectError) as down:
        await sessions.submit(message("nobody listens"), ["ap@customer.example"])
    assert classify(down.value).kind is FailureKind.TRANSIENT
    assert sessions.opened == 0


def test_sessions_do_not_move_between_event_loops(server: MailServer) -> None:
    """A worker has one event loop, a test run several: a session opened on a finished loop
    is dropped, and the next message goes out on a new one."""
    sessions = SmtpSessions(server.smtp)
    asyncio.run(sessions.submit(message("on the first loop"), ["ap@customer.example"]))
    asyncio.run(sessions.submit(message("on the second loop"), ["ap@customer.example"]))
    assert server.handler.subjects == ["on the first loop", "on the second loop"]
    assert sessions.opened == 2


async def test_a_session_idle_past_its_limit_is_quit_and_replaced(server: MailServer) -> None:
    sessions = SmtpSessions(server.smtp, max_idle=timedelta(0))  # every session is too old
    for n in range(3):
        await sessions.submit(message(f"statement {n}"), ["ap@customer.example"])
    await sessions.close()
    assert server.handler.subjects == [f"statement {n}" for n in range(3)]
    assert sessions.opened == len(server.handler.sessions) == 3
