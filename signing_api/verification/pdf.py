"""The dispute report as a PDF a commission prints, reads and signs (DOMAIN.md §8).

``render_report_pdf(report, case=...)`` lays out one :class:`~.report.DocumentReport`: the title
in Russian and English, the case facts when given, the document's SHA-256, the validation time and
the engine, the verdict (indication, sub-indication and the §8.4 conclusion) in a coloured box,
then per signature the signer, the signing time and what proves it, the chain, the revocation
status and the seven steps of §8.2 with their evidence, then every input with its SHA-256, and
lines for the commission members to sign.

Pure rendering, like ``billing/documents.py``: nothing here reads the clock, the database or the
network, and the same report gives byte-identical output (reportlab's invariant mode). The fonts
are the DejaVu Sans that ``billing/fonts/`` ships, registered under the same names as the billing
documents register them (the PDF base fonts have no Cyrillic). Every string from the report is
escaped before it reaches reportlab's paragraph markup, and every cell wraps (long words such as
hashes and distinguished names are split at the column's edge): nothing runs off the page.
"""

from __future__ import annotations

import functools
import io
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.enums import TA_CENTER
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.platypus import (
    CondPageBreak,
    KeepTogether,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    Table,
)

from signing_api.verification.report import (
    TIME_PROOF_MEANING,
    DocumentReport,
    Evidence,
    Indication,
    InputFile,
    SignatureReport,
    StepResult,
    StepStatus,
)
from signing_api.verification.wording import (
    INDICATION_RU,
    INPUT_ROLE_RU,
    STATUS_RU,
    TIME_PROOF_RU,
    case_rows,
    conclusion_text,
    moment,
    serial_hex,
    step_name,
)

__all__ = ["TITLE_EN", "TITLE_RU", "render_report_pdf"]

TITLE_RU = "Заключение о проверке электронной подписи (§8)"
TITLE_EN = "Signature verification report"

# The same font files and names as billing/documents.py: one registration serves both.
_FONT = "TamgaDejaVuSans"
_FONT_BOLD = "TamgaDejaVuSans-Bold"
_PAGE_WIDTH, _PAGE_HEIGHT = A4
_MARGIN = 15 * mm
_FRAME_PADDING = 6  # SimpleDocTemplate's frame pads its content by 6 pt on each side
_WIDTH = _PAGE_WIDTH - 2 * _MARGIN - 2 * _FRAME_PADDING
_GRID = colors.Color(0.55, 0.55, 0.55)
_HEADER_FILL = colors.Color(0.92, 0.92, 0.92)
_GREY_TEXT = colors.Color(0.35, 0.35, 0.35)

# The verdict's colour: the page uses the same (signing_api/web/ui/templates).
VERDICT_COLOURS = {
    Indication.TOTAL_PASSED: colors.HexColor("#1b7f3b"),
    Indication.TOTAL_FAILED: colors.HexColor("#b3261e"),
    Indication.INDETERMINATE: colors.HexColor("#b26a00"),
}
_STATUS_FILL = {
    StepStatus.PASSED: colors.HexColor("#dcefe1"),
    StepStatus.FAILED: colors.HexColor("#f6d9d6"),
    StepStatus.INDETERMINATE: colors.HexColor("#fbe8c8"),
    StepStatus.NOT_CHECKED: colors.HexColor("#eeeeee"),
    StepStatus.INFORMATIONAL: colors.HexColor("#e3ebf5"),
}
_COMMISSION = ("Председатель комиссии / Chair",) + ("Член комиссии / Member",) * 3


@functools.cache
def _register_fonts() -> None:
    # reportlab's font registry is process-global; registering once is enough
    fonts = resources.files("billing").joinpath("fonts")
    with resources.as_file(fonts.joinpath("DejaVuSans.ttf")) as regular:
        pdfmetrics.registerFont(TTFont(_FONT, str(regular)))
    with resources.as_file(fonts.joinpath("DejaVuSans-Bold.ttf")) as bold:
        pdfmetrics.registerFont(TTFont(_FONT_BOLD, str(bold)))
    pdfmetrics.registerFontFamily(
        _FONT, normal=_FONT, bold=_FONT_BOLD, italic=_FONT, boldItalic=_FONT_BOLD
    )


