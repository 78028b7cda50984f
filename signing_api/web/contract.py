"""The typed edge: each route declares its request and response models; OpenAPI is made of them.

A route module decorates each view with :func:`operation`, naming the typed models (pydantic v2)
of its body and query string, the responses it answers with and the client roles it admits::

    @blueprint.post("/api/v1/accounts")
    @operation(
        "openAccount", "Open a subscriber's balance", tag="billing", roles=(OFFICER,),
        body=AccountOpening, responses={201: Reply(Account, "opened")},
        errors=(409,),
    )
    def open_account(body: AccountOpening) -> Response: ...

- The body is validated as JSON in strict mode (``"5"`` is not an integer, ``true`` is not
  ``1``), with ``additionalProperties: false``; every bad field is reported at once in one
  ``validation-failed`` problem (``errors: [{field, detail}]``), the same shape in every area.
- The query string is validated in lax mode (its values are strings) and unknown parameters
  are ignored, as HTTP caches and proxies add their own.
- Authentication and the role check are ``require_client`` (401/403 added to the document).
- ``signing_api.web.openapi`` builds ``/openapi.json`` from these declarations and the app's URL
  map: every declared status, the real rules (patterns, ranges, lengths) from the models.
- With ``app.config["TAMGA_CHECK_RESPONSES"]`` (the tests set it) every JSON answer of a
  declared operation is validated against its declared model: the document cannot drift.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Annotated, Any, TypeVar, cast

from flask import Response, current_app, request
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    ValidationError,
)
from pydantic_core import core_schema

from policies import text as text_rules
from policies.money import MAX_AMOUNT
from policies.roles import ClientRole
from signing_api.web.auth import require_client
from signing_api.web.problems import PROBLEM_TYPES, Problem

__all__ = [
    "Body",
    "Inn",
    "Operation",
    "Query",
    "Reply",
    "Text",
    "Tyiyn",
    "TyiynOrZero",
    "View",
    "check_response",
    "field_errors",
    "operation",
    "operation_of",
]

F = TypeVar("F", bound=Callable[..., Any])


class Body(BaseModel):
    """A request body: strict JSON types, no unknown fields, immutable once read."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class Query(BaseModel):
    """A query string: values are text converted to their types; unknown parameters ignored."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)


class View(BaseModel):
    """A response body, for the document and for checking answers (unknown fields refused)."""

    model_config = ConfigDict(extra="forbid")


# --- field types with the project's rules and messages -----------------------------------------


_MESSAGES = {
    "int_type": "a whole number",
    "int_parsing": "a whole number",
    "int_from_float": "a whole number",
    "string_type": "a string",
    "bool_type": "true or false",
    "dict_type": "an object",
    "list_type": "an array",
}


def ecma_search(pattern: str, value: str) -> bool:
    """``pattern`` as JSON Schema reads it (ECMA-262): ``$`` is the end of the value only,
    where Python's ``re`` would also match before a final newline."""
    return re.search(_ecma_end(pattern), value) is not None


@functools.cache
def _ecma_end(pattern: str) -> str:
    out, in_class, escaped = [], False, False
    for char in pattern:
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == "[":
            in_class = True
        elif char == "]":
            in_class = False
        elif char == "$" and not in_class:
            out.append(r"(?!\n)$")
            continue
        out.append(char)
    return "".join(out)


@dataclass(frozen=True)
class Text:
    """A string field's rules, checked after the type and written into the schema.

    ``limit``: one line of 1 to ``limit`` characters (counted as sent), at least ``words``
    words, only characters of ``policies.text.REPERTOIRE`` (no control, format character such as
    U+202E or U+200B, private use, unassigned or combining character); the value is then
    NFC-normalised and its whitespace collapsed. ``pattern`` (with ``says``, the message when it
    does not match) is matched against the value as sent, as JSON Schema reads it; with a
    ``limit`` it must admit only characters of a line. The document's ``pattern`` is built
    from the same rule.
    """

    limit: int | None = None
    pattern: str | None = None
    says: str = "has the wrong format"
    words: int = 1
    lines: bool = False  # free text (a note): line breaks allowed, collapsed like other spaces

    def check(self, value: str) -> str:
        if self.limit is not None:
            refused = text_rules.refused_character(value, line_breaks=self.lines)
            if refused is not None:
                shown = text_rules.describe(refused)
                raise ValueError(f"has a character it may not hold ({shown})")
            words = len(value.split())
            if not words:
                raise ValueError("a non-empty string")
            if words < self.words:
                raise ValueError(self.says)
            if len(value) > self.limit:
                raise ValueError(f"at most {self.limit} characters")
        if self.pattern is not None and not ecma_search(self.pattern, value):
            raise ValueError(self.says)
        return text_rules.normalise(value) if self.limit is not None else value

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_after_validator_function(self.check, handler(source))

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> dict[str, Any]:
        written: dict[str, Any] = dict(handler(schema))
        if self.limit is not None:
            pattern = line_pattern(self.words, lines=self.lines)
            written.update(minLength=1, maxLength=self.limit, pattern=pattern)
        if self.pattern is not None:
            written["pattern"] = self.pattern
        return written


