"""Notifications: e-mail over SMTP and a chat webhook, sent once per idempotency key.

Delivery guarantee: at least once, with a deduplication id. SMTP has no idempotent submit, so
"exactly once" is as close as the protocol allows:

1. the `notification` row is inserted (status `sending`, with the message's `Message-ID`)
   and committed before anything is sent;
2. the row is then locked (`SELECT ... FOR UPDATE`, so two attempts of one key never send at
   the same time); a row already `sent` means the e-mail went out: nothing is sent again
   (`already_sent=True`);
3. the e-mail is sent; the row is marked `sent` and the audit event `notification.sent` is
   written in one transaction.

If the worker dies after the server accepted the message and before step 3 commits, the
retry sends it again. That duplicate carries the same `Message-ID` (derived from the
idempotency key, kept on the row) and the same `Date`, so mail clients and archives that
deduplicate by Message-ID show it once. The chat post (Slack incoming-webhook format) follows
the e-mail and is at least once too: a webhook has no deduplication id, so a crash between the
post and `chat_posted = true` posts it twice.

Addresses and names stay in the `notification` table (which can be purged); the audit trail,
append-only and kept forever, records person ids and the Message-ID only. Logs and error
messages never carry addresses or names either: a server's answer quoting an address has it
replaced by the person id, and the webhook URL (a secret) is kept out of httpx's request log.
"""

from __future__ import annotations

import hashlib
import logging
import re
from datetime import UTC, datetime, timedelta
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from typing import Any
from urllib.parse import urlsplit

import aiosmtplib
import asyncpg
import httpx
import structlog
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.db import DbConnection, insert_audit_event, jsonable
from activities.mail_format import new_message
from activities.smtp_send import SmtpSessions
from models.audit import SYSTEM_ACTOR, AuditEvent
from models.validation import EmailAddress

log = structlog.get_logger(__name__)


class SmtpSettings(BaseModel):
    """Where and how to submit e-mail (built from `SMTP_*` settings or the embedded mailbox)."""

    model_config = ConfigDict(frozen=True)

    host: str
    port: int = 25
    username: str | None = None
    password: SecretStr | None = None
    starttls: bool = Field(default=False, description="Require STARTTLS (typically port 587)")
    use_tls: bool = Field(default=False, description="Implicit TLS from the start (port 465)")
    timeout: float = Field(default=30.0, gt=0, description="Seconds per SMTP step")
    mail_from: str = "revops@localhost"

    @model_validator(mode="after")
    def _consistent(self) -> SmtpSettings:
        if self.starttls and self.use_tls:
            raise ValueError("starttls and use_tls exclude each other: pick one")
        if (self.username is None) != (self.password is None):
            raise ValueError("SMTP login needs both a username and a password")
        return self

    @property
    def envelope_from(self) -> str:
        """The bare address of `mail_from` (which may be `Name <address>`)."""
        return parseaddr(self.mail_from)[1] or self.mail_from

    @property
    def domain(self) -> str:
        return self.envelope_from.rpartition("@")[2] or "localhost"


def _one_line(value: str) -> str:
    """Headers take one line: a line break in a subject or name would be a header injection."""
    return " ".join(value.split())


class Recipient(BaseModel):
    person: str = Field(description="Person id (used in the audit trail and logs)")
    name: str
    email: EmailAddress

    @field_validator("name")
    @classmethod
    def _name_one_line(cls, value: str) -> str:
        return _one_line(value)


class NotificationInput(BaseModel):
    idempotency_key: str = Field(min_length=1)
    subject_ref: str = Field(description='What it is about, e.g. "case-deal-x-check"')
    recipients: list[Recipient] = Field(min_length=1)
    subject: str
    body: str
    chat_text: str | None = None

    @field_validator("subject")
    @classmethod
    def _subject_one_line(cls, value: str) -> str:
        return _one_line(value)


