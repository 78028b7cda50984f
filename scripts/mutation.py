#!/usr/bin/env python3
"""Mutation testing of Tamga's security- and money-critical modules (``make mutation``).

The one place that says which modules are mutated and which tests must kill their mutants is
``AREAS`` below: when a module or a test file moves, change its path here and nowhere else.

Each area runs mutmut 3 in its own scratch copy of the tree, build/mutation/<area>/, so areas do
not share mutmut's cache and the work tree is never touched. mutmut copies the packages into
<scratch>/mutants/ and puts a trampoline in every function of the mutated modules; PYTHONPATH is
pointed there too, so a ``tamga`` subprocess started by a test (run_tamga) imports the mutated
code as well, with the mutant chosen through the inherited MUTANT_UNDER_TEST.

    scripts/mutation.py                      # every area
    scripts/mutation.py ledger audit         # some areas
    scripts/mutation.py ledger --only 'billing.ledger.x_post*'   # some functions (fnmatch)
    scripts/mutation.py ledger --show        # and print the diff of every survivor
    scripts/mutation.py --list               # the mapping
    scripts/mutation.py issuance --check ca.issuance.x_load_csr__mutmut_13 -- tests/...py -k x
                                             # one mutant by hand: exit 0 when a test kills it

Results stay in build/mutation/<area>/ (mutmut's cache: a second run only re-tests what changed);
``cd build/mutation/<area> && ../../../.venv/bin/mutmut show NAME`` shows one mutant.
"""

from __future__ import annotations

import argparse
import ast
import difflib
import functools
import json
import os
import shutil
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRATCH = ROOT / "build" / "mutation"
MUTMUT = Path(sys.executable).parent / "mutmut"
# Every package is copied into mutants/ (so imports resolve there); only the area's modules mutate.
PACKAGES = ["policies", "hsm", "db", "ca", "crl", "billing", "filing", "signing_api"]
IT = "tests/integration/"
SIG, CA, BILL, DB, CRL = IT + "signing_api/", IT + "ca/", IT + "billing/", IT + "db/", IT + "crl/"


@dataclass(frozen=True)
class Area:
    modules: list[str]  # files whose functions are mutated
    tests: list[str]  # test files that must kill them (missing files are skipped)
    # pytest -k for every run: the guards are backend-independent, so the SQLite variants (and
    # the tests that take no database) are enough and halve the time.
    select: str = "not postgresql"
    only: list[str] = field(default_factory=list)  # mutant name globs; empty = whole modules