@functools.cache
def line_pattern(words: int = 1, *, lines: bool = False) -> str:
    """One line (``lines``: a note's lines) with at least ``words`` words of characters
    ``policies.text`` admits."""
    any_ = text_rules.character_class("note" if lines else "any")
    visible = text_rules.character_class("visible")
    space = text_rules.character_class("note-space" if lines else "space")
    more = f"{space}+{visible}" * (words - 1)
    return f"^{any_}*{visible}{more}{any_}*$"


Inn = Annotated[str, Text(pattern="^[0-9]{14}$", says="a 14-digit INN")]
Tyiyn = Annotated[int, Field(ge=1, le=MAX_AMOUNT, description="tyiyn (1 som = 100 tyiyn)")]
TyiynOrZero = Annotated[int, Field(ge=0, le=MAX_AMOUNT, description="tyiyn (1 som = 100 tyiyn)")]


# --- operations ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    """One declared answer: its model (None: no JSON body) and what it means."""

    model: type[BaseModel] | None
    description: str
    media_type: str = "application/json"
    headers: Mapping[str, str] = field(default_factory=dict)  # name → description


@dataclass(frozen=True)
class Operation:
    """What ``/openapi.json`` says of one route, and what the edge checks."""

    operation_id: str
    summary: str
    tag: str
    roles: tuple[ClientRole, ...] | None  # None: public
    body: type[Body] | None
    query: type[Query] | None
    responses: Mapping[int, Reply]
    errors: tuple[int, ...]
    parameters: tuple[Mapping[str, Any], ...]
    description: str | None
    raw_body: str | None  # a non-JSON body's media type (read by the view itself)
    raw_schema: Mapping[str, Any] | None  # that body's schema (default: binary)
    body_optional: bool  # no body at all reads as ``{}`` (a model of optional fields)
    errors_as: Reply | None  # the error answers' form, when not problem+json (CSC)
    expand: Mapping[str, tuple[str, ...]]  # path parameter → its values, one documented path each
    refusals: Mapping[int, str]  # status → the rule beyond the schema a valid request can break


_ATTRIBUTE = "__tamga_operation__"


def operation(
    operation_id: str,
    summary: str,
    *,
    tag: str,
    roles: Iterable[ClientRole] | None,
    responses: Mapping[int, Reply],
    body: type[Body] | None = None,
    query: type[Query] | None = None,
    errors: Iterable[int] = (),
    parameters: Iterable[Mapping[str, Any]] = (),
    description: str | None = None,
    raw_body: str | None = None,
    raw_schema: Mapping[str, Any] | None = None,
    body_optional: bool = False,
    errors_as: Reply | None = None,
    expand: Mapping[str, Iterable[str]] | None = None,
    refusals: Mapping[int, str] | None = None,
) -> Callable[[F], F]:
    """Declare a route's contract; its validated body and query reach it as ``body``/``query``.

    ``refusals``: the statuses a request the schema admits may still get, each with the rule
    the schema cannot state (fields that depend on each other, the state of the registry or
    the balance); the document lists them (``x-tamga-refusals``) and schemathesis' check that
    valid requests are accepted admits exactly those.
    """
    admitted = None if roles is None else tuple(roles)
    declared = set(errors) | set(refusals or {}) | ({401, 403} if admitted is not None else set())
    if body is not None:
        declared |= {400, 415, 422}
    if query is not None:
        declared.add(422)
    op = Operation(
        operation_id=operation_id,
        summary=summary,
        tag=tag,
        roles=admitted,
        body=body,
        query=query,
        responses=dict(responses),
        errors=tuple(sorted(declared)),
        parameters=tuple(parameters),
        description=description,
        raw_body=raw_body,
        raw_schema=raw_schema,
        body_optional=body_optional,
        errors_as=errors_as,
        expand={name: tuple(values) for name, values in (expand or {}).items()},
        refusals=dict(refusals or {}),
    )

    def decorate(view: F) -> F:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if body is not None:
                kwargs["body"] = _read_body(body, required=not body_optional)
            if query is not None:
                kwargs["query"] = _read_query(query)
            return view(*args, **kwargs)

        guarded = require_client(*admitted)(wrapper) if admitted is not None else wrapper
        setattr(guarded, _ATTRIBUTE, op)
        return cast(F, guarded)

    return decorate


