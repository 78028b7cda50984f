"""``GET /crl/<name>.crl``: the root's and the issuing CA's CRLs for relying parties (DER).

The current CRL comes from the database; when there is none yet, or the newest is past its
reissue time (:data:`policies.crl.CRL_POLICY`), the first request issues one with the CA key
and writes it to ``$TAMGA_HOME/public/crl/`` for static serving as well. Caching follows the
CRL itself: ``ETag`` is the DER's SHA-256, ``Last-Modified`` its thisUpdate, and caches may keep
it until nextUpdate; a conditional request that matches gets 304.
"""

from __future__ import annotations

import logging
from datetime import datetime

from flask import Blueprint, Response, request

from ca.errors import HierarchyNotReady
from crl import ForeignIssuer, IssuedCRL, refresh_crl, same_second_issues, write_crl_files
from hsm import HSMError
from policies.crl import CRL_ISSUERS
from signing_api.runtime import Runtime
from signing_api.web import context
from signing_api.web.contract import Reply, operation
from signing_api.web.problems import Problem

__all__ = ["blueprint", "crl_response", "refresh_published"]

log = logging.getLogger("tamga.crl")
blueprint = Blueprint("crl_http", __name__)

ACTOR = "http:crl"


def refresh_published(
    runtime: Runtime, name: str, now: datetime, *, force: bool = False
) -> tuple[IssuedCRL, bool]:
    """The CRL in force, reissued (and written for static serving) when it is due or forced;
    and whether another CRL of the issuer shares its thisUpdate second."""
    try:
        with runtime.transaction() as session:
            issued, new = refresh_crl(
                session, issuer=name, token=runtime.ca_token, now=now, actor=ACTOR, force=force
            )
            shared = same_second_issues(session, issued) > 1
    except (HierarchyNotReady, ForeignIssuer) as ex:
        raise Problem("not-found", str(ex)) from None
    except HSMError as ex:
        log.error("cannot issue the %s CRL: %s", name, ex)
        raise Problem("unavailable", f"the {name} CRL cannot be issued right now") from None
    if new:
        try:  # the database copy is authoritative; a failed file write must not fail the fetch
            write_crl_files(issued.der, name, runtime.config.crl_publish_dir)
        except OSError as ex:
            log.error("cannot write the %s CRL file: %s", name, ex)
    return issued, shared


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
    "The CA's current full CRL (DER, RFC 5280)",
    tag="ca",
    roles=None,
    expand={"name": CRL_ISSUERS},
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
    if name not in CRL_ISSUERS:
        raise Problem("not-found", f"there is no CRL named {name!r}")
    now = context.now()
    issued, shared = refresh_published(context.runtime(), name, now)
    return crl_response(issued, now, shared_second=shared)
