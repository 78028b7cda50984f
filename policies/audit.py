"""The audit journal's sequencer and checkpoints: batch sizes and timing (issue #16).

| what                    | value                                                          |
|-------------------------|----------------------------------------------------------------|
| batch                   | at most 5,000 entries numbered per sequencer transaction       |
| sequencer poll          | every 0.2 s while idle (``tamga worker``'s sequencer thread)   |
| sweep (SQLite)          | every 5 s where commits sequence inline: only what a pass left |
| checkpoint interval     | a new checkpoint once a minute when the tree has grown         |
| checkpoint maximum age  | a new one every hour even when it has not (a fresh timestamp)  |
| origin                  | ``<TAMGA_PUBLIC_URL host>/audit``: names the log in the text   |

The sequencing delay (an entry's wait between its commit and its number) stays under a second
while the sequencer integrates more than the writers append: 5,000 entries per batch against
the hundreds of money events per second the rest of the system makes (docs/benchmarks.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

__all__ = ["AUDIT_LOG_POLICY", "AuditLogPolicy"]


@dataclass(frozen=True)
class AuditLogPolicy:
    batch: int
    poll_seconds: float
    sweep_seconds: float  # the worker's poll where commits sequence inline (SQLite)
    checkpoint_interval: timedelta
    checkpoint_max_age: timedelta

    def __post_init__(self) -> None:
        if self.batch < 1 or self.poll_seconds <= 0 or self.sweep_seconds < self.poll_seconds:
            raise ValueError("batch and poll_seconds must be positive, sweep_seconds no shorter")
        if not timedelta(0) < self.checkpoint_interval <= self.checkpoint_max_age:
            raise ValueError("0 < checkpoint_interval <= checkpoint_max_age")


AUDIT_LOG_POLICY = AuditLogPolicy(
    batch=5000,
    poll_seconds=0.2,
    sweep_seconds=5.0,
    checkpoint_interval=timedelta(minutes=1),
    checkpoint_max_age=timedelta(hours=1),
)
