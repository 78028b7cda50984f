"""Each status vocabulary (policies/statuses.py) is exactly what its table's CHECK admits."""

from __future__ import annotations

import enum
import re

import pytest
from sqlalchemy import CheckConstraint

from billing.bank.lines import BankStatementLine
from billing.models import CustomerAccount, Hold, PaymentAccount
from ca.models import Certificate, Holder, RegistrationRequest, RenewalRequest, Subscriber
from db import Base
from policies import statuses


def _allowed(model: type[Base], column: str) -> list[str]:
    for constraint in model.__table__.constraints:
        if isinstance(constraint, CheckConstraint):
            found = re.fullmatch(rf"{column} IN \((.*)\)", str(constraint.sqltext))
            if found:
                return re.findall(r"'([^']*)'", found.group(1))
    raise AssertionError(f"{model.__name__} has no CHECK on {column}")


@pytest.mark.parametrize(
    ("vocabulary", "model"),
    [
        (statuses.SubscriberStatus, Subscriber),
        (statuses.HolderStatus, Holder),
        (statuses.RegistrationStatus, RegistrationRequest),
        (statuses.CertificateStatus, Certificate),
        (statuses.RenewalStatus, RenewalRequest),
        (statuses.CustomerAccountStatus, CustomerAccount),
        (statuses.HoldStatus, Hold),
        (statuses.PaymentAccountStatus, PaymentAccount),
        (statuses.BankLineStatus, BankStatementLine),
    ],
)
def test_status_vocabulary_matches_the_check(
    vocabulary: type[enum.StrEnum], model: type[Base]
) -> None:
    assert [m.value for m in vocabulary] == _allowed(model, "status")
