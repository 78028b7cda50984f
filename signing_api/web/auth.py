"""Bearer-token authentication of API clients for ``/api/v1/`` routes.

``@require_client(ClientRole.OFFICER, ...)`` checks the ``Authorization`` header on every call;
the authenticated client is in ``flask.g.client``. Failed attempts are journalled as counts per
client address (``web/failures.py``) and limited per address (``web/limits.py``, which knows
the views that authenticate by their ``AUTHENTICATES`` attribute). The token is never logged.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar, cast

from flask import current_app, g, request

from policies.roles import ClientRole
from policies.words import article
from signing_api.clients import ClientError, authenticate
from signing_api.runtime import Runtime
from signing_api.web.failures import (
    client_address,
    credential_digest,
    failure_journal,
    known_credentials,
)
from signing_api.web.problems import Problem

__all__ = ["AUTHENTICATES", "require_client"]

F = TypeVar("F", bound=Callable[..., Any])
AUTHENTICATES = "__tamga_authenticates__"  # set on every view that takes a bearer token


def _audit_refusal(runtime: Runtime, reason: str) -> None:
    failure_journal().failed(runtime, client_address(), reason)


def require_client(*roles: ClientRole) -> Callable[[F], F]:
    """Only an active API client of one of ``roles`` may call the decorated view."""

    def decorate(view: F) -> F:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            runtime: Runtime = current_app.extensions["tamga"]
            header = request.headers.get("Authorization", "")
            scheme, _, token = header.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                _audit_refusal(runtime, "no bearer token")
                raise Problem("unauthorized", "send `Authorization: Bearer <token>`")
            with runtime.transaction() as session:
                try:
                    client = authenticate(session, token.strip())
                except ClientError as ex:
                    reason = str(ex)
                else:
                    reason = ""
                    g.client_id, g.client_name, g.client_role = (
                        client.id,
                        client.name,
                        client.client_role,
                    )
                    known_credentials().remember(credential_digest(token.strip()), runtime.now())
            if reason:
                _audit_refusal(runtime, reason)
                raise Problem("unauthorized", reason)
            if g.client_role not in roles:
                raise Problem(
                    "forbidden", f"{article(g.client_role.value)} client may not call this"
                )
            return view(*args, **kwargs)

        setattr(wrapper, AUTHENTICATES, True)
        return cast(F, wrapper)

    return decorate
