"""How the commission's report and page word the engine's values: Russian with the English beside.

The PDF (:mod:`.pdf`) and the web page (``signing_api/web/ui``) print the same labels from here,
so a commission reading the page and the paper reads the same words. The values themselves
(indications, sub-indications, clauses, hashes) are printed as the engine gives them: they are
the standard's words (ETSI EN 319 102-1) and what a second tool would print.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from policies.dates import BISHKEK
from signing_api.verification.report import (
    CONCLUSIONS,
    STEP_NAMES,
    Indication,
    StepStatus,
    TimeProof,
)

__all__ = [
    "CASE_LABELS",
    "CONCLUSIONS_RU",
    "INDICATION_RU",
    "INPUT_ROLE_RU",
    "STATUS_RU",
    "STEP_NAMES_RU",
    "TIME_PROOF_RU",
    "case_rows",
    "conclusion_text",
    "moment",
    "serial_hex",
    "step_name",
]

INDICATION_RU = {
    Indication.TOTAL_PASSED: "подпись подлинная",
    Indication.TOTAL_FAILED: "подпись не подлинная",
    Indication.INDETERMINATE: "подлинность не установлена",
}

# §8.4, in the words of CONCLUSIONS (report.py), in Russian.
CONCLUSIONS_RU = {
    Indication.TOTAL_PASSED: "Электронная подпись подлинная: она создана ключом указанного "
    "сертификата над этим документом, и сертификат был действителен и не отозван в момент "
    "подписания (§8.4).",
    Indication.TOTAL_FAILED: "Электронная подпись не подлинная (§8.4).",
    Indication.INDETERMINATE: "Подлинность не может быть подтверждена по представленным "
    "материалам; причина и то, что позволило бы её установить, указаны в заключении (§8.4).",
}

STEP_NAMES_RU = {
    1: "определение сертификата подписанта",
    2: "проверка подписи над документом",
    3: "установление момента подписания",
    4: "цепочка до доверенного корневого сертификата, подпись каждого сертификата проверена",
    5: "действительность сертификата на момент проверки",
    6: "действительность сертификата на момент подписания",
    7: "статус отзыва на момент подписания (§8.3)",
}

STATUS_RU = {
    StepStatus.PASSED: "пройдено",
    StepStatus.FAILED: "не пройдено",
    StepStatus.INDETERMINATE: "не установлено",
    StepStatus.NOT_CHECKED: "не проверялось",
    StepStatus.INFORMATIONAL: "для сведения",
}

TIME_PROOF_RU = {
    TimeProof.TIME_STAMP: "штамп времени над подписью",
    TimeProof.OPERATOR_EVIDENCE: "записи оператора",
    TimeProof.CLAIMED: "время, заявленное подписантом",
    TimeProof.VALIDATION_TIME: "момент проверки",
}

INPUT_ROLE_RU = {
    "document": "документ",
    "signature": "подпись",
    "pdf": "PDF",
    "package": "пакет отчёта",
    "trust-anchor": "корневой сертификат",
    "intermediate": "сертификат",
    "crl": "СОС (CRL)",
}

# The facts of a dispute case as the API passes them (``case=``), in the order printed. Keys
# not listed here are printed after these, under their own name.
CASE_LABELS: Mapping[str, str] = {
    "case_id": "Дело / Case",
    "inn": "ИНН абонента / Subscriber INN",
    "opened_at": "Открыто / Opened at",
    "opened_by": "Кем / By",
}
_CASE_ALIASES = {
    "id": "case_id",
    "case": "case_id",
    "subscriber_inn": "inn",
    "by": "opened_by",
}


def case_rows(case: Mapping[str, str] | None) -> list[tuple[str, str]]:
    """(label, value) for each fact of the case, the known ones first, in a fixed order."""
    if not case:
        return []
    known: dict[str, str] = {}
    others: list[tuple[str, str]] = []
    for key, value in case.items():
        name = _CASE_ALIASES.get(key, key)
        if name in CASE_LABELS:
            known[name] = str(value)
        else:
            others.append((key, str(value)))
    return [(CASE_LABELS[k], known[k]) for k in CASE_LABELS if k in known] + others


def step_name(number: int) -> tuple[str, str, str]:
    """(clause, Russian name, English name) of a step of §8.2."""
    clause, english = STEP_NAMES[number]
    return clause, STEP_NAMES_RU[number], english


def conclusion_text(indication: Indication) -> tuple[str, str]:
    """The §8.4 conclusion (Russian, English)."""
    return CONCLUSIONS_RU[indication], CONCLUSIONS[indication]


def moment(at: datetime | None, missing: str = "—") -> str:
    """``2026-12-03 10:15:00 UTC (16:15:00 Бишкек)``: the instant, and the wall clock of people."""
    if at is None:
        return missing
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    utc = at.astimezone(UTC)
    return f"{utc:%Y-%m-%d %H:%M:%S} UTC ({at.astimezone(BISHKEK):%Y-%m-%d %H:%M:%S} Бишкек)"


def serial_hex(serial: int | None) -> str:
    """A certificate serial as the CA and ``openssl x509 -serial`` print it (lowercase hex)."""
    return "—" if serial is None else format(serial, "x")