class NotificationResult(BaseModel):
    sent_to: list[str] = Field(description="Person ids the SMTP server accepted")
    chat_posted: bool
    already_sent: bool = Field(description="An earlier attempt had sent the e-mail")
    refused: list[str] = Field(
        default_factory=list,
        description="Person ids the server refused while accepting others (not retried: "
        "a retry would send the message again to those who have it)",
    )


def message_id_for(idempotency_key: str, domain: str) -> str:
    """The Message-ID of a notification: the same for every attempt of one key."""
    digest = hashlib.sha256(idempotency_key.encode()).hexdigest()[:32]
    return f"<{digest}.notification@{domain}>"


def build_message(
    smtp: SmtpSettings, data: NotificationInput, message_id: str, date: datetime
) -> EmailMessage:
    msg = new_message()
    msg["From"] = smtp.mail_from
    msg["To"] = tuple(Address(display_name=r.name, addr_spec=r.email) for r in data.recipients)
    msg["Subject"] = data.subject
    msg["Date"] = format_datetime(date.astimezone(UTC))
    msg["Message-ID"] = message_id
    msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies to it
    msg["X-Revops-Ref"] = data.subject_ref
    msg.set_content(data.body, charset="utf-8", cte="quoted-printable")
    return msg


class _RedactUrl(logging.Filter):
    """Keeps a secret URL (the chat webhook) out of httpx's `HTTP Request: POST <url>` lines."""

    def __init__(self, url: str) -> None:
        super().__init__()
        self.url = url
        parts = urlsplit(url)
        self.shown = f"{parts.scheme}://{parts.netloc}/[redacted]"

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and any(self.url in str(a) for a in record.args):
            record.args = tuple(self.shown if self.url in str(a) else a for a in record.args)
        return True


def _hide_webhook_url_in_logs(url: str) -> None:
    httpx_logger = logging.getLogger("httpx")
    if not any(isinstance(f, _RedactUrl) and f.url == url for f in httpx_logger.filters):
        httpx_logger.addFilter(_RedactUrl(url))


