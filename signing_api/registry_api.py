"""HTTP routes of the CA: registry (issue #4). Work in progress."""

from __future__ import annotations

from typing import Any

from flask import Blueprint

__all__ = ["OPENAPI", "registry_api"]

registry_api = Blueprint("registry", __name__)

OPENAPI: dict[str, Any] = {"paths": {}, "components": {}}