AREAS: dict[str, Area] = {
    # SAD / credential activation (docs/signing.md)
    "activation": Area(
        modules=[
            "signing_api/cloud/activation.py",
            "signing_api/cloud/sad.py",
            "signing_api/cloud/signing.py",
            "ca/usage.py",
        ],
        # test_issuance.py: the code mailed at issuance, and the activation through it
        tests=[
            SIG + "test_csc.py",
            SIG + "test_csc_guards.py",
            SIG + "test_activation_guards.py",
            CA + "test_issuance.py",
        ],
    ),
    # client scopes and authorisation (docs/registry.md, docs/architecture.md)
    "scope": Area(
        modules=["signing_api/web/auth.py", "signing_api/web/common.py", "signing_api/clients.py"],
        # the client lifecycle (disable, rotate, revoke-grant) through the `tamga clients` CLI
        # and the app over the same database: the CLI subprocesses import the mutant too
        tests=[
            SIG + "test_trust_model.py",
            SIG + "test_registry_api.py",
            SIG + "test_app.py",
            SIG + "test_limits.py",
            SIG + "test_clients_guards.py",
            "tests/e2e/test_clients_cli.py",
        ],
    ),
    # the ledger (docs/billing.md)
    "ledger": Area(
        modules=["billing/ledger.py"],
        tests=[BILL + "test_billing_ledger.py", BILL + "test_ledger_guards.py"],
    ),
    # OSMP payment terminals and payments (docs/osmp.md, docs/billing.md)
    "osmp": Area(
        modules=["signing_api/web/billing/osmp.py", "billing/payments.py"],
        tests=[
            SIG + "test_osmp.py",
            SIG + "test_osmp_guards.py",
            SIG + "test_billing_api.py",
            SIG + "test_guards_http.py",
        ],
    ),
    # the issuance gate (docs/certificates.md)
    "issuance": Area(
        modules=["ca/issuance.py", "ca/requests.py"],
        tests=[
            CA + "test_issuance.py",
            CA + "test_issuance_guards.py",
            CA + "test_renewal.py",
            SIG + "test_guards_http.py",
        ],
    ),
    # revocation and CRL publication (docs/crl.md)
    "revocation": Area(
        modules=["ca/revocation.py", "crl/builder.py", "crl/publish.py", "crl/status.py"],
        tests=[
            CA + "test_revocation.py",
            CA + "test_revocation_guards.py",
            CRL + "test_crl.py",
            CRL + "test_crl_guards.py",
            CRL + "test_crl_status.py",
            CRL + "test_delta.py",
            SIG + "test_guards_http.py",
        ],
    ),
    # OCSP answers and the status-change hook that stores them (docs/ocsp.md, docs/crl.md)
    "ocsp": Area(
        modules=["crl/ocsp.py", "crl/changes.py"],
        tests=[CRL + "test_ocsp.py", CRL + "test_delta.py"],
    ),
    # the DER encoder of large CRLs: byte for byte what pyca writes (docs/crl.md, no DB or HSM)
    "crl-der": Area(
        modules=["crl/der.py"],
        tests=["tests/unit/crl/test_der.py"],
    ),
    # filing: the charge at completion, the awaiting-payment queue, delivery (docs/filing.md)
    "filing": Area(
        modules=["filing/reports.py", "filing/delivery.py", "filing/agencies.py"],
        tests=[IT + "filing/test_reports.py", IT + "filing/test_filing_concurrency.py"],
    ),
    # the one signature check of filing and the §8 procedure (crl/signatures.py)
    "verification": Area(
        modules=["crl/signatures.py"],
        tests=[CRL + "test_signatures.py", IT + "filing/test_reports.py"],
    ),
    # the §8 dispute engine (docs/disputes.md): §8.3, the CRLs chosen, the proofs of time
    "disputes": Area(
        modules=["signing_api/verification/engine.py"],
        tests=["tests/unit/verification/test_engine.py"],
    ),
    # the append-only audit chain (docs/architecture.md)
    "audit": Area(
        modules=["db/audit.py", "db/sequencer.py"],
        tests=[
            DB + "test_audit.py",
            DB + "test_audit_guards.py",
            DB + "test_guards_db.py",
            DB + "test_sequencer.py",
        ],
    ),
    # The RFC 9162 tree and proofs (issue #16): pure, unit tests only, minutes.
    "merkle": Area(modules=["db/merkle.py"], tests=["tests/unit/db/test_merkle.py"]),
}

STATUS = {1: "killed", 3: "killed", 0: "survived", 5: "no tests", 33: "no tests", 34: "skipped"}
TIMEOUTS = {36, 24, -24, 152, 255}


def status_of(code: int | None) -> str:
    if code is None:
        return "not checked"
    if code in TIMEOUTS:
        return "timeout"  # the mutant made the tests hang: counts as killed
    return STATUS.get(code, "suspicious")


def toml_list(items: list[str]) -> str:
    return "[" + ", ".join(json.dumps(i) for i in items) + "]"


