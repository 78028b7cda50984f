"""The typed edge (web/contract.py) through real routes: one shape of refusal everywhere.

Every bad field is named at once; unknown fields and wrong JSON types are refused; a body that
is not JSON is 415; a number in a path beyond a database id is a 404, never a 500; the CSC API
answers the same refusals in its own error form. Nothing is written by a refused request.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from billing.models import CustomerAccount
from tests.ca_fixtures import CaApi

pytestmark = [pytest.mark.hsm, pytest.mark.db]

GIANT = "1180591620717411303424"  # 2**70: more than any database id


def _fields(answer: Any) -> dict[str, str]:
    assert answer.mimetype == "application/problem+json", answer.data
    assert answer.json["type"] == "urn:tamga:problem:validation-failed"
    return {e["field"]: e["detail"] for e in answer.json["errors"]}


def test_every_bad_field_is_named_at_once_and_nothing_is_written(ca_api: CaApi) -> None:
    answer = ca_api.post("/api/v1/accounts", {"inn": "123", "name": "  ", "colour": "red"})
    assert answer.status_code == 422
    assert _fields(answer) == {
        "inn": "a 14-digit INN",
        "name": "a non-empty string",
        "colour": "is not a field of this request",
    }
    with ca_api.runtime.transaction() as session:
        assert session.scalar(select(func.count()).select_from(CustomerAccount)) == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"inn": 12345678901234, "name": "ОсОО Тест"}, "inn"),  # a number is not a string
        ({"inn": "12345678901234", "name": ["ОсОО"]}, "name"),
        ({"inn": "12345678901234"}, "name"),
    ],
)
def test_wrong_json_types_are_refused(ca_api: CaApi, body: dict[str, Any], field: str) -> None:
    answer = ca_api.post("/api/v1/accounts", body)
    assert answer.status_code == 422 and field in _fields(answer)


def test_strict_integers(ca_api: CaApi) -> None:
    inn = "12345678901234"
    assert ca_api.post("/api/v1/accounts", {"inn": inn, "name": "ОсОО Тест"}).status_code == 201
    for amount in ("100", 100.5, True, 1e300):
        answer = ca_api.post(
            f"/api/v1/accounts/{inn}/cash-receipts", {"number": "1", "amount": amount}
        )
        assert answer.status_code == 422 and _fields(answer) == {"amount": "a whole number"}


def test_a_whole_number_written_with_a_fraction_is_an_integer(ca_api: CaApi) -> None:
    """JSON Schema's ``integer`` is a number with a whole value: 100.0 and 1e2 are 100, as the
    document says (schemathesis sends them as valid integers)."""
    inn = "12345678901234"
    assert ca_api.post("/api/v1/accounts", {"inn": inn, "name": "ОсОО Тест"}).status_code == 201
    for number, amount in (("1", "100.0"), ("2", "1e2"), ("3", "1.00E+2")):
        answer = ca_api.client.post(
            f"/api/v1/accounts/{inn}/cash-receipts",
            data=f'{{"number": "{number}", "amount": {amount}}}',
            headers={**ca_api.headers("officer"), "Content-Type": "application/json"},
        )
        assert answer.status_code == 201, answer.json
        assert answer.json["amount"] == 100


def test_a_body_that_is_not_json(ca_api: CaApi) -> None:
    answer = ca_api.client.post(
        "/api/v1/accounts",
        data="inn=12345678901234",
        headers={**ca_api.headers("officer"), "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert answer.status_code == 415 and answer.mimetype == "application/problem+json"
    broken = ca_api.client.post(
        "/api/v1/accounts",
        data="{not json",
        headers={**ca_api.headers("officer"), "Content-Type": "application/json"},
    )
    assert broken.status_code == 400 and broken.mimetype == "application/problem+json"


@pytest.mark.parametrize(
    "path",
    [
        f"/api/v1/signatures/{GIANT}",
        f"/api/v1/registrations/{GIANT}",
        f"/api/v1/renewals/{GIANT}",
        "/api/v1/signatures/0",
    ],
)
def test_numbers_beyond_a_database_id_are_404(ca_api: CaApi, path: str) -> None:
    answer = ca_api.get(path)
    assert answer.status_code == 404, answer.data
    assert answer.mimetype == "application/problem+json"


def test_csc_refuses_bad_bodies_in_its_own_form(ca_api: CaApi) -> None:
    answer = ca_api.post(
        "/csc/v1/signatures/signHash",
        {"credentialID": "zz", "SAD": "x", "hash": [], "hashAlgo": "1.2.3", "signAlgo": "x"},
        who="portal",
    )
    assert answer.status_code == 400
    assert answer.json["error"] == "invalid_request"
    for field in ("credentialID", "hash", "hashAlgo"):
        assert field in answer.json["error_description"]
    assert set(answer.json) == {"error", "error_description"}


def test_the_document_states_the_rules(ca_api: CaApi) -> None:
    doc = ca_api.client.get("/openapi.json").json
    schemas = doc["components"]["schemas"]
    opening = schemas["AccountOpening"]
    assert opening["additionalProperties"] is False
    assert opening["properties"]["inn"]["pattern"] == "^[0-9]{14}$"
    assert opening["properties"]["name"]["maxLength"] == 300
    sign = doc["paths"]["/csc/v1/signatures/signHash"]["post"]
    assert sign["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/SignHashRequest"
    )
    assert sign["responses"]["400"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/CSCError"
    )
    signature = doc["paths"]["/api/v1/signatures/{signature_id}"]["get"]
    assert signature["parameters"][0]["schema"]["maximum"] == 2**63 - 1
