"""The one list of route modules: the app registers their blueprints, OpenAPI reads their paths.

To add a route, add it to the module of its area (``web/<area>/<module>.py``, which exposes
``blueprint`` and ``OPENAPI``); to add an area module, list it here.
"""

from __future__ import annotations

from types import ModuleType

from signing_api.web.billing import accounts, osmp
from signing_api.web.ca import certificates, registry, renewals, revocation
from signing_api.web.disputes import cases
from signing_api.web.filing import agencies, reports
from signing_api.web.public import audit, crl, ocsp, routes, tsa
from signing_api.web.signing import csc, signatures
from signing_api.web.ui import disputes

__all__ = ["ROUTE_MODULES"]

ROUTE_MODULES: tuple[ModuleType, ...] = (
    routes,
    accounts,
    osmp,
    crl,
    tsa,  # its static /ca/tsa.crt outranks /ca/<name>.crt
    ocsp,  # likewise /ca/ocsp.crt
    audit,
    registry,
    certificates,
    revocation,
    renewals,
    csc,
    signatures,
    reports,
    agencies,
    cases,
    disputes,
)
