"""`activities.mail_format`: the cached header registry and boundaries set at build time."""

from __future__ import annotations

import base64
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import default

from aiosmtplib.email import flatten_message

from activities.mail_format import MAIL_POLICY, CachedHeaderRegistry, new_message, seal_boundaries

PDF = b"%PDF-1.4\n" + bytes(range(256)) * 40 + b"\n%%EOF\n"
# Text that looks like a boundary, and like the default generator's boundaries.
TEXT = "Total due: 1,200.00 EUR\n=_ not a boundary =_0123 ===============\nZürich, Gdańsk\n"


def invoice_like(message: EmailMessage) -> EmailMessage:
    message["From"] = "Ledgerline Billing <billing@example.com>"
    message["To"] = "Zoë Müller <ap@example.de>"
    message["Subject"] = "Invoice LLEU-000042 from Ledgerline GmbH: 1,200.00 EUR due 2026-12-31"
    message["Message-ID"] = "<LLEU-000042.abc.invoice@example.com>"
    message.set_content(TEXT, charset="utf-8", cte="quoted-printable")
    message.add_alternative(f"<p>{TEXT}</p>", subtype="html", charset="utf-8",
                            cte="quoted-printable")  # fmt: skip
    message.add_attachment(PDF, maintype="application", subtype="pdf", filename="LLEU-000042.pdf")
    return message


def parts(raw: bytes) -> list[tuple[str, bytes]]:
    found = []
    for part in BytesParser(policy=default).parsebytes(raw).walk():
        if not part.is_multipart():
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            found.append((part.get_content_type(), payload))
    return found


def test_headers_parse_and_print_as_with_the_standard_policy() -> None:
    ours, standard = invoice_like(new_message()), invoice_like(EmailMessage(policy=default))
    for name in ("From", "To", "Subject", "Message-ID", "Content-Type"):
        assert str(ours[name]) == str(standard[name])
    assert ours["To"].addresses[0].display_name == "Zoë Müller"
    ours_again, standard_again = new_message(), EmailMessage(policy=default)
    ours_again["Subject"] = standard_again["Subject"] = "another"
    assert type(ours["Subject"]) is type(ours_again["Subject"])  # built once
    assert type(standard["Subject"]) is not type(standard_again["Subject"])  # built each time
    assert isinstance(MAIL_POLICY.header_factory, CachedHeaderRegistry)


def test_sealed_boundaries_keep_every_part_intact_through_smtp_flattening() -> None:
    message = invoice_like(new_message())
    seal_boundaries(message, "<LLEU-000042.abc.invoice@example.com>")
    raw = flatten_message(message)  # as aiosmtplib puts it on the wire
    received = parts(raw)
    assert [kind for kind, _ in received] == ["text/plain", "text/html", "application/pdf"]
    assert received[0][1].decode().replace("\r\n", "\n") == TEXT
    assert received[1][1].decode().replace("\r\n", "\n") == f"<p>{TEXT}</p>\n"
    assert received[2][1] == PDF
    assert base64.b64encode(PDF)[:40] in raw.replace(b"\r\n", b"")


def test_boundaries_depend_on_the_seed_only() -> None:
    def boundaries(seed: str) -> list[str | None]:
        message = invoice_like(new_message())
        seal_boundaries(message, seed)
        return [p.get_boundary() for p in message.walk() if p.is_multipart()]

    first = boundaries("<a@example.com>")
    assert first == boundaries("<a@example.com>")
    assert first != boundaries("<b@example.com>")
    assert len(set(first)) == 2 and all(b and b.startswith("=_") for b in first)
    message = invoice_like(new_message())
    seal_boundaries(message, "<a@example.com>")
    assert flatten_message(message) == flatten_message(message)


def test_a_repeated_header_is_parsed_once_and_shared_as_a_value() -> None:
    first, second = invoice_like(new_message()), invoice_like(new_message())
    assert first["Content-Type"] is second["Content-Type"]  # multipart/mixed, no boundary yet
    plain = next(p for p in first.walk() if p.get_content_type() == "text/plain")
    plain_again = next(p for p in second.walk() if p.get_content_type() == "text/plain")
    assert plain["Content-Type"] is plain_again["Content-Type"]
    assert plain["Content-Type"].params == {"charset": "utf-8"}
    seal_boundaries(first, "<a@example.com>")  # changing one message leaves the other alone
    assert first["Content-Type"] is not second["Content-Type"]
    assert second.get_boundary() is None and first.get_boundary() is not None
    shouted = new_message()
    shouted["SUBJECT"] = first["Subject"].__str__()
    assert shouted["Subject"].name == "SUBJECT"  # the name as written, not the cached one's
    assert flatten_message(shouted).startswith(b"SUBJECT: Invoice LLEU-000042")


def test_the_parsed_headers_kept_are_bounded() -> None:
    registry = CachedHeaderRegistry(parsed_kept=2)
    for n in range(5):
        registry("Subject", f"Invoice {n}")
    registry("Subject", "Invoice 4")
    info = registry._parsed.cache_info()
    assert (info.currsize, info.maxsize, info.hits, info.misses) == (2, 2, 1, 5)
