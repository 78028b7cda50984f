"""signing_api.web.ca.registry_schemas: the registry's edge admits exactly what ``ca.registry`` and
``ca.powers`` accept, field by field (one-line values; control characters aside), and its
patterns are the ones the document publishes."""

from __future__ import annotations

import re
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from ca import powers, registry
from ca.errors import InvalidField
from signing_api.web.ca.registry_schemas import (
    EMAIL_PATTERN,
    PASSPORT_PATTERN,
    PHONE_PATTERN,
    ForeignAccessInput,
    HolderRequisites,
    PowerInput,
    RegistrationFilter,
    SubscriberInput,
)

COMPANY = {
    "inn": "01234567890123",
    "name": 'ОсОО "Ала-Тоо"',
    "legal_form": "ОсОО",
    "locality": "Бишкек",
    "email": "office@alatoo.kg",
}
PERSON = {
    "full_name": "Асанова Айгуль",
    "position": "Директор",
    "passport_series": "ID1234567",
    "email": "a@alatoo.kg",
    "phone": "+996555123456",
}
POWER = {
    "holder_id": 1,
    "taxpayer_inn": "11234567890123",
    "taxpayer_name": "ОсОО Береке",
    "taxpayer_legal_form": "ОсОО",
    "taxpayer_locality": "Ош",
    "document_number": "Д-1",
    "issued_on": "2026-10-30",
    "valid_from": "2026-11-01",
    "valid_until": "2027-10-31",
}


def _edge(model: type[BaseModel], data: dict[str, Any]) -> set[str]:
    try:
        model.model_validate(data)
    except ValidationError as ex:
        return {".".join(str(p) for p in e["loc"]) for e in ex.errors()}
    return set()


def _domain(check: Any, data: dict[str, Any]) -> set[str]:
    try:
        check(data)
    except InvalidField as ex:
        return {ex.field}
    return set()


def _holder(data: dict[str, Any]) -> object:
    return registry.validate_holder(data, COMPANY["name"], COMPANY["inn"], COMPANY["locality"])


def _power(data: dict[str, Any]) -> object:
    return powers._fields(data)


@pytest.mark.parametrize(
    "phone",
    ["+996555123456", "+996 555 123-456", "0555 12 34 56", "-+1234567", "+-1234567",
     "1234567", "123456", "+1234567890123456", "1+234567", "+996 555 12a", "++996555123456",
     "１２３４５６７８", "+996555123456 ", " 0555123456"],
)  # fmt: skip
def test_phone(phone: str) -> None:
    data = {**PERSON, "phone": phone}
    assert _edge(HolderRequisites, data) == _domain(_holder, data)


@pytest.mark.parametrize(
    "series",
    ["ID1234567", "id1234567", "AN 1234567", "an-1234567", "Ан 123", "ёж-1", "№?", "I", "12",
     "A" * 32, "A" * 33, "-ID1", " ID1 ", "ID  1234567"],
)  # fmt: skip
def test_passport_series(series: str) -> None:
    data = {**PERSON, "passport_series": series}
    assert _edge(HolderRequisites, data) == _domain(_holder, data)


EMAILS = ["a@alatoo.kg", "a.b+c@mail.alatoo.kg", "a@b", "a..b@c.kg", ".a@c.kg", "a@-b.kg",
          "a@b-.kg", "a@b.c-d.kg", "x" * 64 + "@b.kg", "x" * 65 + "@b.kg", "é@b.kg",
          "a b@c.kg", "a@b..kg", "@b.kg", "a@@b.kg", "a@" + "b" * 63 + ".kg",
          "a@" + "b" * 64 + ".kg"]  # fmt: skip


@pytest.mark.parametrize("email", EMAILS)
def test_email(email: str) -> None:
    person, company = {**PERSON, "email": email}, {**COMPANY, "email": email}
    assert _edge(HolderRequisites, person) == _domain(_holder, person)
    assert _edge(SubscriberInput, company) == _domain(registry.validate_subscriber, company)


@pytest.mark.parametrize(
    ("field", "value"),
    [("full_name", "Асанова"), ("full_name", "А" * 30 + " " + "Б" * 33),
     ("full_name", "А" * 30 + " " + "Б" * 34), ("position", ""), ("position", "   "),
     ("position", "Д" * 65), ("position", "  Директор   по  налогам ")],
)  # fmt: skip
def test_holder_text(field: str, value: str) -> None:
    data = {**PERSON, field: value}
    assert _edge(HolderRequisites, data) == _domain(_holder, data)


@pytest.mark.parametrize(
    ("field", "value"),
    [("inn", "0123456789012"), ("inn", "０１２３４５６７８９０１２３"), ("inn", 1234567890123),
     ("name", "Н" * 64), ("name", "Н" * 65), ("locality", "Л" * 128), ("locality", "Л" * 129),
     ("legal_form", None)],
)  # fmt: skip
def test_subscriber_fields(field: str, value: object) -> None:
    data = {**COMPANY, field: value}
    assert _edge(SubscriberInput, data) == _domain(registry.validate_subscriber, data)


@pytest.mark.parametrize(
    ("field", "value"),
    [("issued_on", "2026-10-30"), ("valid_from", "01.11.2026"), ("valid_from", "2026-02-30"),
     ("valid_from", "20261101"), ("valid_until", "9998-12-31"), ("valid_until", "9999-01-01"),
     ("issued_on", "1899-12-31"), ("issued_on", "２０２６-10-30"), ("issued_on", None),
     ("taxpayer_inn", "1123456789012"), ("taxpayer_name", ""), ("taxpayer_name", "Т" * 201),
     ("document_number", "Д" * 64)],
)  # fmt: skip
def test_power_fields(field: str, value: object) -> None:
    data = {**POWER, field: value}
    assert _edge(PowerInput, data) == _domain(_power, data)


def test_schema_patterns_say_what_is_checked() -> None:
    """The patterns the document publishes are valid ECMA-262 too (no Python-only syntax)."""
    for pattern in (EMAIL_PATTERN, PHONE_PATTERN, PASSPORT_PATTERN):
        assert not re.search(r"\(\?P|\\[AZz]", pattern), pattern
    properties = HolderRequisites.model_json_schema()["properties"]
    assert properties["phone"]["pattern"] == PHONE_PATTERN
    assert properties["passport_series"]["pattern"] == PASSPORT_PATTERN
    assert properties["email"]["pattern"] == EMAIL_PATTERN
    assert properties["email"]["format"] == "email"


def test_foreign_access_and_query_shapes() -> None:
    entry = {"address": "198.51.100.20", "location": "Алматы", "valid_from": "2026-11-01",
             "valid_until": "9999-12-31"}  # fmt: skip
    assert _edge(ForeignAccessInput, entry) == set()
    bad = {**entry, "address": "198.51.100.0/24", "valid_from": "2026-13-01"}
    assert _edge(ForeignAccessInput, bad) == {"address", "valid_from"}
    assert RegistrationFilter.model_validate({"status": ""}).status is None
    assert RegistrationFilter.model_validate({}).status is None
    assert _edge(RegistrationFilter, {"status": "done"}) == {"status"}
