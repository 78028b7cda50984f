"""Health of the service: the database answers and each token can really sign.

Each token holds a ``tamga-healthcheck`` key (EC P-256) made at ``tamga init``. A probe signs a
fresh random challenge with it and verifies the signature here: a logged-in session is not
enough, the token must produce a valid signature.
"""

from __future__ import annotations

import base64
import os
import secrets
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import select

from db import AuditHead, check_connection
from db.sequencer import backlog, latest_checkpoint
from hsm import HSMError, HSMToken
from policies.dates import iso_utc
from policies.keys import KeySpec, SignatureScheme
from signing_api.config import ConfigError
from signing_api.runtime import Runtime

__all__ = ["HEALTH_KEY", "ensure_health_key", "health_report", "probe_token"]

HEALTH_KEY = "tamga-healthcheck"


def ensure_health_key(token: HSMToken) -> bool:
    """Create the token's health-check key if missing; True when it was created."""
    if token.has_key(HEALTH_KEY):
        return False
    token.generate_key(HEALTH_KEY, KeySpec.parse("ec-p256"))
    return True


def probe_token(token: HSMToken) -> dict[str, Any]:
    """Sign a random challenge on the token and verify it; raises HSMError on failure."""
    challenge = secrets.token_bytes(32)
    signature = token.sign(HEALTH_KEY, challenge, SignatureScheme.ECDSA_SHA256)
    public = token.public_key(HEALTH_KEY)
    try:
        if not isinstance(public, ec.EllipticCurvePublicKey):
            raise InvalidSignature
        public.verify(signature, challenge, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise HSMError(f"token {token.label!r} produced a signature that does not verify") from None
    spki = public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return {
        "status": "ok",
        "challenge": base64.b64encode(challenge).decode(),
        "signature": base64.b64encode(signature).decode(),
        "public_key": base64.b64encode(spki).decode(),
    }


def health_report(runtime: Runtime) -> tuple[bool, dict[str, Any]]:
    """(healthy, report) for ``GET /healthz``. Never raises; failures are in the report."""
    checks: dict[str, Any] = {}
    try:
        check_connection(runtime.engine)
        checks["database"] = {"status": "ok", "dialect": runtime.engine.dialect.name}
    except Exception as ex:
        checks["database"] = {"status": "failed", "error": str(ex)}
    for name in ("ca_token", "cloud_token"):
        try:
            token: HSMToken = getattr(runtime, name)
            checks[name] = {"label": token.label, **probe_token(token)}
        except (HSMError, ConfigError) as ex:
            checks[name] = {"status": "failed", "error": str(ex)}
    healthy = all(c["status"] == "ok" for c in checks.values())
    # Reported, never a reason to leave the load balancer: a lagging sequencer (tamga worker
    # down) delays numbering, it loses nothing, and signing goes on.
    checks["audit"] = _audit_check(runtime)
    return healthy, {
        "status": "ok" if healthy else "unavailable",
        "worker_pid": os.getpid(),
        "checks": checks,
    }


AUDIT_LAG_WARNING_SECONDS = 60.0


def _audit_check(runtime: Runtime) -> dict[str, Any]:
    """The audit sequencer's backlog: entries waiting, the oldest one's wait, the tree's size."""
    try:
        with runtime.transaction() as session:
            waiting = backlog(session)
            size = session.scalar(select(AuditHead.tree_size))
            checkpoint = latest_checkpoint(session)
    except Exception as ex:  # the database check above says why
        return {"status": "failed", "error": str(ex).splitlines()[0]}
    delay = waiting.delay(runtime.now())
    return {
        "status": "ok" if delay <= AUDIT_LAG_WARNING_SECONDS else "lagging",
        "pending": waiting.pending,
        "delay_seconds": round(delay, 3),
        "tree_size": size,
        "checkpoint_tree_size": None if checkpoint is None else checkpoint.tree_size,
        "checkpoint_signed_at": None if checkpoint is None else iso_utc(checkpoint.signed_at),
    }
