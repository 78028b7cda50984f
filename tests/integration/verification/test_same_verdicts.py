"""One dispute, three doors: the API, the commission's page and the offline command agree.

A head's cloud CAdES-B-T signature made through our own signing path; the certificate is then
revoked (§8.3: after the signing time, so the signature stands), and an openssl RuToken-style
signature with no time-stamp is disputed beside it (REVOKED_NO_POE once its certificate is
revoked). The offline command reads only what ``tamga crl export-archive`` wrote — the
commission's USB stick — and must reach the same verdict as the server.
"""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from crl.archive import export_archive
from signing_api.clients import create_client
from tests.ca_fixtures import CaApi
from tests.filing_fixtures import INN
from tests.integration.verification.test_disputes_page import (
    DOCUMENT,
    publish_crls,
    signed_document,
)

pytestmark = [pytest.mark.hsm, pytest.mark.db, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[3]


def _commission(api: CaApi) -> None:
    with api.runtime.transaction() as session:
        made = create_client(
            session, name="commission", role="commission", now=api.clock.now, actor="test"
        )
    api.tokens["commission"] = made.token
    api.client_ids["commission"] = made.client_id


def _api_verdict(api: CaApi, document: bytes, signature: bytes) -> tuple[str, str | None]:
    body: dict[str, Any] = {
        "subscriber_inn": INN,
        "document": (io.BytesIO(document), "report.xml"),
        "signature": (io.BytesIO(signature), "report.p7s"),
    }
    done = api.client.post(
        "/api/v1/disputes",
        data=body,
        headers=api.headers("commission"),
        content_type="multipart/form-data",
    )
    assert done.status_code == 201, done.json
    return done.json["indication"], done.json["sub_indication"]


def _page_verdict(api: CaApi, document: bytes, signature: bytes) -> str:
    done = api.client.post(
        "/disputes/verify",
        data={
            "signed": (io.BytesIO(signature), "report.p7s"),
            "document": (io.BytesIO(document), "report.xml"),
        },
        content_type="multipart/form-data",
    )
    assert done.status_code == 200, done.data[:500]
    page = done.data.decode()
    found = re.search(r"(TOTAL-PASSED|TOTAL-FAILED|INDETERMINATE)", page)
    assert found is not None
    return found.group(1)


def _offline_verdict(
    archive: Path, tmp_path: Path, document: bytes, signature: bytes
) -> dict[str, Any]:
    (tmp_path / "report.xml").write_bytes(document)
    (tmp_path / "report.p7s").write_bytes(signature)
    roots = sorted(archive.glob("root-*.crt"))
    others = sorted(p for p in archive.glob("*.crt") if not p.name.startswith("root-"))
    args = [
        "verify",
        "signature",
        "--document",
        "report.xml",
        "--signature",
        "report.p7s",
        "--json",
    ]
    for path in roots:
        args += ["--trust", str(path)]
    for path in others:
        args += ["--intermediate", str(path)]
    args += ["--crl-dir", str(archive)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAMGA_")}
    done = subprocess.run(
        [sys.executable, "-c", "from signing_api.cli import main; main()", *args],
        cwd=tmp_path,
        env=env | {"PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode in (0, 1), done.stderr
    report: dict[str, Any] = json.loads(done.stdout)
    assert done.returncode == (0 if report["indication"] == "TOTAL-PASSED" else 1)
    return report


def test_api_page_and_offline_archive_reach_the_same_verdicts(
    ca_api: CaApi, tmp_path: Path
) -> None:
    _commission(ca_api)
    cloud = signed_document(ca_api)  # CAdES-B-T through /api/v1/signatures, CRLs published after
    ca_api.pay(INN, 10_000_000)

    # 1. genuine, before anything happens
    assert _api_verdict(ca_api, DOCUMENT, cloud) == ("TOTAL-PASSED", None)
    assert _page_verdict(ca_api, DOCUMENT, cloud) == "TOTAL-PASSED"

    # 2. the certificate is revoked after the signature: §8.3, it still stands
    serial = _signer_serial(cloud)
    revoked = ca_api.post(f"/api/v1/certificates/{serial}/revoke", {"reason": "keyCompromise"})
    assert revoked.status_code == 200, revoked.json
    publish_crls(ca_api)
    api = _api_verdict(ca_api, DOCUMENT, cloud)
    assert api == ("TOTAL-PASSED", None)
    assert _page_verdict(ca_api, DOCUMENT, cloud) == "TOTAL-PASSED"

    # 3. the commission's own machine, from the exported archive alone
    archive = tmp_path / "archive"
    with ca_api.runtime.transaction() as session:
        export_archive(session, archive, now=ca_api.clock.now)
    offline = _offline_verdict(archive, tmp_path, DOCUMENT, cloud)
    assert (offline["indication"], offline["sub_indication"]) == api
    [signature] = offline["signatures"]
    assert signature["signing_time"]["proof"] == "signature-time-stamp"
    assert "after the signing time" in signature["revocation"]

    # 4. one changed byte: every door says TOTAL-FAILED / HASH_FAILURE
    changed = DOCUMENT.replace(b"<", b"[", 1)
    assert _api_verdict(ca_api, changed, cloud) == ("TOTAL-FAILED", "HASH_FAILURE")
    assert _page_verdict(ca_api, changed, cloud) == "TOTAL-FAILED"
    failed = _offline_verdict(archive, tmp_path, changed, cloud)
    assert (failed["indication"], failed["sub_indication"]) == ("TOTAL-FAILED", "HASH_FAILURE")


def _signer_serial(cms_der: bytes) -> str:
    from asn1crypto import cms

    signer = cms.ContentInfo.load(cms_der)["content"]["signer_infos"][0]
    return format(signer["sid"].chosen["serial_number"].native, "x")
