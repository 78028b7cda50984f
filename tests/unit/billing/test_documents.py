"""Billing documents render to PDF whose text (read back with poppler's pdftotext) is right.

Needs poppler-utils (`make system-packages` installs it); a missing pdftotext fails the tests,
it never skips them.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import billing.documents
from billing.documents import (
    ActLine,
    Invoice,
    InvoiceLine,
    Party,
    PaymentInvoice,
    ReconciliationAct,
    amount_in_words,
    render_invoice,
    render_payment_invoice,
    render_reconciliation_act,
)
from policies.money import som_grouped
from policies.operator import BANK_PAYMENT_CODES, OPERATOR, Requisites

OPERATOR_NAME = 'ОсОО "DOS TEK GROUP" (ДОС ТЭК ГРУПП)'
SUBSCRIBER_NAME = 'ОсОО "Ала-Тоо Консалтинг"'
SUBSCRIBER_INN = "01234567890123"
D = datetime.date


def _poppler(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.fail(f"{tool} is missing: install poppler-utils (make system-packages)")
    return path


def pdf_text(pdf: bytes, tmp_path: Path) -> str:
    """The PDF's text as `pdftotext -layout` lays it out; pages are separated by form feeds."""
    source = tmp_path / f"{hashlib.sha256(pdf).hexdigest()[:16]}.pdf"
    source.write_bytes(pdf)
    done = subprocess.run(
        [_poppler("pdftotext"), "-layout", "-enc", "UTF-8", str(source), "-"],
        capture_output=True,
        check=True,
    )
    return done.stdout.decode("utf-8")


def flat(text: str) -> str:
    """Whitespace runs (line ends, column gaps, no-break spaces) as one space."""
    return " ".join(text.split())


@pytest.fixture
def operator() -> Party:
    return Party.from_requisites(OPERATOR)


@pytest.fixture
def subscriber() -> Party:
    return Party(
        name=SUBSCRIBER_NAME,
        inn=SUBSCRIBER_INN,
        address="г. Бишкек, пр. Чуй 100, офис 5",
        bank_name="ОАО «Оптима Банк»",
        bank_account="1090000123456789",
        bik="109018",
    )


@pytest.fixture
def certificate_invoice(operator: Party, subscriber: Party) -> Invoice:
    line = InvoiceLine("КЭК руководителя (облачное хранение), 12 месяцев", 1, 151000, 151000)
    return Invoice("СФ-2026-000123", D(2026, 10, 5), operator, subscriber, (line,))


@pytest.fixture
def act(operator: Party, subscriber: Party) -> ReconciliationAct:
    lines = (
        ActLine(D(2026, 10, 3), "Платежное поручение № 45 от 03.10.2026", 0, 500000),
        ActLine(D(2026, 10, 5), "Счет-фактура № СФ-2026-000123 от 05.10.2026", 151000, 0),
        ActLine(D(2026, 10, 31), "Счет-фактура № СФ-2026-000124 от 31.10.2026", 33000, 0),
    )
    return ReconciliationAct(
        number="AC-2026-10-17",
        period_from=D(2026, 10, 1),
        period_to=D(2026, 10, 31),
        operator=operator,
        subscriber=subscriber,
        opening_balance=-20000,
        lines=lines,
        closing_balance=-20000 + 500000 - 151000 - 33000,
    )


@pytest.fixture
def payment_invoice(operator: Party, subscriber: Party) -> PaymentInvoice:
    return PaymentInvoice(
        number="СО-2026-0042",
        issued_on=D(2026, 10, 2),
        payee=operator,
        payer=subscriber,
        service="КЭК руководителя (облачное хранение), 12 месяцев",
        amount=151000,
        payment_code="42151410",
        purpose=f"Оплата КЭК по счету № СО-2026-0042, ИНН {SUBSCRIBER_INN}",
    )


# --- amounts -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tyiyn", "words"),
    [
        (0, "Ноль сом 00 тыйын"),
        (1, "Ноль сом 01 тыйын"),
        (100, "Один сом 00 тыйын"),
        (200, "Два сом 00 тыйын"),
        (500, "Пять сом 00 тыйын"),
        (1100, "Одиннадцать сом 00 тыйын"),
        (2100, "Двадцать один сом 00 тыйын"),
        (11250, "Сто двенадцать сом 50 тыйын"),
        (100000, "Одна тысяча сом 00 тыйын"),
        (200000, "Две тысячи сом 00 тыйын"),
        (500000, "Пять тысяч сом 00 тыйын"),
        (1100000, "Одиннадцать тысяч сом 00 тыйын"),
        (2100000, "Двадцать одна тысяча сом 00 тыйын"),
        (2200000, "Двадцать две тысячи сом 00 тыйын"),
        (151000, "Одна тысяча пятьсот десять сом 00 тыйын"),
        (235099, "Две тысячи триста пятьдесят сом 99 тыйын"),
        (100000000, "Один миллион сом 00 тыйын"),
        (200100000, "Два миллиона одна тысяча сом 00 тыйын"),
        (1400000000, "Четырнадцать миллионов сом 00 тыйын"),
        (500000000000, "Пять миллиардов сом 00 тыйын"),
        (
            99999999999999,
            "Девятьсот девяносто девять миллиардов девятьсот девяносто девять "
            "миллионов девятьсот девяносто девять тысяч девятьсот девяносто девять сом 99 тыйын",
        ),
    ],
)
def test_amount_in_words(tyiyn: int, words: str) -> None:
    assert amount_in_words(tyiyn) == words


