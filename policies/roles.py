"""Roles of API clients (systems and officers that call Tamga's HTTP API)."""

from __future__ import annotations

import enum

__all__ = ["ClientRole"]


class ClientRole(enum.Enum):
    """Who an API client is; each later route says which roles may call it."""

    OFFICER = "officer"  # operator staff: registration, approvals, revocation, payments
    PORTAL = "portal"  # the reporting portal: cloud signing on behalf of holders
    AGENCY = "agency"  # a relying agency: receives reports, fetches status
    COMMISSION = "commission"  # a dispute commission: verification (§8)
