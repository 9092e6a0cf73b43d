"""The e-mail that carries an issued invoice: headers, a plain-text summary, the invoice's HTML
as its alternative and the PDF attached. Pure: the same invoice, Message-ID and date give the
same message, MIME boundaries included (`activities/mail_format.py`), so a retried dispatch
sends the same message (`activities/invoice_dispatch.py`).
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime

from activities.mail_format import new_message, seal_boundaries
from activities.notifications import SmtpSettings
from models.deal import Contact
from models.invoice import Invoice
from models.invoice_document import InvoiceView, invoice_view, render_invoice_html


def dispatch_key(number: str, resend: int = 0) -> str:
    """The e-mail's idempotency key: one per invoice, and one per re-send of it."""
    return f"invoice:{number}:dispatch" + (f":resend-{resend}" if resend else "")


def invoice_message_id(number: str, domain: str, resend: int = 0) -> str:
    """`<LLUS-000042.<16 hex>.invoice@domain>`: the same for every attempt of one e-mail (the
    invoice's, or one re-send of it)."""
    digest = hashlib.sha256(dispatch_key(number, resend).encode()).hexdigest()[:16]
    return f"<{number}.{digest}.invoice@{domain}>"


def invoice_subject(view: InvoiceView) -> str:
    """'Invoice LLUS-000042 from Ledgerline Inc.: 143,715.00 USD due 2026-01-31', or
    'Credit note LLUS-CN-000003 from Ledgerline Inc.: -143,715.00 USD credited'."""
    owed = "credited" if view.is_credit_note else f"due {view.due_date}"
    return " ".join(
        f"{view.kind} {view.number} from {view.issuer_name}: {view.total} {owed}".split()
    )


def invoice_text(view: InvoiceView, attachment: str) -> str:
    """The plain-text part: what AP files the document by, and how to pay (or apply) it."""
    total = "Total credited" if view.is_credit_note else "Total due"
    rows = [*view.meta, ("Service period", view.service_period), (total, view.total)]
    table = "\n".join(f"  {label:<20}{value}" for label, value in rows)
    settle = ("" if view.is_credit_note else f"Payment: {view.remit_to}\n") + view.payment_reference
    return (
        f"Dear {view.attention},\n\n"
        f"Please find attached {view.kind.lower()} {view.number} to {view.bill_to_name}, "
        f"issued by {view.issuer_name}:\n\n{table}\n\n"
        f"{settle}\n\n"
        f"The {view.kind.lower()} is the attached PDF, {attachment}.\n\n"
        f"{view.issuer_name}\n" + "\n".join(view.issuer_address) + "\n"
    )


def build_invoice_message(
    smtp: SmtpSettings,
    invoice: Invoice,
    pdf: bytes,
    message_id: str,
    date: datetime,
    to: Contact | None = None,
) -> EmailMessage:
    """multipart/mixed: (text/plain | text/html) and the PDF, to the invoice's billing
    contact or to `to` (a corrected one)."""
    view, contact = invoice_view(invoice), to or invoice.bill_to_contact
    msg = new_message()
    msg["From"] = Address(display_name=view.issuer_name, addr_spec=smtp.envelope_from)
    msg["To"] = Address(display_name=" ".join(contact.name.split()), addr_spec=contact.email)
    msg["Subject"] = invoice_subject(view)
    msg["Date"] = format_datetime(date.astimezone(UTC))
    msg["Message-ID"] = message_id
    msg["X-Revops-Ref"] = f"invoice:{invoice.number}"
    # No `Auto-Submitted`: AP mailboxes and ticket systems may drop auto-generated mail.
    msg.set_content(
        invoice_text(view, f"{invoice.number}.pdf"), charset="utf-8", cte="quoted-printable"
    )
    msg.add_alternative(
        render_invoice_html(invoice), subtype="html", charset="utf-8", cte="quoted-printable"
    )
    msg.add_attachment(pdf, maintype="application", subtype="pdf", filename=f"{invoice.number}.pdf")
    seal_boundaries(msg, message_id)
    return msg
