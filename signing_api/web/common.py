"""What the CA's HTTP routes share: error mapping, the caller's scope, the acting holder.

Scope: an officer client sees every subscriber; any other client sees only the subscribers in
its scope (``client_subscribers``: the ones it registered, and those an officer granted it with
``tamga clients grant``). An object outside the caller's scope is answered 404, exactly like an
object that does not exist, so that a client cannot even learn which INNs are registered.

Acting holder: the portal acts for a holder it has authenticated and names it in the
``X-Tamga-Holder`` header (the holder id). Rules that depend on *who* acts (a holder revoking its
own certificate, a company head revoking its company's others) read it with ``acting_holder``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from flask import g, request
from sqlalchemy import select
from sqlalchemy.orm import Session

import billing
from ca.errors import (
    CAError,
)
from ca.models import Holder
from policies.roles import ClientRole
from signing_api.clients import ClientSubscriber, grant
from signing_api.web.context import runtime
from signing_api.web.problems import Problem, problem_of

__all__ = [
    "HOLDER_HEADER",
    "acting_holder",
    "ca_refusals",
    "ca_transaction",
    "grant",
    "is_officer",
    "require_visible",
    "visible_inns",
]

HOLDER_HEADER = "X-Tamga-Holder"


@contextmanager
def ca_refusals() -> Iterator[None]:
    """A CA or billing refusal raised inside becomes a Problem."""
    try:
        yield
    except (CAError, billing.BillingError) as ex:
        raise problem_of(ex) from None


@contextmanager
def ca_transaction() -> Iterator[Session]:
    """A session in a transaction; a CA or billing refusal rolls back and becomes a Problem."""
    with ca_refusals(), runtime().transaction() as session:
        yield session


def is_officer() -> bool:
    role: ClientRole = g.client_role
    return role is ClientRole.OFFICER


def visible_inns(session: Session) -> set[str] | None:
    """The INNs the caller may see; None means all (an officer)."""
    if is_officer():
        return None
    query = select(ClientSubscriber.inn).where(ClientSubscriber.client_id == g.client_id)
    return set(session.scalars(query))


def require_visible(session: Session, inn: str, what: str = "subscriber") -> None:
    """404 unless the caller may see subscriber ``inn``'s objects."""
    inns = visible_inns(session)
    if inns is not None and inn not in inns:
        raise Problem("not-found", f"no {what} of that reference is visible to this client")


def acting_holder(session: Session) -> Holder | None:
    """The holder named by ``X-Tamga-Holder`` (checked against the caller's scope), if any."""
    raw = request.headers.get(HOLDER_HEADER)
    if raw is None:
        return None
    if not raw.isascii() or not raw.isdigit() or len(raw) > 18:
        raise Problem("bad-request", f"{HOLDER_HEADER} is a holder id (digits)")
    holder = session.get(Holder, int(raw))
    if holder is None:
        raise Problem("not-found", f"{HOLDER_HEADER}: no such holder")
    require_visible(session, holder.subscriber_inn, "holder")
    return holder
