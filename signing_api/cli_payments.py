"""``tamga billing import-statement | assign | suspense | cash | reconcile``."""

from __future__ import annotations

from signing_api.cli_billing import billing_group

__all__ = ["billing_group"]
