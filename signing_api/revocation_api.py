"""HTTP routes of the CA: revocation (issue #4). Work in progress."""

from __future__ import annotations

from typing import Any

from flask import Blueprint

__all__ = ["OPENAPI", "revocation_api"]

revocation_api = Blueprint("revocation", __name__)

OPENAPI: dict[str, Any] = {"paths": {}, "components": {}}
