"""The operator's billing documents as PDF: счет-фактура, акт сверки, счет на оплату.

Pure rendering: each `render_*` function takes a frozen dataclass of plain data (built elsewhere
from the ledger) and returns PDF bytes. Nothing here reads the clock, the database or the
network, and the same input always gives byte-identical output (reportlab's invariant mode), so a
document can be re-rendered later and compared, or stored by hash.

Amounts are integers in tyiyn (1 som = 100 tyiyn) everywhere and are printed as "1 510,00".
The documents are in Russian; DejaVu Sans ships in `billing/fonts/` because the PDF base fonts
have no Cyrillic.
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
import io
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.enums import TA_CENTER, TA_JUSTIFY
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.platypus import KeepTogether, Paragraph, SimpleDocTemplate, Spacer, Table

from policies.money import TYIYN_PER_SOM, som_grouped
from policies.operator import BANK_PAYMENT_CODES, Requisites

__all__ = [
    "ActLine",
    "Invoice",
    "InvoiceLine",
    "Party",
    "PaymentInvoice",
    "ReconciliationAct",
    "amount_in_words",
    "render_invoice",
    "render_payment_invoice",
    "render_reconciliation_act",
]

# --------------------------------------------------------------------------------------------
# Amounts
# --------------------------------------------------------------------------------------------

_MAX_SOM = 10**12  # words go up to "девятьсот девяносто девять миллиардов ..."


def _check_amount(field: str, value: int, *, positive: bool = False) -> None:
    # bool is an int subclass; True tyiyn is a bug, not an amount
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{field} must be an int (tyiyn), got {type(value).__name__}")
    if value < 0 or (positive and value == 0):
        raise ValueError(f"{field} must be {'> 0' if positive else '>= 0'}, got {value}")


_UNITS_MASCULINE = ("", "один", "два", "три", "четыре", "пять", "шесть", "семь", "восемь", "девять")
_UNITS_FEMININE = ("", "одна", "две", *_UNITS_MASCULINE[3:])
_TEENS = (
    "десять",
    "одиннадцать",
    "двенадцать",
    "тринадцать",
    "четырнадцать",
    "пятнадцать",
    "шестнадцать",
    "семнадцать",
    "восемнадцать",
    "девятнадцать",
)
_TENS = (
    "",
    "",
    "двадцать",
    "тридцать",
    "сорок",
    "пятьдесят",
    "шестьдесят",
    "семьдесят",
    "восемьдесят",
    "девяносто",
)
_HUNDREDS = (
    "",
    "сто",
    "двести",
    "триста",
    "четыреста",
    "пятьсот",
    "шестьсот",
    "семьсот",
    "восемьсот",
    "девятьсот",
)
# (one, few, many) forms and whether the scale word is feminine ("одна тысяча", "две тысячи")
_SCALES: tuple[tuple[tuple[str, str, str], bool], ...] = (
    (("", "", ""), False),  # units: "сом" is masculine
    (("тысяча", "тысячи", "тысяч"), True),
    (("миллион", "миллиона", "миллионов"), False),
    (("миллиард", "миллиарда", "миллиардов"), False),
)


def _plural(n: int, forms: tuple[str, str, str]) -> str:
    if 11 <= n % 100 <= 14:
        return forms[2]
    if n % 10 == 1:
        return forms[0]
    if 2 <= n % 10 <= 4:
        return forms[1]
    return forms[2]


def _triad_in_words(n: int, *, feminine: bool) -> list[str]:
    hundreds, rest = divmod(n, 100)
    tens, units = divmod(rest, 10)
    words = [_HUNDREDS[hundreds]]
    if tens == 1:
        words.append(_TEENS[units])
    else:
        words.append(_TENS[tens])
        words.append((_UNITS_FEMININE if feminine else _UNITS_MASCULINE)[units])
    return [w for w in words if w]


def _integer_in_words(n: int) -> str:
    if n == 0:
        return "ноль"
    words: list[str] = []
    for power in range(len(_SCALES) - 1, -1, -1):
        triad = n // 1000**power % 1000
        if triad == 0:
            continue
        forms, feminine = _SCALES[power]
        words += _triad_in_words(triad, feminine=feminine)
        if power:
            words.append(_plural(triad, forms))
    return " ".join(words)


def amount_in_words(tyiyn: int) -> str:
    """The amount in Russian words, as written on Kyrgyz payment documents.

    151000 → "Одна тысяча пятьсот десять сом 00 тыйын". "Сом" and "тыйын" are left undeclined,
    the way the operator's documents and Kyrgyz accounting software print them; tyiyn stay in
    digits.
    """
    _check_amount("tyiyn", tyiyn)
    som, rest = divmod(tyiyn, TYIYN_PER_SOM)
    if som >= _MAX_SOM:
        raise ValueError(f"amount too large to write in words: {tyiyn} tyiyn")
    words = _integer_in_words(som)
    return f"{words[0].upper()}{words[1:]} сом {rest:02d} тыйын"


# --------------------------------------------------------------------------------------------
# Document data
# --------------------------------------------------------------------------------------------

_INN_DIGITS = 14  # a Kyrgyz INN (ИНН/ПИН): 14 digits for organisations and persons alike


def _check_text(field: str, value: str) -> None:
    if not value.strip():
        raise ValueError(f"{field} must not be empty")


@dataclasses.dataclass(frozen=True, slots=True)
class Party:
    """One side of a document: the operator, a subscriber, a payer."""

    name: str
    inn: str
    address: str = ""
    bank_name: str = ""
    bank_account: str = ""
    bik: str = ""

    def __post_init__(self) -> None:
        _check_text("name", self.name)
        if not (self.inn.isascii() and self.inn.isdigit() and len(self.inn) == _INN_DIGITS):
            raise ValueError(f"inn must be {_INN_DIGITS} digits, got {self.inn!r}")
        if self.bank_account and not self.bik:
            raise ValueError("a bank_account needs the bank's bik")

    @classmethod
    def from_requisites(cls, requisites: Requisites) -> Party:
        """The party an organisation's requisites describe (the operator's, usually)."""
        return cls(
            name=requisites.name,
            inn=requisites.inn,
            address=requisites.address,
            bank_name=requisites.bank_name,
            bank_account=requisites.bank_account,
            bik=requisites.bik,
        )


@dataclasses.dataclass(frozen=True, slots=True)
class InvoiceLine:
    """One line of an invoice; amount is quantity × unit_price, in tyiyn."""

    description: str
    quantity: int
    unit_price: int
    amount: int

    def __post_init__(self) -> None:
        _check_text("description", self.description)
        _check_amount("quantity", self.quantity)
        _check_amount("unit_price", self.unit_price)
        _check_amount("amount", self.amount)
        if self.amount != self.quantity * self.unit_price:
            raise ValueError(
                f"amount {self.amount} != quantity {self.quantity} × unit_price {self.unit_price}"
            )


@dataclasses.dataclass(frozen=True, slots=True)
class Invoice:
    """A счет-фактура: for a certificate's payment, or a month of reporting services."""

    number: str
    issued_on: datetime.date
    seller: Party
    buyer: Party
    lines: tuple[InvoiceLine, ...]
    title: str = "Счет-фактура"

    def __post_init__(self) -> None:
        _check_text("number", self.number)
        _check_text("title", self.title)
        object.__setattr__(self, "lines", tuple(self.lines))
        if not self.lines:
            raise ValueError("an invoice needs at least one line")

    @property
    def total(self) -> int:
        """The sum of the lines, in tyiyn."""
        return sum(line.amount for line in self.lines)


