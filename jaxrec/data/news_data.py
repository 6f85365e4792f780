"""A MIND split read, checked, tokenized once and turned into integer arrays.

Checked while reading, before anything is tokenized or compiled: news.tsv and behaviors.tsv
must each hold rows; in a labelled split every impression needs a clicked and a non-clicked
candidate (one without is a bad row, dropped and counted only with `data.skip_bad_rows`); and
no more than `data.max_unknown_news_share` of the history or of the candidate slots may name
news that news.tsv lacks (such news become empty texts).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator
from pathlib import Path

import ml_collections

from jaxrec.data import mind
from jaxrec.data.news_table import NewsTable, build_news_table
from jaxrec.data.pipeline import ClickLog, click_log
from jaxrec.data.tokenize import TextTokenizer
from jaxrec.errors import DataError, excerpt

log = logging.getLogger(__name__)
MAX_UNKNOWN_KEY = "data.max_unknown_news_share"


@dataclasses.dataclass(frozen=True)
class NewsSplit:
    split: mind.MindSplit
    table: NewsTable
    log: ClickLog
    # Share of history and of candidate slots whose news ID news.tsv lacks (empty text).
    unknown_share: dict[str, float] = dataclasses.field(default_factory=dict)


def load_split(
    data: ml_collections.ConfigDict,
    name: str,
    tokenizer: TextTokenizer,
    *,
    cache_dir: str | Path,
    report: mind.ReadReport,
    data_dir: str | Path | None = None,
) -> NewsSplit:
    """Reads split `name` (train, dev or test), checks it, tokenizes its news (or loads the
    cache) and maps IDs to table rows. `data_dir` (a MIND folder) replaces the config's
    source."""
    folder = split_folder(data, name, data_dir)
    split = mind.read_split(
        folder, skip_bad_rows=data.skip_bad_rows, unknown_news=data.unknown_news, report=report
    )
    split = check_labels(split, folder / mind.BEHAVIORS_FILE, data.skip_bad_rows, report)
    check_not_empty(split, folder)
    shares = unknown_shares(split)
    check_unknown_shares(shares, split, folder, data.get("max_unknown_news_share", 1.0))
    table = _news_table(data, split.news, tokenizer, cache_dir)
    return NewsSplit(split, table, click_log(split.impressions, table, data.history_len), shares)


def stream_split(
    data: ml_collections.ConfigDict,
    name: str,
    tokenizer: TextTokenizer,
    *,
    cache_dir: str | Path,
    report: mind.ReadReport,
    data_dir: str | Path | None = None,
    chunk: int,
) -> tuple[NewsTable, Iterator[tuple[list[mind.Impression], ClickLog]]]:
    """A split to predict, too large to hold: its news table (every news item tokenized once),
    and its impressions `chunk` at a time with their click logs, in file order.

    Every impression is kept (prediction scores them all; no label checks). Unknown news
    share the empty row and are counted in `report`.
    """
    folder = split_folder(data, name, data_dir)
    news, parts = mind.iter_split(
        folder,
        chunk=chunk,
        skip_bad_rows=data.skip_bad_rows,
        unknown_news=data.unknown_news,
        report=report,
    )
    if not news:
        raise DataError("no news: the file is empty or every row was skipped", path=str(folder))
    table = _news_table(data, news, tokenizer, cache_dir)

    def logs() -> Iterator[tuple[list[mind.Impression], ClickLog]]:
        empty = True
        for part in parts:
            empty = False
            yield part, click_log(part, table, data.history_len)
        if empty:
            message = "no impressions: the file is empty or every row was skipped"
            raise DataError(message, path=str(folder / mind.BEHAVIORS_FILE))

    return table, logs()


def _news_table(data, news: dict[str, mind.News], tokenizer, cache_dir) -> NewsTable:
    """Each news item tokenized once (or loaded from the cache), as the config says."""
    return build_news_table(
        news,
        tokenizer,
        max_length=data.title_len,
        fields=tuple(data.news_fields),
        cache_dir=cache_dir,
    )


def check_labels(
    split: mind.MindSplit, path: Path, skip_bad_rows: bool, report: mind.ReadReport
) -> mind.MindSplit:
    """`split` without labelled impressions that lack a click or a non-click.

    Such an impression gives no training sample, and no dev metric (MRR and nDCG divide by
    the clicks, AUC needs both): a bad row, raised or (with `skip_bad_rows`) dropped and
    counted as `behaviors.no_click` or `behaviors.no_non_click`.
    """
    if not split.labelled:
        return split
    kept = []
    for imp in split.impressions:
        clicked = 1 in imp.labels
        if clicked and 0 in imp.labels:
            kept.append(imp)
            continue
        what = "non-clicked" if clicked else "clicked"
        message = f"impression {excerpt(imp.impression_id)} has no {what} candidate"
        err = DataError(message, path=str(path), line=imp.line, field="impressions")
        if not skip_bad_rows:
            raise err
        report.skip("behaviors.no_non_click" if clicked else "behaviors.no_click", example=str(err))
    if len(kept) == len(split.impressions):
        return split
    return dataclasses.replace(split, impressions=kept)


def check_not_empty(split: mind.MindSplit, folder: Path) -> None:
    if len(split.news) == len(split.unknown):
        raise DataError(
            "no news: the file is empty or every row was skipped", path=str(folder / mind.NEWS_FILE)
        )
    if not split.impressions:
        raise DataError(
            "no impressions: the file is empty or every row was skipped",
            path=str(folder / mind.BEHAVIORS_FILE),
        )


def unknown_shares(split: mind.MindSplit) -> dict[str, float]:
    """{"history": share, "candidates": share} of slots whose news ID news.tsv lacks."""
    unknown = set(split.unknown)
    shares = {}
    for field in ("history", "candidates"):
        slots = [getattr(imp, field) for imp in split.impressions]
        total = sum(map(len, slots))
        missing = sum(i in unknown for ids in slots for i in ids) if unknown else 0
        shares[field] = missing / total if total else 0.0
    return shares


def check_unknown_shares(
    shares: dict[str, float], split: mind.MindSplit, folder: Path, max_share: float
) -> None:
    """Raises DataError when news.tsv lacks more than `max_share` of the history or candidates.

    A few missing news items cost a few empty texts; most of them missing means the news.tsv
    belongs to other behaviors, and a model trained on empty texts learns nothing from text.
    """
    for field, share in shares.items():
        if share > max_share:
            raise DataError(
                f"{share:.1%} of the {field} slots in {mind.BEHAVIORS_FILE} name news that "
                f"this file lacks (more than {MAX_UNKNOWN_KEY}={max_share:g}), e.g. "
                f"{excerpt(split.unknown[0])}: is it the news.tsv of another split?",
                path=str(folder / mind.NEWS_FILE),
            )
    if any(shares.values()):
        log.warning(
            "%s: %.2f%% of history and %.2f%% of candidate slots name news missing from %s "
            "(empty texts)",
            folder,
            100 * shares["history"],
            100 * shares["candidates"],
            mind.NEWS_FILE,
        )


SOURCES = ("folder", "tfds")  # data.source: a MIND folder, or TFDS's MIND builder
TFDS_SPLITS = {"train": "train", "dev": "validation", "test": "test"}


def split_folder(
    data: ml_collections.ConfigDict, name: str, data_dir: str | Path | None = None
) -> Path:
    """The folder of split `name`: `<data.dir>/<name>`, or with `data.source="tfds"` what the
    TFDS MIND builder (config `data.tfds_config`) unzipped, from its download or from
    `data.dir` as its manual folder."""
    if data_dir is None and data.get("source", "folder") == "tfds":
        from jaxrec.data.tfds_mind import Mind

        builder = Mind(config=data.tfds_config, data_dir=data.tfds_data_dir or None)
        folders = builder.split_folders(manual_dir=data.dir or None)
        if TFDS_SPLITS.get(name) not in folders:
            raise DataError(f"MIND {data.tfds_config} has no {name} split", path=data.dir or None)
        return folders[TFDS_SPLITS[name]]
    folder = Path(data_dir or data.dir) / name
    if not folder.is_dir():
        raise DataError(f"split folder {name}/ not found (config.data.dir)", path=str(folder))
    return folder
