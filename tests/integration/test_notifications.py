"""Notifications against real servers: an aiosmtpd SMTP server, a local chat webhook, the
session's PostgreSQL, and the embedded mailbox. The activity runs in Temporal's
`ActivityEnvironment` (an activity context without a worker); keys carry a uuid because the
database is shared for the session.
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import default as default_policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import aiosmtplib
import httpx
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from pydantic import ValidationError
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.notifications import (
    NotificationActivities,
    NotificationInput,
    NotificationResult,
    Recipient,
    SmtpSettings,
    message_id_for,
)
from starter.embedded_mail import EmbeddedMailbox, message_id, smtp_settings
from starter.ports import free_ports
from starter.services import Services
from starter.settings import Settings

pytestmark = pytest.mark.integration

ADA = Recipient(person="u-ada", name="Ada Lovelace", email="ada.lovelace@example.com")
GRACE = Recipient(person="u-grace", name="Grace Hopper", email="grace.hopper@example.com")
NOBODY = Recipient(person="u-gone", name="Gone Person", email="gone.person@example.com")
MAIL_FROM = "RevOps <revops@revops.example.com>"
WEBHOOK_PATH = "/services/T0001/B0002/it-webhook-secret-9f3e"


# --- servers -------------------------------------------------------------------------------


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage


class CapturingHandler:
    """Keeps every message; refuses RCPT TO for the addresses in `refuse` (550)."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.refuse: set[str] = set()

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address in self.refuse:
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        message = BytesParser(policy=default_policy).parsebytes(envelope.original_content or b"")
        self.received.append(Received(str(envelope.mail_from), list(envelope.rcpt_tos), message))
        return "250 Message accepted"


@dataclass
class SmtpServer:
    handler: CapturingHandler
    smtp: SmtpSettings


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    handler = CapturingHandler()
    logging.getLogger("mail.log").setLevel(logging.WARNING)  # this test server's own INFO lines
    (port,) = free_ports(1)
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield SmtpServer(handler, SmtpSettings(host="127.0.0.1", port=port, mail_from=MAIL_FROM))
    finally:
        controller.stop()


@dataclass
class ChatServer:
    url: str
    posts: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)  # answers to give, then 200s


@pytest.fixture
def chat_server() -> Iterator[ChatServer]:
    (port,) = free_ports(1)
    chat = ChatServer(url=f"http://127.0.0.1:{port}{WEBHOOK_PATH}")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            status = chat.statuses.pop(0) if chat.statuses else 200
            if self.path == WEBHOOK_PATH and status == 200:
                chat.posts.append(json.loads(body))
                chat.headers.append({k.lower(): v for k, v in self.headers.items()})
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            self.wfile.write(b"ok" if status == 200 else b"invalid_payload")

        def log_message(self, format: str, *args: Any) -> None:
            """Silent: http.server would print every request to stderr."""

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield chat
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    # A client with credentials of its own (like the HubSpot one): they must not reach the chat.
    async with httpx.AsyncClient(
        headers={"Authorization": "Bearer not-for-the-chat"}, timeout=5.0
    ) as client:
        yield client


# --- helpers -------------------------------------------------------------------------------


def notification(
    recipients: list[Recipient] | None = None, chat_text: str | None = None, **changes: Any
) -> NotificationInput:
    key = f"it:notify:{uuid.uuid4().hex}"
    values: dict[str, Any] = {
        "idempotency_key": key,
        "subject_ref": f"case-deal-it-{key[-8:]}-structural.po_required",
        "recipients": recipients or [ADA],
        "subject": "Case opened: PO missing on deal IT — Überprüfung nötig",
        "body": "The deal needs a PO number before it can be invoiced.\n\nTotal: 1.200,00 €\n",
        "chat_text": chat_text,
        **changes,
    }
    return NotificationInput(**values)


async def send(acts: NotificationActivities, data: NotificationInput) -> NotificationResult:
    result: NotificationResult = await ActivityEnvironment().run(acts.send_notification, data)
    return result


