"""``/audit/...``: the audit journal's signed checkpoints and its RFC 9162 proofs, for anyone.

- ``GET /audit/checkpoint``: the newest signed checkpoint (tree size, root, the signed text and
  its DER ECDSA signature, checked with ``/ca/audit.crt``).
- ``GET /audit/consistency?from=M&to=N``: the proof that the tree of M entries is a prefix of the
  tree of N (RFC 9162 §2.1.4); ``to`` defaults to the newest checkpoint's size.
- ``GET /audit/proof/<sequence>?tree_size=N``: the audit path of entry ``sequence`` (leaf
  ``sequence - 1``) in the tree of N (§2.1.3); ``tree_size`` defaults to the newest checkpoint's.

Only hashes leave: never an entry's content, which holds company names and amounts. Whoever
holds an entry (an evidence record, a dispute report) computes its leaf hash themselves
(``SHA-256(0x00 || leaf)``, the leaf being the entry's canonical JSON with its sequence,
docs/audit.md). Hashes are lowercase hex.
"""

from __future__ import annotations

import base64
from datetime import datetime

from flask import Blueprint, Response, jsonify
from pydantic import Field, field_validator

from ca.audit_log import CheckpointView
from db.sequencer import consistency_proof, inclusion_proof, latest_checkpoint
from signing_api.web.context import runtime
from signing_api.web.contract import Query, Reply, View, operation
from signing_api.web.problems import Problem

__all__ = ["blueprint"]

blueprint = Blueprint("audit_log", __name__)

_LIMIT = 2**62


def _digits(value: object) -> object:
    if isinstance(value, str) and not (value.isascii() and value.isdigit()):
        raise ValueError("a whole number")
    return value


class Checkpoint(View):
    tree_size: int
    root_hash: str = Field(description="MTH of the first tree_size entries, hex")
    signed_at: datetime
    body: str = Field(description="The exact signed text (UTF-8)")
    signature: str = Field(description="DER ECDSA-with-SHA256 signature of body, base64")
    certificate_sha256: str = Field(description="SHA-256 of the signer's certificate, hex")
    certificate_url: str


class ConsistencyQuery(Query):
    first: int = Field(alias="from", ge=1, le=_LIMIT, description="The older tree size")
    second: int | None = Field(
        None, alias="to", ge=1, le=_LIMIT, description="The newer size (default: newest)"
    )

    @field_validator("first", "second", mode="before")
    @classmethod
    def _whole(cls, value: object) -> object:
        return _digits(value)


class Consistency(View):
    first: int
    second: int
    consistency_path: list[str]


class ProofQuery(Query):
    tree_size: int | None = Field(
        None, ge=1, le=_LIMIT, description="The tree to prove inclusion in (default: newest)"
    )

    @field_validator("tree_size", mode="before")
    @classmethod
    def _whole(cls, value: object) -> object:
        return _digits(value)


class Inclusion(View):
    sequence: int
    leaf_index: int
    tree_size: int
    audit_path: list[str]


def _newest_size() -> int:
    with runtime().transaction() as session:
        row = latest_checkpoint(session)
        if row is None:
            raise Problem("not-found", "no checkpoint has been signed yet")
        return row.tree_size


@blueprint.get("/audit/checkpoint")
@operation(
    "getAuditCheckpoint",
    "The newest signed checkpoint of the audit journal (a Merkle tree head)",
    tag="audit",
    roles=None,
    responses={200: Reply(Checkpoint, "The checkpoint")},
    errors=(404,),
)
def checkpoint() -> Response:
    with runtime().transaction() as session:
        row = latest_checkpoint(session)
        if row is None:
            raise Problem("not-found", "no checkpoint has been signed yet")
        view = CheckpointView.of(row)
    response = jsonify(
        {
            "tree_size": view.tree_size,
            "root_hash": view.root_hash.hex(),
            "signed_at": view.signed_at.isoformat().replace("+00:00", "Z"),
            "body": view.body,
            "signature": base64.b64encode(view.signature).decode("ascii"),
            "certificate_sha256": view.certificate_sha256,
            "certificate_url": f"{runtime().config.public_url}/ca/audit.crt",
        }
    )
    response.headers["Cache-Control"] = "no-cache"
    return response


@blueprint.get("/audit/consistency")
@operation(
    "getAuditConsistency",
    "RFC 9162 consistency proof between two sizes of the audit journal's tree",
    tag="audit",
    roles=None,
    query=ConsistencyQuery,
    responses={200: Reply(Consistency, "The proof")},
    errors=(404,),
    refusals={422: "from must not exceed to, and to must not exceed the tree's size"},
)
def consistency(query: ConsistencyQuery) -> Response:
    second = query.second if query.second is not None else _newest_size()
    with runtime().transaction() as session:
        try:
            proof = consistency_proof(session, query.first, second)
        except ValueError as ex:
            raise Problem("validation-failed", str(ex), {"from": str(ex)}) from None
    return jsonify(
        {
            "first": query.first,
            "second": second,
            "consistency_path": [node.hex() for node in proof.hashes],
        }
    )


@blueprint.get("/audit/proof/<int:sequence>")
@operation(
    "getAuditInclusion",
    "RFC 9162 inclusion proof (audit path) of one audit journal entry",
    tag="audit",
    roles=None,
    query=ProofQuery,
    responses={200: Reply(Inclusion, "The proof")},
    errors=(404,),
    refusals={422: "the entry and the tree size must lie within the tree"},
)
def inclusion(sequence: int, query: ProofQuery) -> Response:
    size = query.tree_size if query.tree_size is not None else _newest_size()
    with runtime().transaction() as session:
        try:
            proof = inclusion_proof(session, sequence, size)
        except ValueError as ex:
            raise Problem("validation-failed", str(ex), {"sequence": str(ex)}) from None
    return jsonify(
        {
            "sequence": sequence,
            "leaf_index": sequence - 1,
            "tree_size": size,
            "audit_path": [node.hex() for node in proof.hashes],
        }
    )