@dataclasses.dataclass(frozen=True, slots=True)
class ActLine:
    """One movement in a reconciliation act, in tyiyn.

    debit: charged to the subscriber (services); credit: paid by the subscriber.
    """

    on: datetime.date
    document: str
    debit: int
    credit: int

    def __post_init__(self) -> None:
        _check_text("document", self.document)
        _check_amount("debit", self.debit)
        _check_amount("credit", self.credit)


@dataclasses.dataclass(frozen=True, slots=True)
class ReconciliationAct:
    """An акт сверки взаимных расчетов between the operator and a subscriber for a period.

    Balances are signed tyiyn: positive is a prepaid balance in the subscriber's favour (the
    operator owes services), negative is the subscriber's debt. Lines are in date order and
    inside the period, and opening + credits − debits == closing.
    """

    number: str
    period_from: datetime.date
    period_to: datetime.date
    operator: Party
    subscriber: Party
    opening_balance: int
    lines: tuple[ActLine, ...]
    closing_balance: int

    def __post_init__(self) -> None:
        _check_text("number", self.number)
        object.__setattr__(self, "lines", tuple(self.lines))
        if self.period_from > self.period_to:
            raise ValueError(f"period_from {self.period_from} is after period_to {self.period_to}")
        for name in ("opening_balance", "closing_balance"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"{name} must be an int (tyiyn)")
        previous = self.period_from
        for line in self.lines:
            if not previous <= line.on <= self.period_to:
                raise ValueError(f"line {line.document!r} of {line.on} is out of order or period")
            previous = line.on
        expected = self.opening_balance + self.total_credit - self.total_debit
        if expected != self.closing_balance:
            raise ValueError(
                f"closing_balance {self.closing_balance} != opening {self.opening_balance}"
                f" + credit {self.total_credit} - debit {self.total_debit} = {expected}"
            )

    @property
    def total_debit(self) -> int:
        """Charged to the subscriber during the period, in tyiyn."""
        return sum(line.debit for line in self.lines)

    @property
    def total_credit(self) -> int:
        """Paid by the subscriber during the period, in tyiyn."""
        return sum(line.credit for line in self.lines)


