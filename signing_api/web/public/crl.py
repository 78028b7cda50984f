"""``GET /crl/<name>.crl``: the root's and the issuing CA's CRLs for relying parties (DER).

``/crl/root.crl`` and ``/crl/issuing.crl`` are the full (base) CRLs, ``/crl/issuing-delta.crl``
the issuing CA's delta CRL (RFC 5280 §5.2.4). The current CRL comes from the database; when
there is none yet, or the newest is past its reissue time (:data:`policies.crl.CRL_POLICY`:
daily for a base, hourly for a delta), the first request issues one with the CA key and writes
it to ``$TAMGA_HOME/publish/crl/`` for static serving as well. Caching follows the CRL itself:
``ETag`` is the DER's SHA-256, ``Last-Modified`` its thisUpdate, and caches may keep it until
nextUpdate; a conditional request that matches gets 304.

A status change signs its delta CRL in its own transaction (``crl.status_changed``, called by
:func:`sign_status_change`); :func:`after_status_change_committed` then writes it for static
serving and, while the full CRL is small (``full_after_change_up_to``), reissues that too.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime

from flask import Blueprint, Response, request
from sqlalchemy.orm import Session

from ca.errors import HierarchyNotReady
from crl import (
    ForeignIssuer,
    IssuedCRL,
    StatusPublished,
    newest_base,
    refresh_crl,
    refresh_delta,
    same_second_issues,
    status_changed,
    write_crl_files,
)
from hsm import HSMError
from policies.crl import CRL_ISSUERS, CRL_POLICY, DELTA_ISSUERS, delta_name
from signing_api.runtime import Runtime
from signing_api.web import context
from signing_api.web.contract import Reply, operation
from signing_api.web.problems import Problem

__all__ = [
    "CRL_NAMES",
    "after_status_change_committed",
    "blueprint",
    "crl_response",
    "refresh_published",
    "sign_status_change",
]

log = logging.getLogger("tamga.crl")
blueprint = Blueprint("crl_http", __name__)

ACTOR = "http:crl"
# The names under /crl/: the full CRLs, then the delta CRLs (``issuing-delta``).
_DELTAS = {delta_name(issuer): issuer for issuer in DELTA_ISSUERS}
CRL_NAMES = (*CRL_ISSUERS, *_DELTAS)


def refresh_published(
    runtime: Runtime, name: str, now: datetime, *, force: bool = False
) -> tuple[IssuedCRL, bool]:
    """The CRL in force (``name``: an issuer, or ``issuing-delta`` for its delta CRL), reissued
    (and written for static serving) when it is due or forced; and whether another CRL of the
    issuer and kind shares its thisUpdate second."""
    issuer = _DELTAS.get(name, name)
    delta = name in _DELTAS
    refresh = refresh_delta if delta else refresh_crl
    try:
        with runtime.transaction() as session:
            issued, new = refresh(
                session,
                issuer=issuer,
                token=runtime.ca_token,
                now=now,
                actor=ACTOR,
                force=force,
                public_url=runtime.config.public_url,
            )
            shared = same_second_issues(session, issued) > 1
    except (HierarchyNotReady, ForeignIssuer) as ex:
        raise Problem("not-found", str(ex)) from None
    except HSMError as ex:
        log.error("cannot issue the %s CRL: %s", name, ex)
        raise Problem("unavailable", f"the {name} CRL cannot be issued right now") from None
    if new:
        _write(runtime, issued)
    return issued, shared


def _write(runtime: Runtime, issued: IssuedCRL) -> None:
    try:  # the database copy is authoritative; a failed file write must not fail the request
        write_crl_files(
            issued.der, issued.issuer, runtime.config.crl_publish_dir, delta=issued.is_delta
        )
    except OSError as ex:
        log.error("cannot write the %s %s CRL file: %s", issued.issuer, issued.kind, ex)


def sign_status_change(
    session: Session, runtime: Runtime, *, now: datetime, actor: str, serials: Iterable[int]
) -> StatusPublished:
    """In the status change's transaction: sign the delta CRL that lists it (the hook). An
    HSM that cannot sign refuses the change (503): nothing is committed without its CRL."""
    try:
        return status_changed(
            session,
            token=runtime.ca_token,
            now=now,
            actor=actor,
            serials=serials,
            public_url=runtime.config.public_url,
        )
    except HSMError as ex:
        log.error("cannot sign the delta CRL of a status change: %s", ex)
        raise Problem("unavailable", "the CRL cannot be signed right now; try again") from None


def after_status_change_committed(
    runtime: Runtime, published: StatusPublished, moment: datetime
) -> None:
    """After the commit: write the delta (and a first full CRL) for static serving; while the
    full CRL has at most ``full_after_change_up_to`` entries, reissue it too (forced: two
    changes committed in the other order than their times must not leave one out), with a
    delta relative to it. Beyond that size the delta is what is published at once."""
    if published.full is not None:
        _write(runtime, published.full)
    _write(runtime, published.delta)
    with runtime.transaction() as session:
        base = newest_base(session, "issuing")  # number and size only, not the DER
    if base is not None and base.entries > CRL_POLICY.full_after_change_up_to:
        return
    try:
        refresh_published(runtime, "issuing", moment, force=True)
        refresh_published(runtime, delta_name("issuing"), moment)
    except Problem:
        log.error("the full CRL could not be reissued now; the next fetch reissues it")


def crl_response(issued: IssuedCRL, now: datetime, *, shared_second: bool = False) -> Response:
    """The DER with its caching headers, answered with 304 when the request's condition holds.

    HTTP dates have whole seconds, like thisUpdate: when two CRLs were issued in one second, an
    ``If-Modified-Since`` of that second cannot tell them apart, so it gets the full CRL (an
    ``If-None-Match`` still can: the ETag is the DER's hash).
    """
    response = Response(issued.der, mimetype="application/pkix-crl")
    response.set_etag(issued.sha256)
    response.last_modified = issued.this_update
    response.expires = issued.next_update
    response.cache_control.public = True
    response.cache_control.max_age = max(0, int((issued.next_update - now).total_seconds()))
    since = request.if_modified_since
    ambiguous = since is None or since <= issued.this_update
    if shared_second and ambiguous and "If-None-Match" not in request.headers:
        return response  # 304 only when nothing newer than what the client has exists
    # werkzeug: If-None-Match (strong or weak match) first, else If-Modified-Since >= thisUpdate.
    response.make_conditional(request)  # turns it into a 304 in place when the condition holds
    return response


@blueprint.get("/crl/<name>.crl")
@operation(
    "get{name}Crl",
    "The CA's current full CRL, or the issuing CA's delta CRL (DER, RFC 5280)",
    tag="ca",
    roles=None,
    expand={"name": CRL_NAMES},
    parameters=[
        {"name": "If-None-Match", "in": "header", "schema": {"type": "string"}},
        {"name": "If-Modified-Since", "in": "header", "schema": {"type": "string"}},
    ],
    responses={
        200: Reply(
            None,
            "DER-encoded CRL; cacheable until its nextUpdate",
            media_type="application/pkix-crl",
            headers={"ETag": "", "Last-Modified": "", "Cache-Control": ""},
        ),
        304: Reply(None, "The CRL named by If-None-Match / If-Modified-Since"),
    },
    errors=(404, 503),
)
def crl_file(name: str) -> Response:
    if name not in CRL_NAMES:
        raise Problem("not-found", f"there is no CRL named {name!r}")
    now = context.now()
    issued, shared = refresh_published(context.runtime(), name, now)
    return crl_response(issued, now, shared_second=shared)