@dataclass(frozen=True, slots=True)
class _Styles:
    body: ParagraphStyle
    cell: ParagraphStyle
    cell_bold: ParagraphStyle
    small: ParagraphStyle
    title: ParagraphStyle
    subtitle: ParagraphStyle
    heading: ParagraphStyle
    verdict: ParagraphStyle
    verdict_text: ParagraphStyle


@functools.cache
def _styles() -> _Styles:
    _register_fonts()
    body = ParagraphStyle("dispute-body", fontName=_FONT, fontSize=9, leading=12, splitLongWords=1)
    cell = ParagraphStyle("dispute-cell", parent=body, fontSize=8, leading=10)
    white = colors.white
    return _Styles(
        body=body,
        cell=cell,
        cell_bold=ParagraphStyle("dispute-cell-bold", parent=cell, fontName=_FONT_BOLD),
        small=ParagraphStyle("dispute-small", parent=body, fontSize=7, leading=9),
        title=ParagraphStyle(
            "dispute-title",
            parent=body,
            fontName=_FONT_BOLD,
            fontSize=14,
            leading=18,
            alignment=TA_CENTER,
            spaceAfter=1 * mm,
        ),
        subtitle=ParagraphStyle(
            "dispute-subtitle",
            parent=body,
            fontSize=11,
            leading=14,
            alignment=TA_CENTER,
            spaceAfter=4 * mm,
        ),
        heading=ParagraphStyle(
            "dispute-heading",
            parent=body,
            fontName=_FONT_BOLD,
            fontSize=11,
            leading=14,
            spaceBefore=4 * mm,
            spaceAfter=2 * mm,
        ),
        verdict=ParagraphStyle(
            "dispute-verdict",
            parent=body,
            fontName=_FONT_BOLD,
            fontSize=16,
            leading=20,
            textColor=white,
        ),
        verdict_text=ParagraphStyle(
            "dispute-verdict-text", parent=body, fontSize=9, leading=12, textColor=white
        ),
    )


def _esc(text: object) -> str:
    return escape(str(text))


def _p(text: object, style: ParagraphStyle | None = None) -> Paragraph:
    """A paragraph of plain text: escaped, line breaks kept."""
    markup = "<br/>".join(_esc(line) for line in str(text).split("\n"))
    return Paragraph(markup, style or _styles().cell)


def _m(markup: str, style: ParagraphStyle | None = None) -> Paragraph:
    """A paragraph of trusted markup: every piece of data in it went through :func:`_esc`."""
    return Paragraph(markup, style or _styles().cell)


def _table(
    rows: Sequence[Sequence[Any]],
    widths: Sequence[float],
    extra: Sequence[tuple[Any, ...]] = (),
    *,
    header: bool = False,
) -> Table:
    style: list[tuple[Any, ...]] = [
        ("FONTNAME", (0, 0), (-1, -1), _FONT),
        ("FONTSIZE", (0, 0), (-1, -1), 8),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("GRID", (0, 0), (-1, -1), 0.4, _GRID),
        ("TOPPADDING", (0, 0), (-1, -1), 2),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 3),
        ("LEFTPADDING", (0, 0), (-1, -1), 3),
        ("RIGHTPADDING", (0, 0), (-1, -1), 3),
    ]
    if header:
        style.append(("BACKGROUND", (0, 0), (-1, 0), _HEADER_FILL))
    return Table(
        [list(row) for row in rows],
        colWidths=list(widths),
        style=style + list(extra),
        repeatRows=1 if header else 0,
        hAlign="LEFT",
    )


def _facts(rows: Sequence[tuple[str, Any]]) -> Table:
    """A two-column table of labelled facts; a value may be text or a flowable."""
    s = _styles()
    cells = [
        [_p(label, s.cell_bold), value if isinstance(value, Paragraph) else _p(value)]
        for label, value in rows
    ]
    return _table(
        cells, (48 * mm, _WIDTH - 48 * mm), [("BACKGROUND", (0, 0), (0, -1), _HEADER_FILL)]
    )