def test_amount_in_words_refuses_what_it_cannot_write() -> None:
    with pytest.raises(ValueError):
        amount_in_words(-100)
    with pytest.raises(ValueError):
        amount_in_words(100 * 10**12)
    with pytest.raises(TypeError):
        amount_in_words(15.10)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("tyiyn", "text"),
    [
        (0, "0,00"),
        (5, "0,05"),
        (151000, "1 510,00"),
        (100000000, "1 000 000,00"),
        (-20000, "-200,00"),
    ],
)
def test_som_grouped(tyiyn: int, text: str) -> None:
    assert som_grouped(tyiyn) == text


# --- data ------------------------------------------------------------------------------------


def test_operator_requisites() -> None:
    assert OPERATOR.name == OPERATOR_NAME
    assert (OPERATOR.inn, OPERATOR.okpo, OPERATOR.sf_registration) == (
        "00211200910051",
        "26804954",
        "04-58756",
    )
    assert (OPERATOR.bank_account, OPERATOR.bik) == ("1280010015061112", "128001")
    assert BANK_PAYMENT_CODES == ("42151410", "42122900")
    party = Party.from_requisites(OPERATOR)
    assert (party.name, party.inn, party.bank_name) == (OPERATOR_NAME, OPERATOR.inn, "ЗАО «KICB»")
    with pytest.raises(ValueError):
        dataclasses.replace(OPERATOR, inn="12345")
    with pytest.raises(ValueError):
        dataclasses.replace(OPERATOR, bik="")  # an account with no bank code
    assert isinstance(dataclasses.replace(OPERATOR, phone="", email=""), Requisites)


def test_invalid_inputs_raise(
    operator: Party, subscriber: Party, act: ReconciliationAct, payment_invoice: PaymentInvoice
) -> None:
    with pytest.raises(ValueError, match="closing_balance"):
        dataclasses.replace(act, closing_balance=act.closing_balance + 1)
    with pytest.raises(ValueError, match="out of order or period"):
        dataclasses.replace(act, lines=(ActLine(D(2026, 11, 1), "Поздний документ", 100, 0),))
    with pytest.raises(ValueError, match="out of order or period"):
        dataclasses.replace(act, lines=tuple(reversed(act.lines)))
    with pytest.raises(ValueError):
        ActLine(D(2026, 10, 3), "Сторно", -100, 0)
    with pytest.raises(ValueError):
        ActLine(D(2026, 10, 3), "Сторно", 0, -100)
    with pytest.raises(ValueError):
        InvoiceLine("Услуга", 1, -100, -100)
    with pytest.raises(ValueError, match="quantity"):
        InvoiceLine("Услуга", 2, 100, 100)
    with pytest.raises(TypeError):
        InvoiceLine("Услуга", 1, 15.1, 15.1)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        Invoice("1", D(2026, 10, 5), operator, subscriber, ())
    with pytest.raises(ValueError):
        dataclasses.replace(payment_invoice, amount=-151000)
    with pytest.raises(ValueError):
        dataclasses.replace(payment_invoice, amount=0)
    with pytest.raises(ValueError, match="payment_code"):
        dataclasses.replace(payment_invoice, payment_code="12345678")
    with pytest.raises(ValueError, match="bank"):
        dataclasses.replace(payment_invoice, payee=Party(OPERATOR_NAME, OPERATOR.inn))
    with pytest.raises(ValueError, match="inn"):
        Party(SUBSCRIBER_NAME, "1234")
    with pytest.raises(ValueError):
        Party(" ", SUBSCRIBER_INN)


# --- rendering -------------------------------------------------------------------------------


