"""Submitting one message over SMTP, and reading an SMTP failure as permanent or transient.

Shared by the activities that send e-mail and want to tell Temporal whether a retry can
help: a 5xx answer is permanent (retrying sends the same refused message again), a 4xx
answer, a refused connection or a timeout is transient, and a server that lacks what the
settings require (STARTTLS, AUTH) is a configuration error no retry fixes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from enum import StrEnum

import aiosmtplib

from activities.notifications import SmtpSettings


class FailureKind(StrEnum):
    PERMANENT = "permanent"  # 5xx: the server will not take it as it is
    TRANSIENT = "transient"  # 4xx, connection refused or lost, timeout: try again later
    CONFIGURATION = "configuration"  # the server cannot do what the settings require


@dataclass(frozen=True)
class SmtpFailure:
    """One failed submission, as the caller reports it.

    `step` names what was refused ("the recipient", "the sender", "the message", ...);
    `code` and `reply` are the server's answer (no code when there was no answer);
    `recipients` are the addresses the server refused, if it refused recipients.
    """

    kind: FailureKind
    step: str
    code: int | None
    reply: str
    recipients: tuple[str, ...] = ()

    @property
    def answer(self) -> str:
        """'550 5.1.1 User unknown', or the error when the server gave no answer."""
        return f"{self.code} {self.reply}" if self.code is not None else self.reply


_STEPS: dict[type[Exception], str] = {
    aiosmtplib.SMTPSenderRefused: "the sender",
    aiosmtplib.SMTPRecipientRefused: "the recipient",
    aiosmtplib.SMTPDataError: "the message",
    aiosmtplib.SMTPAuthenticationError: "the login",
    aiosmtplib.SMTPHeloError: "the greeting",
    aiosmtplib.SMTPConnectResponseError: "the connection",
}


async def submit(
    smtp: SmtpSettings, message: EmailMessage, recipients: Sequence[str]
) -> dict[str, aiosmtplib.SMTPResponse]:
    """Send `message` to `recipients` (envelope) from `smtp.envelope_from`; returns the
    recipients the server refused while accepting others. Raises what aiosmtplib raises
    (read it with `classify`)."""
    errors, _ = await aiosmtplib.send(
        message,
        sender=smtp.envelope_from,
        recipients=list(dict.fromkeys(recipients)),
        hostname=smtp.host,
        port=smtp.port,
        username=smtp.username,
        password=smtp.password.get_secret_value() if smtp.password else None,
        use_tls=smtp.use_tls,
        start_tls=smtp.starttls,
        timeout=smtp.timeout,
    )
    return errors


def _by_code(code: int) -> FailureKind:
    return FailureKind.PERMANENT if code >= 500 else FailureKind.TRANSIENT


def classify(exc: Exception) -> SmtpFailure:
    """What `submit`'s exception means for a retry."""
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        refused = exc.recipients
        permanent = all(r.code >= 500 for r in refused)
        first = min(refused, key=lambda r: r.code) if refused else None
        return SmtpFailure(
            kind=FailureKind.PERMANENT if permanent and refused else FailureKind.TRANSIENT,
            step="the recipient",
            code=first.code if first else None,
            reply="; ".join(f"{r.code} {r.message}" for r in refused) if refused else str(exc),
            recipients=tuple(r.recipient for r in refused),
        )
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        step = next((s for t, s in _STEPS.items() if isinstance(exc, t)), "the session")
        recipients = (exc.recipient,) if isinstance(exc, aiosmtplib.SMTPRecipientRefused) else ()
        return SmtpFailure(_by_code(exc.code), step, exc.code, exc.message, recipients)
    if isinstance(exc, aiosmtplib.SMTPNotSupported) or type(exc) is aiosmtplib.SMTPException:
        # aiosmtplib's plain SMTPException: no STARTTLS or AUTH where the settings need it
        return SmtpFailure(FailureKind.CONFIGURATION, "the settings", None, str(exc))
    if isinstance(exc, ValueError):  # an address the server cannot take (non-ASCII, no SMTPUTF8)
        return SmtpFailure(FailureKind.PERMANENT, "the recipient", None, str(exc))
    return SmtpFailure(
        FailureKind.TRANSIENT, "the connection", None, f"{type(exc).__name__}: {exc}"
    )
