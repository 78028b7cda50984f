"""What a certificate costs and how it is paid (DOMAIN.md table; billing's payment accounts).

The first certificate of a subscriber is paid through a 16-digit payment account issued for the
purpose ``first_certificate_purpose(inn)``; paying it holds the amount (ledger hold
``pa:<number>``), which issuance posts. Later certificates are paid by a debit of the balance.
"""

from __future__ import annotations

from datetime import datetime

from policies.billing import BUSINESS_TIME_ZONE
from policies.cert_profiles import CertRole, Storage, tariff_code
from policies.tariffs import TARIFFS, TariffSchedule

__all__ = ["certificate_price", "first_certificate_purpose"]


def first_certificate_purpose(inn: str) -> str:
    """The payment-account purpose of a subscriber's first certificate."""
    return f"cert:first:{inn}"


def certificate_price(
    role: CertRole, storage: Storage, now: datetime, tariffs: TariffSchedule = TARIFFS
) -> tuple[str, int]:
    """(tariff code, price in tyiyn) of a certificate of ``role`` and ``storage`` today."""
    from zoneinfo import ZoneInfo

    code = tariff_code(role, storage)
    return code, tariffs.price(code, now.astimezone(ZoneInfo(BUSINESS_TIME_ZONE)).date()).price