class NotificationActivities:
    """Sends notifications by e-mail (and chat) once per idempotency key; see the module."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        smtp: SmtpSettings | None,
        chat_webhook_url: str | None,
        http: httpx.AsyncClient,
    ) -> None:
        self._pool = pool
        self._smtp = smtp
        self._sessions = SmtpSessions(smtp) if smtp else None
        self._chat_url = chat_webhook_url or None
        self._http = http
        if self._chat_url:
            _hide_webhook_url_in_logs(self._chat_url)

    @activity.defn
    async def send_notification(self, data: NotificationInput) -> NotificationResult:
        """E-mail `data` to its recipients and post `chat_text` to the chat webhook, once per
        `idempotency_key` (at least once with a stable Message-ID, see the module).

        Raises (Temporal retries unless non-retryable):
        - `NotificationNotConfigured` (non-retryable): no SMTP server is configured, or it
          lacks what the settings require (STARTTLS, AUTH);
        - `NotificationRefused` (non-retryable): the server refused every recipient, the
          sender or the message with a permanent (5xx) answer;
        - `NotificationKeyReused` (non-retryable): the key was used for another notification;
        - `NotificationDeferred`, `SmtpUnavailable`, `ChatWebhookFailed` (retryable): 4xx
          answers, connection failures and timeouts, a non-2xx webhook answer.
        """
        if self._smtp is None:
            raise ApplicationError(
                "no SMTP server configured: set SMTP_HOST (and SMTP_PORT, SMTP_USERNAME, "
                "SMTP_PASSWORD, MAIL_FROM), or run the embedded stack's mailbox",
                type="NotificationNotConfigured",
                non_retryable=True,
            )
        smtp = self._smtp
        async with self._pool.acquire() as conn:
            await conn.execute(
                """INSERT INTO notification (idempotency_key, subject_ref, recipients, subject,
                       status, message_id, chat_posted)
                   VALUES ($1, $2, $3, $4, 'sending', $5, false)
                   ON CONFLICT (idempotency_key) DO NOTHING""",
                data.idempotency_key, data.subject_ref, jsonable(data.recipients),
                data.subject, message_id_for(data.idempotency_key, smtp.domain),
            )  # fmt: skip
            async with conn.transaction():
                row = await _locked_row(conn, data)
                already_sent = row["status"] == "sent"
                if already_sent:
                    sent_to: list[str] = list(row["sent_to"] or [])
                    refused = sorted({r.person for r in data.recipients} - set(sent_to))
                else:
                    sent_to, refused = await self._send_email(
                        conn, smtp, data, row["message_id"], row["created_at"]
                    )
            chat_posted = bool(row["chat_posted"])
            if self._chat_url and data.chat_text and not chat_posted:
                chat_posted = await self._post_chat(conn, data)
        return NotificationResult(
            sent_to=sent_to, chat_posted=chat_posted, already_sent=already_sent, refused=refused
        )

    async def _send_email(
        self,
        conn: DbConnection,
        smtp: SmtpSettings,
        data: NotificationInput,
        message_id: str,
        created_at: datetime,
    ) -> tuple[list[str], list[str]]:
        """Submit the message; mark the row sent and write the audit event (the caller's
        transaction). Returns the person ids accepted and refused."""
        message = build_message(smtp, data, message_id, created_at)
        persons = {r.email.lower(): r.person for r in data.recipients}
        try:
            assert self._sessions is not None, "with SMTP settings"
            errors = await self._sessions.submit(message, [r.email for r in data.recipients])
        except Exception as exc:  # every path re-raises, translated and without addresses
            raise _smtp_failure(exc, smtp, data) from None
        refused = {persons.get(addr.lower(), "?"): resp for addr, resp in errors.items()}
        sent_to = [r.person for r in data.recipients if r.person not in refused]
        await conn.execute(
            """UPDATE notification SET status = 'sent', sent_at = now(), sent_to = $2
               WHERE idempotency_key = $1""",
            data.idempotency_key, sent_to,
        )  # fmt: skip
        await insert_audit_event(
            conn,
            AuditEvent(
                key=f"notification:{data.idempotency_key}:sent",
                actor=SYSTEM_ACTOR,
                action="notification.sent",
                subject=data.subject_ref,
                after={
                    "notification": data.idempotency_key,
                    "recipients": sent_to,
                    "refused": {
                        p: f"{r.code} {_redact(r.message, data)}" for p, r in refused.items()
                    },
                    "message_id": message_id,
                    "subject": data.subject,
                },
            ),
        )
        log.info(
            "notification.sent",
            key=data.idempotency_key,
            subject_ref=data.subject_ref,
            recipients=sent_to,
            refused=sorted(refused),
            message_id=message_id,
        )
        return sent_to, sorted(refused)

    async def _post_chat(self, conn: DbConnection, data: NotificationInput) -> bool:
        """Post `chat_text` unless an earlier attempt did (row locked meanwhile)."""
        assert self._chat_url is not None
        async with conn.transaction():
            posted = await conn.fetchval(
                "SELECT chat_posted FROM notification WHERE idempotency_key = $1 FOR UPDATE",
                data.idempotency_key,
            )
            if posted:
                return True
            request = self._http.build_request(
                "POST", self._chat_url, json={"text": data.chat_text}
            )
            # The client may be shared: never hand its credentials to the chat service.
            for header in ("authorization", "cookie"):
                request.headers.pop(header, None)
            try:
                response = await self._http.send(request)
            except httpx.HTTPError as exc:
                raise ApplicationError(
                    f"chat webhook unreachable: {type(exc).__name__}: {_no_url(exc, self._chat_url)}",
                    type="ChatWebhookFailed",
                ) from None
            if not response.is_success:
                raise ApplicationError(
                    f"chat webhook answered {response.status_code}: {response.text[:200]}",
                    type="ChatWebhookFailed",
                    next_retry_delay=_retry_after(response),
                )
            await conn.execute(
                "UPDATE notification SET chat_posted = true WHERE idempotency_key = $1",
                data.idempotency_key,
            )
        log.info("notification.chat_posted", key=data.idempotency_key)
        return True


async def _locked_row(conn: DbConnection, data: NotificationInput) -> asyncpg.Record:
    row = await conn.fetchrow(
        """SELECT subject_ref, recipients, subject, status, message_id, created_at, sent_to,
                  chat_posted
           FROM notification WHERE idempotency_key = $1 FOR UPDATE""",
        data.idempotency_key,
    )
    assert row is not None, "inserted just before"
    if (row["subject_ref"], row["subject"], row["recipients"]) != (
        data.subject_ref,
        data.subject,
        jsonable(data.recipients),
    ):
        raise ApplicationError(
            f"idempotency key {data.idempotency_key!r} was already used for another "
            f"notification (subject ref {row['subject_ref']!r}): use a key per notification",
            type="NotificationKeyReused",
            non_retryable=True,
        )
    return row


def _redact(text: str, data: NotificationInput) -> str:
    """`text` with each recipient's address replaced by `person:<id>`."""
    for r in data.recipients:
        replacement = f"person:{r.person}".replace("\\", r"\\")  # literal, not a template
        text = re.sub(re.escape(r.email), replacement, text, flags=re.IGNORECASE)
    return text