async def row(services: Services, key: str) -> Any:
    return await services.pool.fetchrow(
        "SELECT * FROM notification WHERE idempotency_key = $1", key
    )


async def audit_events(services: Services, key: str) -> list[Any]:
    return await services.pool.fetch(
        "SELECT * FROM audit_event WHERE idempotency_key = $1", f"notification:{key}:sent"
    )


# --- e-mail --------------------------------------------------------------------------------


async def test_the_email_is_sent_once_with_a_deterministic_message_id(
    services: Services, smtp_server: SmtpServer, http: httpx.AsyncClient
) -> None:
    acts = NotificationActivities(services.pool, smtp_server.smtp, None, http)
    data = notification([ADA, GRACE])

    first = await send(acts, data)
    again = await send(acts, data)

    assert first == NotificationResult(
        sent_to=["u-ada", "u-grace"], chat_posted=False, already_sent=False
    )
    assert again == NotificationResult(
        sent_to=["u-ada", "u-grace"], chat_posted=False, already_sent=True
    )
    [received] = smtp_server.handler.received
    message = received.message
    expected_id = message_id_for(data.idempotency_key, "revops.example.com")
    assert received.mail_from == "revops@revops.example.com"
    assert received.rcpt_tos == [ADA.email, GRACE.email]
    assert [(a.display_name, a.addr_spec) for a in message["To"].addresses] == [
        ("Ada Lovelace", ADA.email),
        ("Grace Hopper", GRACE.email),
    ]
    assert message["Subject"] == data.subject
    assert message["Message-ID"] == expected_id
    assert message["From"] == MAIL_FROM
    assert message["Date"] is not None
    assert message.get_content_type() == "text/plain"
    assert message.get_content_charset() == "utf-8"
    assert message.get_content().replace("\r\n", "\n") == data.body  # CRLF on the wire

    stored = await row(services, data.idempotency_key)
    assert (stored["status"], stored["message_id"], stored["sent_to"]) == (
        "sent",
        expected_id,
        ["u-ada", "u-grace"],
    )
    assert stored["sent_at"] is not None
    [event] = await audit_events(services, data.idempotency_key)
    assert (event["action"], event["subject"]) == ("notification.sent", data.subject_ref)
    assert event["after"]["recipients"] == ["u-ada", "u-grace"]
    assert event["after"]["message_id"] == expected_id
    assert "@example.com" not in json.dumps(event["after"])


async def test_a_retry_after_a_crash_resends_with_the_same_message_id(
    services: Services, smtp_server: SmtpServer, http: httpx.AsyncClient
) -> None:
    """The worker died after the server accepted the message, before the row said `sent`."""
    acts = NotificationActivities(services.pool, smtp_server.smtp, None, http)
    data = notification()
    await send(acts, data)
    await services.pool.execute(
        "UPDATE notification SET status = 'sending' WHERE idempotency_key = $1",
        data.idempotency_key,
    )

    result = await send(acts, data)

    first, duplicate = smtp_server.handler.received
    assert result.already_sent is False
    assert duplicate.message["Message-ID"] == first.message["Message-ID"]
    assert duplicate.message["Date"] == first.message["Date"]
    assert len(await audit_events(services, data.idempotency_key)) == 1


async def test_smtp_down_is_retryable_and_the_row_stays_sending(
    services: Services, http: httpx.AsyncClient
) -> None:
    (closed_port,) = free_ports(1)
    down = SmtpSettings(host="127.0.0.1", port=closed_port, timeout=5)
    acts = NotificationActivities(services.pool, down, None, http)
    data = notification()

    with pytest.raises(ApplicationError) as raised:
        await send(acts, data)

    assert raised.value.type == "SmtpUnavailable"
    assert raised.value.non_retryable is False
    assert f"127.0.0.1:{closed_port}" in raised.value.message
    assert (await row(services, data.idempotency_key))["status"] == "sending"
    assert await audit_events(services, data.idempotency_key) == []