@dataclasses.dataclass(frozen=True, slots=True)
class PaymentInvoice:
    """A счет на оплату: what to pay, to which account, with which payment code."""

    number: str
    issued_on: datetime.date
    payee: Party
    payer: Party
    service: str
    amount: int
    payment_code: str
    purpose: str

    def __post_init__(self) -> None:
        _check_text("number", self.number)
        _check_text("service", self.service)
        _check_text("purpose", self.purpose)
        _check_amount("amount", self.amount, positive=True)
        if self.payment_code not in BANK_PAYMENT_CODES:
            raise ValueError(
                f"payment_code {self.payment_code!r} is not one of {BANK_PAYMENT_CODES}"
            )
        if not (self.payee.bank_name and self.payee.bank_account and self.payee.bik):
            raise ValueError("the payee needs a bank name, account and BIK to be paid")


# --------------------------------------------------------------------------------------------
# Fonts, styles and the page frame
# --------------------------------------------------------------------------------------------

_FONT_DIR = Path(__file__).parent / "fonts"
_FONT = "TamgaDejaVuSans"
_FONT_BOLD = "TamgaDejaVuSans-Bold"
_PAGE_WIDTH, _PAGE_HEIGHT = A4
_MARGIN = 15 * mm
_CONTENT_WIDTH = _PAGE_WIDTH - 2 * _MARGIN
_GRID = colors.Color(0.35, 0.35, 0.35)
_HEADER_FILL = colors.Color(0.92, 0.92, 0.92)


@functools.cache
def _register_fonts() -> None:
    # reportlab's font registry is process-global; registering once is enough
    pdfmetrics.registerFont(TTFont(_FONT, str(_FONT_DIR / "DejaVuSans.ttf")))
    pdfmetrics.registerFont(TTFont(_FONT_BOLD, str(_FONT_DIR / "DejaVuSans-Bold.ttf")))
    pdfmetrics.registerFontFamily(
        _FONT, normal=_FONT, bold=_FONT_BOLD, italic=_FONT, boldItalic=_FONT_BOLD
    )


