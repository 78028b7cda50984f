"""``tamga ca ...`` commands (issue #4). Work in progress."""

from __future__ import annotations

import click

__all__ = ["register"]


def register(ca: click.Group) -> None:
    """Add this module's commands to the ``tamga ca`` group."""
