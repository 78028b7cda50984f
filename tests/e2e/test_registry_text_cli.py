"""Invisible and control characters never reach the registry, whichever door they come by
(issue #12 finding 6): the HTTP edge's ``Text`` type refuses them (tests/integration/
signing_api/test_bad_input.py), and so does the CA itself, which the officer's console reaches
without that edge. Text is stored in NFC."""

from __future__ import annotations

import json
import subprocess
import unicodedata
from pathlib import Path

import pytest

from tests.tamga_fixtures import RunTamga

pytestmark = [pytest.mark.slow, pytest.mark.hsm]

INN = "01234567890123"


def test_the_console_refuses_what_the_api_refuses(run_tamga: RunTamga, tmp_path: Path) -> None:
    home = tmp_path / "home"

    def tamga(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return run_tamga(home, *args, check=check)

    tamga("init")
    company = ["ca", "subscriber", "add", "--inn", INN, "--legal-form", "ОсОО", "--locality",
               "Бишкек", "--email", "office@test.kg"]  # fmt: skip
    spoofed = tamga(*company, "--name", 'ОсОО "Тест\u202eтсеТ"', check=False)
    assert spoofed.returncode == 1 and "U+202E RIGHT-TO-LEFT OVERRIDE" in spoofed.stderr
    tamga(*company, "--name", 'ОсОО "Тест"')
    person = ["ca", "holder", "add", "--inn", INN, "--passport-series", "ID1234567", "--email",
              "a@test.kg", "--phone", "+996555123456", "--identity-document", "file 1"]  # fmt: skip
    for full_name, position, named in (
        ("Асанова\u200bАйгуль", "Директор", "U+200B ZERO WIDTH SPACE"),
        ("Асанова Айгуль", "\u009bДиректор", "U+009B"),
        ("Асанова Айгуль", "Директор\ue000", "U+E000"),
    ):
        refused = tamga(*person, "--full-name", full_name, "--position", position, check=False)
        assert refused.returncode == 1 and named in refused.stderr, refused.stderr
        assert "Traceback" not in refused.stderr
    listed = tamga("ca", "holder", "list", INN, "--json").stdout
    assert "Асанова" not in listed  # nothing was written
    decomposed = "Асанова Айгуль Бакытовна".replace("й", "и\u0306")  # и + combining breve
    made = json.loads(tamga(*person, "--full-name", decomposed, "--position", "Директор",
                            "--json").stdout)  # fmt: skip
    assert (
        made["full_name"] == unicodedata.normalize("NFC", decomposed) == "Асанова Айгуль Бакытовна"
    )


def test_the_console_names_every_bad_field_at_once(run_tamga: RunTamga, tmp_path: Path) -> None:
    """Issue #10: the CA's validators stopped at the first bad field while the API named them
    all; the console (which reaches the CA without the API's edge) now names them all too."""
    home = tmp_path / "home"
    run_tamga(home, "init")
    subscriber = run_tamga(home, "ca", "subscriber", "add", "--inn", "123", "--name", " ",
                           "--legal-form", "ОсОО", "--locality", "Бишкек", "--email",
                           "office@test.kg", check=False)  # fmt: skip
    assert subscriber.returncode == 1
    assert "invalid --inn" in subscriber.stderr and "invalid --name" in subscriber.stderr
    assert len(subscriber.stderr.strip().splitlines()) == 1
    company = ["--legal-form", "ОсОО", "--locality", "Бишкек", "--email", "office@test.kg"]
    run_tamga(home, "ca", "subscriber", "add", "--inn", INN, "--name", 'ОсОО "Тест"', *company)
    holder = run_tamga(home, "ca", "holder", "add", "--inn", INN, "--full-name", "Асанова Айгуль",
                       "--position", "Директор", "--passport-series", "№!", "--email",
                       "a@test.kg", "--phone", "12", "--identity-document", "file 1",
                       check=False)  # fmt: skip
    assert holder.returncode == 1, holder.stderr
    assert "invalid --passport-series" in holder.stderr and "invalid --phone" in holder.stderr