@dataclasses.dataclass(frozen=True, slots=True)
class _Styles:
    body: Any
    small: Any
    cell: Any
    title: Any
    subtitle: Any
    intro: Any


@functools.cache
def _styles() -> _Styles:
    _register_fonts()
    body = ParagraphStyle("tamga-body", fontName=_FONT, fontSize=9, leading=12)
    return _Styles(
        body=body,
        small=ParagraphStyle("tamga-small", parent=body, fontSize=8, leading=10),
        cell=ParagraphStyle("tamga-cell", parent=body, fontSize=8, leading=10),
        title=ParagraphStyle(
            "tamga-title",
            parent=body,
            fontName=_FONT_BOLD,
            fontSize=13,
            leading=17,
            alignment=TA_CENTER,
            spaceAfter=2 * mm,
        ),
        subtitle=ParagraphStyle(
            "tamga-subtitle", parent=body, alignment=TA_CENTER, spaceAfter=3 * mm
        ),
        intro=ParagraphStyle("tamga-intro", parent=body, alignment=TA_JUSTIFY, spaceAfter=3 * mm),
    )


def _date(on: datetime.date) -> str:
    return on.strftime("%d.%m.%Y")


def _para(text: str, style: Any = None) -> Any:
    """A paragraph of plain text (escaped: names may contain & and <)."""
    return Paragraph(escape(text), style or _styles().body)


def _markup(markup: str, style: Any = None) -> Any:
    """A paragraph of trusted markup; every piece of data in it went through `_esc`."""
    return Paragraph(markup, style or _styles().body)


def _esc(text: str) -> str:
    return escape(text)


def _money(tyiyn: int) -> str:
    # non-breaking spaces: a wrapped paragraph must not split "1 510,00" across lines
    return som_grouped(tyiyn).replace(" ", "\u00a0")


def _build_pdf(*, title: str, author: str, story: Callable[[], list[Any]]) -> bytes:
    """Lay the story out twice: once to count the pages, once to print "Страница N из M"."""
    _register_fonts()
    pages = _layout(title=title, author=author, story=story(), total_pages=None)[1]
    return _layout(title=title, author=author, story=story(), total_pages=pages)[0]


def _layout(
    *, title: str, author: str, story: list[Any], total_pages: int | None
) -> tuple[bytes, int]:
    buffer = io.BytesIO()
    last_page = 0

    def decorate_page(canvas: Any, doc: Any) -> None:
        nonlocal last_page
        last_page = canvas.getPageNumber()
        canvas.saveState()
        canvas.setFont(_FONT, 7)
        canvas.setFillColor(colors.Color(0.4, 0.4, 0.4))
        canvas.drawString(_MARGIN, 8 * mm, title)
        of_total = f" из {total_pages}" if total_pages else ""
        canvas.drawRightString(_PAGE_WIDTH - _MARGIN, 8 * mm, f"Страница {last_page}{of_total}")
        canvas.restoreState()

    doc = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=_MARGIN,
        rightMargin=_MARGIN,
        topMargin=_MARGIN,
        bottomMargin=_MARGIN + 3 * mm,
        title=title,
        author=author,
        subject=title,
        creator="Tamga",
        lang="ru-RU",
        initialFontName=_FONT,  # else every page also references Helvetica, unused
        invariant=1,  # fixed dates and document ID: the same input gives the same bytes
    )
    doc.build(story, onFirstPage=decorate_page, onLaterPages=decorate_page)
    return buffer.getvalue(), last_page