def operation_of(view: Callable[..., Any]) -> Operation | None:
    """The contract a view declared, if any."""
    op: Operation | None = getattr(view, _ATTRIBUTE, None)
    return op


def field_errors(ex: ValidationError) -> dict[str, str]:
    """``{"holder.email": "a valid e-mail address", ...}``: every bad field, one message each."""
    errors: dict[str, str] = {}
    for error in ex.errors(include_url=False, include_context=False, include_input=False):
        name = ".".join(str(part) for part in error["loc"]) or "body"
        message = _MESSAGES.get(error["type"]) or str(error["msg"]).removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "is not a field of this request"
        elif error["type"] == "missing":
            message = "required"
        errors.setdefault(name, message)
    return errors


def _whole(text: str) -> int | float:
    """A JSON number written with a fraction or an exponent. JSON Schema's ``integer`` is a
    number whose value is whole, so ``1421875690414.0`` is one: it becomes an ``int``; any
    other number stays a float (and an integer field refuses it)."""
    number = Decimal(text)
    if number.is_finite() and number == number.to_integral_value() and abs(number) < 10**20:
        return int(number)
    return float(text)


def _not_json(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def _read_body(model: type[Body], *, required: bool = True) -> Body:
    raw = request.get_data(cache=True)
    if not raw and not required:
        raw = b"{}"  # an optional body not sent: its fields' defaults
    elif not request.is_json:
        raise Problem("unsupported-media-type", "send the body as application/json")
    try:
        parsed = json.loads(raw, parse_float=_whole, parse_constant=_not_json)
    except RecursionError:
        raise Problem("bad-request", "the body is nested too deeply") from None
    except ValueError:
        raise Problem("bad-request", "the body is not JSON") from None
    if not isinstance(parsed, dict):
        raise Problem("bad-request", "the body must be a JSON object (application/json)")
    try:
        return model.model_validate_json(json.dumps(parsed))
    except ValidationError as ex:
        errors = field_errors(ex)
        raise Problem(
            "validation-failed", f"invalid fields: {', '.join(sorted(errors))}", errors=errors
        ) from None


def _read_query(model: type[Query]) -> Query:
    try:
        return model.model_validate({k: request.args.get(k) for k in request.args})
    except ValidationError as ex:
        errors = field_errors(ex)
        raise Problem(
            "validation-failed", f"invalid parameters: {', '.join(sorted(errors))}", errors=errors
        ) from None


def check_response(response: Response) -> Response:
    """``after_request`` in tests: the answer must be one the route's contract declares."""
    if not current_app.config.get("TAMGA_CHECK_RESPONSES") or request.endpoint is None:
        return response
    view = current_app.view_functions.get(request.endpoint)
    op = operation_of(view) if view is not None else None
    if op is None:
        return response
    status = response.status_code
    if status in (413, 429):  # any route (web/limits.py), problem+json even on /csc/v1,
        # unless the route declares its own form (a page answers the form again, in HTML)
        own = op.responses.get(status)
        expected = own.media_type if own is not None else "application/problem+json"
        assert response.mimetype == expected, op.operation_id  # noqa: S101
        return response
    if status >= 400 and status not in op.responses:
        if status not in op.errors and status not in (404, 405, 500, 503):
            raise AssertionError(f"{op.operation_id} answered an undeclared {status}")
        if op.errors_as is not None and op.errors_as.model is not None:
            op.errors_as.model.model_validate_json(response.get_data())
        elif status in {p.status for p in PROBLEM_TYPES.values()}:
            assert response.mimetype == "application/problem+json", op.operation_id  # noqa: S101
        return response
    declared = op.responses.get(status)
    if declared is None:
        raise AssertionError(f"{op.operation_id} answered an undeclared {status}")
    if declared.model is not None and response.mimetype == "application/json":
        declared.model.model_validate_json(response.get_data())
    return response
