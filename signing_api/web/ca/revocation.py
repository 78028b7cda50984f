"""HTTP routes of the CA: suspend, resume and revoke a certificate.

``POST /api/v1/certificates/<serial>/revoke`` ``{reason, invalidity_date?, note?}``,
``.../suspend`` ``{note?}``, ``.../resume`` ``{note?}``. An officer may act on any certificate;
a portal acts for the holder it names in ``X-Tamga-Holder`` (its own certificate, or any of
its company's when it heads the company). Inside the change's transaction the issuing CA's
delta CRL that lists it is signed (``crl.status_changed``); after the commit it is written for
static serving, the full CRL is reissued too while it is small (``full_after_change_up_to``),
and a revoked cloud key is destroyed in the HSM.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime

from flask import Blueprint, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from ca.issuance import get_certificate
from ca.models import Certificate
from ca.revocation import Actor, destroy_revoked_key, resume, revoke, suspend
from crl import StatusPublished
from hsm import HSMError
from policies.roles import ClientRole
from signing_api.web.ca.certificates import certificate_json
from signing_api.web.ca.schemas import (
    HOLDER_PARAMETER,
    SERIAL_PARAMETER,
    Revocation,
    StatusNote,
)
from signing_api.web.ca.schemas import Certificate as CertificateView
from signing_api.web.common import acting_holder, ca_transaction, is_officer, require_visible
from signing_api.web.context import actor, now, reply, runtime
from signing_api.web.contract import Reply, operation
from signing_api.web.public.crl import after_status_change_committed, sign_status_change

__all__ = ["after_status_changes", "blueprint", "status_changed_in"]

log = logging.getLogger(__name__)
blueprint = Blueprint("revocation", __name__)
_CALLERS = (ClientRole.OFFICER, ClientRole.PORTAL)


def status_changed_in(
    session: Session, row_ids: Iterable[int], moment: datetime
) -> StatusPublished:
    """The status-change hook, in the change's transaction: sign the delta CRL listing the
    certificates ``row_ids`` (the issuing CA's)."""
    ids = tuple(row_ids)
    serials = session.scalars(select(Certificate.serial).where(Certificate.id.in_(ids)))
    return sign_status_change(
        session, runtime(), now=moment, actor=actor(), serials=[int(s, 16) for s in serials]
    )


def after_status_changes(
    row_ids: Iterable[int], moment: datetime, published: StatusPublished
) -> None:
    """After certificates changed status (committed): publish the delta signed in the
    transaction (and the full CRL while it is small), then destroy each revoked cloud key."""
    rt = runtime()
    after_status_change_committed(rt, published, moment)
    for row_id in row_ids:
        with rt.transaction() as session:
            row = session.get_one(Certificate, row_id)
            try:
                destroy_revoked_key(session, row, rt.cloud_token, now=moment)
            except HSMError as ex:  # pragma: no cover - the key stays; an officer retries
                log.error("cannot destroy the key of %s: %s", row.serial, ex)


def _change(serial: str, action: str, body: StatusNote | Revocation) -> Response:
    moment = now()
    with ca_transaction() as session:
        row = get_certificate(session, serial)
        require_visible(session, row.subscriber_inn, "certificate")
        holder = acting_holder(session)
        who = Actor(actor(), officer=is_officer(), holder_id=None if holder is None else holder.id)
        if isinstance(body, Revocation):
            row = revoke(session, row, reason=body.reason, invalidity_date=body.invalidity_date,
                         note=body.note, now=moment, who=who)  # fmt: skip
        elif action == "suspend":
            row = suspend(session, row, note=body.note, now=moment, who=who)
        else:
            row = resume(session, row, note=body.note, now=moment, who=who)
        row_id = row.id
        published = status_changed_in(session, (row_id,), moment)  # the hook: same transaction
    after_status_changes((row_id,), moment, published)
    with ca_transaction() as session:
        view = certificate_json(session, session.get_one(Certificate, row_id), now=moment)
    return reply(view)


_AFTER = Reply(CertificateView, "The certificate after the change")
_PARAMETERS = [SERIAL_PARAMETER, HOLDER_PARAMETER]
_WHO = (
    "An officer acts on any certificate; a portal for the holder named in X-Tamga-Holder: its"
    " own certificate, or any of its company's when it heads the company (403 otherwise). The"
    " issuing CA's delta CRL listing the change is signed in the same transaction and published"
    " at once (503 and nothing changed when the HSM cannot sign it)."
)


@blueprint.post("/api/v1/certificates/<serial>/revoke")
@operation(
    "revokeCertificate",
    "Revoke for good (RFC 5280 reason; invalidity_date for keyCompromise)",
    body=Revocation,
    responses={200: _AFTER},
    parameters=_PARAMETERS,
    tag="ca",
    roles=_CALLERS,
    errors=(400, 403, 404, 409, 422, 503),
    refusals={422: "invalidity_date is not within the certificate's validity, up to now"},
    description=f"{_WHO} A revoked cloud key is destroyed in the HSM.",
)
def revoke_certificate(serial: str, body: Revocation) -> Response:
    return _change(serial, "revoke", body)


@blueprint.post("/api/v1/certificates/<serial>/suspend")
@operation(
    "suspendCertificate",
    "Suspend (certificateHold)",
    body=StatusNote,
    responses={200: _AFTER},
    parameters=_PARAMETERS,
    tag="ca",
    roles=_CALLERS,
    errors=(400, 403, 404, 409, 422, 503),
    description=_WHO,
)
def suspend_certificate(serial: str, body: StatusNote) -> Response:
    return _change(serial, "suspend", body)


@blueprint.post("/api/v1/certificates/<serial>/resume")
@operation(
    "resumeCertificate",
    "Lift a suspension",
    body=StatusNote,
    responses={200: _AFTER},
    parameters=_PARAMETERS,
    tag="ca",
    roles=_CALLERS,
    errors=(400, 403, 404, 409, 422, 503),
    description=_WHO,
)
def resume_certificate(serial: str, body: StatusNote) -> Response:
    return _change(serial, "resume", body)