def _table(
    rows: Sequence[Sequence[Any]],
    widths: Sequence[float],
    style: Sequence[tuple[Any, ...]],
    *,
    header_rows: int = 0,
) -> Any:
    base: list[tuple[Any, ...]] = [
        ("FONTNAME", (0, 0), (-1, -1), _FONT),
        ("FONTSIZE", (0, 0), (-1, -1), 8),
        ("LEADING", (0, 0), (-1, -1), 10),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("TOPPADDING", (0, 0), (-1, -1), 2),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 3),
    ]
    if header_rows:
        base += [
            ("FONTNAME", (0, 0), (-1, header_rows - 1), _FONT_BOLD),
            ("BACKGROUND", (0, 0), (-1, header_rows - 1), _HEADER_FILL),
            ("ALIGN", (0, 0), (-1, header_rows - 1), "CENTER"),
        ]
    return Table(
        [list(row) for row in rows],
        colWidths=list(widths),
        style=base + list(style),
        repeatRows=header_rows,
        hAlign="LEFT",
    )


def _party_rows(label: str, party: Party, *, with_bank: bool) -> list[list[Any]]:
    s = _styles()
    rows = [
        [_para(label, s.cell), _markup(f"<b>{_esc(party.name)}</b>", s.cell)],
        [_para("ИНН", s.cell), _para(party.inn, s.cell)],
    ]
    if party.address:
        rows.append([_para("Адрес", s.cell), _para(party.address, s.cell)])
    if with_bank and party.bank_account:
        bank = f"{party.bank_name}, БИК {party.bik}" if party.bank_name else f"БИК {party.bik}"
        rows.append([_para("Банк", s.cell), _para(bank, s.cell)])
        rows.append([_para("Расчетный счет", s.cell), _para(party.bank_account, s.cell)])
    return rows


def _parties_block(*parties: tuple[str, Party]) -> Any:
    rows: list[list[Any]] = []
    separators: list[tuple[Any, ...]] = []
    for label, party in parties:
        if rows:  # a thin rule between one party and the next
            separators.append(("LINEABOVE", (0, len(rows)), (-1, len(rows)), 0.5, _GRID))
        rows += _party_rows(label, party, with_bank=True)
    return _table(rows, [35 * mm, _CONTENT_WIDTH - 35 * mm], separators)


def _signatures(*sides: tuple[str, Sequence[str]]) -> Any:
    """Side by side signature blocks: a heading, then a line for each signatory role."""
    s = _styles()
    columns = []
    for heading, roles in sides:
        cells: list[Any] = [_markup(f"<b>{_esc(heading)}</b>", s.cell), Spacer(1, 3 * mm)]
        for role in roles:
            cells.append(_para(role, s.cell))
            cells.append(_para("____________________ / ____________________ /", s.cell))
            cells.append(Spacer(1, 2 * mm))
        cells.append(_para("М.П.", s.cell))
        columns.append(cells)
    width = _CONTENT_WIDTH / len(columns)
    table = _table([columns], [width] * len(columns), [("RIGHTPADDING", (0, 0), (-1, -1), 8)])
    return KeepTogether([Spacer(1, 8 * mm), table])


# --------------------------------------------------------------------------------------------
# Счет-фактура
# --------------------------------------------------------------------------------------------


def _invoice_story(inv: Invoice) -> list[Any]:
    s = _styles()
    header = ["№", "Наименование", "Кол-во", "Цена, сом", "Сумма, сом"]
    rows: list[list[Any]] = [header]
    for index, line in enumerate(inv.lines, start=1):
        rows.append(
            [
                str(index),
                _para(line.description, s.cell),
                str(line.quantity),
                som_grouped(line.unit_price),
                som_grouped(line.amount),
            ]
        )
    rows.append(["Итого", "", "", "", som_grouped(inv.total)])
    widths = [10 * mm, _CONTENT_WIDTH - 92 * mm, 18 * mm, 32 * mm, 32 * mm]
    lines_table = _table(
        rows,
        widths,
        [
            ("GRID", (0, 0), (-1, -1), 0.5, _GRID),
            ("ALIGN", (0, 1), (0, -1), "CENTER"),
            ("ALIGN", (2, 1), (-1, -1), "RIGHT"),
            ("SPAN", (0, -1), (3, -1)),
            ("ALIGN", (0, -1), (3, -1), "RIGHT"),
            ("FONTNAME", (0, -1), (-1, -1), _FONT_BOLD),
        ],
        header_rows=1,
    )
    return [
        _para(f"{inv.title} № {inv.number} от {_date(inv.issued_on)}", s.title),
        Spacer(1, 3 * mm),
        _parties_block(("Продавец", inv.seller), ("Покупатель", inv.buyer)),
        Spacer(1, 5 * mm),
        lines_table,
        Spacer(1, 4 * mm),
        _markup(f"<b>Итого к оплате: {_esc(amount_in_words(inv.total))}</b>"),
        _signatures(
            ("Продавец", ("Руководитель", "Главный бухгалтер")), ("Покупатель", ("Получил",))
        ),
    ]