def _heading(text: str) -> list[Any]:
    # a heading never ends a page alone
    return [CondPageBreak(30 * mm), _p(text, _styles().heading)]


# --- the parts -----------------------------------------------------------------------------------


def _title(report: DocumentReport, case: Mapping[str, str] | None) -> list[Any]:
    s = _styles()
    story: list[Any] = [_p(TITLE_RU, s.title), _p(TITLE_EN, s.subtitle)]
    if rows := case_rows(case):
        story += [_p("Дело / Case", s.heading), _facts(rows)]
    story += [
        _p("Документ и проверка / Document and verification", s.heading),
        _facts(
            [
                ("SHA-256 документа / Document SHA-256", report.document_sha256 or "—"),
                ("Время проверки / Validation time", moment(report.validation_time)),
                ("Программа / Engine", report.engine),
                ("Подписей / Signatures", str(len(report.signatures))),
            ]
        ),
    ]
    return story


def _verdict_box(
    indication: Indication, sub_indication: object | None, *, big: bool = True
) -> Table:
    s = _styles()
    russian, english = conclusion_text(indication)
    head = f"{_esc(indication.value)} — {_esc(INDICATION_RU[indication])}"
    style = (
        s.verdict if big else ParagraphStyle("v-small", parent=s.verdict, fontSize=11, leading=14)
    )
    cells: list[list[Any]] = [[_m(head, style)]]
    if sub_indication is not None:
        sub = getattr(sub_indication, "value", sub_indication)
        cells.append([_m(f"Уточнение / Sub-indication: <b>{_esc(sub)}</b>", s.verdict_text)])
    if big:  # the document's verdict says the §8.4 conclusion; a signature's box only names it
        cells += [[_p(russian, s.verdict_text)], [_p(english, s.verdict_text)]]
    return Table(
        cells,
        colWidths=[_WIDTH],
        style=[
            ("BACKGROUND", (0, 0), (-1, -1), VERDICT_COLOURS[indication]),
            ("LEFTPADDING", (0, 0), (-1, -1), 6),
            ("RIGHTPADDING", (0, 0), (-1, -1), 6),
            ("TOPPADDING", (0, 0), (-1, 0), 6),
            ("BOTTOMPADDING", (0, -1), (-1, -1), 6 if big else 4),
        ],
        hAlign="LEFT",
    )


def _verdict(report: DocumentReport) -> list[Any]:
    s = _styles()
    story: list[Any] = [
        _p("Заключение / Verdict (§8.4)", s.heading),
        _verdict_box(report.indication, report.sub_indication),
    ]
    if report.problems:
        story += [Spacer(1, 2 * mm), _p("Замечания / Findings about the document", s.cell_bold)]
        story += [_p(f"• {problem}", s.cell) for problem in report.problems]
    return story


def _signing_time(signature: SignatureReport) -> str:
    when = signature.signing_time
    if when is None:
        return "не установлено / not established"
    lines = [
        moment(when.at),
        f"{TIME_PROOF_RU[when.proof]} / {when.proof.value}: {TIME_PROOF_MEANING[when.proof]}",
    ]
    if when.claimed is not None and when.claimed != when.at:
        lines.append(f"заявлено подписантом / claimed by the signer: {moment(when.claimed)}")
    return "\n".join(lines)


def _chain(signature: SignatureReport) -> str:
    if not signature.chain:
        return "не построена / not built"
    last = len(signature.chain) - 1
    lines = []
    for index, subject in enumerate(signature.chain):
        role = (
            " (подписант / signer)"
            if index == 0
            else " (доверенный корень / trust anchor)"
            if index == last
            else ""
        )
        lines.append(f"{index + 1}. {subject}{role}")
    return "\n".join(lines)