def test_certificate_invoice(certificate_invoice: Invoice, tmp_path: Path) -> None:
    assert certificate_invoice.total == 151000
    text = flat(pdf_text(render_invoice(certificate_invoice), tmp_path))
    assert "Счет-фактура № СФ-2026-000123 от 05.10.2026" in text
    assert f"Продавец {OPERATOR_NAME}" in text
    assert f"Покупатель {SUBSCRIBER_NAME}" in text
    assert "ИНН 00211200910051" in text
    assert f"ИНН {SUBSCRIBER_INN}" in text
    assert "Банк ЗАО «KICB», БИК 128001" in text
    assert "Расчетный счет 1280010015061112" in text
    assert "№ Наименование Кол-во Цена, сом Сумма, сом" in text
    assert "1 510,00 1 510,00" in text
    assert "Итого 1 510,00" in text
    assert "Итого к оплате: Одна тысяча пятьсот десять сом 00 тыйын" in text
    assert "Страница 1 из 1" in text


def test_services_invoice(operator: Party, subscriber: Party, tmp_path: Path) -> None:
    lines = (
        InvoiceLine("Сдача отчетов в ГНС, октябрь 2026", 3, 5000, 15000),
        InvoiceLine("Сдача отчетов в Социальный фонд, октябрь 2026", 2, 4000, 8000),
        InvoiceLine("Хранение КЭК в облаке, октябрь 2026", 1, 10000, 10000),
    )
    invoice = Invoice("СФ-2026-000124", D(2026, 10, 31), operator, subscriber, lines)
    text = flat(pdf_text(render_invoice(invoice), tmp_path))
    assert "Сдача отчетов в ГНС, октябрь 2026 3 50,00 150,00" in text
    assert "Итого 330,00" in text
    assert "Итого к оплате: Триста тридцать сом 00 тыйын" in text


def test_reconciliation_act(act: ReconciliationAct, tmp_path: Path) -> None:
    text = flat(pdf_text(render_reconciliation_act(act), tmp_path))
    assert (
        "Акт сверки взаимных расчетов № AC-2026-10-17 за период с 01.10.2026 по 31.10.2026 "
        f"между {OPERATOR_NAME} и {SUBSCRIBER_NAME}"
    ) in text
    assert "Дата Документ Дебет Кредит" in text
    # a debt opens in the Дебет column, a prepaid balance closes in the Кредит column
    assert "Сальдо на начало периода 200,00" in text
    assert "03.10.2026 Платежное поручение № 45 от 03.10.2026 5 000,00" in text
    assert "05.10.2026 Счет-фактура № СФ-2026-000123 от 05.10.2026 1 510,00" in text
    assert "Обороты за период 1 840,00 5 000,00" in text
    assert "Сальдо на конец периода 2 960,00" in text
    assert (
        f"По данным {OPERATOR_NAME} на 31.10.2026 аванс (предоплата) в пользу {SUBSCRIBER_NAME} "
        "составляет 2 960,00 сом (Две тысячи девятьсот шестьдесят сом 00 тыйын)."
    ) in text
    assert f"ИНН {OPERATOR.inn}" in text
    assert f"ИНН {SUBSCRIBER_INN}" in text
    # both parties' signature blocks (side by side, so each heading is checked on its own)
    assert "От ОсОО" in text
    assert text.count("Руководитель") == 2


def test_reconciliation_act_debt_and_settled(act: ReconciliationAct, tmp_path: Path) -> None:
    charge = ActLine(D(2026, 10, 31), "Счет-фактура № 7", 400000, 0)
    in_debt = dataclasses.replace(
        act, opening_balance=10000, lines=(charge,), closing_balance=-390000
    )
    text = flat(pdf_text(render_reconciliation_act(in_debt), tmp_path))
    assert "Сальдо на начало периода 100,00" in text
    assert "Сальдо на конец периода 3 900,00" in text
    assert (
        f"задолженность {SUBSCRIBER_NAME} перед {OPERATOR_NAME} составляет 3 900,00 сом "
        "(Три тысячи девятьсот сом 00 тыйын)"
    ) in text
    settled = dataclasses.replace(act, opening_balance=0, lines=(), closing_balance=0)
    text = flat(pdf_text(render_reconciliation_act(settled), tmp_path))
    assert "Обороты за период 0,00 0,00" in text
    assert "задолженность между сторонами отсутствует" in text


def test_payment_invoice(payment_invoice: PaymentInvoice, tmp_path: Path) -> None:
    text = flat(pdf_text(render_payment_invoice(payment_invoice), tmp_path))
    assert "Счет на оплату № СО-2026-0042 от 02.10.2026" in text
    assert "Банк получателя: ЗАО «KICB» БИК 128001" in text
    assert "Счет № 1280010015061112" in text
    assert f"Поставщик {OPERATOR_NAME}" in text
    assert f"Плательщик {SUBSCRIBER_NAME}" in text
    assert f"ИНН {SUBSCRIBER_INN}" in text
    assert "Итого 1 510,00" in text
    assert "Итого к оплате: Одна тысяча пятьсот десять сом 00 тыйын" in text
    assert "Код платежа: 42151410" in text
    assert f"Назначение платежа: Оплата КЭК по счету № СО-2026-0042, ИНН {SUBSCRIBER_INN}" in text


