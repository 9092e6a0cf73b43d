"""Invoice dispatch: an issued invoice e-mailed to the customer's billing contact, once.

The message: From the issuing entity (its legal name, at the SMTP settings' `MAIL_FROM`
address), To the billing contact printed on the invoice (`Invoice.bill_to_contact`: the
invoice document is what the customer is billed by; the `customer` row keeps the contact of
the customer's first deal only), a Subject naming the entity, number, total and due date, a
plain-text summary with the invoice's HTML as its alternative, and the PDF attached as
`<number>.pdf` (built in `activities/invoice_mail.py`). Both renderings are pure, so every
attempt sends the same message.

Exactly once in effect, as `activities/notifications.py` does it: a `notification` row
(`invoice:<number>:dispatch`, status `sending`, with a Message-ID derived from the number)
is committed before sending and locked while sending; once the server accepted the message
the row turns `sent` in the transaction that writes the audit event `invoice.dispatched`, and
a later attempt sends nothing. A worker dying between the server's acceptance and that commit
sends it again, with the same Message-ID and Date, which mail clients show once.

The audit trail keeps the customer id, the Message-ID and the PDF's SHA-256, never the
address; logs never carry it either. Only `InvoiceUndeliverable` names the address, because
whoever gets the case must know which one bounced.
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime
from email.message import EmailMessage

import asyncpg
import structlog
from pydantic import BaseModel, Field
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.db import DbConnection, insert_audit_event, jsonable
from activities.invoice_mail import (
    build_invoice_message,
    dispatch_key,
    invoice_message_id,
    invoice_subject,
)
from activities.notifications import Recipient, SmtpSettings
from activities.smtp_send import FailureKind, SmtpSessions, classify
from models.audit import SYSTEM_ACTOR, AuditEvent
from models.deal import Contact
from models.invoice import Invoice
from models.invoice_document import (
    InvoiceRenderError,
    invoice_view,
    render_invoice_pdf,
)

log = structlog.get_logger(__name__)


class DispatchInvoiceInput(BaseModel):
    invoice_number: str = Field(min_length=1, description="e.g. LLUS-000042")
    rules_version: str = Field(description="Recorded on the audit event")
    resend: int = Field(
        default=0,
        ge=0,
        description="0: the invoice's e-mail; n: its n-th re-send (an e-mail "
        "and a record of its own)",
    )
    send_to: Contact | None = Field(
        default=None,
        description="A corrected billing contact to send to instead of the one "
        "printed on the invoice (re-sends only)",
    )


class DispatchInvoiceResult(BaseModel):
    invoice_number: str
    message_id: str = Field(description="The e-mail's Message-ID, the same for every attempt")
    attachment: str = Field(description="The PDF's file name, '<number>.pdf'")
    pdf_sha256: str = Field(description="Hex SHA-256 of the PDF sent (also in the audit event)")
    sent_at: datetime = Field(description="When the SMTP server accepted the message")
    already_sent: bool = Field(description="An earlier attempt had sent it: nothing sent now")


class InvoiceDispatchActivities:
    """E-mails issued invoices once each; see the module."""

    def __init__(self, pool: asyncpg.Pool, smtp: SmtpSettings | None) -> None:
        self._pool = pool
        self._smtp = smtp
        self._sessions = SmtpSessions(smtp) if smtp else None

    @activity.defn
    async def dispatch_invoice(self, data: DispatchInvoiceInput) -> DispatchInvoiceResult:
        """E-mail invoice `data.invoice_number` (HTML body, PDF attached) to its billing
        contact, once per invoice.

        Raises (Temporal retries unless non-retryable):
        - `SmtpNotConfigured` (non-retryable): no SMTP settings, or the server lacks what
          they require (STARTTLS, AUTH);
        - `InvoiceNotFound`, `InvoiceRenderFailed` (non-retryable);
        - `InvoiceUndeliverable` (non-retryable): a permanent (5xx) refusal, naming the
          address and the server's answer;
        - `SmtpDeferred`, `SmtpUnavailable` (retryable): a 4xx answer; no connection, a
          timeout or a lost connection.
        """
        smtp = _require(self._smtp)
        async with self._pool.acquire() as conn:
            invoice = await _load_invoice(conn, data.invoice_number)
            pdf = _render_pdf(invoice)
            to = data.send_to or invoice.bill_to_contact
            recipient = Recipient(person=f"customer:{invoice.customer_id}", name=to.name,
                                  email=to.email)  # fmt: skip
            await _claim(conn, invoice, recipient, smtp.domain, data.resend)
            async with conn.transaction():
                row = await conn.fetchrow(
                    """SELECT status, message_id, created_at, sent_at FROM notification
                       WHERE idempotency_key = $1 FOR UPDATE""",
                    dispatch_key(invoice.number, data.resend),
                )
                assert row is not None, "inserted just before"
                message_id: str = row["message_id"]
                already_sent = row["status"] == "sent"
                sent_at: datetime = row["sent_at"]
                if not already_sent:
                    message = build_invoice_message(
                        smtp, invoice, pdf, message_id, row["created_at"], to
                    )
                    assert self._sessions is not None, "with SMTP settings"
                    await _send(self._sessions, invoice, message, to)
                    sent_at = await _record_sent(conn, invoice, recipient, pdf, message_id, data)
        return DispatchInvoiceResult(
            invoice_number=invoice.number,
            message_id=message_id,
            attachment=f"{invoice.number}.pdf",
            pdf_sha256=hashlib.sha256(pdf).hexdigest(),
            sent_at=sent_at,
            already_sent=already_sent,
        )


def _require(smtp: SmtpSettings | None) -> SmtpSettings:
    if smtp is None:
        raise ApplicationError(
            "SMTP is not configured, so invoices cannot be e-mailed: set SMTP_HOST (and "
            "SMTP_PORT, SMTP_USERNAME, SMTP_PASSWORD, MAIL_FROM), or run the embedded mailbox",
            type="SmtpNotConfigured",
            non_retryable=True,
        )
    return smtp


async def _claim(
    conn: DbConnection, invoice: Invoice, recipient: Recipient, domain: str, resend: int
) -> None:
    """Commit the `sending` row (with its Message-ID) unless an earlier attempt did."""
    await conn.execute(
        """INSERT INTO notification (idempotency_key, subject_ref, recipients, subject,
               status, message_id, chat_posted)
           VALUES ($1, $2, $3, $4, 'sending', $5, false)
           ON CONFLICT (idempotency_key) DO NOTHING""",
        dispatch_key(invoice.number, resend), f"invoice:{invoice.number}", jsonable([recipient]),
        invoice_subject(invoice_view(invoice)), invoice_message_id(invoice.number, domain, resend),
    )  # fmt: skip


async def _load_invoice(conn: DbConnection, number: str) -> Invoice:
    document = await conn.fetchval("SELECT document FROM invoice WHERE number = $1", number)
    if document is None:
        raise ApplicationError(
            f"invoice {number} is not stored: only issued invoices are sent",
            type="InvoiceNotFound",
            non_retryable=True,
        )
    return Invoice.model_validate(document)


def _render_pdf(invoice: Invoice) -> bytes:
    try:
        return render_invoice_pdf(invoice)
    except InvoiceRenderError as exc:
        raise ApplicationError(
            f"invoice {invoice.number} cannot be rendered: {exc}",
            type="InvoiceRenderFailed",
            non_retryable=True,
        ) from None


async def _send(
    sessions: SmtpSessions, invoice: Invoice, message: EmailMessage, to: Contact
) -> None:
    try:
        refused = await sessions.submit(message, [to.email])
    except Exception as exc:  # every path re-raises, translated for Temporal
        raise _failure(exc, sessions.smtp, invoice, to.email) from None
    assert not refused, "one recipient: a refusal raises SMTPRecipientsRefused"


async def _record_sent(
    conn: DbConnection,
    invoice: Invoice,
    recipient: Recipient,
    pdf: bytes,
    message_id: str,
    data: DispatchInvoiceInput,
) -> datetime:
    """Mark the row sent and write the audit event (the caller's transaction)."""
    sent_at: datetime = await conn.fetchval(
        """UPDATE notification SET status = 'sent', sent_at = now(), sent_to = $2
           WHERE idempotency_key = $1 RETURNING sent_at""",
        dispatch_key(invoice.number, data.resend), [recipient.person],
    )  # fmt: skip
    digest = hashlib.sha256(pdf).hexdigest()
    resent = f":resend-{data.resend}" if data.resend else ""
    await insert_audit_event(conn, AuditEvent(
        key=f"invoice:{invoice.number}:dispatched{resent}", actor=SYSTEM_ACTOR,
        action="invoice.resent" if data.resend else "invoice.dispatched",
        subject=f"deal:{invoice.deal_id}",
        after={"number": invoice.number, "customer_id": invoice.customer_id,
               "recipient": recipient.person, "message_id": message_id, "resend": data.resend,
               "attachment": f"{invoice.number}.pdf", "pdf_sha256": digest,
               "total": str(invoice.total), "due_date": invoice.due_date.isoformat()},
        rules_version=data.rules_version))  # fmt: skip
    log.info(
        "invoice.dispatched",
        number=invoice.number,
        customer_id=invoice.customer_id,
        message_id=message_id,
        pdf_sha256=digest,
    )
    return sent_at


def _failure(
    exc: Exception, smtp: SmtpSettings, invoice: Invoice, address: str
) -> ApplicationError:
    """The error Temporal sees: non-retryable for permanent answers and configuration."""
    failure = classify(exc)
    where = f"SMTP server {smtp.host}:{smtp.port}"
    if failure.kind is FailureKind.PERMANENT:
        return ApplicationError(
            f"invoice {invoice.number} cannot be delivered to {address} (billing contact of "
            f"customer {invoice.customer_id}): {where} refused {failure.step}: {failure.answer}",
            {
                "invoice_number": invoice.number,
                "customer_id": invoice.customer_id,
                "address": address,
                "step": failure.step,
                "code": failure.code,
                "reply": failure.reply,
            },
            type="InvoiceUndeliverable",
            non_retryable=True,
        )
    if failure.kind is FailureKind.CONFIGURATION:
        return ApplicationError(
            f"{where} cannot do what the SMTP settings require: {failure.reply}",
            type="SmtpNotConfigured",
            non_retryable=True,
        )
    if failure.code is not None:
        answer = _redact(failure.answer, invoice, address)
        return ApplicationError(
            f"{where} deferred invoice {invoice.number} ({failure.step}): {answer}",
            type="SmtpDeferred",
        )
    return ApplicationError(
        f"{where} unavailable for invoice {invoice.number}: {_redact(failure.reply, invoice, address)}",
        type="SmtpUnavailable",
    )


def _redact(text: str, invoice: Invoice, address: str) -> str:
    """A retryable error's text with the address replaced (only a bounce names it)."""
    shown = f"billing contact of customer {invoice.customer_id}"
    pattern = re.escape(address)
    return re.sub(pattern, lambda _: shown, text, flags=re.IGNORECASE)
