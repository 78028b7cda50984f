"""The stub's controls (``POST /control``): how it answers deliveries and what it checks.

Kept in memory: a restart starts from the defaults (given on the command line). The check
outcome, its message, its delay and ``duplicate_results`` are read when a report arrives and
stored with it; ``mode`` is read at every delivery and before every result post.
"""

from __future__ import annotations

import math
import threading
from dataclasses import asdict, dataclass, replace
from typing import Any

__all__ = ["ControlError", "Controls", "Settings"]

MODES = ("up", "down", "error", "slow")
CHECKS = ("accept", "reject", "none")


class ControlError(ValueError):
    """A control body that cannot be applied; nothing of it was applied."""


@dataclass(frozen=True)
class Settings:
    mode: str = "up"
    delay: float = 5.0
    check: str = "accept"
    check_delay: float = 2.0
    duplicate_results: bool = False
    reject_message: str = "The report does not pass the agency's format check (stub)"


def _seconds(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ControlError(f"{name} must be a number of seconds")
    if not math.isfinite(value) or value < 0 or value > 3600:
        raise ControlError(f"{name} must be between 0 and 3600 seconds")
    return float(value)


class Controls:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._lock = threading.Lock()

    @property
    def current(self) -> Settings:
        with self._lock:
            return self._settings

    def as_json(self) -> dict[str, Any]:
        return asdict(self.current)

    def update(self, body: Any) -> Settings:
        """Apply any subset of the controls, all or nothing."""
        if not isinstance(body, dict):
            raise ControlError("the body must be a JSON object")
        changes: dict[str, Any] = {}
        for name, value in body.items():
            if name == "mode":
                if value not in MODES:
                    raise ControlError(f"mode must be one of {', '.join(MODES)}")
                changes[name] = value
            elif name == "check":
                if value not in CHECKS:
                    raise ControlError(f"check must be one of {', '.join(CHECKS)}")
                changes[name] = value
            elif name in ("delay", "check_delay"):
                changes[name] = _seconds(name, value)
            elif name == "duplicate_results":
                if not isinstance(value, bool):
                    raise ControlError("duplicate_results must be true or false")
                changes[name] = value
            elif name == "reject_message":
                if not isinstance(value, str) or len(value) > 2000:
                    raise ControlError("reject_message must be a string of at most 2000 chars")
                changes[name] = value
            else:
                raise ControlError(f"unknown control {name!r}")
        with self._lock:
            self._settings = replace(self._settings, **changes)
            return self._settings
