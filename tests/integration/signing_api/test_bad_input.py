"""Every bad input answered cleanly (issue #12, items 9 and 10): no 500, no misread id.

Each test performs the attack through the Flask test client first: ids beyond 64 bits in paths
and bodies, identifiers written with non-ASCII digits, JSON nested a thousand deep, each on the
JSON API (problem+json) and on the CSC API (its own error form).
"""

from __future__ import annotations

import pytest

from tests.ca_fixtures import CaApi

pytestmark = [pytest.mark.hsm, pytest.mark.db]

GIANT = "1180591620717411303424"  # 2**70
DEEP = "[" * 1000 + "]" * 1000


def _problem(answer: object, status: int) -> None:
    assert answer.status_code == status, answer.data  # type: ignore[attr-defined]
    assert answer.mimetype == "application/problem+json"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", f"/api/v1/signatures/{GIANT}"),
        ("get", f"/api/v1/holders/{GIANT}"),
        ("patch", f"/api/v1/holders/{GIANT}"),
        ("patch", "/api/v1/holders/0"),
        ("patch", "/api/v1/holders/9223372036854775808"),
        ("get", "/api/v1/holders/01"),
        ("get", "/api/v1/holders/\u0663"),  # ARABIC-INDIC DIGIT THREE: not holder 3
        ("post", f"/api/v1/renewals/{GIANT}/approve"),
        ("post", f"/api/v1/powers-of-attorney/{GIANT}/revoke"),
    ],
)
def test_ids_no_row_can_have_are_404_whatever_the_method(
    ca_api: CaApi, method: str, path: str
) -> None:
    """Werkzeug answered 405 when the number failed the converter but another method had the
    route (PATCH /holders/0); and \\d in its converter read Arabic-Indic digits as an id."""
    body = {"note": "ended"} if path.endswith("/revoke") else {}
    answer = getattr(ca_api.client, method)(path, json=body, headers=ca_api.headers("officer"))
    _problem(answer, 404)


@pytest.mark.parametrize("holder_id", [9223372036854775808, 2**70, -1, 0])
def test_a_body_id_beyond_a_database_id_is_422(ca_api: CaApi, holder_id: int) -> None:
    answer = ca_api.post(
        "/api/v1/certificates", {"holder_id": holder_id, "role": "head", "storage": "cloud"}
    )
    _problem(answer, 422)
    assert {e["field"] for e in answer.json["errors"]} == {"holder_id"}


@pytest.mark.parametrize("user_id", ["\u0663", "\uff13", GIANT, "-3", "3 "])
def test_csc_user_id_is_ascii_digits_only(ca_api: CaApi, user_id: str) -> None:
    """``userID: "٣"`` must not select holder 3; a giant one is no 500."""
    answer = ca_api.post("/csc/v1/credentials/list", {"userID": user_id}, who="portal")
    assert answer.status_code == 400, answer.data
    assert answer.json["error"] == "invalid_request"


@pytest.mark.parametrize(
    ("path", "who"),
    [("/api/v1/accounts", "officer"), ("/api/v1/holders", "officer")],
)
def test_json_nested_a_thousand_deep_is_400(ca_api: CaApi, path: str, who: str) -> None:
    answer = ca_api.client.post(
        path,
        data='{"inn": ' + DEEP + "}",
        headers={**ca_api.headers(who), "Content-Type": "application/json"},
    )
    _problem(answer, 400)


def test_csc_answers_deep_json_in_its_own_form(ca_api: CaApi) -> None:
    answer = ca_api.client.post(
        "/csc/v1/credentials/list",
        data='{"userID": ' + DEEP + "}",
        headers={**ca_api.headers("portal"), "Content-Type": "application/json"},
    )
    assert answer.status_code == 400, answer.data
    assert set(answer.json) == {"error", "error_description"}
    assert answer.json["error"] == "invalid_request"


def test_whole_numbers_too_large_for_a_float_are_refused_not_500(ca_api: CaApi) -> None:
    for amount in ("1e400", "-1e400", "1" + "0" * 5000, "NaN", "Infinity"):
        answer = ca_api.client.post(
            "/api/v1/accounts/12345678901234/cash-receipts",
            data=f'{{"number": "1", "amount": {amount}}}',
            headers={**ca_api.headers("officer"), "Content-Type": "application/json"},
        )
        assert answer.status_code in (400, 422), (amount, answer.data)
        assert answer.mimetype == "application/problem+json"
