"""The certificate routes' edge models accept what the CA accepts, and say why they refuse."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from ca.revocation import REVOCATION_REASONS, parse_reason
from policies.keys import KeySpec
from signing_api.web.ca.schemas import (
    CertificateQuery,
    CertificateRequest,
    RenewalSubmission,
    Revocation,
)
from signing_api.web.contract import field_errors

CLOUD = {"holder_id": 7, "role": "head", "storage": "cloud"}


def _refused(model: type[BaseModel], data: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(ValidationError) as caught:
        model.model_validate_json(json.dumps(data))
    return field_errors(caught.value)


def test_key_specs_are_forgiven_as_the_ca_forgives_them() -> None:
    for sent in ("ec-p256", "EC_P256", " rsa-2048 "):
        body = CertificateRequest.model_validate_json(json.dumps({**CLOUD, "key_spec": sent}))
        assert body.key_spec == sent  # the CA reads it with KeySpec.parse
        KeySpec.parse(sent)
    assert "ec-p256" in _refused(CertificateRequest, {**CLOUD, "key_spec": "rsa-1024"})["key_spec"]


def test_every_bad_field_at_once() -> None:
    errors = _refused(
        CertificateRequest,
        {"holder_id": True, "role": "boss", "storage": "usb", "pin": "1", "colour": "red"},
    )
    assert set(errors) == {"holder_id", "role", "storage", "pin", "colour"}
    assert errors["colour"] == "is not a field of this request"


def test_revocation_reasons_are_the_cas() -> None:
    for flag in REVOCATION_REASONS.values():
        for spelling in (flag.name, flag.value):
            assert Revocation.model_validate({"reason": spelling}).reason == spelling
            assert parse_reason(spelling) is flag
    hold = _refused(Revocation, {"reason": "certificateHold"})
    assert hold == {"reason": "certificateHold is a suspension: use suspend"}
    assert set(_refused(Revocation, {"reason": "whim"})) == {"reason"}


def test_invalidity_date_needs_its_offset() -> None:
    when = Revocation.model_validate(
        {"reason": "keyCompromise", "invalidity_date": "2026-11-23T06:30:00Z"}
    )
    assert when.invalidity_date is not None and when.invalidity_date.utcoffset() is not None
    for bad in ("yesterday", "2026-11-23T06:30:00"):
        errors = _refused(Revocation, {"reason": "keyCompromise", "invalidity_date": bad})
        assert set(errors) == {"invalidity_date"}
    assert set(_refused(Revocation, {"reason": "keyCompromise", "invalidity_date": 5})) == {
        "invalidity_date"
    }


def test_renewal_signature_is_base64_or_pem() -> None:
    base = {"serial": "0A1b", "document": "text"}
    RenewalSubmission.model_validate({**base, "signature": "MIIBAA=="})
    RenewalSubmission.model_validate({**base, "signature": "-----BEGIN PKCS7-----\nMII=\n"})
    assert set(_refused(RenewalSubmission, {**base, "signature": "not base64!"})) == {"signature"}
    assert set(_refused(RenewalSubmission, {**base, "serial": "xyz", "signature": "AA=="})) == {
        "serial"
    }


def test_query_numbers_are_digits() -> None:
    assert (
        CertificateQuery.model_validate({"expiring_within_days": "30"}).expiring_within_days == 30
    )
    for bad in ("-1", "+5", "1_0", " 5", "3661"):
        with pytest.raises(ValidationError):
            CertificateQuery.model_validate({"expiring_within_days": bad})
