"""``tamga init``: make an installation ready, creating only what is missing.

Order matters: PINs and SoftHSM tokens first (before this process loads PKCS#11), then the
database schema, then keys and certificates. A crash at any step leaves nothing that the next
run cannot pick up: keys are found again by label, rows by name.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from sqlalchemy.orm import Session

from ca import active_certificate, ensure_hierarchy, load_certificate
from ca.audit_log import ensure_audit_signer, sign_checkpoint
from ca.dispatch import ensure_dispatch
from ca.errors import HierarchyNotReady
from ca.ocsp_responder import ensure_ocsp_responder
from ca.tsa import ensure_tsa
from db import audit, check_connection, migrate
from db.sequencer import run_pending
from hsm.softhsm import init_token, is_softhsm, token_labels, write_config
from policies.ca_profiles import AUDIT_LOG, CA_TOKEN, CLOUD_TOKEN, DISPATCH
from policies.ocsp import OCSP
from policies.tsa import TSA
from signing_api.config import Config, ConfigError
from signing_api.runtime import Runtime, point_softhsm_at_home
from signing_api.web.public.health import HEALTH_KEY, ensure_health_key

__all__ = ["InitReport", "initialise", "publish_ca_files"]

REPO_ROOT = Path(__file__).resolve().parent.parent
SOFTHSM_TEMPLATE = REPO_ROOT / "softhsm.conf"


@dataclass(frozen=True)
class InitReport:
    created: tuple[str, ...]
    awaiting_issuer_import: bool


def _write_secret(path: Path, value: str) -> None:
    """Create ``path`` with mode 0600 and ``value``; never overwrite an existing secret."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(value + "\n")


def _ensure_pin_file(config: Config, name: str, from_env: str | None, created: list[str]) -> str:
    path = config.secrets_dir / name
    if from_env:
        return from_env
    if path.exists():
        return path.read_text(encoding="ascii").strip()
    value = secrets.token_urlsafe(18)
    _write_secret(path, value)
    created.append(f"secret {path.name}")
    return value


def _prepare_home(config: Config) -> None:
    config.home.mkdir(parents=True, exist_ok=True)
    config.secrets_dir.mkdir(mode=0o700, exist_ok=True)
    os.chmod(config.secrets_dir, 0o700)
    (config.public_dir / "ca").mkdir(parents=True, exist_ok=True)


def _ensure_softhsm_tokens(config: Config, created: list[str]) -> None:
    """Write the SoftHSM2 configuration and initialise the two tokens if missing."""
    if not SOFTHSM_TEMPLATE.exists():
        raise ConfigError(f"SoftHSM2 template {SOFTHSM_TEMPLATE} is missing from the installation")
    write_config(SOFTHSM_TEMPLATE, config.home)
    existing = set(token_labels(config.softhsm_conf))
    for label, env_pin in ((CA_TOKEN, config.ca_pin), (CLOUD_TOKEN, config.cloud_pin)):
        pin = _ensure_pin_file(config, f"{label}.pin", env_pin, created)
        if label in existing:
            continue
        so_pin = _ensure_pin_file(config, f"{label}.so-pin", None, created)
        init_token(config.softhsm_conf, label, pin, so_pin)
        created.append(f"token {label}")


def publish_ca_files(session: Session, public_dir: Path) -> None:
    """Write the CA certificates (DER ``.crt`` and ``.pem``) for a web server or CDN."""
    for name in ("root", "issuing", TSA.name, DISPATCH.name, OCSP.name, AUDIT_LOG.name):
        try:
            cert = active_certificate(session, name)
        except HierarchyNotReady:
            continue
        for suffix, encoding in (
            (".crt", serialization.Encoding.DER),
            (".pem", serialization.Encoding.PEM),
        ):
            target = public_dir / "ca" / f"{name}{suffix}"
            tmp = target.with_suffix(suffix + ".tmp")
            tmp.write_bytes(cert.public_bytes(encoding))
            tmp.replace(target)


def _ensure_tsa(
    session: Session, runtime: Runtime, public_url: str, now: datetime, created: list[str]
) -> None:
    """The time-stamping key and certificate, once the issuing CA has its certificate."""
    had_key = runtime.ca_token.has_key(TSA.key_label)
    try:
        active_certificate(session, TSA.name)
        had_certificate = True
    except HierarchyNotReady:
        had_certificate = False
    ensure_tsa(session, runtime.ca_token, public_url=public_url, now=now, actor="tamga-init")
    created.extend(
        what
        for what, had in (("tsa key", had_key), ("tsa certificate", had_certificate))
        if not had
    )


def _ensure_dispatch(
    session: Session, runtime: Runtime, public_url: str, now: datetime, created: list[str]
) -> None:
    """The dispatch-confirmation key and certificate, once the issuing CA has its certificate.

    A home made before dispatch confirmations existed gets both on its next ``tamga init``.
    """
    had_key = runtime.ca_token.has_key(DISPATCH.key_label)
    try:
        active_certificate(session, DISPATCH.name)
        had_certificate = True
    except HierarchyNotReady:
        had_certificate = False
    ensure_dispatch(session, runtime.ca_token, public_url=public_url, now=now, actor="tamga-init")
    created.extend(
        what
        for what, had in (("dispatch key", had_key), ("dispatch certificate", had_certificate))
        if not had
    )


