"""The invoice as the customer receives it: HTML and PDF renderings of an issued `Invoice`.

Pure: the output depends on the invoice alone (the same invoice gives the same bytes), and
the only files read are the package's own template and the font below. Both renderings are
built from one `InvoiceView`, the invoice's printed strings, so the HTML and the PDF say
the same thing.

What is printed is what a customer's accounts-payable team checks before it pays: who
issues the invoice (legal name, address, tax registration), the invoice number, its date,
due date and payment terms, the PO (only when there is one), who is billed (legal entity,
address, contact, tax registration), the service period, each line, the subtotal, the tax
with its label and rate (or the exemption and its certificate), the total and its currency,
and where to pay. Amounts print as finance reads them (`Money.format`: `130,650.00 USD`,
`150,000 JPY`); dates print ISO (`2026-10-01`), unambiguous on both sides of the Atlantic.

Font: the PDF embeds DejaVu Sans (regular and bold), shipped in this package
(`models/fonts/`, with its licence, which allows redistribution), so it is there on any
machine that installed the project, whatever fonts the system has. It covers Latin, Greek
and Cyrillic and the currency signs (Zürich, Gdańsk, €, £, ¥, ₹), not CJK: text it cannot
draw is refused (`InvoiceRenderError`) rather than printed as empty boxes.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import TypeAlias

from fpdf import FPDF
from fpdf.enums import MethodReturnValue, XPos, YPos
from fpdf.fonts import TTFFont
from jinja2 import Environment, PackageLoader, StrictUndefined

from models.deal import Address, PaymentTerms
from models.invoice import Invoice

FONT = "DejaVuSans"
FONT_DIR = Path(__file__).parent / "fonts"
FONT_FILES: dict[str, str] = {"": "DejaVuSans.ttf", "B": "DejaVuSans-Bold.ttf"}
TEMPLATE = "invoice.html.j2"

# Countries whose paper is US Letter; everyone else gets A4.
_LETTER_COUNTRIES = frozenset({"US", "CA"})
# Postal formats: city-region-postcode in that order, or postcode-city (the default).
_CITY_FIRST = frozenset({"US", "CA", "AU", "GB", "IE", "IN", "JP", "SG", "NZ", "HK"})
_COUNTRY_NAMES: dict[str, str] = {
    "AT": "Austria", "AU": "Australia", "BE": "Belgium", "CA": "Canada", "CH": "Switzerland",
    "DE": "Germany", "DK": "Denmark", "ES": "Spain", "FI": "Finland", "FR": "France",
    "GB": "United Kingdom", "HK": "Hong Kong", "IE": "Ireland", "IN": "India", "IT": "Italy",
    "JP": "Japan", "LU": "Luxembourg", "NL": "Netherlands", "NO": "Norway",
    "NZ": "New Zealand", "PL": "Poland", "PT": "Portugal", "SE": "Sweden", "SG": "Singapore",
    "US": "United States",
}  # fmt: skip


INVOICE = "Invoice"
CREDIT_NOTE = "Credit note"


class InvoiceRenderError(ValueError):
    """The invoice cannot be rendered faithfully (e.g. text the embedded font cannot draw)."""


# --- what is printed ------------------------------------------------------------------------


@dataclass(frozen=True)
class LineView:
    """One printed invoice line."""

    description: str
    quantity: str
    unit_price: str
    amount: str


@dataclass(frozen=True)
class InvoiceView:
    """Every string printed on the invoice, shared by the HTML and the PDF."""

    kind: str  # "Invoice" or "Credit note"
    number: str
    issuer_name: str
    issuer_address: tuple[str, ...]
    issuer_tax_id: str | None
    invoice_date: str
    due_date: str
    payment_terms: str
    po_number: str | None
    currency: str
    customer_id: str
    deal_id: str
    billing_reasons: tuple[str, ...]
    bill_to_name: str
    bill_to_address: tuple[str, ...]
    attention: str
    contact_email: str
    contact_phone: str | None
    customer_tax_id: str | None
    service_period: str
    lines: tuple[LineView, ...]
    subtotal: str
    tax_caption: str
    tax_amount: str | None  # None when tax-exempt: no amount is printed
    total: str
    remit_to: str
    payment_reference: str

    @property
    def is_credit_note(self) -> bool:
        return self.kind == CREDIT_NOTE

    @property
    def title(self) -> str:
        """The heading: INVOICE or CREDIT NOTE."""
        return self.kind.upper()

    @property
    def emphasised(self) -> frozenset[str]:
        return frozenset({f"{self.kind} number", "Due date", "PO number"})

    @property
    def meta(self) -> tuple[tuple[str, str], ...]:
        """The label/value block under the title; the PO only when there is one. A credit
        note is not paid, so it has no due date or payment terms."""
        rows = [(f"{self.kind} number", self.number), (f"{self.kind} date", self.invoice_date)]
        if not self.is_credit_note:
            rows += [("Due date", self.due_date), ("Payment terms", self.payment_terms)]
        if self.po_number:
            rows.append(("PO number", self.po_number))
        rows += [("Currency", self.currency), ("Customer ID", self.customer_id)]
        return tuple(rows)

    @property
    def total_caption(self) -> str:
        if self.is_credit_note:
            return f"Total credited ({self.currency})"
        return f"Total due ({self.currency})"

    @property
    def due_line(self) -> str:
        if self.is_credit_note:
            return "Nothing to pay: this credit reduces what you owe us"
        return f"Payment due {self.due_date} ({self.payment_terms})"

    @property
    def payment_heading(self) -> str:
        return "Applying this credit" if self.is_credit_note else "Payment instructions"

    @property
    def payment_lines(self) -> tuple[str, ...]:
        if self.is_credit_note:
            return (self.payment_reference,)
        return (f"Remit to: {self.remit_to}", self.payment_reference)

    def texts(self) -> Iterator[str]:
        """Every string the documents print (to check the font can draw them)."""
        for value in vars(self).values():
            if isinstance(value, str):
                yield value
            elif isinstance(value, tuple):
                for item in value:
                    if isinstance(item, LineView):
                        yield from vars(item).values()
                    else:
                        yield item


def format_date(day: date) -> str:
    return day.isoformat()


def format_quantity(quantity: Decimal) -> str:
    """'100', '1.5', '1,250': no trailing zeros, thousands separated."""
    return f"{quantity.normalize():,f}"


def format_percent(rate: Decimal) -> str:
    """'8.875', '20', '0'."""
    return f"{rate.normalize():f}"


def payment_terms_label(terms: PaymentTerms) -> str:
    """'Net 30'; upfront is due on receipt."""
    return "Due on receipt" if terms is PaymentTerms.UPFRONT else f"Net {terms.days}"


def address_lines(address: Address) -> tuple[str, ...]:
    """The address as it is written on an envelope in its country, country name last."""
    lines = [address.line1]
    if address.line2:
        lines.append(address.line2)
    postal = address.postal_code or ""
    region = address.region if address.region != address.city else None  # "Osaka, Osaka"
    if address.country in _CITY_FIRST:
        city = f"{address.city}, {region}" if region else address.city
        lines.append(f"{city} {postal}".strip())
    else:
        lines.append(f"{postal} {address.city}".strip())
        if region:
            lines.append(region)
    lines.append(_COUNTRY_NAMES.get(address.country, address.country))
    return tuple(lines)


def tax_caption(invoice: Invoice) -> str:
    """'NY sales tax 8.875%'; the rate is added when the label lacks it; the exemption
    with its certificate for a tax-exempt invoice."""
    if invoice.tax_exempt:
        cert = invoice.exemption_certificate
        return f"Tax exempt (certificate {cert})" if cert else "Tax exempt"
    rate = f"{format_percent(invoice.tax_rate_percent)}%"
    return invoice.tax_label if rate in invoice.tax_label else f"{invoice.tax_label} ({rate})"


def invoice_view(invoice: Invoice) -> InvoiceView:
    """The printed strings of `invoice`."""
    entity, contact = invoice.entity, invoice.bill_to_contact
    po = (invoice.po_number or "").strip() or None
    if invoice.is_credit_note:
        reference = f"Please quote credit note {invoice.number}"
        reference += f" and PO {po} when you apply it." if po else " when you apply it."
    else:
        reference = f"Please quote invoice {invoice.number}"
        reference += f" and PO {po} with your payment." if po else " with your payment."
    return InvoiceView(
        kind=CREDIT_NOTE if invoice.is_credit_note else INVOICE,
        number=invoice.number,
        issuer_name=entity.legal_name,
        issuer_address=address_lines(entity.address),
        issuer_tax_id=entity.tax_registration_number,
        invoice_date=format_date(invoice.invoice_date),
        due_date=format_date(invoice.due_date),
        payment_terms=payment_terms_label(invoice.payment_terms),
        po_number=po,
        currency=invoice.currency,
        customer_id=invoice.customer_id,
        deal_id=invoice.deal_id,
        billing_reasons=tuple(
            reason[:1].upper() + reason[1:] for reason in invoice.reason.split("; ") if reason
        ),
        bill_to_name=invoice.bill_to_legal_entity,
        bill_to_address=address_lines(invoice.bill_to_address),
        attention=contact.name,
        contact_email=str(contact.email),
        contact_phone=contact.phone,
        customer_tax_id=invoice.customer_tax_registration,
        service_period=(
            f"{format_date(invoice.period_start)} to {format_date(invoice.period_end)}"
        ),
        lines=tuple(
            LineView(
                description=line.description,
                quantity=format_quantity(line.quantity),
                unit_price=line.unit_price.format(),
                amount=line.amount.format(),
            )
            for line in invoice.lines
        ),
        subtotal=invoice.subtotal.format(),
        tax_caption=tax_caption(invoice),
        tax_amount=None if invoice.tax_exempt else invoice.tax.format(),
        total=invoice.total.format(),
        remit_to=entity.remit_to,
        payment_reference=reference,
    )


# --- HTML -----------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _environment() -> Environment:
    return Environment(
        loader=PackageLoader("models", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def render_invoice_html(invoice: Invoice) -> str:
    """A standalone HTML page (inline CSS, every customer-supplied string escaped)."""
    return _environment().get_template(TEMPLATE).render(v=invoice_view(invoice))


# --- PDF ------------------------------------------------------------------------------------

_INK = (33, 37, 41)
_MUTED = (100, 108, 118)
_ACCENT = (24, 62, 120)
_RULE = (200, 206, 212)
_FILL = (238, 241, 245)

# fpdf2 places everything in floats: lengths on the page in millimetres (the unit we open
# the document in) and font sizes in points. Named so they are not mistaken for amounts,
# which are Decimal everywhere else.
Mm: TypeAlias = float
Pt: TypeAlias = float

_MARGIN = 16.0  # mm, left/right/top
_BOTTOM = 22.0  # mm kept free for the footer
_LH = 4.6  # body line height, mm
_PAD = 1.6  # row padding above and below, mm
_QTY_W, _UNIT_W, _AMOUNT_W = 20.0, 38.0, 40.0
_TOTALS_LABEL_W, _TOTALS_AMOUNT_W = 78.0, 46.0


def font_path(style: str = "") -> Path:
    """DejaVu Sans (regular "" or bold "B"), shipped with this package."""
    path = FONT_DIR / FONT_FILES[style]
    if not path.is_file():
        raise InvoiceRenderError(f"font file not found: {path} (is the package installed whole?)")
    return path


def _check_drawable(pdf: FPDF, texts: Iterable[str]) -> None:
    """Refuse text the embedded fonts have no glyph for (it would print as empty boxes)."""
    charsets = [set(font.cmap) for font in pdf.fonts.values() if isinstance(font, TTFFont)]
    drawable = set.intersection(*charsets)
    missing = sorted({ch for text in texts for ch in text if ord(ch) not in drawable})
    if missing:
        shown = " ".join(f"{ch!r} (U+{ord(ch):04X})" for ch in missing)
        raise InvoiceRenderError(f"the invoice font ({FONT}) cannot draw {shown}")


class _InvoicePdf(FPDF):
    """The page furniture: a continuation header from page 2, a footer on every page."""

    def __init__(self, view: InvoiceView, paper: str, *, embed_font: bool = True) -> None:
        super().__init__(orientation="portrait", unit="mm", format=paper)
        self.view = view
        self.totals_printed = False
        self.embed_font = embed_font
        self.core_fonts_encoding = "windows-1252"  # €, — and curly quotes are in it
        if embed_font:
            for style in FONT_FILES:
                self.add_font(FONT, style, font_path(style))
        self.set_margins(_MARGIN, _MARGIN, _MARGIN)
        self.set_auto_page_break(True, margin=_BOTTOM)
        self.c_margin = 1.2

    def set_font(self, family: str | None = None, style: str = "", size: Pt = 0) -> None:  # type: ignore[override]
        """Helvetica, the PDF's built-in font, when every text of the invoice is in
        Windows-1252: nothing to embed or subset (about 15 times faster); DejaVu Sans
        otherwise."""
        if not self.embed_font and family == FONT:
            family = "helvetica"
        super().set_font(family, style, size)

    def header(self) -> None:
        if self.page_no() == 1:
            return  # page 1 carries the full heading (`_heading`)
        self.set_text_color(*_INK)
        self.set_font(FONT, "B", 10)
        _cell(self, self.epw / 2, 6, self.view.issuer_name)
        self.set_font(FONT, "", 9)
        _cell(self, self.epw / 2, 6, f"{self.view.kind} {self.view.number} (continued)",
              align="R", new_x=XPos.LMARGIN, new_y=YPos.NEXT)  # fmt: skip
        _rule(self)
        self.ln(4)

    def footer(self) -> None:
        self.set_y(-15)
        self.set_draw_color(*_RULE)
        self.line(self.l_margin, self.get_y(), self.l_margin + self.epw, self.get_y())
        self.ln(1.5)
        self.set_font(FONT, "", 7.5)
        self.set_text_color(*_MUTED)
        third = self.epw / 3
        _cell(self, third, 4, f"{self.view.issuer_name} · {self.view.kind} {self.view.number}")
        _cell(self, third, 4, "" if self.totals_printed else "Continued on next page", align="C")
        # fpdf fills in the page count (`{nb}`) only in text laid out by `cell` itself.
        self.cell(third, 4, f"Page {self.page_no()} of {{nb}}", align="R")


def _rule(pdf: FPDF, color: tuple[int, int, int] = _RULE, width: Mm = 0.2) -> None:
    pdf.set_draw_color(*color)
    pdf.set_line_width(width)
    pdf.line(pdf.l_margin, pdf.get_y(), pdf.l_margin + pdf.epw, pdf.get_y())


def _width(pdf: FPDF, text: str) -> Mm:
    """`FPDF.get_string_width` for text without markdown or character spacing (ours): the
    same figure, without the bidirectional-text pass it makes first."""
    assert pdf.current_font is not None, "a font is set before any text"
    points = pdf.current_font.get_text_width(pdf.normalize_text(text), pdf.font_size_pt, None)[1]
    return points / pdf.k


def _cell(
    pdf: FPDF,
    width: Mm,
    height: Mm,
    text: str,
    align: str = "L",
    new_x: XPos = XPos.RIGHT,
    new_y: YPos = YPos.TOP,
    *,
    fill: bool = False,
) -> None:
    """`FPDF.cell` for one line with no border or link, placed exactly as `cell` places it
    (left, right or centred; filled with the fill colour when `fill`), at a tenth of its
    cost: `cell` lays the text out as styled fragments and copies the graphics state each
    time, which made it most of the time an invoice took to render."""
    if pdf.will_page_break(height):
        x = pdf.x
        pdf.add_page(same=True)
        pdf.x = x
    x, y = pdf.x, pdf.y
    if fill:
        pdf.rect(x, y, width, height, style="F")
    if text:
        dx = pdf.c_margin
        if align == "R":
            dx = width - pdf.c_margin - _width(pdf, text)
        elif align == "C":
            dx = (width - _width(pdf, text)) / 2
        pdf.text(x + dx, y + 0.5 * height + 0.3 * pdf.font_size, text)
    pdf.set_xy(
        {XPos.RIGHT: x + width, XPos.LEFT: x, XPos.LMARGIN: pdf.l_margin}[new_x],
        {YPos.TOP: y, YPos.NEXT: y + height}[new_y],
    )


def _one_line(pdf: FPDF, width: Mm, text: str) -> bool:
    """True when `text` fits a cell `width` wide on one line."""
    return "\n" not in text and _width(pdf, text) <= width - 2 * pdf.c_margin


def _fit_cell(pdf: FPDF, width: Mm, height: Mm, text: str) -> None:
    """A right-aligned cell whose text is set smaller (down to 6 pt) rather than overflow
    into its neighbour: a 123,456,789.00 INR amount still fits its column."""
    size = original = pdf.font_size_pt
    while size > 6 and _width(pdf, text) > width - 2 * pdf.c_margin:
        size -= 0.5
        pdf.set_font_size(size)
    _cell(pdf, width, height, text, align="R")
    pdf.set_font_size(original)


def _text_height(pdf: FPDF, width: Mm, line_height: Mm, text: str) -> Mm:
    if _one_line(pdf, width, text):
        return line_height  # fits on one line (most do): no need to lay it out to know
    lines = pdf.multi_cell(width, line_height, text, dry_run=True, output=MethodReturnValue.LINES)
    assert isinstance(lines, list)
    return len(lines) * line_height


def _block(
    pdf: FPDF,
    x: Mm,
    width: Mm,
    rows: Iterable[tuple[str, str, Pt, tuple[int, int, int]]],
) -> None:
    """Stacked left-aligned lines at column `x`: (text, style, size, color) each."""
    for text, style, size, color in rows:
        pdf.set_font(FONT, style, size)
        pdf.set_text_color(*color)
        pdf.set_x(x)
        if _one_line(pdf, width, text):
            _cell(pdf, width, size * 0.5, text, new_x=XPos.LEFT, new_y=YPos.NEXT)
        else:  # lay it out over as many lines as it takes
            pdf.multi_cell(width, size * 0.5, text, align="L", new_x=XPos.LEFT, new_y=YPos.NEXT)


def _label(text: str) -> tuple[str, str, Pt, tuple[int, int, int]]:
    return (text.upper(), "B", 7.2, _MUTED)


def _heading(pdf: _InvoicePdf, v: InvoiceView) -> None:
    """Page 1: issuer and the title block (INVOICE or CREDIT NOTE) side by side, then bill-to
    and service period."""
    top = pdf.t_margin
    left_w = pdf.epw * 0.52
    right_x, right_w = pdf.l_margin + left_w + 6, pdf.epw - left_w - 6

    pdf.set_xy(pdf.l_margin, top)
    issuer = [(v.issuer_name, "B", 13.0, _INK)]
    issuer += [(line, "", 8.5, _MUTED) for line in v.issuer_address]
    if v.issuer_tax_id:
        issuer.append((f"Tax ID: {v.issuer_tax_id}", "", 8.5, _MUTED))
    _block(pdf, pdf.l_margin, left_w, issuer)
    left_bottom = pdf.get_y()

    pdf.set_xy(right_x, top - 1.5)
    pdf.set_font(FONT, "B", 22)
    pdf.set_text_color(*_ACCENT)
    _cell(pdf, right_w, 10, v.title, align="R", new_x=XPos.LEFT, new_y=YPos.NEXT)
    pdf.ln(1.5)
    label_w = 30.0
    for label, value in v.meta:
        y = pdf.get_y()
        emphasised = label in v.emphasised
        pdf.set_xy(right_x, y)
        pdf.set_font(FONT, "", 8.5)
        pdf.set_text_color(*_MUTED)
        _cell(pdf, label_w, 5, label)
        pdf.set_font(FONT, "B" if emphasised else "", 9.5 if label == "PO number" else 9)
        pdf.set_text_color(*_INK)
        if _one_line(pdf, right_w - label_w, value):
            _cell(pdf, right_w - label_w, 5, value, align="R", new_x=XPos.LEFT, new_y=YPos.NEXT)
        else:
            pdf.multi_cell(right_w - label_w, 5, value, align="R", new_x=XPos.LEFT,
                           new_y=YPos.NEXT)  # fmt: skip
    right_bottom = pdf.get_y()

    pdf.set_y(max(left_bottom, right_bottom) + 5)
    _rule(pdf)
    pdf.ln(4)
    top = pdf.get_y()

    bill_to = [_label("Bill to"), (v.bill_to_name, "B", 10.0, _INK)]
    bill_to += [(line, "", 9.0, _INK) for line in v.bill_to_address]
    bill_to.append((f"Attn: {v.attention}", "", 9.0, _INK))
    bill_to.append((v.contact_email, "", 9.0, _INK))
    if v.contact_phone:
        bill_to.append((v.contact_phone, "", 9.0, _INK))
    if v.customer_tax_id:
        bill_to.append((f"Tax ID: {v.customer_tax_id}", "", 9.0, _INK))
    _block(pdf, pdf.l_margin, left_w, bill_to)
    left_bottom = pdf.get_y()

    pdf.set_y(top)
    gap = ("", "", 4.0, _INK)
    about = [_label("Service period"), (v.service_period, "", 9.0, _INK), gap, _label("Billing")]
    about += [(reason, "", 9.0, _INK) for reason in v.billing_reasons]
    about += [gap, _label("Our reference"), (v.deal_id, "", 9.0, _INK)]
    _block(pdf, right_x, right_w, about)
    pdf.set_y(max(left_bottom, pdf.get_y()) + 7)


def _table_head(pdf: FPDF) -> None:
    desc_w = pdf.epw - _QTY_W - _UNIT_W - _AMOUNT_W
    pdf.set_font(FONT, "B", 8.5)
    pdf.set_text_color(*_INK)
    pdf.set_fill_color(*_FILL)
    pdf.set_x(pdf.l_margin)
    _cell(pdf, desc_w, 7, "Description", fill=True)
    _cell(pdf, _QTY_W, 7, "Qty", align="R", fill=True)
    _cell(pdf, _UNIT_W, 7, "Unit price", align="R", fill=True)
    _cell(pdf, _AMOUNT_W, 7, "Amount", align="R", fill=True, new_x=XPos.LMARGIN, new_y=YPos.NEXT)


def _table(pdf: _InvoicePdf, v: InvoiceView) -> None:
    """The lines; a row that does not fit starts a new page with the column heads again."""
    desc_w = pdf.epw - _QTY_W - _UNIT_W - _AMOUNT_W
    _table_head(pdf)
    for number, line in enumerate(v.lines, start=1):
        pdf.set_font(FONT, "", 9)
        height = _text_height(pdf, desc_w, _LH, line.description) + 2 * _PAD
        # the last line goes with the totals: they never stand alone on a page
        keep = _closing_height(pdf, v) if number == len(v.lines) else 0.0
        if pdf.will_page_break(height + keep):
            pdf.add_page()
            _table_head(pdf)
            pdf.set_font(FONT, "", 9)
        y = pdf.get_y()
        pdf.set_text_color(*_INK)
        pdf.set_xy(pdf.l_margin, y + _PAD)
        if height == _LH + 2 * _PAD:
            _cell(pdf, desc_w, _LH, line.description)
        else:
            pdf.multi_cell(desc_w, _LH, line.description, align="L", new_x=XPos.RIGHT,
                           new_y=YPos.TOP)  # fmt: skip
        pdf.set_xy(pdf.l_margin + desc_w, y + _PAD)
        for width, text in (
            (_QTY_W, line.quantity),
            (_UNIT_W, line.unit_price),
            (_AMOUNT_W, line.amount),
        ):
            pdf.set_font_size(9)
            _fit_cell(pdf, width, _LH, text)
        pdf.set_y(y + height)
        _rule(pdf, width=0.15)


def _closing_height(pdf: FPDF, v: InvoiceView) -> Mm:
    """The height `_closing` takes (a little generous)."""
    pdf.set_font(FONT, "", 9)
    tax_h = max(6.0, _text_height(pdf, _TOTALS_LABEL_W, 5, v.tax_caption))
    remit = _text_height(pdf, pdf.epw - 8, 4.5, f"Remit to: {v.remit_to}")
    reference = _text_height(pdf, pdf.epw - 8, 4.5, v.payment_reference)
    return 3 + 6 + tax_h + 3 + 7 + 5 + 8 + 3 + 3.6 + 0.75 + remit + reference + 3 + 2


def _closing(pdf: _InvoicePdf, v: InvoiceView) -> None:
    """Subtotal, tax, total and the payment instructions, kept together on the last page."""
    x = pdf.l_margin + pdf.epw - _TOTALS_AMOUNT_W - _TOTALS_LABEL_W
    label_w, amount_w = _TOTALS_LABEL_W, _TOTALS_AMOUNT_W
    pdf.set_font(FONT, "", 9)
    tax_h = _text_height(pdf, label_w, 5, v.tax_caption)
    if pdf.will_page_break(_closing_height(pdf, v)):
        pdf.add_page()
    pdf.ln(3)

    def row(label: str, amount: str, style: str = "", size: Pt = 9, h: Mm = 6) -> None:
        y = pdf.get_y()
        pdf.set_font(FONT, style, size)
        pdf.set_text_color(*_INK)
        pdf.set_xy(x, y)
        if _one_line(pdf, label_w, label):
            _cell(pdf, label_w, h, label, new_y=YPos.NEXT)
        else:
            pdf.multi_cell(label_w, h, label, align="L", new_x=XPos.RIGHT, new_y=YPos.TOP)
        bottom = pdf.get_y()
        pdf.set_xy(x + label_w, y)
        _fit_cell(pdf, amount_w, h, amount)
        pdf.set_y(max(bottom, y + h))

    row("Subtotal", v.subtotal)
    row(v.tax_caption, v.tax_amount or "—", h=5 if tax_h > 5 else 6)
    pdf.ln(1.5)
    pdf.set_draw_color(*_INK)
    pdf.set_line_width(0.4)
    pdf.line(x, pdf.get_y(), pdf.l_margin + pdf.epw, pdf.get_y())
    pdf.ln(1.5)
    row(v.total_caption, v.total, style="B", size=11, h=7)
    pdf.set_font(FONT, "", 8.5)
    pdf.set_text_color(*_MUTED)
    pdf.set_x(x)
    _cell(pdf, label_w + amount_w, 5, v.due_line, align="R", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.totals_printed = True

    pdf.ln(8)
    top = pdf.get_y()
    pdf.set_x(pdf.l_margin + 4)
    pdf.ln(3)
    _block(
        pdf,
        pdf.l_margin + 4,
        pdf.epw - 8,
        [
            _label(v.payment_heading),
            ("", "", 1.5, _INK),
            *((text, "", 9.0, _INK) for text in v.payment_lines),
        ],
    )
    pdf.ln(3)
    pdf.set_draw_color(*_RULE)
    pdf.set_line_width(0.3)
    pdf.rect(pdf.l_margin, top, pdf.epw, pdf.get_y() - top)


def _encodable(text: str) -> bool:
    try:
        text.encode("cp1252")
    except UnicodeEncodeError:
        return False
    return True


def render_invoice_pdf(invoice: Invoice) -> bytes:
    """The invoice as a PDF: Letter for a US or Canadian issuer, else A4; Helvetica when
    every text is in Windows-1252 (Western European, with € and £), DejaVu Sans embedded
    otherwise (Gdańsk, ₹); dated the invoice date (midnight UTC), never the clock, so the same invoice
    gives the same bytes."""
    v = invoice_view(invoice)
    paper = "Letter" if invoice.entity.address.country in _LETTER_COUNTRIES else "A4"
    western = all(_encodable(text) for text in (*v.texts(), "—"))
    pdf = _InvoicePdf(v, paper, embed_font=not western)
    if not western:
        _check_drawable(pdf, v.texts())
    pdf.set_creation_date(datetime.combine(invoice.invoice_date, time(0), tzinfo=UTC))
    pdf.set_title(f"{v.kind} {v.number}")
    pdf.set_author(v.issuer_name)
    pdf.set_subject(f"{v.kind} {v.number} to {v.bill_to_name}")
    pdf.set_lang("en")
    pdf.add_page()
    _heading(pdf, v)
    _table(pdf, v)
    _closing(pdf, v)
    return bytes(pdf.output())