def _evidence_lines(evidence: Sequence[Evidence]) -> str:
    lines = []
    for item in evidence:
        parts = [f"• {item.kind}: {item.description}"]
        if item.sha256:
            parts.append(f"SHA-256 {item.sha256}")
        if item.at is not None:
            parts.append(moment(item.at))
        lines.append("; ".join(parts))
    return "\n".join(lines)


def _steps(steps: Sequence[StepResult]) -> Table:
    s = _styles()
    widths = (15 * mm, 50 * mm, 25 * mm, _WIDTH - 90 * mm)
    rows: list[list[Any]] = [
        [
            _p("§", s.cell_bold),
            _p("Шаг / Step", s.cell_bold),
            _p("Результат / Status", s.cell_bold),
            _p("Вывод / Finding", s.cell_bold),
        ]
    ]
    extra: list[tuple[Any, ...]] = []
    for step in sorted(steps, key=lambda found: found.number):
        clause, russian, english = step_name(step.number)
        row = len(rows)
        rows.append(
            [
                _p(clause, s.cell_bold),
                _p(f"{russian}\n{english}"),
                _p(f"{STATUS_RU[step.status]}\n{step.status.value}", s.cell_bold),
                _p(step.detail),
            ]
        )
        extra.append(("BACKGROUND", (2, row), (2, row), _STATUS_FILL[step.status]))
        if step.evidence:
            row = len(rows)
            text = "Доказательства / Evidence:\n" + _evidence_lines(step.evidence)
            rows.append([_p(text, s.small), "", "", ""])
            extra.append(("SPAN", (0, row), (-1, row)))
    return _table(rows, widths, extra, header=True)


def _signature(number: int, signature: SignatureReport) -> list[Any]:
    s = _styles()
    story = _heading(f"Подпись {number} / Signature {number}: {signature.label}")
    story += [
        _verdict_box(signature.indication, signature.sub_indication, big=False),
        Spacer(1, 2 * mm),
        _facts(
            [
                ("Подписант / Signer", signature.signer_subject or "не определён / not identified"),
                ("Серийный номер / Serial", serial_hex(signature.signer_serial)),
                ("Издатель / Issuer", signature.signer_issuer or "—"),
                ("Время подписания / Signing time", _signing_time(signature)),
                ("Цепочка / Chain", _chain(signature)),
                ("Отзыв / Revocation", signature.revocation or "не проверен / not checked"),
            ]
        ),
    ]
    if signature.notes:
        story += [Spacer(1, 1 * mm)] + [_p(f"• {note}", s.cell) for note in signature.notes]
    story += [
        Spacer(1, 2 * mm),
        CondPageBreak(60 * mm),  # the table's title stays with its first rows
        _p("Шаги проверки (§8.2) / The steps of §8.2", s.cell_bold),
        Spacer(1, 1 * mm),
        _steps(signature.steps),
    ]
    return story


def _inputs(inputs: Sequence[InputFile]) -> list[Any]:
    s = _styles()
    story = _heading("Исходные данные / Inputs")
    story.append(
        _p(
            "Всё, на чём основано заключение; по этим файлам его можно воспроизвести. / "
            "Everything the verdict rests on; the same files reproduce it.",
            s.small,
        )
    )
    story.append(Spacer(1, 1 * mm))
    widths = (8 * mm, 32 * mm, _WIDTH - 62 * mm, 22 * mm)
    rows: list[list[Any]] = [
        [
            _p("№", s.cell_bold),
            _p("Роль / Role", s.cell_bold),
            _p("Имя / Name", s.cell_bold),
            _p("Размер / Size", s.cell_bold),
        ]
    ]
    extra: list[tuple[Any, ...]] = []
    for number, item in enumerate(inputs, 1):
        role = INPUT_ROLE_RU.get(item.role)
        rows.append(
            [
                _p(str(number)),
                _p(f"{role} / {item.role}" if role else item.role),
                _p(item.name),
                _p(f"{item.size} B"),
            ]
        )
        row = len(rows)
        text = f"SHA-256 {item.sha256}" + (f"\n{item.detail}" if item.detail else "")
        rows.append(["", _p(text), "", ""])
        extra += [("SPAN", (1, row), (-1, row)), ("SPAN", (0, row - 1), (0, row))]
    if not inputs:
        rows.append(["", _p("—"), "", ""])
    return [*story, _table(rows, widths, extra, header=True)]