def render_invoice(inv: Invoice) -> bytes:
    """The invoice (счет-фактура) as PDF bytes."""
    title = f"{inv.title} № {inv.number} от {_date(inv.issued_on)}"
    return _build_pdf(title=title, author=inv.seller.name, story=lambda: _invoice_story(inv))


# --------------------------------------------------------------------------------------------
# Акт сверки
# --------------------------------------------------------------------------------------------


def _balance_cells(balance: int) -> list[str]:
    """A signed balance in the Дебет (subscriber's debt) or Кредит (prepaid) column."""
    if balance < 0:
        return [som_grouped(-balance), ""]
    return ["", som_grouped(balance)]


def _act_outcome(act: ReconciliationAct) -> str:
    on = _date(act.period_to)
    operator, subscriber = _esc(act.operator.name), _esc(act.subscriber.name)
    prefix = f"По данным {operator} на {on}"
    if act.closing_balance < 0:
        amount = -act.closing_balance
        what = f"задолженность {subscriber} перед {operator} составляет"
    elif act.closing_balance > 0:
        amount = act.closing_balance
        what = f"аванс (предоплата) в пользу {subscriber} составляет"
    else:
        return f"{prefix} задолженность между сторонами отсутствует."
    words = _esc(amount_in_words(amount))
    return f"{prefix} {what} <b>{_money(amount)} сом</b> ({words})."


def _act_story(act: ReconciliationAct) -> list[Any]:
    s = _styles()
    operator, subscriber = _esc(act.operator.name), _esc(act.subscriber.name)
    rows: list[list[Any]] = [
        ["Дата", "Документ", "Дебет", "Кредит"],
        ["Сальдо на начало периода", "", *_balance_cells(act.opening_balance)],
    ]
    for line in act.lines:
        rows.append(
            [
                _date(line.on),
                _para(line.document, s.cell),
                som_grouped(line.debit) if line.debit else "",
                som_grouped(line.credit) if line.credit else "",
            ]
        )
    rows.append(
        ["Обороты за период", "", som_grouped(act.total_debit), som_grouped(act.total_credit)]
    )
    rows.append(["Сальдо на конец периода", "", *_balance_cells(act.closing_balance)])
    totals = [
        ("SPAN", (0, 1), (1, 1)),
        ("SPAN", (0, -2), (1, -2)),
        ("SPAN", (0, -1), (1, -1)),
        ("FONTNAME", (0, 1), (-1, 1), _FONT_BOLD),
        ("FONTNAME", (0, -2), (-1, -1), _FONT_BOLD),
    ]
    table = _table(
        rows,
        [22 * mm, _CONTENT_WIDTH - 86 * mm, 32 * mm, 32 * mm],
        [
            ("GRID", (0, 0), (-1, -1), 0.5, _GRID),
            ("ALIGN", (2, 1), (-1, -1), "RIGHT"),
            *totals,
        ],
        header_rows=1,
    )
    period = f"с {_date(act.period_from)} по {_date(act.period_to)}"
    return [
        _para(f"Акт сверки взаимных расчетов № {act.number}", s.title),
        _markup(f"за период {period} между {operator} и {subscriber}", s.subtitle),
        _markup(
            f"Мы, нижеподписавшиеся, {operator} (ИНН {_esc(act.operator.inn)}), с одной стороны, "
            f"и {subscriber} (ИНН {_esc(act.subscriber.inn)}), с другой стороны, составили "
            f"настоящий акт сверки о том, что состояние взаимных расчетов по данным учета "
            f"{operator} следующее (суммы в сомах; дебет — начислено за услуги, кредит — "
            f"оплачено):",
            s.intro,
        ),
        table,
        Spacer(1, 4 * mm),
        _markup(_act_outcome(act)),
        _signatures(
            (f"От {act.operator.name}", ("Руководитель", "Главный бухгалтер")),
            (f"От {act.subscriber.name}", ("Руководитель", "Главный бухгалтер")),
        ),
    ]


