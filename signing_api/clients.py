"""API clients: systems and officers that call ``/api/v1/`` with a bearer token.

A token is 256 bits from the CSPRNG, shown once at creation; only its SHA-256 is stored. A
fast hash is enough here (unlike passwords) because the token is random and long: nothing
to brute-force.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column

import ca.models  # noqa: F401 - subscribers.inn, the target of client_subscribers.inn
from db import Base, UTCDateTime, audit
from policies.roles import ClientRole

__all__ = [
    "ApiClient",
    "ClientError",
    "ClientSubscriber",
    "CreatedClient",
    "authenticate",
    "create_client",
]

TOKEN_PREFIX = "tmg_"  # noqa: S105 - a prefix that makes leaked tokens greppable


class ClientError(Exception):
    """Bad client name or role, duplicate name, unknown or disabled token."""


class ApiClient(Base):
    __tablename__ = "api_clients"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    role: Mapped[str] = mapped_column(String(32))
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    disabled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    @property
    def client_role(self) -> ClientRole:
        return ClientRole(self.role)


class ClientSubscriber(Base):
    """Which subscribers a non-officer API client may see and act for: its scope.

    A portal client sees the subscribers it registered and those an officer granted it
    (``tamga clients grant``); an officer client sees every subscriber.
    """

    __tablename__ = "client_subscribers"

    client_id: Mapped[int] = mapped_column(ForeignKey("api_clients.id"), primary_key=True)
    inn: Mapped[str] = mapped_column(ForeignKey("subscribers.inn"), primary_key=True)
    granted_at: Mapped[datetime] = mapped_column(UTCDateTime)
    granted_by: Mapped[str] = mapped_column(String(64))


@dataclass(frozen=True)
class CreatedClient:
    client_id: int
    name: str
    role: ClientRole
    token: str  # shown once; never stored


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_client(
    session: Session, *, name: str, role: str, now: datetime, actor: str
) -> CreatedClient:
    name = name.strip()
    if not 1 <= len(name) <= 100:
        raise ClientError("a client name must be 1 to 100 characters")
    try:
        client_role = ClientRole(role)
    except ValueError:
        roles = ", ".join(r.value for r in ClientRole)
        raise ClientError(f"unknown role {role!r}; choose one of {roles}") from None
    if session.scalar(select(ApiClient.id).where(ApiClient.name == name)) is not None:
        raise ClientError(f"a client named {name!r} already exists")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ApiClient(name=name, role=client_role.value, token_sha256=_digest(token), created_at=now)
    session.add(row)
    session.flush()
    audit.append(
        session,
        actor=actor,
        action="client.created",
        object=f"client:{row.id}",
        details={"name": name, "role": client_role.value},
        now=now,
    )
    return CreatedClient(client_id=row.id, name=name, role=client_role, token=token)


def authenticate(session: Session, token: str) -> ApiClient:
    """The active client holding ``token``; ClientError if none."""
    if not token.startswith(TOKEN_PREFIX):
        raise ClientError("malformed bearer token")
    row = session.scalar(select(ApiClient).where(ApiClient.token_sha256 == _digest(token)))
    if row is None or row.disabled_at is not None:
        raise ClientError("unknown or disabled bearer token")
    return row
