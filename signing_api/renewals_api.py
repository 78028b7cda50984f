"""HTTP routes of the CA: renewals (issue #4). Work in progress."""

from __future__ import annotations

from typing import Any

from flask import Blueprint

__all__ = ["OPENAPI", "renewals_api"]

renewals_api = Blueprint("renewals", __name__)

OPENAPI: dict[str, Any] = {"paths": {}, "components": {}}