def prepare(name: str, area: Area) -> Path:
    """Copy the tracked tree into build/mutation/<name>/ (mtimes kept, so mutmut's cache holds)."""
    work = SCRATCH / name
    tracked = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    ).stdout.split(b"\0")
    for raw in tracked:
        rel = raw.decode()
        if not rel or rel.startswith(("build/", "var/", ".venv")):
            continue
        src, dst = ROOT / rel, work / rel
        if not src.is_file():
            continue
        if dst.exists() and dst.stat().st_mtime == src.stat().st_mtime:
            continue
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dst)
    tests = [t for t in area.tests if (ROOT / t).exists()]
    pytest_args = ["-p", "no:cacheprovider", "-p", "no:xdist", "-k", area.select]
    config = (
        "\n[tool.mutmut]\n"
        f"source_paths = {toml_list(PACKAGES)}\n"
        f"only_mutate = {toml_list(area.modules)}\n"
        f"pytest_add_cli_args_test_selection = {toml_list(tests)}\n"
        f"pytest_add_cli_args = {toml_list(pytest_args)}\n"
        'also_copy = ["softhsm.conf", "alembic.ini"]\n'
        "use_git_change_detection = false\n"
        'process_isolation = "fork"\n'
        "timeout_multiplier = 5.0\n"
        "timeout_constant = 30.0\n"
    )
    (work / "pyproject.toml").write_text((ROOT / "pyproject.toml").read_text() + config)
    return work


@functools.cache
def _functions(mutated: Path) -> dict[str, list[str]]:
    funcs: dict[str, list[str]] = {}
    source = mutated.read_text()
    lines = source.splitlines()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and "__mutmut_" in node.name:
            funcs[node.name] = lines[node.lineno : node.end_lineno]
    return funcs


def changed_lines(mutated: Path, name: str) -> list[str]:
    """The lines a mutant changes (faster than one ``mutmut show`` process per survivor)."""
    funcs = _functions(mutated)
    short = name.rpartition(".")[2]
    orig = funcs.get(short.rpartition("__mutmut_")[0] + "__mutmut_orig", [])
    diff = difflib.unified_diff(orig, funcs.get(short, []), lineterm="", n=0)
    return [d for d in diff if d[:1] in "+-" and not d.startswith(("+++", "---"))]


# One mutant by hand: the scratch copy's unmutated packages sit in the test root, which pytest
# puts first on sys.path, so a plain `MUTANT_UNDER_TEST=... pytest` there tests the original
# code. Import the packages from mutants/ before pytest starts (as mutmut's own runner does).
_CHECK = """
import importlib, os, sys
mutants = os.path.join(os.getcwd(), "mutants")
sys.path.insert(0, mutants)
for package in {packages!r}:
    importlib.import_module(package)
module = importlib.import_module({module!r})
assert module.__file__.startswith(mutants), module.__file__
import pytest
sys.exit(pytest.main(sys.argv[1:]))
"""


def check_one(name: str, area: Area, mutant: str, pytest_args: list[str]) -> int:
    """Run ``pytest_args`` (default: the area's tests) with one mutant active; 0 = it survives."""
    work = prepare(name, area)
    env = _env(work)
    env["MUTANT_UNDER_TEST"] = mutant
    module = mutant.rpartition(".")[0]
    code = _CHECK.format(packages=PACKAGES, module=module)
    tests = pytest_args or [t for t in area.tests if (ROOT / t).exists()]
    args = ["-q", "-x", "-p", "no:cacheprovider", "-p", "no:xdist", "-k", area.select, *tests]
    print(f"== {name}: {mutant}", flush=True)
    run = subprocess.run([sys.executable, "-c", code, *args], cwd=work, env=env, check=False)
    print(f"   {mutant}: {'survived' if run.returncode == 0 else 'killed'} ({run.returncode})")
    return run.returncode


def _env(work: Path) -> dict[str, str]:
    env = dict(os.environ)
    # A `tamga` subprocess must import the mutated tree too, not the editable install.
    env["PYTHONPATH"] = str(work / "mutants")
    # tests find `tamga` on PATH (there is no .venv inside the scratch copy)
    env["PATH"] = f"{MUTMUT.parent}{os.pathsep}{env.get('PATH', '')}"
    env.pop("MUTANT_UNDER_TEST", None)
    # pytest keeps only the newest three basetemp directories under /tmp/pytest-of-<user>/ and
    # deletes older ones when a session starts: on a machine where other pytest runs start
    # meanwhile, a long mutmut session lost its SoftHSM token directory (KeyNotFound, GeneralError,
    # a 404 CRL in the clean run). Each area gets its own temp root.
    (work / "tmp").mkdir(exist_ok=True)
    env["PYTEST_DEBUG_TEMPROOT"] = str(work / "tmp")
    return env