def test_markup_characters_in_names_are_printed_as_is(
    certificate_invoice: Invoice, tmp_path: Path
) -> None:
    buyer = Party('ИП "Смит & Ко <Юг>"', SUBSCRIBER_INN)
    line = InvoiceLine("Услуга <b>не жирная</b> & прочее", 1, 100, 100)
    invoice = dataclasses.replace(certificate_invoice, buyer=buyer, lines=(line,))
    text = flat(pdf_text(render_invoice(invoice), tmp_path))
    assert 'ИП "Смит & Ко <Юг>"' in text
    assert "Услуга <b>не жирная</b> & прочее" in text


def test_fonts_are_embedded(act: ReconciliationAct, tmp_path: Path) -> None:
    source = tmp_path / "act.pdf"
    source.write_bytes(render_reconciliation_act(act))
    fonts = subprocess.run(
        [_poppler("pdffonts"), str(source)], capture_output=True, check=True, text=True
    ).stdout
    rows = [row.split() for row in fonts.splitlines()[2:]]
    assert {row[0].split("+")[-1] for row in rows} == {"DejaVuSans", "DejaVuSans-Bold"}
    assert all(row[-5] == "yes" for row in rows)  # the "emb" column
    font_dir = Path(billing.documents.__file__).parent / "fonts"
    assert {p.name for p in font_dir.iterdir()} >= {
        "DejaVuSans.ttf",
        "DejaVuSans-Bold.ttf",
        "LICENSE",
        "README.md",
    }


# --- determinism and size ------------------------------------------------------------------

_RENDER_IN_CHILD = """
import datetime, hashlib, sys
from billing.documents import *
from policies.operator import OPERATOR
op = Party.from_requisites(OPERATOR)
sub = Party({name!r}, {inn!r}, "г. Бишкек, пр. Чуй 100, офис 5", "ОАО «Оптима Банк»",
            "1090000123456789", "109018")
line = InvoiceLine("КЭК руководителя (облачное хранение), 12 месяцев", 1, 151000, 151000)
inv = Invoice("СФ-2026-000123", datetime.date(2026, 10, 5), op, sub, (line,))
sys.stdout.write(hashlib.sha256(render_invoice(inv)).hexdigest())
"""


def test_rendering_is_deterministic(
    certificate_invoice: Invoice, act: ReconciliationAct, payment_invoice: PaymentInvoice
) -> None:
    assert render_invoice(certificate_invoice) == render_invoice(certificate_invoice)
    assert render_reconciliation_act(act) == render_reconciliation_act(act)
    assert render_payment_invoice(payment_invoice) == render_payment_invoice(payment_invoice)
    # across processes too, whatever the string hash seed (set and dict order of font subsets)
    expected = hashlib.sha256(render_invoice(certificate_invoice)).hexdigest()
    code = _RENDER_IN_CHILD.format(name=SUBSCRIBER_NAME, inn=SUBSCRIBER_INN)
    for seed in ("1", "2"):
        child = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            check=True,
            text=True,
            env={**os.environ, "PYTHONHASHSEED": seed},
            cwd=Path(billing.documents.__file__).parents[1],
        )
        assert child.stdout == expected


def test_long_act_paginates(act: ReconciliationAct, tmp_path: Path) -> None:
    start = D(2026, 1, 1)
    lines = tuple(
        ActLine(start + datetime.timedelta(days=i * 364 // 499), f"Счет-фактура № {i + 1}", 100, 0)
        for i in range(500)
    )
    long_act = dataclasses.replace(
        act,
        period_from=start,
        period_to=D(2026, 12, 31),
        opening_balance=0,
        lines=lines,
        closing_balance=-50000,
    )
    pages = pdf_text(render_reconciliation_act(long_act), tmp_path).split("\f")
    pages = [page for page in pages if page.strip()]
    assert len(pages) > 5
    first, last = flat(pages[0]), flat(pages[-1])
    assert "01.01.2026 Счет-фактура № 1 1,00" in first
    assert "31.12.2026 Счет-фактура № 500 1,00" in last
    assert "Сальдо на конец периода 500,00" in last
    assert f"Страница 1 из {len(pages)}" in first
    assert f"Страница {len(pages)} из {len(pages)}" in last
    # the column headings are repeated on every page
    assert all("Дата Документ Дебет Кредит" in flat(page) for page in pages)