async def test_a_server_without_the_required_starttls_is_a_configuration_error(
    services: Services, smtp_server: SmtpServer, http: httpx.AsyncClient
) -> None:
    needs_tls = smtp_server.smtp.model_copy(update={"starttls": True})
    acts = NotificationActivities(services.pool, needs_tls, None, http)

    with pytest.raises(ApplicationError) as raised:
        await send(acts, notification())

    assert (raised.value.type, raised.value.non_retryable) == ("NotificationNotConfigured", True)
    assert "STARTTLS" in raised.value.message
    assert smtp_server.handler.received == []


async def test_a_permanent_refusal_is_not_retryable_and_names_the_person(
    services: Services, smtp_server: SmtpServer, http: httpx.AsyncClient
) -> None:
    smtp_server.handler.refuse.add(NOBODY.email)
    acts = NotificationActivities(services.pool, smtp_server.smtp, None, http)
    data = notification([NOBODY])

    with pytest.raises(ApplicationError) as raised:
        await send(acts, data)

    error = raised.value
    assert (error.type, error.non_retryable) == ("NotificationRefused", True)
    assert "person u-gone: 550 5.1.1 <person:u-gone>: Recipient address rejected" in error.message
    assert NOBODY.email not in error.message  # error messages reach the worker's logs
    assert smtp_server.handler.received == []
    assert (await row(services, data.idempotency_key))["status"] == "sending"


async def test_a_partial_refusal_sends_to_the_others_and_reports_the_refused(
    services: Services, smtp_server: SmtpServer, http: httpx.AsyncClient
) -> None:
    smtp_server.handler.refuse.add(NOBODY.email)
    acts = NotificationActivities(services.pool, smtp_server.smtp, None, http)
    data = notification([ADA, NOBODY])

    result = await send(acts, data)
    again = await send(acts, data)

    assert (result.sent_to, result.refused) == (["u-ada"], ["u-gone"])
    assert (again.sent_to, again.refused, again.already_sent) == (["u-ada"], ["u-gone"], True)
    [received] = smtp_server.handler.received
    assert received.rcpt_tos == [ADA.email]
    [event] = await audit_events(services, data.idempotency_key)
    assert event["after"]["refused"]["u-gone"].startswith("550 5.1.1 <person:u-gone>")


async def test_without_smtp_the_activity_says_so_and_records_nothing(
    services: Services, http: httpx.AsyncClient
) -> None:
    acts = NotificationActivities(services.pool, None, None, http)
    data = notification()

    with pytest.raises(ApplicationError) as raised:
        await send(acts, data)

    assert (raised.value.type, raised.value.non_retryable) == ("NotificationNotConfigured", True)
    assert "SMTP_HOST" in raised.value.message
    assert await row(services, data.idempotency_key) is None


async def test_a_key_used_for_another_notification_is_refused(
    services: Services, smtp_server: SmtpServer, http: httpx.AsyncClient
) -> None:
    acts = NotificationActivities(services.pool, smtp_server.smtp, None, http)
    data = notification()
    await send(acts, data)

    other = data.model_copy(update={"recipients": [GRACE]})
    with pytest.raises(ApplicationError) as raised:
        await send(acts, other)

    assert (raised.value.type, raised.value.non_retryable) == ("NotificationKeyReused", True)
    assert len(smtp_server.handler.received) == 1


def test_a_line_break_cannot_inject_headers() -> None:
    data = notification(subject="Case opened\r\nBcc: someone@example.com")

    assert data.subject == "Case opened Bcc: someone@example.com"


# --- chat ----------------------------------------------------------------------------------


async def test_the_chat_webhook_gets_the_text_once_without_the_clients_credentials(
    services: Services, smtp_server: SmtpServer, chat_server: ChatServer, http: httpx.AsyncClient
) -> None:
    acts = NotificationActivities(services.pool, smtp_server.smtp, chat_server.url, http)
    data = notification(chat_text="Case opened on deal IT: PO missing (owner: billing)")

    first = await send(acts, data)
    again = await send(acts, data)

    assert (first.chat_posted, again.chat_posted, again.already_sent) == (True, True, True)
    assert chat_server.posts == [{"text": "Case opened on deal IT: PO missing (owner: billing)"}]
    assert "authorization" not in chat_server.headers[0]
    assert chat_server.headers[0]["content-type"] == "application/json"
    assert (await row(services, data.idempotency_key))["chat_posted"] is True


