"""How our e-mails are built: one header policy and MIME boundaries fixed in advance.

The standard library's header registry (`email.headerregistry.HeaderRegistry`) creates a new
class with `type()` for every header it parses: about 30 µs each, plus work for the garbage
collector, and an invoice e-mail parses about forty headers while it is built and flattened.
`MAIL_POLICY` is `email.policy.default` with a registry that builds each header class once,
and parses each recent (name, text) pair once: most of an invoice e-mail's headers are the
same in every one (`Content-Type: text/plain; charset="utf-8"`, `MIME-Version: 1.0`, ...),
and parsing their parameters was most of the time it took to build one. A header object is
a value (a `str` that is never changed in place), so messages can share it.

Boundaries: left unset, the generator draws a random one when the message is flattened and
searches the whole message (the PDF included) for it, then sets it through the policy of
whoever flattens (aiosmtplib's `email.policy.SMTP`, with the uncached registry).
`seal_boundaries` sets them when the message is built instead: `=_` followed by a digest.
That sequence cannot occur in a quoted-printable or base64 body (quoted-printable writes `=`
only as `=XX` or at a line end, base64 has no `_`), which are the only encodings our parts
use, so no search is needed; and a retried send carries byte-identical bodies.
"""

from __future__ import annotations

import hashlib
from email.headerregistry import BaseHeader, HeaderRegistry
from email.message import EmailMessage
from email.policy import default
from functools import lru_cache
from typing import Any


class CachedHeaderRegistry(HeaderRegistry):
    """`HeaderRegistry` that builds the class for each header name once, and each header
    from the same name and text once while it is among the `parsed_kept` most recent."""

    def __init__(self, parsed_kept: int = 512) -> None:
        super().__init__()
        self._classes: dict[str, type[BaseHeader]] = {}
        self._parsed = lru_cache(maxsize=parsed_kept)(super().__call__)

    def __call__(self, name: str, value: Any) -> BaseHeader:
        if type(value) is str:  # an Address or a header object is built as it comes
            return self._parsed(name, value)
        return super().__call__(name, value)

    def __getitem__(self, name: str) -> type[BaseHeader]:
        key = name.lower()
        cls = self._classes.get(key)
        if cls is None:
            cls = self._classes[key] = super().__getitem__(name)
        return cls


MAIL_POLICY = default.clone(header_factory=CachedHeaderRegistry())


def new_message() -> EmailMessage:
    return EmailMessage(policy=MAIL_POLICY)


def seal_boundaries(message: EmailMessage, seed: str) -> None:
    """Give every multipart of `message` its boundary: `=_<digest of seed>.<n>`."""
    digest = hashlib.sha256(seed.encode()).hexdigest()[:32]
    for n, part in enumerate(p for p in message.walk() if p.is_multipart()):
        part.set_boundary(f"=_{digest}.{n}")