def _no_url(exc: Exception, url: str) -> str:
    return str(exc).replace(url, "[webhook url]")


def _retry_after(response: httpx.Response) -> timedelta | None:
    value = response.headers.get("retry-after", "")
    return timedelta(seconds=int(value)) if value.isdigit() else None


def _smtp_failure(exc: Exception, smtp: SmtpSettings, data: NotificationInput) -> Exception:
    """The ApplicationError Temporal sees for an SMTP failure: non-retryable for permanent
    (5xx) answers and configuration errors, retryable otherwise; never an address in it."""
    where = f"SMTP server {smtp.host}:{smtp.port}"
    persons = {r.email.lower(): r.person for r in data.recipients}
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        answers = [
            (persons.get(r.recipient.lower(), "?"), r.code, _redact(r.message, data))
            for r in exc.recipients
        ]
        text = "; ".join(f"person {p}: {code} {msg}" for p, code, msg in answers)
        details: dict[str, Any] = {"refused": {p: code for p, code, _ in answers}}
        if all(code >= 500 for _, code, _ in answers):
            return ApplicationError(
                f"{where} refused every recipient: {text}",
                details,
                type="NotificationRefused",
                non_retryable=True,
            )
        return ApplicationError(
            f"{where} deferred the recipients: {text}", details, type="NotificationDeferred"
        )
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        step = {
            aiosmtplib.SMTPSenderRefused: "the sender",
            aiosmtplib.SMTPDataError: "the message",
            aiosmtplib.SMTPAuthenticationError: "the login",
            aiosmtplib.SMTPHeloError: "the greeting",
        }.get(type(exc), "the session")
        text = f"{where} refused {step}: {exc.code} {_redact(exc.message, data)}"
        if exc.code >= 500:
            return ApplicationError(text, type="NotificationRefused", non_retryable=True)
        return ApplicationError(text, type="NotificationDeferred")
    if isinstance(exc, aiosmtplib.SMTPNotSupported) or type(exc) is aiosmtplib.SMTPException:
        # aiosmtplib's plain SMTPException: no STARTTLS or AUTH where the settings need it
        return ApplicationError(
            f"{where} cannot do what the settings require: {exc}",
            type="NotificationNotConfigured",
            non_retryable=True,
        )
    if isinstance(exc, ValueError):  # an address the server cannot take (non-ASCII, no SMTPUTF8)
        return ApplicationError(
            f"{where}: {_redact(str(exc), data)}", type="NotificationRefused", non_retryable=True
        )
    return ApplicationError(
        f"{where} unavailable: {type(exc).__name__}: {_redact(str(exc), data)}",
        type="SmtpUnavailable",
    )
