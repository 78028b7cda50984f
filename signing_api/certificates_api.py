"""HTTP routes of the CA: certificates (issue #4). Work in progress."""

from __future__ import annotations

from typing import Any

from flask import Blueprint

__all__ = ["OPENAPI", "certificates_api"]

certificates_api = Blueprint("certificates", __name__)

OPENAPI: dict[str, Any] = {"paths": {}, "components": {}}
