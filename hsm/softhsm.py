"""SoftHSM2 specifics for the embedded mode: its configuration file and token set-up.

A real HSM comes with its tokens initialised by its own tools; SoftHSM2 under ``TAMGA_HOME`` is
created here so that a second ``TAMGA_HOME`` is a second, independent installation.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from hsm.errors import HSMError

__all__ = ["init_token", "is_softhsm", "token_labels", "write_config"]


def is_softhsm(module_path: str) -> bool:
    return "softhsm" in Path(module_path).name.lower()


def write_config(template: Path, home: Path) -> Path:
    """Write ``$TAMGA_HOME/softhsm2.conf`` from ``template`` (``@TOKENDIR@`` substituted)."""
    tokendir = home / "softhsm" / "tokens"
    tokendir.mkdir(parents=True, exist_ok=True)
    os.chmod(tokendir.parent, 0o700)
    text = template.read_text(encoding="utf-8").replace("@TOKENDIR@", str(tokendir.resolve()))
    conf = home / "softhsm2.conf"
    tmp = conf.with_suffix(".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(conf)
    return conf


def _softhsm_util() -> str:
    util = shutil.which("softhsm2-util")
    if util is None:
        raise HSMError("softhsm2-util not found: install Debian's softhsm2 (make setup does)")
    return util


def token_labels(conf: Path) -> list[str]:
    """Labels of the initialised tokens under the configuration ``conf``."""
    out = subprocess.run(
        [_softhsm_util(), "--show-slots"],
        env={**os.environ, "SOFTHSM2_CONF": str(conf)},
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise HSMError(f"softhsm2-util --show-slots failed: {out.stderr.strip()}")
    labels = []
    for line in out.stdout.splitlines():
        key, _, value = line.strip().partition(":")
        if key.strip() == "Label" and value.strip():
            labels.append(value.strip())
    return labels


def init_token(conf: Path, label: str, pin: str, so_pin: str) -> None:
    """Initialise a new SoftHSM2 token in the first free slot.

    softhsm2-util takes the PINs as arguments; this runs once, at ``tamga init``, on the
    operator's own machine, and the PINs are never written to any log.
    """
    out = subprocess.run(
        [
            _softhsm_util(),
            "--init-token",
            "--free",
            "--label",
            label,
            "--pin",
            pin,
            "--so-pin",
            so_pin,
        ],
        env={**os.environ, "SOFTHSM2_CONF": str(conf)},
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        detail = out.stderr.strip().replace(pin, "***").replace(so_pin, "***")
        raise HSMError(f"could not initialise token {label!r}: {detail}")
