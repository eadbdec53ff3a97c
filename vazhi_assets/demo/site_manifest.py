"""Ground truth of a built demo site: the types of ``manifest.json``.

The manifest records the body text of every article, every boilerplate string, the English
pages hidden in the Urdu section, near-duplicate and cross-posted pairs, what each problem page
is expected to do, and how the server answers every URL path.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

MANIFEST_NAME = "manifest.json"
SCHEMA_VERSION = 1


@dataclass(frozen=True)
class Page:
    """One article page and its ground truth.

    ``text`` is the body prose (paragraphs joined by a blank line) that a perfect cleaner keeps;
    quoted verse (Tamil) and code samples (English) are shown on the page but not part of it.
    ``boilerplate_strings`` lists every boilerplate text node on the page (as served).
    """

    path: str
    title: str
    language: str
    text: str
    published: str
    source: str
    boilerplate_strings: list[str]
    encoding: str = "utf-8"

    @property
    def paragraphs(self) -> list[str]:
        return self.text.split("\n\n")


@dataclass(frozen=True)
class CrossPost:
    """The same body text published verbatim on two sites."""

    original: str
    copy: str


@dataclass(frozen=True)
class NearDuplicate:
    """Two pages carrying the same text in different spellings."""

    first: str
    second: str
    reason: str


@dataclass(frozen=True)
class Section:
    """One "news site" under a path prefix."""

    name: str
    prefix: str
    language: str
    site_name: str
    layout: str
    index_paths: list[str]
    pages: list[Page]
    template_strings: list[str]
    boilerplate_strings: list[str]
    english_only_paths: list[str] = field(default_factory=list)
    cross_posts: list[CrossPost] = field(default_factory=list)
    linked_bad_paths: list[str] = field(default_factory=list)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Section:
        return cls(
            **{
                **data,
                "pages": [Page(**p) for p in data["pages"]],
                "cross_posts": [CrossPost(**c) for c in data["cross_posts"]],
            }
        )


@dataclass(frozen=True)
class BadPage:
    """A problem URL and what a crawler is expected to make of it."""

    path: str
    kind: str
    status: int
    content_type: str
    expected: str


@dataclass(frozen=True)
class Route:
    """How the server answers one URL path."""

    path: str
    file: str
    content_type: str
    slow: bool = False


@dataclass(frozen=True)
class SiteManifest:
    """Ground truth of a built demo site (also written as ``manifest.json``)."""

    sections: list[Section]
    cross_posts: list[CrossPost]
    near_duplicates: list[NearDuplicate]
    bad_pages: list[BadPage]
    robots_disallow: list[str]
    private_paths: list[str]
    routes: list[Route]
    schema_version: int = SCHEMA_VERSION

    def section(self, name: str) -> Section:
        return next(s for s in self.sections if s.name == name)

    def page(self, path: str) -> Page:
        return next(p for s in self.sections for p in s.pages if p.path == path)

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, indent=1) + "\n"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SiteManifest:
        return cls(
            sections=[Section.from_dict(s) for s in data["sections"]],
            cross_posts=[CrossPost(**c) for c in data["cross_posts"]],
            near_duplicates=[NearDuplicate(**n) for n in data["near_duplicates"]],
            bad_pages=[BadPage(**b) for b in data["bad_pages"]],
            robots_disallow=data["robots_disallow"],
            private_paths=data["private_paths"],
            routes=[Route(**r) for r in data["routes"]],
            schema_version=data["schema_version"],
        )

    @classmethod
    def load(cls, root: Path) -> SiteManifest:
        return cls.from_dict(json.loads((Path(root) / MANIFEST_NAME).read_text(encoding="utf-8")))
