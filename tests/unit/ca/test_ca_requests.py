"""ca.requests.IssueRequest: a request is refused when it is made, every bad field at once."""

from __future__ import annotations

import pytest

from ca.errors import InvalidFields
from ca.requests import IssueRequest
from policies.cert_profiles import CLOUD_DEFAULT_KEY_SPEC, CertRole, Storage


def test_every_bad_field_at_once() -> None:
    with pytest.raises(InvalidFields) as refused:
        IssueRequest.parse(holder_id="7", role="boss", storage="floppy")
    assert set(refused.value.errors) == {"holder_id", "role", "storage"}


@pytest.mark.parametrize("holder_id", [0, -1, True, 1.0, None])
def test_holder_ids(holder_id: object) -> None:
    with pytest.raises(InvalidFields) as refused:
        IssueRequest.parse(holder_id=holder_id, role="head", storage="cloud")
    assert set(refused.value.errors) == {"holder_id"}


def test_storage_decides_the_key() -> None:
    cloud = IssueRequest.parse(holder_id=1, role="head", storage="cloud")
    assert (cloud.role, cloud.storage, cloud.key_spec) == (
        CertRole.HEAD,
        Storage.CLOUD,
        CLOUD_DEFAULT_KEY_SPEC,
    )
    with pytest.raises(InvalidFields) as refused:
        IssueRequest.parse(
            holder_id=1, role="head", storage="cloud", csr="-----BEGIN", key_spec="x"
        )
    assert set(refused.value.errors) == {"csr_pem", "key_spec"}
    with pytest.raises(InvalidFields) as refused:
        IssueRequest.parse(
            holder_id=1, role="head", storage="rutoken", csr="  ", key_spec="ec-p256"
        )
    assert set(refused.value.errors) == {"csr_pem", "key_spec"}
    rutoken = IssueRequest.parse(holder_id=1, role="head", storage="rutoken", csr="PEM")
    assert rutoken.csr == b"PEM" and rutoken.key_spec is None