def run_area(name: str, area: Area, *, children: int, only: list[str], show: bool) -> dict:
    work = prepare(name, area)
    env = _env(work)
    started = time.monotonic()
    cmd = [str(MUTMUT), "run", "--max-children", str(children), *(only or area.only)]
    print(f"== {name}: {' '.join(area.modules)}", flush=True)
    for _attempt in range(2):
        run = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True, check=False)
        # mutmut 3.8 records no test for any mutant in the run that first generates mutants/;
        # the next run (mutants unchanged) collects them: run once more.
        if "could not find any test case" not in run.stdout:
            break
    elapsed = time.monotonic() - started
    (work / "mutmut-run.log").write_text(run.stdout + run.stderr)
    if run.returncode != 0:
        print(run.stdout[-3000:] + run.stderr[-3000:])
        print(f"mutmut run failed ({run.returncode}); log in {work}/mutmut-run.log")
    counts: Counter[str] = Counter()
    survivors: dict[str, list[str]] = {}
    for module in area.modules:
        meta = work / "mutants" / (module + ".meta")
        if not meta.exists():
            continue
        codes = json.loads(meta.read_text())["exit_code_by_key"]
        names = [k for k, v in codes.items() if status_of(v) in ("survived", "no tests")]
        if only or area.only:
            from fnmatch import fnmatch

            pats = only or area.only
            codes = {k: v for k, v in codes.items() if any(fnmatch(k, p) for p in pats)}
            names = [n for n in names if n in codes]
        counts.update(status_of(v) for v in codes.values())
        survivors[module] = sorted(names)
    total = sum(counts.values())
    print(
        f"   {total} mutants: "
        + ", ".join(f"{v} {k}" for k, v in sorted(counts.items()))
        + f"  ({elapsed:.0f} s)"
    )
    for module, names in survivors.items():
        for n in names:
            print(f"   survived: {n}")
            if show:
                for line in changed_lines(work / "mutants" / module, n):
                    print(f"      {line}")
    return {"area": name, "counts": dict(counts), "survivors": survivors, "seconds": elapsed}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("areas", nargs="*", help=f"areas to run (default all): {', '.join(AREAS)}")
    parser.add_argument("--only", action="append", default=[], help="mutant name glob (fnmatch)")
    parser.add_argument("--show", action="store_true", help="print each survivor's diff")
    parser.add_argument("--list", action="store_true", help="print the module -> tests mapping")
    parser.add_argument(
        "--children", type=int, default=int(os.environ.get("MUTATION_CHILDREN", "2"))
    )
    parser.add_argument(
        "--check",
        metavar="MUTANT",
        help="run one mutant against the area's tests, or the pytest arguments after --",
    )
    argv = sys.argv[1:]
    pytest_args = argv[argv.index("--") + 1 :] if "--" in argv else []
    args = parser.parse_args(argv[: argv.index("--")] if "--" in argv else argv)
    unknown = [a for a in args.areas if a not in AREAS]
    if unknown:
        parser.error(f"unknown area(s) {unknown}; known: {', '.join(AREAS)}")
    if args.list:
        for name, area in AREAS.items():
            print(f"{name}: {' '.join(area.modules)}\n    tests: {' '.join(area.tests)}")
        return 0
    if args.check:
        if len(args.areas) != 1:
            parser.error("--check takes exactly one area")
        area = args.areas[0]
        return 1 if check_one(area, AREAS[area], args.check, pytest_args) == 0 else 0
    results = [
        run_area(n, AREAS[n], children=args.children, only=args.only, show=args.show)
        for n in (args.areas or AREAS)
    ]
    (SCRATCH / "summary.json").write_text(json.dumps(results, indent=2))
    left = sum(len(v) for r in results for v in r["survivors"].values())
    print(f"\n{left} surviving mutants in total (summary: build/mutation/summary.json)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
