"""Who may sign what: a certificate × a company × a report role × a moment.

The one rule the cloud signing API, and filing's head and accountant signatures, share (§1.5.3,
§3.6, §3.9.2, the powers of attorney): head ↔ head, accountant ↔ accountant, head_as_accountant
↔ either; a complex certificate only for companies with a valid power of attorney of its
holder, within its 5/10 limit; any other only for its own company. The certificate must be
valid at the moment, the company's service not stopped, and an end user abroad must come from
one of the subscriber's registered static addresses.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

import billing
from ca.errors import Conflict, UsageRefused
from ca.issuance import certificate_state
from ca.models import Certificate
from ca.powers import check_company_limit, valid_taxpayers
from ca.registry import foreign_addresses
from policies.cert_profiles import CertRole, allowed_companies, signs_as
from policies.dates import local_date
from policies.identifiers import is_inn
from policies.statuses import CertificateState, ServiceStatus
from policies.words import article

__all__ = ["REPORT_ROLES", "may_sign"]

REPORT_ROLES = ("head", "accountant")


def may_sign(
    session: Session,
    certificate: Certificate,
    *,
    inn: str,
    role: str,
    now: datetime,
    abroad: bool = False,
    end_user_ip: str | None = None,
    check_service: bool = True,
) -> None:
    """Return if ``certificate`` may sign for company ``inn`` as ``role`` at ``now``; else raise
    :class:`UsageRefused` saying why (``from_abroad`` when only the §3.6 rule refused).

    ``check_service=False`` leaves out the §3.9.2 stop at zero balance: filing takes a report's
    second signature whatever the balance and lets the report wait for payment instead.
    """
    state = certificate_state(certificate, now)
    if state != CertificateState.VALID:
        raise UsageRefused(f"the certificate is {state}")
    if role not in REPORT_ROLES:
        raise UsageRefused("the report role is head or accountant", field="role")
    if not is_inn(inn):
        raise UsageRefused("the company is named by its 14-digit INN", field="inn")
    cert_role = CertRole(certificate.role)
    if role not in signs_as(cert_role):
        raise UsageRefused(
            f"{article(cert_role.value)} certificate does not sign as {role} (§1.5.3)"
        )
    today = local_date(now)
    if cert_role.value.startswith("complex_"):
        if inn not in valid_taxpayers(session, certificate.holder_id, today):
            raise UsageRefused(f"no valid power of attorney of {inn} for this holder")
        try:
            check_company_limit(session, certificate.holder_id, cert_role, today)
        except Conflict as ex:  # over the 5/10 limit
            limit = allowed_companies(cert_role)
            raise UsageRefused(f"the certificate serves at most {limit} companies: {ex}") from None
        billed = inn
    elif inn != certificate.subscriber_inn:
        raise UsageRefused("this certificate signs only for its own company")
    else:
        billed = certificate.subscriber_inn
    if abroad and (
        end_user_ip is None
        or end_user_ip not in foreign_addresses(session, certificate.subscriber_inn, today)
    ):
        raise UsageRefused(
            "from abroad the service is used only from the subscriber's registered static IP"
            " (§3.6)",
            from_abroad=True,
        )
    if not check_service:
        return
    served = billing.service_state(session, certificate.subscriber_inn, now=now)
    if served.state != ServiceStatus.ACTIVE:
        raise UsageRefused(f"service for {billed} is stopped: {served.reason}")
