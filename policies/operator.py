"""The operator's requisites and bank payment codes, as printed on its billing documents.

Source: the operator's public FAQ (shared seed 000, "Компаниянын реквизиттери" and "Төлөм
жүргүзүүнүн кандай жолдору бар?"), translated from Kyrgyz into the Russian the documents use.
A change of bank, address or payment code is a change of this data and nothing else.
"""

from __future__ import annotations

import dataclasses

__all__ = ["BANK_PAYMENT_CODES", "OPERATOR", "Requisites"]

_INN_DIGITS = 14  # a Kyrgyz INN (ИНН/ПИН) has 14 digits, for organisations and persons alike
_BIK_DIGITS = 6  # a Kyrgyz bank identification code (БИК) has 6 digits
_ACCOUNT_DIGITS = 16  # a Kyrgyz bank account number has 16 digits


def _check_digits(field: str, value: str, length: int) -> None:
    if not (value.isascii() and value.isdigit() and len(value) == length):
        raise ValueError(f"{field} must be {length} digits, got {value!r}")


@dataclasses.dataclass(frozen=True, slots=True)
class Requisites:
    """An organisation's requisites (реквизиты); every field but name and inn may be ""."""

    name: str
    address: str
    inn: str
    okpo: str
    sf_registration: str  # registration number with the Social Fund (рег. № СФ)
    bank_name: str
    bank_account: str
    bik: str
    phone: str
    email: str

    def __post_init__(self) -> None:
        if not self.name.strip():
            raise ValueError("name must not be empty")
        _check_digits("inn", self.inn, _INN_DIGITS)
        if self.bik:
            _check_digits("bik", self.bik, _BIK_DIGITS)
        if self.bank_account:
            _check_digits("bank_account", self.bank_account, _ACCOUNT_DIGITS)
        if self.bank_account and not self.bik:
            raise ValueError("a bank_account needs the bank's bik")


OPERATOR = Requisites(
    name='ОсОО "DOS TEK GROUP" (ДОС ТЭК ГРУПП)',
    address="г. Бишкек, ул. Коенкозова 8",
    inn="00211200910051",
    okpo="26804954",
    sf_registration="04-58756",
    bank_name="ЗАО «KICB»",
    bank_account="1280010015061112",
    bik="128001",
    phone="0312 960 888",
    email="office@dostek.kg",
)

# Payment codes (коды платежа) for a bank transfer to the operator, for certificates and for
# every other service alike (seed 000).
BANK_PAYMENT_CODES: tuple[str, ...] = ("42151410", "42122900")
