"""Policies are data: their validation needs neither database nor HSM."""

from __future__ import annotations

import pytest

from policies.ca_profiles import ISSUING_CA, ROOT_CA, CAProfile
from policies.keys import SUPPORTED_KEY_SPECS, KeyAlgorithm, KeySpec, SignatureScheme
from signing_api.config import Config, ConfigError
from signing_api.web.problems import PROBLEM_TYPES, Problem


def test_key_specs_round_trip() -> None:
    assert [s.name for s in SUPPORTED_KEY_SPECS] == [
        "rsa-2048",
        "rsa-3072",
        "rsa-4096",
        "ec-p256",
        "ec-p384",
    ]
    for spec in SUPPORTED_KEY_SPECS:
        assert KeySpec.parse(spec.name.upper()) == spec
    with pytest.raises(ValueError, match="unknown key type"):
        KeySpec.parse("dsa-1024")
    with pytest.raises(ValueError):
        KeySpec(KeyAlgorithm.RSA, rsa_bits=1024)
    with pytest.raises(ValueError):
        KeySpec(KeyAlgorithm.EC, curve="P-256", rsa_bits=2048)


def test_signature_schemes() -> None:
    assert (
        SignatureScheme.RSA_PSS_SHA384.is_pss
        and SignatureScheme.RSA_PSS_SHA384.hash_name == "sha384"
    )
    assert SignatureScheme.ECDSA_SHA512.key_algorithm is KeyAlgorithm.EC
    assert KeySpec.parse("ec-p384").default_scheme is SignatureScheme.ECDSA_SHA384


def test_ca_profiles() -> None:
    assert (
        ROOT_CA.key_spec.curve == "P-384"
        and ROOT_CA.validity_years == 20
        and ROOT_CA.path_length is None
    )
    assert ISSUING_CA.validity_years == 10 and ISSUING_CA.path_length == 0
    with pytest.raises(ValueError):
        CAProfile(
            name="x",
            key_label="x",
            key_spec=ROOT_CA.key_spec,
            validity_years=0,
            path_length=None,
            subject=(("CN", "x"),),
        )


def test_config_defaults_and_errors() -> None:
    config = Config.from_env({})
    assert config.database_url.startswith("sqlite:///") and config.database_url.endswith(
        "/var/tamga.db"
    )
    assert config.bind == "127.0.0.1:8000" and config.workers == 2
    assert config.public_url == "http://127.0.0.1:8000"
    assert "1234" not in repr(Config.from_env({"TAMGA_CA_PIN": "1234"}))
    with pytest.raises(ConfigError, match="TAMGA_WORKERS"):
        Config.from_env({"TAMGA_WORKERS": "0"})
    with pytest.raises(ConfigError, match="TAMGA_PUBLIC_URL"):
        Config.from_env({"TAMGA_PUBLIC_URL": "ftp://x"})


def test_problem_types() -> None:
    assert {p.status for p in PROBLEM_TYPES.values()} >= {400, 401, 403, 404, 405, 422, 500, 503}
    with pytest.raises(ValueError):
        Problem("no-such-type", "x")
    body = Problem("validation-failed", "bad", errors={"inn": "must be 14 digits"}).body("/x")
    assert '"field": "inn"' in body and '"instance": "/x"' in body
