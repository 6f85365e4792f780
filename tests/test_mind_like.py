"""The MIND-like generator: MIND's format, one output per seed, statistics true to its files."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from jaxrec.data import mind
from jaxrec.data.report import ReadReport

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "make_mind_like.py"
TINY = "0.001"  # MIND-large's sizes times 0.001: 2,233 train, 376 dev, 2,371 test impressions
# Big enough for MIND's statistics (pools of 1000 news a day, 100 archive news a topic).
MODERATE = "archive_news=5000,news_per_day=1000,users=4000,train=5000,dev=3000,test=0"
SPLITS = ("train", "dev", "test")


def _load_module():
    spec = importlib.util.spec_from_file_location("make_mind_like", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


gen = _load_module()


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=120
    )


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("mind_like")
    result = run(f"--size={TINY}", f"--out={out}", "--seed=7")
    assert result.returncode == 0, result.stderr
    return out


def behaviors(path: Path) -> list[tuple[str, str, list[str], list[str], list[int] | None]]:
    """(impression ID, user, history, candidates, labels or None) of each line."""
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        imp_id, user, _, history, shown = line.split("\t")
        tokens = shown.split()
        if "-" in tokens[0]:
            ids, labels = zip(*(t.rsplit("-", 1) for t in tokens), strict=True)
            rows.append((imp_id, user, history.split(), list(ids), [int(y) for y in labels]))
        else:
            rows.append((imp_id, user, history.split(), tokens, None))
    return rows


def news_rows(path: Path) -> dict[str, list[str]]:
    return {cols[0]: cols for cols in (line.split("\t") for line in path.read_text().splitlines())}


def test_every_split_reads_as_mind(tiny: Path) -> None:
    size = gen.parse_size(TINY)
    for name in SPLITS:
        report = ReadReport()
        split = mind.read_split(tiny / name, unknown_news="error", report=report)
        assert split.labelled == (name != "test")
        assert len(split.impressions) == getattr(size, name)
        assert not report.counts, report.counts
        for imp in split.impressions:
            assert 2 <= len(imp.candidates) == len(set(imp.candidates))
            assert not set(imp.candidates) & set(imp.history)
            if imp.labels is not None:
                assert 1 <= sum(imp.labels) < len(imp.labels)
        assert all(n.category and n.subcategory for n in split.news.values())
    # The test split's hidden labels, in the MIND competition's truth-file format.
    truth = (tiny / "test_truth.txt").read_text().splitlines()
    test = behaviors(tiny / "test" / "behaviors.tsv")
    assert len(truth) == len(test)
    for line, (imp_id, _, _, candidates, _) in zip(truth, test, strict=True):
        number, labels = line.split(" ")
        values = json.loads(labels)
        assert number == imp_id and len(values) == len(candidates) and sum(values) >= 1


def test_same_seed_same_bytes(tiny: Path, tmp_path: Path) -> None:
    gen.generate(tmp_path / "again", gen.parse_size(TINY), seed=7)
    gen.generate(tmp_path / "other", gen.parse_size(TINY), seed=8)
    files = sorted(p.relative_to(tiny) for p in tiny.rglob("*") if p.is_file())
    assert len(files) == 8  # 3 x (news.tsv, behaviors.tsv), test_truth.txt, stats.json
    for name in files:
        assert (tmp_path / "again" / name).read_bytes() == (tiny / name).read_bytes(), name
    other = (tmp_path / "other" / "train" / "behaviors.tsv").read_bytes()
    assert other != (tiny / "train" / "behaviors.tsv").read_bytes()


def test_one_split_alone_and_blank_categories(tiny: Path, tmp_path: Path) -> None:
    result = run(f"--size={TINY}", f"--out={tmp_path}", "--seed=7", "--splits=dev")
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dev", "stats.json"]
    dev = (tmp_path / "dev" / "behaviors.tsv").read_bytes()
    assert dev == (tiny / "dev" / "behaviors.tsv").read_bytes()
    assert (
        json.loads((tmp_path / "stats.json").read_text())["dev"]["auc"]
        == (json.loads((tiny / "stats.json").read_text())["dev"]["auc"])
    )
    blank = tmp_path / "blank"
    gen.generate(blank, gen.parse_size(TINY), seed=7, splits=("dev",), blank_categories=True)
    assert (blank / "dev" / "behaviors.tsv").read_bytes() == dev
    full, blanked = news_rows(tiny / "dev" / "news.tsv"), news_rows(blank / "dev" / "news.tsv")
    assert list(full) == list(blanked)
    for news_id, cols in blanked.items():
        assert cols[1:3] == ["", ""]
        assert cols[3:] == full[news_id][3:]


def test_tiny_pools_still_give_two_candidates(tmp_path: Path) -> None:
    """Two news a day, one of them often dominant: impressions are topped up to 2 candidates."""
    size = gen.parse_size("0.001,news_per_day=2,users=200,train=300,dev=200,test=0")
    gen.generate(tmp_path, size, seed=5)
    for name in ("train", "dev"):
        split = mind.read_split(tmp_path / name, unknown_news="error")
        for imp in split.impressions:
            assert 2 <= len(imp.candidates) == len(set(imp.candidates))
            assert not set(imp.candidates) & set(imp.history)
            assert 1 <= sum(imp.labels) < len(imp.labels)


def _spread(values: list[int]) -> dict[str, float]:
    p50, p90, p99 = np.percentile(values, [50, 90, 99]).tolist()
    return {"mean": float(np.mean(values)), "p50": p50, "p90": p90, "p99": p99, "max": max(values)}


def _popularity_auc(train: list, dev: list) -> float:
    """Dev AUC of ranking by train clicks, one impression at a time (make_mind_sample's AUC)."""
    clicks = Counter(n for row in train for n, y in zip(row[3], row[4], strict=True) if y)
    sample = gen.sample
    return float(
        np.mean(
            [
                sample.impression_auc(np.array(row[4]), np.array([clicks[n] for n in row[3]]))
                for row in dev
            ]
        )
    )


def test_reported_statistics_match_the_files(tiny: Path) -> None:
    stats = json.loads((tiny / "stats.json").read_text())
    rows = {name: behaviors(tiny / name / "behaviors.tsv") for name in SPLITS}
    news = {name: news_rows(tiny / name / "news.tsv") for name in SPLITS}
    every = {k: v for name in SPLITS for k, v in news[name].items()}
    titles = [cols[3] for cols in every.values()]
    abstracts = [len(cols[4].split()) for cols in every.values()]
    assert stats["news"]["total"] == len(every)
    assert stats["news"]["title_words"] == pytest.approx(_spread([len(t.split()) for t in titles]))
    assert stats["news"]["abstract_words"] == pytest.approx(_spread(abstracts))
    assert stats["news"]["empty_abstract_share"] == pytest.approx(np.mean(np.equal(abstracts, 0)))
    assert stats["news"]["distinct_title_share"] == pytest.approx(len(set(titles)) / len(titles))
    assert stats["users_total"] == len({row[1] for name in SPLITS for row in rows[name]})
    for name in SPLITS:
        got, lines = stats[name], rows[name]
        history = [len(row[2]) for row in lines]
        candidates = [len(row[3]) for row in lines]
        assert got["impressions"] == len(lines)
        assert got["users"] == len({row[1] for row in lines})
        referenced = {n for row in lines for n in row[2] + row[3]}
        assert got["news"] == len(news[name]) == len(referenced)
        assert got["history_length"] == pytest.approx(
            {
                **_spread(history),
                "mean_clipped_50": np.mean(np.minimum(history, 50)),
                "empty_share": np.mean(np.equal(history, 0)),
                "over_50_share": np.mean(np.greater(history, 50)),
            }
        )
        assert got["candidates"] == pytest.approx(_spread(candidates))
        if name != "test":
            clicks = [sum(row[4]) for row in lines]
            assert got["clicks_per_impression"] == pytest.approx(np.mean(clicks))
            assert got["click_rate"] == pytest.approx(sum(clicks) / sum(candidates))
            per_news = Counter(n for row in lines for n, y in zip(row[3], row[4], strict=True) if y)
            top = sorted(per_news.values(), reverse=True)[: max(1, len(news[name]) // 100)]
            assert got["top1pct_news_click_share"] == pytest.approx(sum(top) / sum(clicks))
    dev_candidates = [n for row in rows["dev"] for n in row[3]]
    unseen = [n not in news["train"] for n in dev_candidates]
    assert stats["dev"]["unseen_candidate_share"] == pytest.approx(np.mean(unseen))
    distinct = set(dev_candidates)
    share = len(distinct - set(news["train"])) / len(distinct)
    assert stats["dev"]["unseen_candidate_news_share"] == pytest.approx(share)
    popularity = _popularity_auc(rows["train"], rows["dev"])
    assert stats["dev"]["auc"]["popularity"] == pytest.approx(popularity)


def test_moderate_size_has_minds_statistics(tmp_path: Path) -> None:
    stats = gen.generate(tmp_path, gen.parse_size(MODERATE), seed=3)
    for name in ("train", "dev"):
        got = stats[name]
        assert got["history_length"]["mean_clipped_50"] == pytest.approx(30, abs=2.5)
        assert got["history_length"]["max"] > 100  # a long tail past the 50 models read
        assert got["candidates"]["mean"] == pytest.approx(37, abs=4)
        assert got["clicks_per_impression"] == pytest.approx(1.5, abs=0.15)
    assert stats["dev"]["unseen_candidate_share"] == pytest.approx(0.5, abs=0.07)
    assert 10 <= stats["news"]["title_words"]["mean"] <= 12
    assert 35 <= stats["news"]["abstract_words"]["mean"] <= 43
    auc = stats["dev"]["auc"]
    assert auc["oracle"] > auc["interest"] > 0.8 > 0.62 > auc["popularity"] > 0.5


def test_impression_aucs_match_one_at_a_time() -> None:
    rng = np.random.default_rng(0)
    counts = rng.integers(2, 12, size=50)
    labels = np.zeros(counts.sum(), dtype=bool)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    labels[starts] = True  # one click each, plus random ones
    labels |= rng.random(counts.sum()) < 0.2
    scores = rng.integers(0, 4, size=counts.sum()).astype(float)  # many ties
    got = gen.impression_aucs(counts, labels, scores)
    for i, (s, n) in enumerate(zip(starts, counts, strict=True)):
        y = labels[s : s + n]
        want = (
            gen.sample.impression_auc(y.astype(int), scores[s : s + n]) if 0 < y.sum() < n else None
        )
        if want is None:
            assert np.isnan(got[i])
        else:
            assert got[i] == pytest.approx(want)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--size=huge"], "--size: expected small, large or a fraction, got 'huge'"),
        (["--size=small,userz=5"], "--size: 'userz=5' is not key=count"),
        (["--size=small", "--splits=test"], "--splits: this size has no test impressions"),
        (["--size=0.001", "--splits=train,valid"], "--splits: expected names from"),
    ],
)
def test_bad_arguments_are_one_line_errors(args: list[str], message: str, tmp_path: Path) -> None:
    result = run(*args, f"--out={tmp_path / 'out'}")
    assert result.returncode == 2
    assert message in result.stderr.strip().splitlines()[-1]
    assert not (tmp_path / "out").exists()
