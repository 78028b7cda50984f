"""The renewal request a holder signs with the current key (seed 003, contract §18.2).

The wording follows the operator's Russian original ("ЗАЯВКА НА ПРОДЛЕНИЕ ЭЦП"): the holder
consents to a one-year re-issue and to the balance being debited at the current tariff, and
confirms that the seven requisites of §18.2.2 are unchanged. The text must be byte-for-byte
reproducible from the registry, because the holder signs these bytes (a detached CMS signature,
:mod:`ca.cms`) and :func:`parse_requisites` later reads back what was signed to compare it with
the registry.
"""

from __future__ import annotations

from datetime import date, datetime

from ca.errors import InvalidField

__all__ = ["REQUISITE_LABELS", "parse_requisites", "renewal_request_text"]

# Registry key -> label in the request, in the order the request lists them (§18.2.2).
REQUISITE_LABELS: dict[str, str] = {
    "company_inn": "ИНН компании",
    "company_name": "Наименование компании",
    "locality": "Населенный пункт",
    "full_name": "ФИО",
    "position": "Должность",
    "passport_series": "Серия паспорта",
    "email": "Электронная почта",
}
_KEY_BY_LABEL = {label: key for key, label in REQUISITE_LABELS.items()}

_TITLE = "ЗАЯВКА НА ПРОДЛЕНИЕ ЭЦП"
_CONSENT = (
    "Я, {full_name}, {position} компании {company_name}, согласен(на) с тем, что моя "
    "электронно-цифровая подпись (ЭЦП) будет переизготовлена сроком на 1 календарный год - "
    "до {not_after} и с баланса компании будет списана стоимость ЭЦП, согласно текущим "
    'тарифам на услуги ОсОО "DosTek group".'
)
_CONFIRMATION = (
    "Подтверждаю, что нижеследующие реквизиты остались неизменными и могут быть использованы "
    "при переизготовлении моего ЭЦП:"
)


def renewal_request_text(
    *,
    full_name: str,
    position: str,
    company_name: str,
    company_inn: str,
    locality: str,
    passport_series: str,
    email: str,
    new_not_after: date,
) -> str:
    """The request text: deterministic, ``\\n`` line endings, one trailing newline."""
    requisites = {
        "company_inn": company_inn,
        "company_name": company_name,
        "locality": locality,
        "full_name": full_name,
        "position": position,
        "passport_series": passport_series,
        "email": email,
    }
    for key, value in requisites.items():
        # A line break inside a value would let it forge another requisite line.
        if value.splitlines() != [value]:
            raise InvalidField(key, "must be one non-empty line")
    if isinstance(new_not_after, datetime):  # a date in Asia/Bishkek, not a UTC instant
        raise InvalidField("new_not_after", "must be a date, not a datetime")
    consent = _CONSENT.format(
        full_name=full_name,
        position=position,
        company_name=company_name,
        not_after=_format_date(new_not_after),
    )
    lines = [_TITLE, "", consent, "", _CONFIRMATION, ""]
    lines += [f"{REQUISITE_LABELS[key]}: {value}" for key, value in requisites.items()]
    return "\n".join(lines) + "\n"


def parse_requisites(text: str) -> dict[str, str]:
    """The seven requisites of a request text, keyed as :data:`REQUISITE_LABELS`.

    Only the single space after each label's colon is removed from a value. A missing or
    repeated requisite raises :class:`~ca.errors.InvalidField` naming it.
    """
    found: dict[str, str] = {}
    for line in text.split("\n"):
        label, colon, value = line.partition(":")
        key = _KEY_BY_LABEL.get(label)
        if not colon or key is None:
            continue
        if key in found:
            raise InvalidField(key, "appears more than once in the renewal request")
        found[key] = value.removeprefix(" ")
    for key in REQUISITE_LABELS:
        if key not in found:
            raise InvalidField(key, "is missing from the renewal request")
    return {key: found[key] for key in REQUISITE_LABELS}


def _format_date(day: date) -> str:
    # Spelled out rather than strftime("%Y"), which does not zero-pad years before 1000.
    return f"{day.day:02d}.{day.month:02d}.{day.year:04d}"
