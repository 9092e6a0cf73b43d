"""Invoice dispatch against real servers: an aiosmtpd SMTP server on 127.0.0.1 started per
test, and the session's PostgreSQL. The activity runs in Temporal's `ActivityEnvironment`.

Each test issues (through `InvoicingActivities.issue_invoice`, as the deal workflow does) the
first invoice of a fresh deal, so the numbers differ within the shared session database:

    Deal it-inv-<uuid>, customer it-co-<uuid> (Acme Corporation Inc., 1 Main St, Springfield,
    US; billing contact Ada Billing <ap@acme-corp.example>), USD, 2031-03-01 .. 2032-02-29,
    billed annually in advance, net 30, taxed in US-NY (8.875%), PO-7781.
      SUB  Platform subscription  qty 250  net 480.00     120,000.00
    Subtotal 120,000.00 USD, tax 10,650.00 USD, total 130,650.00 USD,
    issued by Ledgerline Inc. (LLUS-nnnnnn) on 2031-03-01, due 2031-03-31.
"""

from __future__ import annotations

import io
import logging
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import default as default_policy

import pypdf
import pypdfium2 as pdfium  # type: ignore[import-untyped]
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from PIL import Image
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.invoice_dispatch import (
    DispatchInvoiceInput,
    DispatchInvoiceResult,
    InvoiceDispatchActivities,
)
from activities.invoice_mail import invoice_message_id
from activities.invoicing import InvoicingActivities, IssueInvoiceInput
from activities.notifications import SmtpSettings
from models.billing import first_invoice
from models.deal import Contact, ProductType
from models.invoice import Invoice, draft_invoice
from starter.ports import free_ports
from starter.services import Services
from tests.builders import make_customer, make_deal, make_line

pytestmark = pytest.mark.integration

CONTACT = Contact(name="Ada Billing", email="ap@acme-corp.example")
MAIL_FROM = "RevOps <billing@ledgerline.example>"
ISSUED = date(2031, 3, 1)
DPI = 100
LETTER_PX = (850, 1100)  # 8.5 x 11 in at 100 dpi


@dataclass
class MailServer:
    """Keeps what it accepts; answers RCPT TO for `refuse` with 550 and `defer` with 451."""

    smtp: SmtpSettings
    received: list[EmailMessage] = field(default_factory=list)
    rcpt_tos: list[list[str]] = field(default_factory=list)
    refuse: set[str] = field(default_factory=set)
    defer: set[str] = field(default_factory=set)

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address in self.refuse:
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
        if address in self.defer:
            return f"451 4.2.1 <{address}>: Mailbox temporarily unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        self.received.append(BytesParser(policy=default_policy).parsebytes(raw))
        self.rcpt_tos.append(list(envelope.rcpt_tos))
        return "250 Message accepted"