async def test_a_failing_webhook_is_retried_without_sending_the_email_again(
    services: Services, smtp_server: SmtpServer, chat_server: ChatServer, http: httpx.AsyncClient
) -> None:
    chat_server.statuses.append(500)
    acts = NotificationActivities(services.pool, smtp_server.smtp, chat_server.url, http)
    data = notification(chat_text="Escalated: case on deal IT")

    with pytest.raises(ApplicationError) as raised:
        await send(acts, data)
    retried = await send(acts, data)

    assert (raised.value.type, raised.value.non_retryable) == ("ChatWebhookFailed", False)
    assert "500" in raised.value.message
    assert len(smtp_server.handler.received) == 1
    assert retried == NotificationResult(sent_to=["u-ada"], chat_posted=True, already_sent=True)
    assert chat_server.posts == [{"text": "Escalated: case on deal IT"}]


async def test_no_chat_without_a_webhook_or_without_text(
    services: Services, smtp_server: SmtpServer, chat_server: ChatServer, http: httpx.AsyncClient
) -> None:
    unconfigured = NotificationActivities(services.pool, smtp_server.smtp, None, http)
    configured = NotificationActivities(services.pool, smtp_server.smtp, chat_server.url, http)

    no_url = await send(unconfigured, notification(chat_text="not posted"))
    no_text = await send(configured, notification())

    assert (no_url.chat_posted, no_text.chat_posted) == (False, False)
    assert chat_server.posts == []


