"""The registry of agencies over HTTP: officers register them; portals read where reports go."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from flask import Blueprint, Response

import filing
from policies.roles import ClientRole
from signing_api.web.context import actor, now, reply
from signing_api.web.contract import Reply, operation
from signing_api.web.filing.reports import filing_transaction
from signing_api.web.filing.schemas import (
    AgencyList,
    AgencyRegistration,
    AgencyView,
    OfficeRegistration,
)

__all__ = ["blueprint"]

blueprint = Blueprint("agencies", __name__)


def _view(info: filing.AgencyInfo) -> dict[str, Any]:
    view = asdict(info)
    view["offices"] = [{"code": code, "name": name} for code, name in info.offices]
    return view


@blueprint.get("/api/v1/agencies")
@operation(
    "listAgencies",
    "The agencies reports go to, with their offices",
    tag="filing",
    roles=(ClientRole.OFFICER, ClientRole.PORTAL),
    responses={200: Reply(AgencyList, "The agencies")},
)
def list_agencies() -> Response:
    with filing_transaction() as session:
        views = [_view(a) for a in filing.list_agencies(session)]
    return reply({"agencies": views})


@blueprint.post("/api/v1/agencies")
@operation(
    "registerAgency",
    "Register an agency (or change its endpoint or pinned receipt certificate)",
    tag="filing",
    roles=(ClientRole.OFFICER,),
    body=AgencyRegistration,
    responses={200: Reply(AgencyView, "The agency as registered")},
    refusals={422: "a certificate that does not parse, or an endpoint port out of range"},
)
def register_agency(body: AgencyRegistration) -> Response:
    with filing_transaction() as session:
        info = filing.register_agency(
            session,
            code=body.code,
            name=body.name,
            endpoint=body.endpoint,
            receipt_certificate=body.receipt_certificate.encode(),
            now=now(),
            actor=actor(),
        )
    return reply(_view(info))


@blueprint.post("/api/v1/agencies/<code>/offices")
@operation(
    "addAgencyOffice",
    "Add (or rename) an office of an agency",
    tag="filing",
    roles=(ClientRole.OFFICER,),
    body=OfficeRegistration,
    responses={200: Reply(AgencyView, "The agency with its offices")},
    errors=(404,),
)
def add_office(code: str, body: OfficeRegistration) -> Response:
    with filing_transaction() as session:
        info = filing.add_office(
            session, agency=code, code=body.code, name=body.name, now=now(), actor=actor()
        )
    return reply(_view(info))
