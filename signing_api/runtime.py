"""Per-process wiring: the database engine, the two HSM tokens and their signers, created lazily.

Nothing here touches PKCS#11 until a token is first used, so the gunicorn master never
initialises the library; each worker does, after fork.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import cached_property

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from db import make_engine, make_session_factory
from hsm import HSMToken, Signer
from hsm.softhsm import is_softhsm
from policies.ca_profiles import CA_TOKEN, CLOUD_TOKEN, DISPATCH
from policies.tsa import TSA
from signing_api.config import Config, ConfigError

__all__ = ["Runtime", "point_softhsm_at_home", "read_pin"]


def point_softhsm_at_home(config: Config) -> None:
    """Make this process's SoftHSM2 use ``$TAMGA_HOME/softhsm2.conf`` (before PKCS#11 loads)."""
    if is_softhsm(config.pkcs11_module):
        os.environ["SOFTHSM2_CONF"] = str(config.softhsm_conf)


def read_pin(config: Config, token_label: str) -> str:
    """The user PIN of a token: from the environment, else from ``secrets/<token>.pin``."""
    env_pin = config.ca_pin if token_label == CA_TOKEN else config.cloud_pin
    if env_pin:
        return env_pin
    path = config.secrets_dir / f"{token_label}.pin"
    try:
        return path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        variable = "TAMGA_CA_PIN" if token_label == CA_TOKEN else "TAMGA_CLOUD_PIN"
        raise ConfigError(
            f"no PIN for token {token_label!r}: "
            f"set {variable} or run `tamga init` to generate {path}"
        ) from None


def _utc_now() -> datetime:
    return datetime.now(UTC)


class Runtime:
    """What one process needs to serve: configuration, database, tokens, and the clock.

    ``clock`` is the one source of "now" for routes and commands; tests replace it to move time.
    """

    def __init__(self, config: Config, clock: Callable[[], datetime] | None = None) -> None:
        self.config = config
        self.clock: Callable[[], datetime] = clock or _utc_now
        point_softhsm_at_home(config)

    def now(self) -> datetime:
        """The time (UTC, timezone-aware)."""
        return self.clock()

    @cached_property
    def engine(self) -> Engine:
        return make_engine(self.config.database_url)

    @cached_property
    def session_factory(self) -> sessionmaker[Session]:
        return make_session_factory(self.engine, inline_audit=self.config.inline_audit)

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session in a transaction: committed on success, rolled back on any error."""
        with self.session_factory() as session, session.begin():
            yield session

    @cached_property
    def ca_token(self) -> HSMToken:
        return HSMToken(self.config.pkcs11_module, CA_TOKEN, read_pin(self.config, CA_TOKEN))

    @cached_property
    def tsa_signer(self) -> Signer:
        """The TSA's key alone: what the signing routes may use of the CA token."""
        return self.ca_token.signer(TSA.key_label)

    @cached_property
    def dispatch_signer(self) -> Signer:
        """The dispatch-confirmation key alone (``ca.dispatch.confirm_dispatch``)."""
        return self.ca_token.signer(DISPATCH.key_label)

    @cached_property
    def cloud_token(self) -> HSMToken:
        return HSMToken(self.config.pkcs11_module, CLOUD_TOKEN, read_pin(self.config, CLOUD_TOKEN))
