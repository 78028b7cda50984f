"""The OpenAPI 3.1 description of the routes that exist (served at ``/openapi.json``).

A test checks that every Flask route is described here and that the document is valid.
"""

from __future__ import annotations

from typing import Any

from flask import Flask

from signing_api.web.openapi.generate import generated_paths

__all__ = ["openapi_document"]

_PROBLEM = {"$ref": "#/components/responses/Problem"}


def _der_certificate(name: str) -> dict[str, Any]:
    return {
        "get": {
            "operationId": f"get{name.title()}Certificate",
            "summary": f"The {name} CA certificate (DER)",
            "tags": ["ca"],
            "responses": {
                "200": {
                    "description": "DER-encoded X.509 certificate",
                    "content": {
                        "application/pkix-cert": {"schema": {"type": "string", "format": "binary"}}
                    },
                },
                "404": _PROBLEM,
            },
        }
    }


def openapi_document(app: Flask, server_url: str) -> dict[str, Any]:
    """The whole document: the routes' declared contracts, the public routes below, and the
    hand-written fragments of route modules not yet declared through ``web/contract.py``."""
    from signing_api.web.blueprints import ROUTE_MODULES

    doc = _base_document(server_url)
    paths, schemas = generated_paths(app)
    doc["paths"].update(paths)
    doc["components"]["schemas"].update(schemas)
    for fragment in (m.OPENAPI for m in ROUTE_MODULES if hasattr(m, "OPENAPI")):
        doc["paths"].update(fragment.get("paths", {}))
        for section, entries in fragment.get("components", {}).items():
            doc["components"].setdefault(section, {}).update(entries)
    return doc


def _base_document(server_url: str) -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Tamga",
            "version": "0.1.0",
            "description": "Certification authority and cloud-HSM signing service.",
        },
        "servers": [{"url": server_url}],
        "paths": {
            "/healthz": {
                "get": {
                    "operationId": "getHealth",
                    "summary": "Database and both HSM tokens answer (each token signs a challenge)",
                    "tags": ["operations"],
                    "responses": {
                        "200": {
                            "description": "Healthy",
                            "content": {
                                "application/json": {
                                    "schema": {"$ref": "#/components/schemas/Health"}
                                }
                            },
                        },
                        "503": {
                            "description": "A component is down",
                            "content": {
                                "application/json": {
                                    "schema": {"$ref": "#/components/schemas/Health"}
                                }
                            },
                        },
                    },
                }
            },
            "/openapi.json": {
                "get": {
                    "operationId": "getOpenApi",
                    "summary": "This document",
                    "tags": ["operations"],
                    "responses": {
                        "200": {
                            "description": "OpenAPI document",
                            "content": {"application/json": {"schema": {"type": "object"}}},
                        }
                    },
                }
            },
            "/cps": {
                "get": {
                    "operationId": "getCps",
                    "summary": "The certification practice statement summary (the CPS URI)",
                    "tags": ["ca"],
                    "responses": {
                        "200": {
                            "description": "Plain text, UTF-8",
                            "content": {"text/plain": {"schema": {"type": "string"}}},
                        }
                    },
                }
            },
            "/ca/root.crt": _der_certificate("root"),
            "/ca/issuing.crt": _der_certificate("issuing"),
        },
        "components": {
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "API client token from `tamga clients create`",
                }
            },
            "schemas": {
                "Problem": {
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
                                "properties": {
                                    "field": {"type": "string"},
                                    "detail": {"type": "string"},
                                },
                            },
                        },
                    },
                },
                "Health": {
                    "type": "object",
                    "required": ["status", "checks"],
                    "properties": {
                        "status": {"type": "string", "enum": ["ok", "unavailable"]},
                        "worker_pid": {"type": "integer"},
                        "checks": {"type": "object", "additionalProperties": {"type": "object"}},
                    },
                },
            },
            "responses": {
                "Problem": {
                    "description": "Error as problem+json",
                    "content": {
                        "application/problem+json": {
                            "schema": {"$ref": "#/components/schemas/Problem"}
                        }
                    },
                }
            },
        },
    }
