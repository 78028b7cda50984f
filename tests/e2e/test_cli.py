"""``tamga`` as a user runs it: subprocesses on their own TAMGA_HOME, SQLite and PostgreSQL."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509
from sqlalchemy import create_engine, make_url, text

from tests.hsm_fixtures import PKCS11_MODULE
from tests.pki_tools import openssl_verify, pkilint
from tests.tamga_fixtures import TAMGA, RunTamga, tamga_env

pytestmark = [pytest.mark.slow, pytest.mark.hsm, pytest.mark.db]

CHECK_TOKEN_KEYS = Path(__file__).resolve().parents[1] / "check_token_keys.py"


def _token_keys(home: Path, label: str) -> list[dict[str, object]]:
    pin = (home / "secrets" / f"{label}.pin").read_text().strip()
    result = subprocess.run(
        [sys.executable, str(CHECK_TOKEN_KEYS), PKCS11_MODULE, label, pin],
        env={"SOFTHSM2_CONF": str(home / "softhsm2.conf"), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    )
    keys: list[dict[str, object]] = json.loads(result.stdout)
    return keys


def _counts(database_url: str) -> dict[str, int]:
    engine = create_engine(database_url)
    with engine.connect() as conn:
        counts = {
            t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one()  # noqa: S608 - fixed names
            for t in ("ca_certificates", "certificate_serials", "audit_journal", "api_clients")
        }
    engine.dispose()
    return counts


def test_init_twice_same_keys_same_certificates(
    run_tamga: RunTamga, tmp_path: Path, database_url: str
) -> None:
    home = tmp_path / "home"
    first = run_tamga(home, "init", database_url=database_url)
    assert (
        "created root certificate" in first.stdout and "created issuing certificate" in first.stdout
    )
    root_pem = run_tamga(home, "ca", "export", "root", database_url=database_url).stdout
    issuing_pem = run_tamga(home, "ca", "export", "issuing", database_url=database_url).stdout
    keys_before = {label: _token_keys(home, label) for label in ("tamga-ca", "tamga-cloud")}
    counts_before = _counts(database_url)

    second = run_tamga(home, "init", database_url=database_url)
    assert "nothing to do" in second.stdout
    assert run_tamga(home, "ca", "export", "root", database_url=database_url).stdout == root_pem
    assert (
        run_tamga(home, "ca", "export", "issuing", database_url=database_url).stdout == issuing_pem
    )
    assert {label: _token_keys(home, label) for label in ("tamga-ca", "tamga-cloud")} == keys_before
    assert _counts(database_url) == counts_before
    assert counts_before["ca_certificates"] == 6  # root, issuing, tsa, dispatch, ocsp, audit

    # Every private key on both tokens: sensitive, never extractable, sign-only, unreadable.
    labels = {k["label"] for keys in keys_before.values() for k in keys}
    assert labels == {
        "tamga-root-ca", "tamga-issuing-ca", "tamga-tsa", "tamga-dispatch", "tamga-ocsp",
        "tamga-audit", "tamga-healthcheck",
    }  # fmt: skip
    for keys in keys_before.values():
        for key in keys:
            assert key["sensitive"] and key["always_sensitive"], key
            assert not key["extractable"] and key["never_extractable"], key
            assert not key["decrypt"] and not key["unwrap"] and not key["derive"], key
            assert key["sign"] and key["token"] and key["private"] and key["has_id"], key
            assert key["value_readable"] is False, key

    # Files for relying parties and the PIN files' protection.
    assert (home / "public" / "ca" / "root.pem").read_text() == root_pem
    assert (home / "secrets").stat().st_mode & 0o777 == 0o700
    if database_url.startswith("sqlite"):
        database_file = Path(str(make_url(database_url).database))
        assert database_file.stat().st_mode & 0o777 == 0o600
    for pin_file in (home / "secrets").iterdir():
        assert pin_file.stat().st_mode & 0o777 == 0o600

    # Independent tools accept what we made.
    (tmp_path / "root.pem").write_text(root_pem)
    (tmp_path / "issuing.pem").write_text(issuing_pem)
    openssl_verify(tmp_path / "root.pem", tmp_path / "issuing.pem")
    pkilint(tmp_path / "root.pem")
    pkilint(tmp_path / "issuing.pem")
    verified = run_tamga(home, "audit", "verify", database_url=database_url).stdout
    assert "audit journal intact" in verified
    # init signed the first checkpoint over every entry it journalled (docs/audit.md)
    assert "checkpoints: 1 signatures verified, 1 roots matched" in verified
    assert "waiting to be sequenced: 0" in verified


def test_second_home_is_independent(run_tamga: RunTamga, tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    run_tamga(a, "init")
    run_tamga(b, "init")
    root_a = x509.load_pem_x509_certificate(run_tamga(a, "ca", "export", "root").stdout.encode())
    root_b = x509.load_pem_x509_certificate(run_tamga(b, "ca", "export", "root").stdout.encode())
    assert root_a.public_key() != root_b.public_key()
    assert (a / "secrets" / "tamga-ca.pin").read_text() != (
        b / "secrets" / "tamga-ca.pin"
    ).read_text()
    assert "tamga.db" in {p.name for p in a.iterdir()}


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.tamga_fixtures import TAMGA, tamga_env

    home = tmp_path_factory.mktemp("installed")
    subprocess.run([TAMGA, "init"], env=tamga_env(home), check=True, capture_output=True)
    return home


def _fails(result: subprocess.CompletedProcess[str], *words: str) -> str:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    message = result.stderr.strip()
    assert len(message.splitlines()) == 1, message
    for word in words:
        assert word in message
    return message


def test_bad_input_gives_one_clear_line(
    run_tamga: RunTamga, installed: Path, tmp_path: Path
) -> None:
    wrong = run_tamga(installed, "init", env={"TAMGA_CA_PIN": "wrong-pin-123"}, check=False)
    assert "wrong-pin-123" not in _fails(wrong, "refused the PIN")

    url = "postgresql+psycopg://postgres:sekrit@127.0.0.1:1/nowhere"
    unreachable = run_tamga(installed, "audit", "verify", database_url=url, check=False)
    assert "sekrit" not in _fails(unreachable, "cannot connect to")
    assert "sekrit" not in run_tamga(tmp_path / "x", "init", database_url=url, check=False).stderr

    garbage = run_tamga(
        installed, "ca", "export", "root", database_url="mysql://x@y/z", check=False
    )
    _fails(garbage, "unsupported database backend")

    # A missing token: the CA token's files are gone.
    broken = tmp_path / "broken"
    run_tamga(broken, "init")
    ca_pin = (broken / "secrets" / "tamga-ca.pin").read_text()
    for token_dir in (broken / "softhsm" / "tokens").iterdir():
        if b"tamga-ca" in (token_dir / "token.object").read_bytes():
            shutil.rmtree(token_dir)
    missing = run_tamga(broken, "ca", "issuer-csr", check=False)
    _fails(missing, "tamga-ca", "not present")
    assert ca_pin not in missing.stderr

    bad_workers = run_tamga(installed, "serve", env={"TAMGA_WORKERS": "many"}, check=False)
    _fails(bad_workers, "TAMGA_WORKERS")
    nope = tmp_path / "nope.pem"
    no_file = run_tamga(installed, "ca", "issuer-import", str(nope), check=False)
    # click's usage error (exit 2), naming the file, before anything is read or installed
    assert no_file.returncode == 2 and "Traceback" not in no_file.stderr, no_file.stderr
    assert no_file.stderr.strip().splitlines()[-1] == (
        f"Error: Invalid value for 'FILE': File '{nope}' does not exist."
    )
    not_cert = tmp_path / "junk.pem"
    not_cert.write_text("junk")
    _fails(
        run_tamga(installed, "ca", "issuer-import", str(not_cert), check=False),
        "not an X.509 certificate",
    )


def test_audit_verify_names_the_tampered_row(run_tamga: RunTamga, tmp_path: Path) -> None:
    home = tmp_path / "home"
    run_tamga(home, "init")
    db = sqlite3.connect(home / "tamga.db")
    with db:
        triggers = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='trigger'")]
        assert triggers, "append-only triggers must exist"
        with pytest.raises(sqlite3.DatabaseError):
            db.execute("UPDATE audit_journal SET actor = 'mallory' WHERE sequence = 3")
        for name in triggers:
            db.execute(f"DROP TRIGGER {name}")
        db.execute("UPDATE audit_journal SET actor = 'mallory' WHERE sequence = 3")
    db.close()
    result = run_tamga(home, "audit", "verify", check=False)
    _fails(result, "3")


def test_audit_checkpoint_and_a_forged_one(run_tamga: RunTamga, tmp_path: Path) -> None:
    """`tamga audit checkpoint` prints the signed text; a checkpoint whose text was changed
    behind the triggers fails `tamga audit verify` (exit 1, one line, no traceback)."""
    home = tmp_path / "home"
    run_tamga(home, "init")
    printed = run_tamga(home, "audit", "checkpoint").stdout.splitlines()
    assert printed[0] == "127.0.0.1:8000/audit"
    assert int(printed[1]) > 5 and printed[3].startswith("timestamp ")
    assert printed[4].startswith("signature (DER, base64): ")
    assert "2 signatures verified" in run_tamga(home, "audit", "verify").stdout
    db = sqlite3.connect(home / "tamga.db")
    with db:
        db.execute("DROP TRIGGER audit_checkpoints_no_update")
        db.execute("UPDATE audit_checkpoints SET body = replace(body, 'timestamp', 'Timestamp')")
    db.close()
    _fails(run_tamga(home, "audit", "verify", check=False), "checkpoint", "signature")


def test_clients_create_prints_token_once_on_last_line(
    run_tamga: RunTamga, installed: Path
) -> None:
    result = run_tamga(
        installed, "clients", "create", "--name", "reporting portal", "--role", "portal"
    )
    lines = result.stdout.strip().splitlines()
    token = lines[-1]
    assert token.startswith("tmg_") and " " not in token
    assert result.stdout.count(token) == 1 and token not in result.stderr
    db = sqlite3.connect(installed / "tamga.db")
    stored = db.execute(
        "SELECT token_sha256 FROM api_clients WHERE name = 'reporting portal'"
    ).fetchone()[0]
    assert token not in stored and len(stored) == 64
    db.close()
    dup = run_tamga(
        installed,
        "clients",
        "create",
        "--name",
        "reporting portal",
        "--role",
        "portal",
        check=False,
    )
    _fails(dup, "already exists")
    bad_role = run_tamga(
        installed, "clients", "create", "--name", "x", "--role", "king", check=False
    )
    assert bad_role.returncode == 2 and "king" in bad_role.stderr


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def test_production_path_with_an_openssl_root(run_tamga: RunTamga, tmp_path: Path) -> None:
    """The national root is an openssl CA here; Tamga sends a CSR and imports the answer."""
    home = tmp_path / "home"
    _openssl(
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-384",
        "-nodes",
        "-keyout",
        "nat.key",
        "-out",
        "nat.pem",
        "-days",
        "7300",
        "-subj",
        "/C=KG/O=Infocom/CN=National Root CA",
        "-sha384",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
        cwd=tmp_path,
    )
    env = {"TAMGA_ROOT_CERT": str(tmp_path / "nat.pem")}
    first = run_tamga(home, "init", env=env)
    assert "awaits its certificate" in first.stdout and "created root key" not in first.stdout
    csr = run_tamga(home, "ca", "issuer-csr", env=env).stdout
    (tmp_path / "issuing.csr").write_text(csr)
    _openssl("req", "-in", "issuing.csr", "-verify", "-noout", cwd=tmp_path)
    (tmp_path / "ext.cnf").write_text(
        "basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\n"
        "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n"
    )
    _openssl(
        "x509",
        "-req",
        "-in",
        "issuing.csr",
        "-CA",
        "nat.pem",
        "-CAkey",
        "nat.key",
        "-CAcreateserial",
        "-days",
        "3650",
        "-sha384",
        "-extfile",
        "ext.cnf",
        "-out",
        "issuing.pem",
        cwd=tmp_path,
    )
    missing = run_tamga(home, "ca", "export", "issuing", env=env, check=False)
    _fails(missing, "no issuing CA certificate")
    run_tamga(home, "ca", "issuer-import", str(tmp_path / "issuing.pem"), env=env)
    exported = run_tamga(home, "ca", "export", "issuing", env=env).stdout
    (tmp_path / "exported.pem").write_text(exported)
    openssl_verify(tmp_path / "nat.pem", tmp_path / "exported.pem")
    assert (home / "public" / "ca" / "issuing.pem").read_text() == exported
    # The TSA needs the issuing CA: the import made it, so init has nothing to do.
    assert "nothing to do" in run_tamga(home, "init", env=env).stdout
    tsa = x509.load_pem_x509_certificate(
        run_tamga(home, "ca", "export", "tsa", env=env).stdout.encode()
    )
    assert tsa.issuer == x509.load_pem_x509_certificate(exported.encode()).subject
    # An issuing certificate made by someone else's root is refused, and nothing changes.
    _openssl(
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        "o.key",
        "-out",
        "o.pem",
        "-days",
        "30",
        "-subj",
        "/CN=Other",
        cwd=tmp_path,
    )
    _openssl(
        "x509",
        "-req",
        "-in",
        "issuing.csr",
        "-CA",
        "o.pem",
        "-CAkey",
        "o.key",
        "-CAcreateserial",
        "-days",
        "30",
        "-extfile",
        "ext.cnf",
        "-out",
        "bad.pem",
        cwd=tmp_path,
    )
    _fails(
        run_tamga(home, "ca", "issuer-import", str(tmp_path / "bad.pem"), env=env, check=False),
        "does not chain",
    )
    assert run_tamga(home, "ca", "export", "issuing", env=env).stdout == exported


def test_a_command_away_from_the_installation_refuses_in_one_line(tmp_path: Path) -> None:
    """Issue #12 (README as a new user): run elsewhere, the CLI made ./var/tamga.db there and
    printed a SQLAlchemy traceback. It now finds the project's var/ from a subdirectory, and
    elsewhere refuses in one line, creating nothing."""
    project = tmp_path / "project"
    env = {k: v for k, v in tamga_env(project / "var").items() if k != "TAMGA_HOME"}
    project.mkdir()
    subprocess.run([TAMGA, "init"], env=env, cwd=project, check=True, capture_output=True)
    assert (project / "var" / "tamga.db").exists()
    deep = project / "docs" / "drafts"
    deep.mkdir(parents=True)
    found = subprocess.run([TAMGA, "audit", "verify"], env=env, cwd=deep, capture_output=True,
                           text=True, check=False)  # fmt: skip
    assert found.returncode == 0, found.stderr
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    for args in (["audit", "verify"], ["ca", "list"], ["mail", "send"], ["serve"]):
        refused = subprocess.run([TAMGA, *args], env=env, cwd=elsewhere, capture_output=True,
                                 text=True, check=False)  # fmt: skip
        assert refused.returncode == 1, (args, refused.stderr)
        assert refused.stderr.startswith("Error: no Tamga installation in"), refused.stderr
        assert len(refused.stderr.strip().splitlines()) == 1 and "Traceback" not in refused.stderr
    assert list(elsewhere.iterdir()) == []  # nothing created
    empty = tmp_path / "empty-home"
    empty.mkdir()
    unset = subprocess.run([TAMGA, "ca", "list"], env={**env, "TAMGA_HOME": str(empty)},
                           capture_output=True, text=True, check=False)  # fmt: skip
    assert unset.returncode == 1 and "has no database: run `tamga init` first" in unset.stderr
    assert list(empty.iterdir()) == []
