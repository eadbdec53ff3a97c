"""The sources registry: which sites are crawled, in which language, and how politely."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator

from vazhi_assets.settings import PACKAGE_DIR

DEFAULT_REGISTRY = PACKAGE_DIR / "sources.yaml"
DEMO_SITE_PLACEHOLDER = "{demo_site}"


class CrawlPolicy(BaseModel):
    """Limits and manners of one crawl."""

    model_config = ConfigDict(extra="forbid")

    max_depth: int = Field(2, ge=0)
    max_pages: int = Field(50, ge=1)
    politeness_delay_s: float = Field(0.5, ge=0)
    respect_robots: bool = True
    page_timeout_s: float = Field(15.0, gt=0)
    concurrency: int = Field(4, ge=1, le=32)


class Source(BaseModel):
    """One crawl source; each is a partition of ``raw_crawl``."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    language: Literal["ur", "ta", "en", "ar"]
    seeds: list[str] = Field(min_length=1)
    allowed_hosts: list[str] = Field(min_length=1)
    include_paths: list[str] = Field(default_factory=lambda: ["/"])
    allow_private: bool = False
    policy: CrawlPolicy = Field(default_factory=CrawlPolicy)
    boilerplate_patterns: list[str] = Field(default_factory=list)
    role: Literal["target", "replay"] = "target"
    expected_retention: tuple[float, float] = (0.3, 1.0)
    description: str = ""

    @field_validator("allowed_hosts")
    @classmethod
    def _lower_hosts(cls, hosts: list[str]) -> list[str]:
        return [h.lower() for h in hosts]

    @property
    def uses_demo_site(self) -> bool:
        return any(DEMO_SITE_PLACEHOLDER in seed for seed in self.seeds)

    def resolve_seeds(self, demo_site_url: str | None) -> list[str]:
        """Seeds with the ``{demo_site}`` placeholder replaced by the running demo site."""
        if self.uses_demo_site and not demo_site_url:
            raise ValueError(f"source {self.name!r} needs the demo site but none is running")
        return [s.replace(DEMO_SITE_PLACEHOLDER, demo_site_url or "") for s in self.seeds]


class Registry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    defaults: CrawlPolicy = Field(default_factory=CrawlPolicy)
    sources: list[Source]

    def get(self, name: str) -> Source:
        for source in self.sources:
            if source.name == name:
                return source
        known = ", ".join(s.name for s in self.sources)
        raise KeyError(f"unknown source {name!r}; the registry has: {known}")

    def by_language(self, language: str, role: str = "target") -> list[Source]:
        return [s for s in self.sources if s.language == language and s.role == role]

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.sources]


def registry_path() -> Path:
    return Path(os.environ.get("VAZHI_SOURCES", DEFAULT_REGISTRY))


def load_registry(path: Path | None = None) -> Registry:
    """Read and validate the registry; per-source policies inherit the file's ``defaults``."""
    path = path or registry_path()
    raw = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    defaults = raw.get("defaults", {})
    for source in raw.get("sources", []):
        source["policy"] = {**defaults, **source.get("policy", {})}
    registry = Registry.model_validate(raw)
    names = registry.names
    duplicates = {n for n in names if names.count(n) > 1}
    if duplicates:
        raise ValueError(f"{path}: duplicate source names {sorted(duplicates)}")
    return registry
