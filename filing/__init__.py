"""Reports: signatures collected by role, charged, delivered to agencies, receipts.

Other packages use the names re-exported here. Every service takes a SQLAlchemy ``Session``
already in a transaction, an aware UTC ``now`` and an ``actor`` for the history and the journal.
"""

from filing.agencies import AgencyInfo, add_office, list_agencies, register_agency
from filing.delivery import (
    Outgoing,
    claim_due,
    dispatch_statement,
    prepare_dispatch,
    record_failure,
    record_receipt,
    record_result,
    retry_now,
)
from filing.errors import (
    AgencyAnswerInvalid,
    FilingConflict,
    FilingError,
    IdempotencyConflict,
    InvalidReport,
    NotFound,
    SignatureRefused,
)
from filing.models import Agency, AgencyOffice, Report, ReportEvent, ReportSignature
from filing.package import events_of, package, report_json
from filing.reports import (
    SIGNING_STATUSES,
    Filed,
    add_signature,
    file_report,
    release_waiting,
    signatures_of,
    stop_report,
)

__all__ = [
    "SIGNING_STATUSES",
    "Agency",
    "AgencyAnswerInvalid",
    "AgencyInfo",
    "AgencyOffice",
    "Filed",
    "FilingConflict",
    "FilingError",
    "IdempotencyConflict",
    "InvalidReport",
    "NotFound",
    "Outgoing",
    "Report",
    "ReportEvent",
    "ReportSignature",
    "SignatureRefused",
    "add_office",
    "add_signature",
    "claim_due",
    "dispatch_statement",
    "events_of",
    "file_report",
    "list_agencies",
    "package",
    "prepare_dispatch",
    "record_failure",
    "record_receipt",
    "record_result",
    "register_agency",
    "release_waiting",
    "report_json",
    "retry_now",
    "signatures_of",
    "stop_report",
]
