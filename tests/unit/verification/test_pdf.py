"""The commission's PDF report: read back with poppler (pdftotext, pdftoppm), never our parser.

Needs poppler-utils (``make system-packages`` installs it); a missing tool fails, never skips.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from signing_api.verification.pdf import TITLE_EN, TITLE_RU, render_report_pdf
from signing_api.verification.report import Indication, InputFile
from signing_api.verification.wording import CONCLUSIONS_RU
from tests.unit.verification.sample import CASE, sample_report

A4_WIDTH = 595.28
MARGIN = 15 * 72 / 25.4


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is missing: install poppler-utils (make system-packages)")
    return path


def _file(pdf: bytes, tmp_path: Path) -> Path:
    path = tmp_path / f"{hashlib.sha256(pdf).hexdigest()[:16]}.pdf"
    path.write_bytes(pdf)
    return path


def pdf_text(pdf: bytes, tmp_path: Path, *options: str) -> str:
    done = subprocess.run(
        [_tool("pdftotext"), *options, "-enc", "UTF-8", str(_file(pdf, tmp_path)), "-"],
        capture_output=True,
        check=True,
    )
    return done.stdout.decode("utf-8")


def first_page_png(pdf: bytes, tmp_path: Path, resolution: int = 60) -> Path:
    prefix = tmp_path / "page"
    subprocess.run(
        [_tool("pdftoppm"), "-png", "-r", str(resolution), "-f", "1", "-l", "1", "-singlefile",
         str(_file(pdf, tmp_path)), str(prefix)],
        check=True, capture_output=True,
    )  # fmt: skip
    return prefix.with_suffix(".png")


def _near(colour: tuple[int, ...], target: tuple[int, int, int], by: int = 12) -> bool:
    return all(abs(a - b) < by for a, b in zip(colour, target, strict=True))


def _flat(text: str) -> str:
    return re.sub(r"\s+", " ", text)


def test_the_report_reads_back_in_russian_with_every_step_and_input(tmp_path: Path) -> None:
    report = sample_report()
    pdf = render_report_pdf(report, case=CASE)
    assert pdf.startswith(b"%PDF-")
    text = pdf_text(pdf, tmp_path)
    flat = _flat(text)
    assert TITLE_RU in flat and TITLE_EN in flat
    assert "TOTAL-PASSED" in flat and "подпись подлинная" in flat
    assert _flat(CONCLUSIONS_RU[Indication.TOTAL_PASSED])[:60] in flat
    for value in CASE.values():
        assert value in flat, value
    assert "ИНН абонента" in flat and "01234567890123" in flat
    assert report.document_sha256 is not None and report.document_sha256 in text
    for signature in report.signatures:
        assert signature.label in flat
        assert format(signature.signer_serial or 0, "x") in text
        for step in signature.steps:
            assert step.clause in text
    for clause in ("8.2.1", "8.2.2", "8.2.3", "8.2.4", "8.2.5", "8.2.6", "8.2.7"):
        assert clause in text
    # every input's SHA-256, whole on one line (a commission compares it with sha256sum)
    for item in report.inputs:
        assert item.sha256 in text, item.name
    assert "Асанова Айгуль Бакытовна" in flat and "Бакиева Нургуль" in flat
    assert "штамп времени над подписью" in flat  # what proves the signing time
    assert "2026-12-03 10:15:00 UTC (2026-12-03 16:15:00 Бишкек)" in flat
    for label in ("ФИО", "Подпись / Signature", "Дата / Date", "Председатель комиссии"):
        assert label in flat
    assert flat.count("Член комиссии / Member") == 3
    # every page's footer: the title, the start of the document's SHA-256, "Страница N из M"
    pages = text.split("\f")[:-1]
    assert len(pages) >= 2
    for number, page in enumerate(pages, 1):
        assert f"Страница {number} из {len(pages)}" in page
        assert report.document_sha256[:16] in page


def test_failed_and_indeterminate_verdicts_and_no_case(tmp_path: Path) -> None:
    failed = pdf_text(render_report_pdf(sample_report(Indication.TOTAL_FAILED)), tmp_path)
    assert "TOTAL-FAILED" in failed and "REVOKED" in failed
    assert "подпись не подлинная" in _flat(failed)
    assert "Дело / Case" not in failed
    unsure = pdf_text(render_report_pdf(sample_report(Indication.INDETERMINATE)), tmp_path)
    assert "INDETERMINATE" in unsure and "подлинность не установлена" in _flat(unsure)


def test_the_same_report_gives_the_same_bytes() -> None:
    report = sample_report()
    assert render_report_pdf(report, case=CASE) == render_report_pdf(report, case=CASE)
    assert render_report_pdf(report) != render_report_pdf(report, case=CASE)


def test_markup_in_the_report_is_printed_not_interpreted(tmp_path: Path) -> None:
    hostile = InputFile("document", "<b>a&b</b> <font size=40>x</font>", "0" * 64, 1)
    report = dataclasses.replace(sample_report(), inputs=(hostile,))
    text = _flat(pdf_text(render_report_pdf(report), tmp_path))
    assert "<b>a&b</b> <font size=40>x</font>" in text


def test_long_names_and_hashes_wrap_inside_the_page(tmp_path: Path) -> None:
    report = sample_report()
    spaceless = "O=" + "Ала-Тоо-Консалтинг-" * 12
    signature = dataclasses.replace(report.signatures[0], signer_issuer=spaceless)
    report = dataclasses.replace(report, signatures=(signature, *report.signatures[1:]))
    boxes = pdf_text(render_report_pdf(report), tmp_path, "-bbox")
    right = [float(x) for x in re.findall(r'xMax="([0-9.]+)"', boxes)]
    left = [float(x) for x in re.findall(r'xMin="([0-9.]+)"', boxes)]
    assert right and left
    assert max(right) <= A4_WIDTH - MARGIN + 1, max(right)
    assert min(left) >= MARGIN - 1, min(left)
    # the long words were printed, split, not dropped
    assert "Ала-Тоо-Консалтинг" in boxes and "НДСНДС" in boxes


def test_the_first_page_is_a_readable_image(tmp_path: Path) -> None:
    png = first_page_png(render_report_pdf(sample_report(), case=CASE), tmp_path)
    with Image.open(png) as page:
        rgb = page.convert("RGB")
        width, height = rgb.size
        data = rgb.tobytes()
    pixels = [tuple(data[i : i + 3]) for i in range(0, len(data), 3)]
    assert abs(width - 496) <= 1 and abs(height - 702) <= 1  # A4 at 60 dpi
    ink = sum(1 for r, g, b in pixels if r + g + b < 600)
    assert ink > len(pixels) // 50, "the page is blank"
    # the green verdict box (#1b7f3b) is on the first page
    green = sum(1 for r, g, b in pixels if _near((r, g, b), (0x1B, 0x7F, 0x3B)))
    assert green > 2000, green
