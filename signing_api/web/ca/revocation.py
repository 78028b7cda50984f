"""HTTP routes of the CA: suspend, resume and revoke a certificate.

``POST /api/v1/certificates/<serial>/revoke`` ``{reason, invalidity_date?, note?}``,
``.../suspend`` ``{note?}``, ``.../resume`` ``{note?}``. An officer may act on any certificate;
a portal acts for the holder it names in ``X-Tamga-Holder`` (its own certificate, or any of
its company's when it heads the company). After the change commits, the issuing CA's CRL is
reissued and written for static serving at once (the policy allows 5 minutes; we take none),
and a revoked cloud key is destroyed in the HSM.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime

from flask import Blueprint, Response

from ca.issuance import get_certificate
from ca.models import Certificate
from ca.revocation import Actor, destroy_revoked_key, resume, revoke, suspend
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
from signing_api.web.problems import Problem
from signing_api.web.public.crl import refresh_published

__all__ = ["after_status_change", "after_status_changes", "blueprint"]

log = logging.getLogger(__name__)
blueprint = Blueprint("revocation", __name__)
_CALLERS = (ClientRole.OFFICER, ClientRole.PORTAL)


def after_status_change(row_id: int, moment: datetime) -> None:
    """Reissue the issuing CA's CRL and destroy a revoked cloud key (after the commit)."""
    after_status_changes((row_id,), moment)


def after_status_changes(row_ids: Iterable[int], moment: datetime) -> None:
    """After certificates changed status (committed): reissue the issuing CA's CRL once, then
    destroy each revoked cloud key."""
    rt = runtime()
    try:
        # Forced: two status changes committed in the other order than their times must not
        # leave the later commit out of the CRL (``_changed_since`` compares times).
        refresh_published(rt, "issuing", moment, force=True)
    except Problem:
        log.error("the CRL could not be reissued now; the next fetch reissues it")
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
    after_status_change(row_id, moment)
    with ca_transaction() as session:
        view = certificate_json(session, session.get_one(Certificate, row_id), now=moment)
    return reply(view)


_AFTER = Reply(CertificateView, "The certificate after the change")
_PARAMETERS = [SERIAL_PARAMETER, HOLDER_PARAMETER]
_WHO = (
    "An officer acts on any certificate; a portal for the holder named in X-Tamga-Holder: its"
    " own certificate, or any of its company's when it heads the company (403 otherwise). The"
    " issuing CA's CRL is reissued at once."
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
    errors=(400, 403, 404, 409, 422),
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
    errors=(400, 403, 404, 409, 422),
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
    errors=(400, 403, 404, 409, 422),
    description=_WHO,
)
def resume_certificate(serial: str, body: StatusNote) -> Response:
    return _change(serial, "resume", body)
