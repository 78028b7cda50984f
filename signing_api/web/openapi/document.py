"""The OpenAPI 3.1 description of the routes that exist (served at ``/openapi.json``).

Paths and schemas are generated from the routes' declared contracts (``web/contract.py``,
``generate.py``); this module adds what every document has: info, security, the problem type.
A test checks that every Flask route is described and that the document is valid.
"""

from __future__ import annotations

from typing import Any

from flask import Flask

from signing_api.web.openapi.generate import generated_paths

__all__ = ["openapi_document"]


def openapi_document(app: Flask, server_url: str) -> dict[str, Any]:
    """The whole document: the base below and the routes' declared contracts; route modules
    not yet declared through ``web/contract.py`` add their hand-written ``OPENAPI`` fragment."""
    from signing_api.web.blueprints import ROUTE_MODULES

    doc = _base_document(server_url)
    paths, schemas = generated_paths(app)
    doc["paths"].update(paths)
    doc["components"]["schemas"].update(schemas)
    for fragment in (m.OPENAPI for m in ROUTE_MODULES if hasattr(m, "OPENAPI")):
        doc["paths"].update(fragment.get("paths", {}))
        for section, entries in fragment.get("components", {}).items():
            doc["components"].setdefault(section, {}).update(entries)
    for methods in doc["paths"].values():
        for operation in methods.values():
            operation["responses"] = {**operation["responses"], "414": _URI_TOO_LONG}
    return doc


# gunicorn refuses a request line over 4094 bytes (its limit_request_line) before the application
# sees it, with a short HTML page: any operation may get it.
_URI_TOO_LONG: dict[str, Any] = {
    "description": "The request line (method, path and query) is longer than 4094 bytes",
    "content": {"text/html": {"schema": {"type": "string"}}},
}


_PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "RFC 9457 problem details",
    "required": ["type", "title", "status"],
    "properties": {
        "type": {"type": "string", "format": "uri"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["field", "detail"],
                "properties": {"field": {"type": "string"}, "detail": {"type": "string"}},
            },
        },
    },
}


def _base_document(server_url: str) -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Tamga",
            "version": "0.1.0",
            "description": "Certification authority and cloud-HSM signing service.",
        },
        "servers": [{"url": server_url}],
        "paths": {},
        "components": {
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "API client token from `tamga clients create`",
                }
            },
            "schemas": {"Problem": _PROBLEM_SCHEMA},
            "responses": {
                "Problem": {
                    "description": "Error as problem+json",
                    "content": {
                        "application/problem+json": {
                            "schema": {"$ref": "#/components/schemas/Problem"}
                        }
                    },
                },
                "TooManyRequests": {
                    "description": (
                        "A rate limit is used up (per client address, per credential, or for"
                        " failed authentications from this address): retry after Retry-After"
                    ),
                    "headers": {
                        "Retry-After": {
                            "description": "seconds until a request may succeed",
                            "schema": {"type": "integer", "minimum": 1},
                        }
                    },
                    "content": {
                        "application/problem+json": {
                            "schema": {"$ref": "#/components/schemas/Problem"}
                        }
                    },
                },
            },
        },
    }