@pytest.fixture
def mail_server() -> Iterator[MailServer]:
    logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd logs every address
    (port,) = free_ports(1)
    server = MailServer(SmtpSettings(host="127.0.0.1", port=port, mail_from=MAIL_FROM))
    controller = Controller(server, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield server
    finally:
        controller.stop()


@pytest.fixture
async def invoice(services: Services) -> Invoice:
    """The module docstring's invoice, issued and stored."""
    deal = make_deal(
        [make_line("SUB", ProductType.SUBSCRIPTION, "480", quantity="250",
                   product="Platform subscription")],
        deal_id=f"it-inv-{uuid.uuid4().hex[:12]}",
        customer=make_customer(f"it-co-{uuid.uuid4().hex[:12]}").model_copy(
            update={"billing_contact": CONTACT}
        ),
        start=ISSUED, end=date(2032, 2, 29), po_required=True, po_number="PO-7781",
    )  # fmt: skip
    event = first_invoice(deal)
    assert event is not None
    draft = draft_invoice(deal, event, services.rules, ISSUED)
    issued = await ActivityEnvironment().run(
        InvoicingActivities(services.pool).issue_invoice,
        IssueInvoiceInput(
            draft=draft, idempotency_key=f"{deal.deal_id}:first", rules_version="it-rules"
        ),
    )
    return issued.invoice


async def dispatch(
    services: Services, smtp: SmtpSettings | None, invoice: Invoice
) -> DispatchInvoiceResult:
    activities = InvoiceDispatchActivities(services.pool, smtp)
    return await ActivityEnvironment().run(
        activities.dispatch_invoice,
        DispatchInvoiceInput(invoice_number=invoice.number, rules_version="it-rules"),
    )


async def dispatch_error(
    services: Services, smtp: SmtpSettings | None, invoice: Invoice
) -> ApplicationError:
    with pytest.raises(ApplicationError) as raised:
        await dispatch(services, smtp, invoice)
    return raised.value


def pdf_attachment(message: EmailMessage) -> tuple[str | None, bytes]:
    (part,) = [p for p in message.iter_attachments() if p.get_content_type() == "application/pdf"]
    payload = part.get_content()
    assert isinstance(payload, bytes)
    return part.get_filename(), payload


def page_one(pdf: bytes) -> Image.Image:
    """Page 1 as a person sees it: greyscale pixels at 100 dpi."""
    document = pdfium.PdfDocument(pdf)
    try:
        image: Image.Image = document[0].render(scale=DPI / 72).to_pil().convert("L")
        return image
    finally:
        document.close()


def ink(image: Image.Image) -> float:
    """Fraction of pixels darker than light grey."""
    return sum(image.histogram()[:200]) / (image.width * image.height)


# --- tests ----------------------------------------------------------------------------------


async def test_invoice_reaches_the_billing_contact_with_its_pdf(
    services: Services, mail_server: MailServer, invoice: Invoice
) -> None:
    result = await dispatch(services, mail_server.smtp, invoice)

    (message,) = mail_server.received
    assert mail_server.rcpt_tos == [["ap@acme-corp.example"]]
    assert message["To"] == "Ada Billing <ap@acme-corp.example>"
    assert message["From"] == '"Ledgerline Inc." <billing@ledgerline.example>'
    # RFC 5322 unfolding leaves the space the fold put after "Subject:"; clients trim it.
    assert message["Subject"].strip() == (
        f"Invoice {invoice.number} from Ledgerline Inc.: 130,650.00 USD due 2031-03-31"
    )
    expected_id = invoice_message_id(invoice.number, "ledgerline.example")
    assert message["Message-ID"] == expected_id == result.message_id
    assert result.already_sent is False and result.attachment == f"{invoice.number}.pdf"

    plain = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert plain is not None and html is not None
    text = plain.get_content()
    assert "Dear Ada Billing," in text
    assert f"{'Total due':<20}130,650.00 USD" in text and f"{'PO number':<20}PO-7781" in text
    assert f"Please quote invoice {invoice.number} and PO PO-7781" in text
    assert "PO-7781" in html.get_content() and invoice.number in html.get_content()

    name, pdf = pdf_attachment(message)
    assert name == f"{invoice.number}.pdf"
    pages = pypdf.PdfReader(io.BytesIO(pdf)).pages
    pdf_text = " ".join(" ".join(page.extract_text() for page in pages).split())
    for fact in (
        f"Invoice number {invoice.number}",
        "Due date 2031-03-31",
        "PO number PO-7781",
        "Total due (USD) 130,650.00 USD",
        "Remit to: Ledgerline Inc., First Republic Way Bank, ABA 121000358, Account 4470012231",
    ):
        assert fact in pdf_text, f"{fact!r} not in the PDF's text: {pdf_text}"

    image = page_one(pdf)
    assert image.size == LETTER_PX  # a US entity's invoice is US Letter
    assert 0.005 < ink(image) < 0.2, "page 1 is blank or a solid block"


async def test_second_dispatch_sends_nothing_and_audits_once(
    services: Services, mail_server: MailServer, invoice: Invoice
) -> None:
    first = await dispatch(services, mail_server.smtp, invoice)
    second = await dispatch(services, mail_server.smtp, invoice)

    assert len(mail_server.received) == 1
    assert second.already_sent is True
    assert (second.message_id, second.sent_at, second.pdf_sha256) == (
        first.message_id, first.sent_at, first.pdf_sha256,
    )  # fmt: skip
    async with services.pool.acquire() as conn:
        row = await conn.fetchrow(
            "SELECT status, sent_to FROM notification WHERE idempotency_key = $1",
            f"invoice:{invoice.number}:dispatch",
        )
        events = await conn.fetch(
            """SELECT subject, after, rules_version FROM audit_event
               WHERE action = 'invoice.dispatched' AND after->>'number' = $1""",
            invoice.number,
        )
    assert row is not None and row["status"] == "sent"
    assert row["sent_to"] == [f"customer:{invoice.customer_id}"]
    (event,) = events
    assert event["subject"] == f"deal:{invoice.deal_id}"
    assert event["after"]["message_id"] == first.message_id
    assert event["after"]["pdf_sha256"] == first.pdf_sha256
    assert event["rules_version"] == "it-rules"
    assert "acme-corp.example" not in str(event["after"])  # no address in the audit trail


async def test_refused_recipient_is_undeliverable_naming_address_and_reply(
    services: Services, mail_server: MailServer, invoice: Invoice
) -> None:
    mail_server.refuse.add("ap@acme-corp.example")

    error = await dispatch_error(services, mail_server.smtp, invoice)

    assert error.type == "InvoiceUndeliverable" and error.non_retryable
    assert "ap@acme-corp.example" in error.message
    assert "550 5.1.1" in error.message and "User unknown" in error.message
    assert invoice.number in error.message and invoice.customer_id in error.message
    assert mail_server.received == []


async def test_deferred_recipient_is_retryable_and_then_sends(
    services: Services, mail_server: MailServer, invoice: Invoice
) -> None:
    mail_server.defer.add("ap@acme-corp.example")

    error = await dispatch_error(services, mail_server.smtp, invoice)
    assert error.type == "SmtpDeferred" and not error.non_retryable
    assert "451 4.2.1" in error.message
    assert "ap@acme-corp.example" not in error.message  # only a bounce names the address
    assert f"billing contact of customer {invoice.customer_id}" in error.message

    mail_server.defer.clear()
    result = await dispatch(services, mail_server.smtp, invoice)
    assert result.already_sent is False and len(mail_server.received) == 1


async def test_stopped_server_is_retryable_and_the_retry_sends(
    services: Services, invoice: Invoice
) -> None:
    (port,) = free_ports(1)
    server = MailServer(SmtpSettings(host="127.0.0.1", port=port, mail_from=MAIL_FROM, timeout=5))
    first_run = Controller(server, hostname="127.0.0.1", port=port)
    first_run.start()
    first_run.stop()

    error = await dispatch_error(services, server.smtp, invoice)
    assert error.type == "SmtpUnavailable" and not error.non_retryable
    assert f"127.0.0.1:{port}" in error.message and invoice.number in error.message

    controller = Controller(server, hostname="127.0.0.1", port=port)
    controller.start()  # the server is back: Temporal's next attempt goes through
    try:
        result = await dispatch(services, server.smtp, invoice)
    finally:
        controller.stop()
    assert result.already_sent is False and len(server.received) == 1


async def test_without_smtp_settings_nothing_is_tried(services: Services, invoice: Invoice) -> None:
    error = await dispatch_error(services, None, invoice)

    assert error.type == "SmtpNotConfigured" and error.non_retryable
    assert "SMTP is not configured" in error.message


async def test_unknown_invoice_is_refused(services: Services, mail_server: MailServer) -> None:
    activities = InvoiceDispatchActivities(services.pool, mail_server.smtp)

    with pytest.raises(ApplicationError) as raised:
        await ActivityEnvironment().run(
            activities.dispatch_invoice,
            DispatchInvoiceInput(invoice_number="LLUS-999999", rules_version="it-rules"),
        )

    assert raised.value.type == "InvoiceNotFound" and raised.value.non_retryable
    assert mail_server.received == []


async def test_a_bounced_invoice_is_resent_to_the_corrected_contact(
    services: Services, mail_server: MailServer, invoice: Invoice
) -> None:
    """The address on the invoice bounces; the re-send goes to the corrected one as an e-mail
    of its own (its own Message-ID and record), and the trail names no address."""
    mail_server.refuse.add("ap@acme-corp.example")
    await dispatch_error(services, mail_server.smtp, invoice)
    corrected = Contact(name="Shared AP", email="ap-shared@acme-corp.example")

    resent = await ActivityEnvironment().run(
        InvoiceDispatchActivities(services.pool, mail_server.smtp).dispatch_invoice,
        DispatchInvoiceInput(invoice_number=invoice.number, rules_version="it-rules",
                             resend=1, send_to=corrected),
    )  # fmt: skip

    assert mail_server.rcpt_tos == [["ap-shared@acme-corp.example"]]
    (message,) = mail_server.received
    assert message["To"] == "Shared AP <ap-shared@acme-corp.example>"
    assert message["Message-ID"] == resent.message_id
    assert resent.message_id == invoice_message_id(invoice.number, "ledgerline.example", 1)
    assert resent.message_id != invoice_message_id(invoice.number, "ledgerline.example")
    assert pdf_attachment(message)[0] == f"{invoice.number}.pdf"
    rows = await services.pool.fetch(
        "SELECT idempotency_key, status FROM notification WHERE subject_ref = $1 ORDER BY 1",
        f"invoice:{invoice.number}",
    )
    assert [(r["idempotency_key"], r["status"]) for r in rows] == [
        (f"invoice:{invoice.number}:dispatch", "sending"),
        (f"invoice:{invoice.number}:dispatch:resend-1", "sent"),
    ]
    event = await services.pool.fetchrow(
        "SELECT action, after FROM audit_event WHERE idempotency_key = $1",
        f"invoice:{invoice.number}:dispatched:resend-1",
    )
    assert event is not None and event["action"] == "invoice.resent"
    assert event["after"]["resend"] == 1 and "acme-corp.example" not in str(event["after"])