def _ensure_ocsp(
    session: Session, runtime: Runtime, public_url: str, now: datetime, created: list[str]
) -> None:
    """The OCSP responder's key and certificate (renewed when due), once the issuing CA has its
    certificate."""
    had_key = runtime.ca_token.has_key(OCSP.key_label)
    try:
        before = active_certificate(session, OCSP.name).serial_number
    except HierarchyNotReady:
        before = None
    cert = ensure_ocsp_responder(
        session, runtime.ca_token, public_url=public_url, now=now, actor="tamga-init"
    )
    if not had_key:
        created.append("ocsp key")
    if before is None:
        created.append("ocsp certificate")
    elif cert.serial_number != before:
        created.append("ocsp certificate (renewed)")


def _ensure_audit_log(
    session: Session, runtime: Runtime, public_url: str, now: datetime, created: list[str]
) -> None:
    """The audit checkpoint key and certificate, then a first checkpoint (issue #16)."""
    had_key = runtime.ca_token.has_key(AUDIT_LOG.key_label)
    try:
        active_certificate(session, AUDIT_LOG.name)
        had_certificate = True
    except HierarchyNotReady:
        had_certificate = False
    ensure_audit_signer(
        session, runtime.ca_token, public_url=public_url, now=now, actor="tamga-init"
    )
    created.extend(
        what
        for what, had in (("audit key", had_key), ("audit certificate", had_certificate))
        if not had
    )


def checkpoint_when_due(runtime: Runtime, now: datetime) -> bool:
    """Number every waiting audit entry, then sign a checkpoint if one is due (the first one
    always); whether one was signed. Later ones are `tamga worker`'s."""
    run_pending(runtime.session_factory)
    with runtime.transaction() as session:
        signed = sign_checkpoint(
            session, runtime.ca_token, public_url=runtime.config.public_url, now=now
        )
    return signed is not None


def _restrict_sqlite_file(runtime: Runtime) -> None:
    """The embedded database holds the audit journal and token hashes: owner-only (0600)."""
    database = runtime.engine.url.database
    if runtime.engine.dialect.name == "sqlite" and database and Path(database).exists():
        os.chmod(database, 0o600)


def initialise(config: Config, *, now: datetime | None = None) -> InitReport:
    """Idempotent set-up of ``config.home``: secrets, tokens, schema, keys, CA hierarchy, and the
    TSA, dispatch-confirmation and OCSP signers."""
    now = now or datetime.now(UTC)
    created: list[str] = []
    _prepare_home(config)
    point_softhsm_at_home(config)
    if is_softhsm(config.pkcs11_module):
        _ensure_softhsm_tokens(config, created)
    external_root = None
    if config.root_cert is not None:
        try:
            external_root = load_certificate(config.root_cert.read_bytes())
        except OSError as ex:
            raise ConfigError(
                f"cannot read TAMGA_ROOT_CERT {config.root_cert}: {ex.strerror}"
            ) from None

    runtime = Runtime(config)
    check_connection(runtime.engine)
    migrate.upgrade(runtime.engine)
    _restrict_sqlite_file(runtime)
    for token in (runtime.ca_token, runtime.cloud_token):
        token.ping()  # wrong PIN or missing token: fail here, before anything is written
    with runtime.transaction() as session:
        for token in (runtime.ca_token, runtime.cloud_token):
            if ensure_health_key(token):
                created.append(f"health-check key on {token.label}")
                audit.append(
                    session,
                    actor="tamga-init",
                    action="key.generated",
                    object=f"hsm:{token.label}/{HEALTH_KEY}",
                    details={"algorithm": "ec-p256", "purpose": "health check"},
                    now=now,
                )
        status = ensure_hierarchy(
            session,
            runtime.ca_token,
            public_url=config.public_url,
            now=now,
            external_root=external_root,
        )
        created.extend(status.created)
        if status.issuing is not None:  # production: the TSA waits for the imported issuing CA
            _ensure_tsa(session, runtime, config.public_url, now, created)
            _ensure_dispatch(session, runtime, config.public_url, now, created)
            _ensure_ocsp(session, runtime, config.public_url, now, created)
            _ensure_audit_log(session, runtime, config.public_url, now, created)
        publish_ca_files(session, config.public_dir)
    if status.issuing is not None:
        # Every entry so far numbered and a first checkpoint signed (later ones: tamga worker).
        run_pending(runtime.session_factory)
        with runtime.transaction() as session:
            if sign_checkpoint(session, runtime.ca_token, public_url=config.public_url, now=now):
                created.append("audit checkpoint")
    runtime.engine.dispose()
    return InitReport(created=tuple(created), awaiting_issuer_import=status.issuing is None)
