"""The OSMP/QIWI provider protocol for payment terminals and wallets: ``/payments/osmp/<p>``."""

from __future__ import annotations

from typing import Any

from flask import Blueprint

__all__ = ["OPENAPI", "osmp"]

osmp = Blueprint("osmp", __name__)

# This module's part of /openapi.json: {"paths": {...}, "components": {"schemas": {...}}}.
OPENAPI: dict[str, Any] = {"paths": {}}
