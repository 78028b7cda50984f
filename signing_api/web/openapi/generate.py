"""OpenAPI 3.1 paths and schemas made from the routes' declared contracts (``web/contract.py``).

Pydantic's JSON Schema (draft 2020-12) is OpenAPI 3.1's own dialect, so a model's schema goes
into ``components/schemas`` as it is; path parameters come from the app's URL map.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from flask import Flask
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from signing_api.web.contract import Operation, operation_of

__all__ = ["generated_paths"]

_REF = "#/components/schemas/{model}"
_STRING = {"type": "string"}
_CONVERTERS: dict[str, dict[str, Any]] = {
    "int": {"type": "integer", "minimum": 1, "maximum": 2**63 - 1}
}
_PROBLEM = {"$ref": "#/components/responses/Problem"}
_TOO_MANY = {"$ref": "#/components/responses/TooManyRequests"}  # every route (web/limits.py)
_REASONS = {
    400: "The request is malformed",
    401: "Authentication is required",
    403: "This client may not do that",
    404: "No such resource, or not in the caller's scope",
    409: "The request conflicts with the current state",
    415: "The body is not application/json",
    413: "The body is larger than this route accepts",
    422: "Invalid fields, each named",
}


def _openapi_path(rule: str) -> tuple[str, list[tuple[str, str]]]:
    params: list[tuple[str, str]] = []

    def replace(match: re.Match[str]) -> str:
        converter, name = match.group(1) or "default", match.group(2)
        params.append((name, converter))
        return "{" + name + "}"

    return re.sub(r"<(?:(\w+):)?(\w+)>", replace, rule), params


def _expanded(
    path: str, op: Operation, params: list[tuple[str, str]]
) -> list[tuple[str, Operation, list[tuple[str, str]]]]:
    """One documented path per value of each ``expand``-ed parameter (``/crl/root.crl`` ...)."""
    found = [(path, op, params)]
    for name, values in op.expand.items():
        found = [
            (
                p.replace("{" + name + "}", value),
                replace(
                    o,
                    operation_id=o.operation_id.replace(
                        "{" + name + "}", value.title().replace("-", "")
                    ),
                ),
                [x for x in ps if x[0] != name],
            )
            for p, o, ps in found
            for value in values
        ]
    return found


def _models(ops: Iterable[Operation]) -> list[type[BaseModel]]:
    found: dict[str, type[BaseModel]] = {}
    for op in ops:
        replies = [*op.responses.values(), *([op.errors_as] if op.errors_as else [])]
        for model in (op.body, op.query, *(r.model for r in replies)):
            if model is None:
                continue
            known = found.setdefault(model.__name__, model)
            if known is not model:  # component names are global: two models, one name
                raise ValueError(f"two models named {model.__name__}: rename one")
    return list(found.values())


def _query_parameters(model: type[BaseModel], schema: dict[str, Any]) -> list[dict[str, Any]]:
    params = []
    for name, info in model.model_fields.items():
        wire = info.alias or name
        prop = schema["properties"][wire]
        params.append(
            {
                "name": wire,
                "in": "query",
                "required": info.is_required(),
                **({"description": info.description} if info.description else {}),
                "schema": {k: v for k, v in prop.items() if k not in ("title", "description")},
            }
        )
    return params


def generated_paths(app: Flask) -> tuple[dict[str, Any], dict[str, Any]]:
    """(paths, component schemas) of every route that declared its contract."""
    routes: list[tuple[str, str, Operation, list[tuple[str, str]]]] = []
    for rule in app.url_map.iter_rules():
        op = operation_of(app.view_functions[rule.endpoint])
        if op is None:
            continue
        path, params = _openapi_path(rule.rule)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            routes.extend(
                (concrete, method.lower(), named, left)
                for concrete, named, left in _expanded(path, op, params)
            )
    models = _models(op for _, _, op, _ in routes)
    _, defs = models_json_schema([(m, "validation") for m in models], ref_template=_REF)
    schemas: dict[str, Any] = defs.get("$defs", {})
    query_schemas = {m.__name__: m.model_json_schema(ref_template=_REF) for m in models}
    paths: dict[str, Any] = {}
    for path, method, op, params in routes:
        if op.query is not None:
            schemas.pop(op.query.__name__, None)
        query = query_schemas[op.query.__name__] if op.query is not None else None
        paths.setdefault(path, {})[method] = _entry(op, params, query)
    return paths, schemas


def _parameters(
    op: Operation, params: list[tuple[str, str]], query: dict[str, Any] | None
) -> list[dict[str, Any]]:
    overrides = {p["name"]: dict(p) for p in op.parameters if p.get("in") == "path"}
    parameters: list[dict[str, Any]] = [
        overrides.get(name)
        or {"name": name, "in": "path", "required": True, "schema": _CONVERTERS.get(conv, _STRING)}
        for name, conv in params
    ]
    parameters += [dict(p) for p in op.parameters if p.get("in") != "path"]
    if op.query is not None and query is not None:
        parameters += _query_parameters(op.query, query)
    return parameters


def _responses(op: Operation) -> dict[str, Any]:
    responses: dict[str, Any] = {}
    for status, reply in sorted(op.responses.items()):
        answer: dict[str, Any] = {"description": reply.description}
        if reply.model is not None:
            schema = {"$ref": _REF.format(model=reply.model.__name__)}
            answer["content"] = {reply.media_type: {"schema": schema}}
        elif reply.media_type.startswith("text/"):
            answer["content"] = {reply.media_type: {"schema": _STRING}}
        elif reply.media_type != "application/json":
            binary = {"type": "string", "format": "binary"}
            answer["content"] = {reply.media_type: {"schema": binary}}
        if reply.headers:
            answer["headers"] = {
                h: {"description": d, "schema": _STRING} for h, d in reply.headers.items()
            }
        responses[str(status)] = answer
    for status in op.errors:
        if op.errors_as is not None and op.errors_as.model is not None:
            schema = {"$ref": _REF.format(model=op.errors_as.model.__name__)}
            form = {"content": {op.errors_as.media_type: {"schema": schema}}}
            responses.setdefault(str(status), {"description": op.errors_as.description, **form})
        else:
            responses.setdefault(str(status), {**_PROBLEM, "description": _REASONS.get(status, "")})
    for status, rule in op.refusals.items():
        answer = responses[str(status)]
        answer["description"] = "; ".join(filter(None, (answer["description"], rule)))
    if op.body is not None or op.raw_body is not None:
        responses.setdefault("413", {**_PROBLEM, "description": _REASONS[413]})
    responses["429"] = _TOO_MANY  # problem+json on every route, the CSC ones too
    return responses


def _entry(
    op: Operation, params: list[tuple[str, str]], query: dict[str, Any] | None
) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "operationId": op.operation_id,
        "summary": op.summary,
        "tags": [op.tag],
        "responses": _responses(op),
    }
    description = op.description or ""
    if op.roles is None:
        entry["security"] = []
    else:
        entry["security"] = [{"bearer": []}]
        description += f"\n\nClients: {', '.join(r.value for r in op.roles)}."
    if description.strip():
        entry["description"] = description.strip()
    if op.refusals:
        entry["x-tamga-refusals"] = {str(k): v for k, v in sorted(op.refusals.items())}
    if parameters := _parameters(op, params, query):
        entry["parameters"] = parameters
    if op.raw_body is not None:
        raw = dict(op.raw_schema or {"type": "string", "format": "binary"})
        entry["requestBody"] = {"required": True, "content": {op.raw_body: {"schema": raw}}}
    if op.body is not None:
        schema = {"$ref": _REF.format(model=op.body.__name__)}
        entry["requestBody"] = {
            "required": not op.body_optional,
            "content": {"application/json": {"schema": schema}},
        }
    return entry
