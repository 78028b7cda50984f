"""API clients: systems and officers that call ``/api/v1/`` with a bearer token.

A token is 256 bits from the CSPRNG, shown once at creation; only its SHA-256 is stored. A
fast hash is enough here (unlike passwords) because the token is random and long: nothing
to brute-force.

Lifecycle (``tamga clients list|disable|rotate|grant|revoke-grant``): every change is
journalled and takes effect on the next request, because each request authenticates and reads
the scope afresh: a disabled client's token is refused, a rotated token is replaced (the old one
refused), a revoked grant leaves the subscriber outside the scope (404).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, String, delete, func, select
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
    "clients_with_scope",
    "create_client",
    "disable_client",
    "find_client",
    "grant",
    "has_scope",
    "list_clients",
    "revoke_grant",
    "rotate_token",
    "scope_of",
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


def find_client(session: Session, name: str) -> ApiClient:
    """The client named ``name``; ClientError if none."""
    row = session.scalar(select(ApiClient).where(ApiClient.name == name.strip()))
    if row is None:
        raise ClientError(f"no client named {name!r}")
    return row


def scope_of(session: Session, client_id: int) -> list[str]:
    """The INNs in a client's scope, sorted."""
    query = select(ClientSubscriber.inn).where(ClientSubscriber.client_id == client_id)
    return sorted(session.scalars(query))


def has_scope(session: Session, client_id: int, inn: str) -> bool:
    return session.get(ClientSubscriber, (client_id, inn)) is not None


def clients_with_scope(session: Session, inn: str) -> list[ApiClient]:
    """The non-officer clients that have subscriber ``inn`` in their scope, by id."""
    query = (
        select(ApiClient)
        .join(ClientSubscriber, ClientSubscriber.client_id == ApiClient.id)
        .where(ClientSubscriber.inn == inn)
        .order_by(ApiClient.id)
    )
    return list(session.scalars(query))


def list_clients(session: Session) -> list[tuple[ApiClient, int]]:
    """Every client by id, with the number of subscribers in its scope."""
    query = select(ClientSubscriber.client_id, func.count()).group_by(ClientSubscriber.client_id)
    counts = {client_id: count for client_id, count in session.execute(query).tuples()}
    rows = session.scalars(select(ApiClient).order_by(ApiClient.id))
    return [(row, int(counts.get(row.id, 0))) for row in rows]


def grant(
    session: Session,
    *,
    client_id: int,
    inn: str,
    now: datetime,
    actor: str,
    registration: int | None = None,
) -> bool:
    """Put subscriber ``inn`` in client ``client_id``'s scope; False if it already was."""
    if has_scope(session, client_id, inn):
        return False
    session.add(ClientSubscriber(client_id=client_id, inn=inn, granted_at=now, granted_by=actor))
    session.flush()
    details: dict[str, object] = {"inn": inn}
    if registration is not None:
        details["registration"] = registration
    audit.append(
        session,
        actor=actor,
        action="client.scope.granted",
        object=f"client:{client_id}",
        details=details,
        now=now,
    )
    return True


def revoke_grant(session: Session, *, client_id: int, inn: str, now: datetime, actor: str) -> bool:
    """Take subscriber ``inn`` out of the client's scope; False if it was not in it."""
    if not has_scope(session, client_id, inn):
        return False
    session.execute(
        delete(ClientSubscriber).where(
            ClientSubscriber.client_id == client_id, ClientSubscriber.inn == inn
        )
    )
    audit.append(
        session,
        actor=actor,
        action="client.scope.revoked",
        object=f"client:{client_id}",
        details={"inn": inn},
        now=now,
    )
    return True


def disable_client(session: Session, name: str, *, now: datetime, actor: str) -> ApiClient:
    """Disable a client for good: its token is refused from the next request on.

    Disabling a disabled client returns it unchanged (nothing journalled again).
    """
    row = find_client(session, name)
    session.refresh(row, with_for_update=True)
    if row.disabled_at is not None:
        return row
    row.disabled_at = now
    session.flush()
    audit.append(
        session,
        actor=actor,
        action="client.disabled",
        object=f"client:{row.id}",
        details={"name": row.name, "role": row.role},
        now=now,
    )
    return row


def rotate_token(session: Session, name: str, *, now: datetime, actor: str) -> CreatedClient:
    """A new token for an active client; the old one is refused from the next request on."""
    row = find_client(session, name)
    session.refresh(row, with_for_update=True)
    if row.disabled_at is not None:
        raise ClientError(f"client {row.name!r} is disabled: its token cannot be rotated")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row.token_sha256 = _digest(token)
    session.flush()
    audit.append(
        session,
        actor=actor,
        action="client.token.rotated",
        object=f"client:{row.id}",
        details={"name": row.name},
        now=now,
    )
    return CreatedClient(client_id=row.id, name=row.name, role=row.client_role, token=token)
