"""Payment terminals and wallets that pay in over the OSMP/QIWI protocol, as policy data.

Each provider has a code (the last segment of ``/payments/osmp/<code>``), the addresses its
servers call from, which of the operator's two payable services it may pay, and sum limits.

Services (seed 002): ``"sochi"`` tops up a balance, the account being the subscriber's 14-digit
INN; ``"eds"`` ("EDS payment", Оплата ЭЦП) pays a first certificate through a 16-digit payment
account. The FAQ (seed 000) lists only bank and cash for certificates, while the MegaPay guide
(seed 002) shows the "EDS payment" service in the wallet; the Elsom guide (seed 004) shows only
balance top-ups by INN. So MegaPay may pay both services, every other provider only "sochi".
Change ``services`` below when a provider's contract says otherwise.

The sum limits (1.00 som to 100 000.00 som per payment) are placeholders until the operator's
contracts with the providers give the real figures. The default allow-list is loopback only: a
provider's real addresses come from its contract and are set by the operator in
``TAMGA_OSMP_ALLOW`` (read by ``signing_api.web.billing.osmp``; this package performs no I/O).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from datetime import timedelta

__all__ = [
    "DEFAULT_ALLOWED_IPS",
    "EDS",
    "PROVIDERS",
    "SERVICES",
    "SOCHI",
    "TXN_DATE_FUTURE",
    "TXN_DATE_PAST",
    "Provider",
    "parse_network",
    "provider_allows",
]

SOCHI = "sochi"
EDS = "eds"
SERVICES = frozenset({SOCHI, EDS})
DEFAULT_ALLOWED_IPS: tuple[str, ...] = ("127.0.0.1", "::1")

MIN_SUM = 1_00  # tyiyn: 1.00 som (placeholder)
MAX_SUM = 100_000_00  # tyiyn: 100 000.00 som (placeholder)
# A provider's txn_date (when the payer paid at the terminal) must be recent: a provider retries
# an unanswered payment within hours, reconciliation happens within days. A date further back
# or ahead is a provider's error or a forgery and is refused (result 300); the window is policy.
TXN_DATE_PAST = timedelta(days=30)
TXN_DATE_FUTURE = timedelta(days=1)

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_network(text: str) -> Network:
    """A CIDR block or a single address (``10.1.2.0/24``, ``10.1.3.4``, ``::1``)."""
    try:
        return ipaddress.ip_network(text.strip(), strict=True)
    except ValueError as ex:
        raise ValueError(f"{text!r} is not an IP address or CIDR network: {ex}") from None


@dataclass(frozen=True)
class Provider:
    """One payment provider (terminal network or wallet) speaking OSMP to us."""

    code: str
    name: str
    allowed_ips: tuple[str, ...] = DEFAULT_ALLOWED_IPS
    services: frozenset[str] = field(default_factory=lambda: frozenset({SOCHI}))
    min_sum: int = MIN_SUM  # tyiyn
    max_sum: int = MAX_SUM  # tyiyn

    def __post_init__(self) -> None:
        if not self.code or not all(c.isascii() and (c.isalnum() or c == "-") for c in self.code):
            raise ValueError(f"provider code {self.code!r}: ASCII letters, digits and '-' only")
        if len(self.code) > 32:  # payments.provider is VARCHAR(32)
            raise ValueError(f"provider code {self.code!r} is longer than 32 characters")
        if not self.services or not self.services <= SERVICES:
            raise ValueError(f"provider {self.code}: services must be a subset of {SERVICES}")
        for value in (self.min_sum, self.max_sum):
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"provider {self.code}: sum limits are positive tyiyn")
        if self.min_sum > self.max_sum:
            raise ValueError(f"provider {self.code}: min_sum is above max_sum")
        for text in self.allowed_ips:
            parse_network(text)

    def may_pay(self, service: str) -> bool:
        """Whether this provider may accept payments for ``service`` (``sochi`` or ``eds``)."""
        return service in self.services


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    # A dual-stack listener reports IPv4 clients as ::ffff:a.b.c.d; match them as IPv4.
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def provider_allows(provider: Provider, address: str) -> bool:
    """Whether a request from ``address`` may speak for ``provider`` (its allow-list)."""
    parsed = _address(address)
    if parsed is None:
        return False
    return any(parsed in parse_network(text) for text in provider.allowed_ips)


def _providers(*providers: Provider) -> dict[str, Provider]:
    return {p.code: p for p in providers}


PROVIDERS: dict[str, Provider] = _providers(
    # Terminals (seed 000).
    Provider("quickpay", "QuickPay"),
    Provider("pay24", "Pay24"),
    Provider("onoi", "ONOI"),
    Provider("umai", "UMAI"),
    Provider("mobilnye-seti", "Мобильные сети (Кыртелсат)"),
    # Wallets (seeds 000, 002, 004).
    Provider("odengi", "О!Деньги"),
    Provider("megapay", "MegaPay", services=frozenset({SOCHI, EDS})),  # seed 002: both services
    Provider("balance", "Balance"),
    Provider("elsom", "Элсом"),  # seed 004: balance top-ups by INN only
)
