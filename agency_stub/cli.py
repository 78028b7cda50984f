"""``tamga-agency``: serve the stub gateway, print its certificates.

tamga-agency serve --home DIR [--host 127.0.0.1] [--port 8100] [--agency tax]
                   --callback http://127.0.0.1:8000 [--check-delay S] [--retry-base S]
tamga-agency cert --home DIR       # the receipt-signing certificate, PEM
tamga-agency ca-cert --home DIR    # the agency's root CA certificate, PEM
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from pathlib import Path
from types import FrameType

from agency_stub.pki import HomeError, load_existing, load_or_create

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tamga-agency", description="A stand-in for a state agency's report gateway."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve the agency protocol")
    serve.add_argument("--home", type=Path, required=True, help="keys and state live here")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8100)
    serve.add_argument("--agency", default="tax", help="tax, social-fund, statistics, ...")
    serve.add_argument(
        "--callback", required=True, help="Tamga's base URL: results go to /api/v1/agency-results"
    )
    serve.add_argument("--check-delay", type=float, default=2.0, help="initial check_delay (s)")
    serve.add_argument("--retry-base", type=float, default=1.0, help="first retry backoff (s)")
    serve.add_argument(
        "--max-refusals", type=int, default=4, help="4xx answers before a result is given up"
    )
    for name, text in (
        ("cert", "print the receipt-signing certificate (PEM)"),
        ("ca-cert", "print the agency's root CA certificate (PEM)"),
    ):
        command = commands.add_parser(name, help=text)
        command.add_argument("--home", type=Path, required=True)
        command.add_argument(
            "--agency", default=None, help="the agency a new home is made for (default tax)"
        )
    return parser


def _stop(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command in ("cert", "ca-cert"):
            keys = (
                load_existing(args.home)
                if args.agency is None
                else load_or_create(args.home, args.agency)
            )
            sys.stdout.write(keys.receipt_pem() if args.command == "cert" else keys.root_pem())
            return 0
        return _serve(args)
    except HomeError as ex:
        print(f"tamga-agency: {ex}", file=sys.stderr)
        return 2


def _serve(args: argparse.Namespace) -> int:
    from werkzeug.serving import run_simple

    from agency_stub.app import create_app
    from agency_stub.controls import Settings
    from agency_stub.results import ResultPoster
    from agency_stub.service import Stub

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    keys = load_or_create(args.home, args.agency)
    stub = Stub.open(args.home, keys, Settings(check_delay=args.check_delay))
    poster = ResultPoster(
        stub, args.callback, retry_base=args.retry_base, max_refusals=args.max_refusals
    )
    poster.start()
    signal.signal(signal.SIGTERM, _stop)
    logging.getLogger("agency_stub").info(
        "agency %s gateway stub on http://%s:%d, results to %s",
        keys.agency,
        args.host,
        args.port,
        poster.url,
    )
    try:
        run_simple(args.host, args.port, create_app(stub), threaded=True)
    finally:
        poster.stop()
    return 0
