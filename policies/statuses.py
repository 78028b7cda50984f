"""The status vocabularies of the registry and of billing, one ``StrEnum`` each.

A member *is* its string (``CertificateStatus.ACTIVE == "active"``, ``f"{member}"`` is
``active``), so the ``status`` columns stay plain strings and the database keeps the values the
migrations' CHECK constraints list; only the code says which word it means. Values and their
order are those of the CHECK constraints (the API and CLI list them in this order).
"""

from __future__ import annotations

import enum

__all__ = [
    "BankLineStatus",
    "CertificateChange",
    "CertificateState",
    "CertificateStatus",
    "CheckStatus",
    "CustomerAccountStatus",
    "DeliveryStatus",
    "HoldStatus",
    "HolderStatus",
    "LineOutcome",
    "PaymentAccountStatus",
    "RegistrationStatus",
    "RenewalOutcome",
    "RenewalStatus",
    "ServiceStatus",
    "SubscriberStatus",
]


# --- the registry (ca.models, migration 0006) --------------------------------------------------


class SubscriberStatus(enum.StrEnum):
    """``subscribers.status``."""

    ACTIVE = "active"
    CLOSED = "closed"


class HolderStatus(enum.StrEnum):
    """``holders.status``."""

    ACTIVE = "active"
    INACTIVE = "inactive"


class RegistrationStatus(enum.StrEnum):
    """``registration_requests.status``: pending → approved or rejected (§3.3)."""

    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"


class CertificateStatus(enum.StrEnum):
    """``certificates.status``. Expiry is ``not_after``, not a status.

    pending (serial reserved, body linted, not signed yet) → active, or failed (refused after
    reservation: nothing was signed); active ⇄ suspended (certificateHold); active or
    suspended → revoked (final).
    """

    PENDING = "pending"
    FAILED = "failed"
    ACTIVE = "active"
    SUSPENDED = "suspended"
    REVOKED = "revoked"


class CertificateState(enum.StrEnum):
    """What a relying party is told about a certificate: its status, with time taken into
    account (``ca.issuance.certificate_state``); an active one is not yet valid, valid or
    expired."""

    PENDING = "pending"
    FAILED = "failed"
    NOT_YET_VALID = "not_yet_valid"
    VALID = "valid"
    EXPIRED = "expired"
    SUSPENDED = "suspended"
    REVOKED = "revoked"


class CertificateChange(enum.StrEnum):
    """``certificate_events.action``: the certificate's status history."""

    ISSUED = "issued"
    SUSPENDED = "suspended"
    RESUMED = "resumed"
    REVOKED = "revoked"


class RenewalStatus(enum.StrEnum):
    """``renewal_requests.status``.

    review (requisites changed: waits for documents and an officer) → approved or rejected;
    accepted (automatic) and approved requests are issued, or rejected when issuance fails.
    """

    REVIEW = "review"
    ACCEPTED = "accepted"
    APPROVED = "approved"
    REJECTED = "rejected"
    ISSUED = "issued"


class RenewalOutcome(enum.StrEnum):
    """What the daily renewal job did with one due certificate (``ca.renewal.DueOutcome``)."""

    RENEWED = "renewed"
    SKIPPED = "skipped"
    FAILED = "failed"


# --- billing (billing.models, migrations 0003 and 0004) ----------------------------------------


class CustomerAccountStatus(enum.StrEnum):
    """``customer_accounts.status``: the contract, active until terminated (§18.5)."""

    ACTIVE = "active"
    TERMINATED = "terminated"


class HoldStatus(enum.StrEnum):
    """``holds.status``: open → posted (charged) or voided."""

    OPEN = "open"
    POSTED = "posted"
    VOIDED = "voided"


class PaymentAccountStatus(enum.StrEnum):
    """``payment_accounts.status``."""

    OPEN = "open"
    PAID = "paid"
    CANCELLED = "cancelled"


class ServiceStatus(enum.StrEnum):
    """The service state filing and signing consult (``billing.service_state``, §3.9.2)."""

    ACTIVE = "active"
    STOPPED = "stopped"  # zero balance: services stop until a top-up
    TERMINATED = "terminated"


class BankLineStatus(enum.StrEnum):
    """``bank_statement_lines.status``: credited, or suspense → assigned (once)."""

    CREDITED = "credited"
    SUSPENSE = "suspense"
    ASSIGNED = "assigned"


class LineOutcome(enum.StrEnum):
    """What an import did with one statement line (``billing.bank.statements.LineResult``)."""

    CREDITED = "credited"
    SUSPENSE = "suspense"
    ALREADY = "already"  # imported before
    REJECTED = "rejected"  # malformed, or refused: not imported


# --- filing (filing.models, migration 0010) ----------------------------------------------------


class DeliveryStatus(enum.StrEnum):
    """``reports.delivery_status``, the operator's words (Статус отправки).

    awaiting_signatures → awaiting_head | awaiting_accountant → (the second signature)
    awaiting_payment or queued; awaiting_payment → queued (a top-up released it); queued → sent
    (the dispatch confirmation is issued as it leaves) → delivered (the agency's signed receipt
    is recorded). Before it leaves (up to queued) a signer may stop it: stopped (final).
    """

    AWAITING_SIGNATURES = "awaiting_signatures"
    AWAITING_HEAD = "awaiting_head"
    AWAITING_ACCOUNTANT = "awaiting_accountant"
    AWAITING_PAYMENT = "awaiting_payment"
    QUEUED = "queued"
    SENT = "sent"
    DELIVERED = "delivered"
    STOPPED = "stopped"


class CheckStatus(enum.StrEnum):
    """``reports.check_status`` (Статус проверки): the agency's verdict, signed by the agency."""

    NONE = "none"
    AWAITING_CHECK = "awaiting_check"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