def _commission() -> list[Any]:
    s = _styles()
    rows: list[list[Any]] = [
        [
            _p("", s.cell_bold),
            _p("ФИО / Full name", s.cell_bold),
            _p("Подпись / Signature", s.cell_bold),
            _p("Дата / Date", s.cell_bold),
        ]
    ]
    rows += [[_p(member), "", "", ""] for member in _COMMISSION]
    table = Table(
        rows,
        colWidths=[42 * mm, 68 * mm, 40 * mm, _WIDTH - 150 * mm],
        rowHeights=[None] + [14 * mm] * len(_COMMISSION),
        style=[
            ("VALIGN", (0, 0), (-1, -1), "BOTTOM"),
            ("LINEBELOW", (1, 1), (-1, -1), 0.6, colors.black),
            ("LEFTPADDING", (0, 0), (-1, -1), 3),
            ("RIGHTPADDING", (0, 0), (-1, -1), 6),
        ],
        hAlign="LEFT",
    )
    heading = _p("Комиссия / Commission", s.heading)
    statement = _p(
        "Комиссия рассмотрела заключение и исходные данные, перечисленные выше. / "
        "The commission examined the report and the inputs listed above.",
        s.cell,
    )
    return [KeepTogether([heading, statement, Spacer(1, 2 * mm), table])]


# --- the document --------------------------------------------------------------------------------


def _story(report: DocumentReport, case: Mapping[str, str] | None) -> list[Any]:
    story = _title(report, case) + _verdict(report)
    for number, signature in enumerate(report.signatures, 1):
        story += _signature(number, signature)
    story += _inputs(report.inputs)
    story += _commission()
    return story


def render_report_pdf(report: DocumentReport, *, case: Mapping[str, str] | None = None) -> bytes:
    """The report as PDF bytes (A4); the same report and case give the same bytes.

    ``case``: the facts of a dispute case, printed above the verdict: ``case_id``, ``inn``,
    ``opened_at``, ``opened_by`` (``wording.CASE_LABELS``), and any other key under its own name.
    """
    _register_fonts()
    footer = f"{TITLE_RU} · SHA-256 {(report.document_sha256 or '—')[:16]}…"
    pages = _layout(report, footer, lambda: _story(report, case), None)[1]
    return _layout(report, footer, lambda: _story(report, case), pages)[0]


def _layout(
    report: DocumentReport, footer: str, story: Callable[[], list[Any]], total: int | None
) -> tuple[bytes, int]:
    """Lay the story out (twice: once to count the pages for "Страница N из M")."""
    buffer = io.BytesIO()
    last_page = 0

    def decorate(canvas: Any, doc: Any) -> None:
        nonlocal last_page
        last_page = canvas.getPageNumber()
        canvas.saveState()
        canvas.setFont(_FONT, 7)
        canvas.setFillColor(_GREY_TEXT)
        canvas.drawString(_MARGIN, 8 * mm, footer)
        of_total = f" из {total}" if total else ""
        canvas.drawRightString(_PAGE_WIDTH - _MARGIN, 8 * mm, f"Страница {last_page}{of_total}")
        canvas.restoreState()

    doc = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=_MARGIN,
        rightMargin=_MARGIN,
        topMargin=_MARGIN,
        bottomMargin=_MARGIN + 3 * mm,
        title=f"{TITLE_RU} / {TITLE_EN}",
        author="Tamga",
        subject=f"SHA-256 {report.document_sha256 or '—'}",
        creator=report.engine,
        lang="ru-RU",
        initialFontName=_FONT,  # else every page also references Helvetica, unused
        invariant=1,  # fixed dates and document ID: the same input gives the same bytes
    )
    doc.build(story(), onFirstPage=decorate, onLaterPages=decorate)
    return buffer.getvalue(), last_page
