"""The cloud key pool's policy (policies/key_pool.py): what it accepts and what it refuses."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from policies.cert_profiles import CLOUD_ALLOWED_KEY_SPECS
from policies.key_pool import KEY_POOL, KeyPoolPolicy
from policies.keys import KeySpec


def _policy(**changes: Any) -> KeyPoolPolicy:
    fields: dict[str, Any] = {
        "targets": (("ec-p256", 2), ("rsa-2048", 1)),
        "max_age": timedelta(days=1),
        "keys_per_pass": 1,
        "pass_budget": timedelta(seconds=1),
        **changes,
    }
    return KeyPoolPolicy(**fields)


def test_the_default_pool_serves_every_cloud_key_spec() -> None:
    assert set(KEY_POOL.specs) == set(CLOUD_ALLOWED_KEY_SPECS)
    assert KEY_POOL.target("ec-p256") == 200 and KEY_POOL.target("rsa-2048") == 20
    assert KEY_POOL.max_age == timedelta(days=30)
    assert KEY_POOL.target("ec-p384") == 0  # not pooled: issuance would generate it


def test_specs_keep_their_order_and_names() -> None:
    policy = _policy(targets=(("rsa-2048", 0), ("ec-p256", 5)))
    assert policy.specs == (KeySpec.parse("rsa-2048"), KeySpec.parse("ec-p256"))
    assert policy.target("rsa-2048") == 0  # a zero target is allowed: that spec is not pooled


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"targets": (("ec-p256", 1), ("ec-p256", 2))}, "listed twice"),
        ({"targets": (("ec-p384", 1),)}, "not a cloud key spec"),
        ({"targets": (("rsa-4096", 1),)}, "not a cloud key spec"),
        ({"targets": (("ec-p256", -1),)}, "must not be negative"),
        ({"max_age": timedelta(0)}, "must be positive"),
        ({"pass_budget": timedelta(seconds=-1)}, "must be positive"),
        ({"keys_per_pass": 0}, "at least 1"),
        ({"expire_batch": 0}, "at least 1"),
    ],
)
def test_a_policy_that_cannot_work_is_refused(changes: dict[str, Any], words: str) -> None:
    with pytest.raises(ValueError, match=words):
        _policy(**changes)
