"""The invoice as the customer receives it (HTML and PDF), read back as a person would: the
visible text of the HTML, the text a PDF reader extracts, and page 1 rendered to pixels.

Unless a test says otherwise the invoice is LLUS-000042, the first invoice of:

    Deal D-1, customer C-100 (Acme Corporation Inc., 1 Main St, Springfield, US; billing
    contact Ada Billing <ap@acme-corp.com>, +1 555 0100; tax ID EIN 12-3456789), USD,
    2026-01-01 .. 2026-12-31, billed annually in advance, net 30, taxed in US-NY, PO-7781.
      SUB  Platform subscription  qty 250  net 480.00     120,000.00
      SUP  Premium support        qty 1    net 12,000.00   12,000.00
    Subtotal 132,000.00 USD, NY sales tax 8.875% 11,715.00 USD, total 143,715.00 USD,
    issued (by Ledgerline Inc., LL-US) on 2026-01-01, due 2026-01-31.
"""

from __future__ import annotations

import io
import re
from datetime import UTC, date, datetime
from html.parser import HTMLParser
from importlib import resources
from typing import Any

import pypdf
import pypdfium2 as pdfium  # type: ignore[import-untyped]
import pytest
from fpdf import FPDF
from PIL import Image

from models.billing import first_invoice
from models.deal import Address, Contact, Customer, DealSubmission, PaymentTerms, ProductType
from models.invoice import Invoice, draft_invoice
from models.invoice_document import (
    FONT,
    FONT_FILES,
    InvoiceRenderError,
    _width,
    address_lines,
    font_path,
    render_invoice_html,
    render_invoice_pdf,
)
from models.rules import RuleSet
from tests.builders import make_customer, make_deal, make_line

ISSUED = date(2026, 1, 1)
DPI = 100
MARGIN_MM = 8  # no ink this close to the paper's edge: printers cannot print it


def customer(**overrides: Any) -> Customer:
    """The module docstring's customer, with `overrides`."""
    fields: dict[str, Any] = {
        "billing_contact": Contact(
            name="Ada Billing", email="ap@acme-corp.com", phone="+1 555 0100"
        ),
        "tax_registration_number": "EIN 12-3456789",
    }
    return make_customer().model_copy(update=fields | overrides)


def contract(**overrides: Any) -> DealSubmission:
    """The module docstring's contract, with `overrides`."""
    lines = [
        make_line(
            "SUB", ProductType.SUBSCRIPTION, "480", quantity="250", product="Platform subscription"
        ),
        make_line("SUP", ProductType.SUPPORT, "12000", product="Premium support"),
    ]
    fields: dict[str, Any] = {
        "customer": customer(),
        "po_required": True,
        "po_number": "PO-7781",
        "lines": lines,
    }
    fields.update(overrides)
    return make_deal(fields.pop("lines"), **fields)


def issue(deal: DealSubmission, rules: RuleSet, number: str = "LLUS-000042") -> Invoice:
    """The deal's first invoice, issued on 2026-01-01 as `number`."""
    event = first_invoice(deal)
    assert event is not None
    draft = draft_invoice(deal, event, rules, ISSUED)
    return Invoice(**draft.model_dump(), number=number)


