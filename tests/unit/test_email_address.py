"""`models.validation.EmailAddress`: pydantic's `EmailStr` rule and errors, checked once per
address."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, EmailStr, ValidationError

from models.deal import Contact
from models.validation import EmailAddress, _checked_email

SAMPLES = [
    "ap@example.com",
    "Zoe.Mueller@Example-Corp.DE",  # the domain is lower-cased, the local part kept
    "billing+invoices@sub.example.co.uk",
    "zoë@bücher.example",  # internationalised: normalised as EmailStr does
    "not-an-email",
    "two@@example.com",
    "trailing-dot.@example.com",
    "",
]


class Ours(BaseModel):
    email: EmailAddress


class Pydantics(BaseModel):
    email: EmailStr


def outcome(model: type[BaseModel], value: str) -> tuple[str, str]:
    try:
        return "ok", str(model.model_validate({"email": value}).model_dump()["email"])
    except ValidationError as exc:
        [error] = exc.errors()
        return error["type"], error["msg"]


@pytest.mark.parametrize("value", SAMPLES)
def test_the_same_verdict_and_message_as_emailstr(value: str) -> None:
    assert outcome(Ours, value) == outcome(Pydantics, value)


def test_a_bad_address_names_the_field_and_the_rule() -> None:
    with pytest.raises(ValidationError) as bad:
        Contact(name="Ada", email="ada.example.com")
    [error] = bad.value.errors()
    assert error["loc"] == ("email",)
    assert error["msg"] == (
        "value is not a valid email address: An email address must have an @-sign."
    )


def test_each_address_is_checked_once() -> None:
    _checked_email.cache_clear()
    for _ in range(5):
        Contact(name="Ada", email="ada@example.com")
    info = _checked_email.cache_info()
    assert (info.misses, info.hits) == (1, 4)
    with pytest.raises(ValidationError):  # a refusal is not cached: asked again, refused again
        Contact(name="Ada", email="ada@")
    with pytest.raises(ValidationError):
        Contact(name="Ada", email="ada@")
    assert _checked_email.cache_info().currsize == 1


def test_the_openapi_schema_still_says_email() -> None:
    assert Contact.model_json_schema()["properties"]["email"]["format"] == "email"