async def test_logs_carry_no_address_name_or_webhook_secret(
    services: Services,
    smtp_server: SmtpServer,
    chat_server: ChatServer,
    http: httpx.AsyncClient,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    smtp_server.handler.refuse.add(NOBODY.email)
    acts = NotificationActivities(services.pool, smtp_server.smtp, chat_server.url, http)

    await send(acts, notification([ADA, NOBODY], chat_text="hello"))
    with pytest.raises(ApplicationError):
        await send(acts, notification([NOBODY]))

    logged = caplog.text + capsys.readouterr().out
    assert "notification.sent" in logged
    assert "HTTP Request: POST http://127.0.0.1" in logged  # httpx's line, URL redacted
    for secret in (ADA.email, NOBODY.email, ADA.name, "it-webhook-secret-9f3e"):
        assert secret not in logged


# --- the embedded mailbox ------------------------------------------------------------------


async def test_the_embedded_mailbox_stores_what_it_receives(tmp_path: Path) -> None:
    message = EmailMessage()
    message["From"] = "revops@localhost"
    message["To"] = "Ada Lovelace <ada.lovelace@example.com>"
    message["Subject"] = "Round trip"
    message["Message-ID"] = "<abc/123.notification@localhost>"
    message.set_content("Stored as .eml\n")

    async with EmbeddedMailbox(tmp_path / "mail", port=0) as mailbox:
        assert mailbox.port != 0
        await aiosmtplib.send(message, hostname="127.0.0.1", port=mailbox.port, timeout=10)
        [stored] = mailbox.messages()
        [path] = mailbox.paths()
    assert not mailbox.running

    assert path.parent == tmp_path / "mail"
    assert path.name.endswith("-abc_123.notification@localhost.eml")
    assert stored["Subject"] == "Round trip"
    assert stored["Message-ID"] == "<abc/123.notification@localhost>"
    assert stored["X-RcptTo"] == "ada.lovelace@example.com"
    assert stored.get_content().replace("\r\n", "\n") == "Stored as .eml\n"
    assert list((tmp_path / "mail").glob(".incoming-*")) == []


async def test_the_mailbox_serves_on_the_running_loop_and_hangs_up_on_close(
    tmp_path: Path,
) -> None:
    threads = threading.active_count()
    async with EmbeddedMailbox(tmp_path / "mail", port=0) as mailbox:
        assert threading.active_count() == threads  # no server thread of its own
        client = aiosmtplib.SMTP(hostname="127.0.0.1", port=mailbox.port, timeout=10)
        await client.connect()
        for n in (1, 2):  # two messages on one session, as the invoice dispatcher sends them
            message = EmailMessage()
            message["From"], message["To"] = "revops@localhost", "ap@example.com"
            message["Subject"], message["Message-ID"] = f"Number {n}", f"<n{n}@localhost>"
            message.set_content(f"message {n}\n")
            await client.send_message(message)
        assert [m["Subject"] for m in mailbox.messages()] == ["Number 1", "Number 2"]
    assert not mailbox.running  # closed although the client never said QUIT
    assert not client.is_connected or not await _answers_noop(client)
    with pytest.raises(OSError):
        await aiosmtplib.SMTP(hostname="127.0.0.1", port=mailbox.port, timeout=2).connect()


async def _answers_noop(client: aiosmtplib.SMTP) -> bool:
    try:
        await client.noop()
    except (aiosmtplib.SMTPException, OSError):
        return False
    return True


def test_the_stored_file_is_named_by_the_message_id_read_from_the_header_block() -> None:
    assert message_id(b"From: a@b\r\nMessage-ID: <x.1@h>\r\n\r\nMessage-ID: <body@h>\r\n") == (
        "<x.1@h>"
    )
    assert message_id(b"message-id:\n <folded.2@h>\nSubject: s\n\nbody") == "<folded.2@h>"
    assert message_id(b"Subject: none\r\n\r\nMessage-ID: <in-body@h>\r\n") is None


def test_a_taken_mailbox_port_falls_back_to_a_free_one(tmp_path: Path) -> None:
    with EmbeddedMailbox(tmp_path / "first", port=0) as first:
        settings = Settings(state_dir=tmp_path, embedded_smtp_port=first.port)
        with EmbeddedMailbox.for_settings(settings) as second:
            assert second.port not in (0, first.port)
            assert second.mail_dir == tmp_path / "mail"


def test_smtp_settings_follow_the_settings(tmp_path: Path) -> None:
    embedded = smtp_settings(Settings(state_dir=tmp_path, embedded_smtp_port=2525))
    relay = smtp_settings(
        Settings(
            smtp_host="smtp.example.com",
            smtp_port=587,
            smtp_username="revops",
            smtp_password="s3cret-relay-password",
            smtp_starttls=True,
            mail_from="RevOps <revops@example.com>",
        )
    )

    assert (embedded.host, embedded.port, embedded.username) == ("127.0.0.1", 2525, None)
    assert (relay.host, relay.port, relay.starttls, relay.use_tls) == (
        "smtp.example.com",
        587,
        True,
        False,
    )
    assert relay.password is not None
    assert relay.password.get_secret_value() == "s3cret-relay-password"
    assert relay.envelope_from == "revops@example.com"
    with pytest.raises(ValidationError, match="exclude each other"):
        Settings(smtp_host="smtp.example.com", smtp_starttls=True, smtp_use_tls=True)


async def test_the_stack_delivers_to_its_embedded_mailbox(
    services: Services, http: httpx.AsyncClient
) -> None:
    if services.settings.smtp_host is not None:
        pytest.skip("SMTP_HOST is set: the stack runs no mailbox")
    assert services.mailbox is not None and services.smtp is not None
    assert services.mailbox.mail_dir == services.settings.state_dir / "mail"
    acts = NotificationActivities(services.pool, services.smtp, None, http)
    data = notification()

    await send(acts, data)

    message_id = (await row(services, data.idempotency_key))["message_id"]
    [delivered] = [m for m in services.mailbox.messages() if m["Message-ID"] == message_id]
    assert delivered["Subject"] == data.subject
    assert delivered.get_content().replace("\r\n", "\n") == data.body