class _Text(HTMLParser):
    """The text a browser shows (no <title>, <style> or <script>), and the tags it met."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.tags: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        if tag in {"title", "style", "script"}:
            self._hidden += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in {"title", "style", "script"}:
            self._hidden -= 1

    def handle_data(self, data: str) -> None:
        if not self._hidden:
            self.parts.append(data)


def html_text(html: str) -> tuple[str, list[str]]:
    """(visible text with whitespace collapsed, tags in document order)."""
    parser = _Text()
    parser.feed(html)
    parser.close()
    return " ".join(" ".join(parser.parts).split()), parser.tags


def pdf_pages(pdf: bytes) -> list[str]:
    """The text of each page, whitespace collapsed, as a PDF reader extracts it."""
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    return [" ".join(page.extract_text().split()) for page in reader.pages]


def render_page(pdf: bytes, page: int = 0) -> Image.Image:
    """Page `page` as a greyscale image at 100 dpi, as a person would see it."""
    document = pdfium.PdfDocument(pdf)
    try:
        image: Image.Image = document[page].render(scale=DPI / 72).to_pil().convert("L")
        return image
    finally:
        document.close()


def ink(image: Image.Image, box: tuple[int, int, int, int] | None = None) -> float:
    """Fraction of pixels in `box` (default: all) darker than light grey."""
    area = image.crop(box) if box else image
    histogram = area.histogram()
    return sum(histogram[:200]) / (area.width * area.height)


# What the customer's AP team checks on the default invoice, in the order printed.
AP_FACTS = [
    "Ledgerline Inc.",
    "500 Market Street",
    "San Francisco, CA 94105",
    "Tax ID: EIN 88-4412093",
    "INVOICE",
    "Invoice number LLUS-000042",
    "Invoice date 2026-01-01",
    "Due date 2026-01-31",
    "Payment terms Net 30",
    "PO number PO-7781",
    "Currency USD",
    "Acme Corporation Inc.",
    "1 Main St",
    "Attn: Ada Billing",
    "ap@acme-corp.com",
    "Tax ID: EIN 12-3456789",
    "2026-01-01 to 2026-12-31",
    "Platform subscription, 2026-01-01 to 2026-12-31 250 480.00 USD 120,000.00 USD",
    "Premium support, 2026-01-01 to 2026-12-31 1 12,000.00 USD 12,000.00 USD",
    "Subtotal 132,000.00 USD",
    "NY sales tax 8.875% 11,715.00 USD",
    "Total due (USD) 143,715.00 USD",
    "Remit to: Ledgerline Inc., First Republic Way Bank, ABA 121000358, Account 4470012231",
    "Please quote invoice LLUS-000042 and PO PO-7781 with your payment.",
]


def assert_in_order(text: str, facts: list[str]) -> None:
    position = 0
    for fact in facts:
        found = text.find(fact, position)
        assert found >= 0, f"{fact!r} not found (in order) in: {text}"
        position = found + len(fact)


# --- HTML -----------------------------------------------------------------------------------


def test_html_shows_everything_the_ap_team_checks(rules: RuleSet) -> None:
    text, _ = html_text(render_invoice_html(issue(contract(), rules)))

    assert_in_order(text, AP_FACTS)


def test_html_escapes_customer_supplied_text(rules: RuleSet) -> None:
    """A customer named `<script>alert(1)</script> GmbH` is shown as text, not run as markup."""
    hostile = "<script>alert(1)</script> GmbH"
    deal = contract(customer=customer(legal_entity=hostile))

    html = render_invoice_html(issue(deal, rules))
    text, tags = html_text(html)

    assert hostile in text
    assert "script" not in tags
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; GmbH" in html


def test_html_without_a_po_omits_it_without_comment(rules: RuleSet) -> None:
    deal = contract(po_required=False, po_number=None)

    text, _ = html_text(render_invoice_html(issue(deal, rules)))

    assert "PO" not in text
    assert "not required" not in text
    assert "Please quote invoice LLUS-000042 with your payment." in text


def test_html_is_the_same_for_the_same_invoice(rules: RuleSet) -> None:
    invoice = issue(contract(), rules)

    assert render_invoice_html(invoice) == render_invoice_html(invoice)


def test_template_ships_inside_the_models_package() -> None:
    template = resources.files("models") / "templates" / "invoice.html.j2"

    assert template.is_file()


# --- PDF: the text ------------------------------------------------------------------------------


def test_pdf_shows_everything_the_ap_team_checks(rules: RuleSet) -> None:
    pages = pdf_pages(render_invoice_pdf(issue(contract(), rules)))

    assert len(pages) == 1
    assert_in_order(pages[0], AP_FACTS)
    assert "Page 1 of 1" in pages[0]
    assert "Continued" not in pages[0]


def test_pdf_is_byte_identical_and_dated_the_invoice_date(rules: RuleSet) -> None:
    invoice = issue(contract(), rules)

    first, second = render_invoice_pdf(invoice), render_invoice_pdf(invoice)

    assert first == second
    metadata = pypdf.PdfReader(io.BytesIO(first)).metadata
    assert metadata is not None
    assert metadata.creation_date == datetime(2026, 1, 1, tzinfo=UTC)
    assert metadata.title == "Invoice LLUS-000042"


def test_tax_exempt_invoice_shows_the_certificate_and_no_tax_amount(rules: RuleSet) -> None:
    deal = contract(tax_exempt=True, exemption_certificate="NY-EX-2231")
    invoice = issue(deal, rules)

    for text in (
        pdf_pages(render_invoice_pdf(invoice))[0],
        html_text(render_invoice_html(invoice))[0],
    ):
        assert "Tax exempt (certificate NY-EX-2231) — Total due (USD) 132,000.00 USD" in text
        assert "sales tax" not in text


def test_yen_invoice_prints_whole_yen(rules: RuleSet) -> None:
    """1,500,000 JPY + JCT 10% 150,000 JPY = 1,650,000 JPY: no decimals anywhere."""
    line = make_line("SUB", ProductType.SUBSCRIPTION, "1500000", product="Platform subscription")
    deal = contract(lines=[line], currency="JPY", tax_jurisdiction="JP")

    text = pdf_pages(render_invoice_pdf(issue(deal, rules)))[0]

    assert "1 1,500,000 JPY 1,500,000 JPY" in text
    assert "JCT 10% 150,000 JPY" in text
    assert "Total due (JPY) 1,650,000 JPY" in text
    assert not re.search(r"\d\.\d+ JPY", text)


def test_upfront_terms_are_due_on_receipt(rules: RuleSet) -> None:
    deal = contract(payment_terms=PaymentTerms.UPFRONT)

    text = pdf_pages(render_invoice_pdf(issue(deal, rules)))[0]

    assert "Due date 2026-01-01 Payment terms Due on receipt" in text


def test_a_zero_rate_without_a_percentage_in_its_label_prints_the_rate(rules: RuleSet) -> None:
    text = pdf_pages(render_invoice_pdf(issue(contract(tax_jurisdiction="US-CA"), rules)))[0]

    assert "CA: SaaS not taxable (0%) 0.00 USD" in text


def test_non_latin1_names_and_currency_signs_are_printed(rules: RuleSet) -> None:
    """Gdańsk, Zürich, ₹ and ¥ need a Unicode font: they come back out of the PDF as written."""
    address = Address(line1="ul. Długa 5", city="Gdańsk", postal_code="80-831", country="PL")
    contact = Contact(name="Zoë Müller (Zürich office)", email="zoe@example.com")
    line = make_line("SUB", ProductType.SUBSCRIPTION, "1000", product="Platform (₹ and ¥ pricing)")
    deal = contract(
        lines=[line],
        customer=customer(
            legal_entity="Wiśniewski Logistyka Sp. z o.o.",
            billing_address=address,
            billing_contact=contact,
        ),
    )

    text = pdf_pages(render_invoice_pdf(issue(deal, rules)))[0]

    assert "Wiśniewski Logistyka Sp. z o.o. ul. Długa 5 80-831 Gdańsk Poland" in text
    assert "Attn: Zoë Müller (Zürich office)" in text
    assert "Platform (₹ and ¥ pricing)" in text


def test_text_the_font_cannot_draw_is_refused_not_printed_as_boxes(rules: RuleSet) -> None:
    deal = contract(customer=customer(legal_entity="株式会社ミナト"))

    with pytest.raises(InvoiceRenderError, match=r"U\+682A"):
        render_invoice_pdf(issue(deal, rules))


def test_addresses_are_written_as_in_their_country() -> None:
    us = Address(
        line1="1 Main St", city="Springfield", region="IL", postal_code="62701", country="US"
    )
    de = Address(line1="Überseeallee 12", city="Hamburg", postal_code="20457", country="DE")

    assert address_lines(us) == ("1 Main St", "Springfield, IL 62701", "United States")
    assert address_lines(de) == ("Überseeallee 12", "20457 Hamburg", "Germany")


# --- PDF: many lines --------------------------------------------------------------------------


def sixty_line_invoice(rules: RuleSet) -> Invoice:
    """60 lines at 1,017.00, 1,034.00, ... 2,020.00 USD (every seventh wraps onto 3 lines)."""
    lines = [
        make_line(
            f"L{i:02d}",
            ProductType.SUBSCRIPTION,
            str(1000 + 17 * i),
            product=f"Seat bundle {i}"
            + (" for the regional offices, with a description long enough to wrap" * (i % 7 == 0)),
        )
        for i in range(1, 61)
    ]
    return issue(contract(lines=lines), rules, number="LLUS-000099")


def test_sixty_lines_paginate_with_the_total_on_the_last_page_only(rules: RuleSet) -> None:
    invoice = sixty_line_invoice(rules)
    pages = pdf_pages(render_invoice_pdf(invoice))

    assert len(pages) > 1
    total = f"Total due (USD) {invoice.total.format()}"
    assert [total in page for page in pages] == [False] * (len(pages) - 1) + [True]
    assert invoice.total.format() not in " ".join(pages[:-1])
    for number, page in enumerate(pages, start=1):
        assert f"Page {number} of {len(pages)}" in page
        assert "Description Qty Unit price Amount" in page  # column heads on every page
        assert ("Continued on next page" in page) == (number < len(pages))
        assert ("Invoice LLUS-000099 (continued)" in page) == (number > 1)
    every_page = " ".join(pages)
    for line in invoice.lines:  # each line printed once, none lost at a page break
        assert every_page.count(f" {line.amount.format()} ") == 1
    assert "Seat bundle 60" in pages[-1]  # the last line stays with the totals


# --- PDF: as a person sees it -----------------------------------------------------------------


def test_page_one_looks_like_an_invoice(rules: RuleSet) -> None:
    """Rendered at 100 dpi: there is ink, the header area has it, and the margins are clean
    (nothing runs off the page)."""
    image = render_page(render_invoice_pdf(issue(contract(), rules)))
    width, height = image.size
    margin = round(MARGIN_MM / 25.4 * DPI)

    assert (width, height) == (850, 1100)  # US Letter at 100 dpi for Ledgerline Inc.
    assert 0.01 < ink(image) < 0.3
    assert ink(image, (0, 0, width, height // 5)) > 0.02  # issuer, INVOICE, number, PO
    assert ink(image, (width // 2, 0, width, height // 12)) > 0.02  # the INVOICE title
    for edge in (
        (0, 0, margin, height),
        (width - margin, 0, width, height),
        (0, 0, width, margin),
        (0, height - margin, width, height),
    ):
        assert ink(image, edge) == 0, f"ink in the margin {edge}"


def test_every_page_of_a_long_invoice_has_a_header_and_clean_margins(rules: RuleSet) -> None:
    pdf = render_invoice_pdf(sixty_line_invoice(rules))
    margin = round(MARGIN_MM / 25.4 * DPI)

    for page in range(len(pypdf.PdfReader(io.BytesIO(pdf)).pages)):
        image = render_page(pdf, page)
        width, height = image.size
        assert ink(image, (0, 0, width, height // 10)) > 0.01, f"page {page + 1} has no header"
        assert ink(image, (width - margin, 0, width, height)) == 0, f"page {page + 1} cut off"
        assert ink(image, (0, height - margin, width, height)) == 0


# --- credit notes -------------------------------------------------------------------------


def credit_note(invoice: Invoice, number: str = "LLUS-CN-000003") -> Invoice:
    """The whole invoice credited back: every amount negated, numbered in the credit series."""
    lines = [ln.model_copy(update={"amount": -ln.amount, "unit_price": -ln.unit_price})
             for ln in invoice.lines]  # fmt: skip
    return invoice.model_copy(update={
        "number": number, "lines": lines, "subtotal": -invoice.subtotal, "tax": -invoice.tax,
        "total": -invoice.total, "reason": "cancelled on 2026-01-01: the year credited"})  # fmt: skip


CREDIT_NOTE_FACTS = [
    "CREDIT NOTE",
    "Credit note number LLUS-CN-000003",
    "Credit note date 2026-01-01",
    "PO number PO-7781",
    "Acme Corporation Inc.",
    "Subtotal -132,000.00 USD",
    "NY sales tax 8.875% -11,715.00 USD",
    "Total credited (USD) -143,715.00 USD",
    "Nothing to pay: this credit reduces what you owe us",
    "APPLYING THIS CREDIT",
    "Please quote credit note LLUS-CN-000003 and PO PO-7781 when you apply it.",
]


def test_a_credit_note_says_so_and_asks_for_no_payment(rules: RuleSet) -> None:
    note = credit_note(issue(contract(), rules))
    text, _ = html_text(render_invoice_html(note))
    pages = pdf_pages(render_invoice_pdf(note))

    for shown in (text, pages[0]):
        assert_in_order(shown.replace("Applying this credit", "APPLYING THIS CREDIT"),
                        CREDIT_NOTE_FACTS)  # fmt: skip
        for absent in ("INVOICE", "Invoice number", "Due date", "Total due", "Remit to"):
            assert absent not in shown, absent
    metadata = pypdf.PdfReader(io.BytesIO(render_invoice_pdf(note))).metadata
    assert metadata is not None and metadata.title == "Credit note LLUS-CN-000003"


@pytest.mark.parametrize("embedded", [False, True], ids=["helvetica", "dejavu"])
def test_text_is_measured_as_fpdf_measures_it(embedded: bool) -> None:
    """Right-aligned amounts and the one-line checks use `_width`, a cheaper measure than
    fpdf's own; both must give the same figure or the columns would not line up."""
    pdf = FPDF(unit="mm")
    pdf.core_fonts_encoding = "windows-1252"
    texts = ["130,650.00 USD", "Zürich — “Premium” support €", "", "Net 30\tdue"]
    if embedded:
        for style in FONT_FILES:
            pdf.add_font(FONT, style, font_path(style))
        texts.append("Gdańsk ₹ 1,699,200.00")
    pdf.add_page()
    for style, size in (("", 9.0), ("B", 22.0)):
        pdf.set_font(FONT if embedded else "helvetica", style, size)
        for text in texts:
            assert _width(pdf, text) == pytest.approx(pdf.get_string_width(text), abs=1e-9)