def render_reconciliation_act(act: ReconciliationAct) -> bytes:
    """The reconciliation act (акт сверки) as PDF bytes; long acts run over several pages."""
    title = (
        f"Акт сверки № {act.number} за период с {_date(act.period_from)} по {_date(act.period_to)}"
    )
    return _build_pdf(title=title, author=act.operator.name, story=lambda: _act_story(act))


# --------------------------------------------------------------------------------------------
# Счет на оплату
# --------------------------------------------------------------------------------------------


def _bank_box(p: PaymentInvoice) -> Any:
    """The payee's bank details in the usual box at the top of a счет на оплату."""
    s = _styles()
    payee = p.payee
    rows = [
        [_para(f"Банк получателя: {payee.bank_name}", s.cell), "БИК", payee.bik],
        [_para(f"Получатель: {payee.name}, ИНН {payee.inn}", s.cell), "Счет №", payee.bank_account],
        [_para("Код платежа", s.cell), "", p.payment_code],
    ]
    return _table(
        rows,
        [_CONTENT_WIDTH - 70 * mm, 20 * mm, 50 * mm],
        [("GRID", (0, 0), (-1, -1), 0.5, _GRID), ("SPAN", (0, 2), (1, 2))],
    )


def _payment_invoice_story(p: PaymentInvoice) -> list[Any]:
    s = _styles()
    rows: list[list[Any]] = [
        ["№", "Наименование услуги", "Сумма, сом"],
        ["1", _para(p.service, s.cell), som_grouped(p.amount)],
        ["Итого", "", som_grouped(p.amount)],
    ]
    services = _table(
        rows,
        [10 * mm, _CONTENT_WIDTH - 42 * mm, 32 * mm],
        [
            ("GRID", (0, 0), (-1, -1), 0.5, _GRID),
            ("ALIGN", (0, 1), (0, -1), "CENTER"),
            ("ALIGN", (-1, 1), (-1, -1), "RIGHT"),
            ("SPAN", (0, -1), (1, -1)),
            ("ALIGN", (0, -1), (1, -1), "RIGHT"),
            ("FONTNAME", (0, -1), (-1, -1), _FONT_BOLD),
        ],
        header_rows=1,
    )
    return [
        _bank_box(p),
        Spacer(1, 6 * mm),
        _para(f"Счет на оплату № {p.number} от {_date(p.issued_on)}", s.title),
        Spacer(1, 3 * mm),
        _parties_block(("Поставщик", p.payee), ("Плательщик", p.payer)),
        Spacer(1, 5 * mm),
        services,
        Spacer(1, 4 * mm),
        _markup(f"<b>Итого к оплате: {_esc(amount_in_words(p.amount))}</b>"),
        Spacer(1, 2 * mm),
        _markup(f"<b>Назначение платежа:</b> {_esc(p.purpose)}"),
        _markup(f"<b>Код платежа:</b> {_esc(p.payment_code)}"),
        _signatures((p.payee.name, ("Руководитель", "Главный бухгалтер"))),
    ]


def render_payment_invoice(p: PaymentInvoice) -> bytes:
    """The payment invoice (счет на оплату) as PDF bytes."""
    title = f"Счет на оплату № {p.number} от {_date(p.issued_on)}"
    return _build_pdf(title=title, author=p.payee.name, story=lambda: _payment_invoice_story(p))
