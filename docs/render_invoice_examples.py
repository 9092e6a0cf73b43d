"""Example invoice renders for docs/invoices.md: page 1 of two sample-book invoices as PNG.

    .venv/bin/python -m docs.render_invoice_examples              # writes docs/img/invoice-example-*.png
    .venv/bin/python -m docs.render_invoice_examples --out /tmp/invoices --pdf

Run it from the project directory. Each invoice is the first invoice of a deal of the sample
book (`starter/sample_data/book.json`), drafted with the real rules (`rules/`) by the same
pure functions the deal workflow uses, issued on its billing date and given an example number:

    invoice-example-page1.png       hs-deal-90403, Ledgerline Inc. (LLUS), USD, NY sales tax, a PO
    invoice-example-eu-page1.png    hs-deal-90419, Ledgerline Europe B.V. (LLEU), EUR, a customer
                                    in Düsseldorf (Rheinuferstraße, Thomas Krüger)

Pages are rendered with pypdfium2 at 100 dpi and saved as 8-bit greyscale-and-colour
palette PNGs, so they stay well under 300 KB.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pypdfium2 as pdfium  # type: ignore[import-untyped]
from PIL import Image

from models.billing import first_invoice
from models.deal import DealSubmission
from models.invoice import Invoice, draft_invoice
from models.invoice_document import render_invoice_pdf
from starter.rules_loader import load_rules
from starter.settings import PROJECT_ROOT

OUT_DIR = PROJECT_ROOT / "docs" / "img"
BOOK = PROJECT_ROOT / "starter" / "sample_data" / "book.json"
DPI = 100
EXAMPLES: dict[str, tuple[str, str]] = {
    "invoice-example-page1.png": ("hs-deal-90403", "LLUS-000042"),
    "invoice-example-eu-page1.png": ("hs-deal-90419", "LLEU-000107"),
}


def example_invoice(deal_id: str, number: str) -> Invoice:
    """The first invoice of `deal_id` in the sample book, issued on its billing date."""
    raw = next(d for d in json.loads(BOOK.read_text(encoding="utf-8")) if d["deal_id"] == deal_id)
    deal = DealSubmission.model_validate(raw)
    event = first_invoice(deal)
    if event is None:
        raise SystemExit(f"{deal_id} has nothing billable at signing")
    draft = draft_invoice(deal, event, load_rules(PROJECT_ROOT / "rules"), event.invoice_date)
    return Invoice(**draft.model_dump(), number=number)


def page_png(pdf: bytes, page: int = 0, dpi: int = DPI) -> Image.Image:
    """Page `page` of `pdf` as an RGB image at `dpi`."""
    document = pdfium.PdfDocument(pdf)
    try:
        image: Image.Image = document[page].render(scale=dpi / 72).to_pil().convert("RGB")
        return image
    finally:
        document.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT_DIR, help="directory for the PNGs")
    parser.add_argument("--pdf", action="store_true", help="also write the PDFs beside them")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for name, (deal_id, number) in EXAMPLES.items():
        pdf = render_invoice_pdf(example_invoice(deal_id, number))
        target = args.out / name
        page_png(pdf).quantize(colors=64, dither=Image.Dither.NONE).save(target, optimize=True)
        if args.pdf:
            target.with_suffix(".pdf").write_bytes(pdf)
        print(f"{target} ({target.stat().st_size // 1024} KB) from {deal_id} as {number}")


if __name__ == "__main__":
    main()
