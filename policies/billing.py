"""Billing rules as data: penalties, suspension, termination deadlines and time zone."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["BILLING_POLICY", "BUSINESS_TIME_ZONE", "BillingPolicy"]

BUSINESS_TIME_ZONE = "Asia/Bishkek"


@dataclass(frozen=True)
class BillingPolicy:
    # §18.6: the late party pays 1 % of the overdue amount per day of delay. Basis points of the
    # outstanding principal, not compounded on earlier penalties.
    penalty_basis_points_per_day: int = 100
    # §18.5: the debt found by the final reconciliation act is due 5 working days after it
    # (Kyrgyz working days, policies.calendar).
    termination_debt_due_days: int = 5
    # §3.9.2: at zero balance services stop until the balance is topped up.
    stop_at_zero_balance: bool = True
    # §5.3: no payment for more than 30 calendar days lets the operator suspend service.
    suspend_after_days_without_payment: int = 30

    def __post_init__(self) -> None:
        if not 0 < self.penalty_basis_points_per_day <= 10_000:
            raise ValueError("the daily penalty is between 0 and 100 %")
        if self.suspend_after_days_without_payment < 1:
            raise ValueError("the no-payment period is at least one day")


BILLING_POLICY = BillingPolicy()
