"""HTTP routes of the billing domain under ``/api/v1/accounts`` (JSON, bearer-token clients)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint

__all__ = ["OPENAPI", "billing_api"]

billing_api = Blueprint("billing_api", __name__)

# This module's part of /openapi.json: {"paths": {...}, "components": {"schemas": {...}}}.
OPENAPI: dict[str, Any] = {"paths": {}}
