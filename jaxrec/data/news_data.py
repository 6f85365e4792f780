"""A MIND split read, tokenized once and turned into integer arrays."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import ml_collections

from jaxrec.data import mind
from jaxrec.data.news_table import NewsTable, build_news_table
from jaxrec.data.pipeline import ClickLog, click_log
from jaxrec.data.tokenize import TextTokenizer
from jaxrec.errors import DataError


@dataclasses.dataclass(frozen=True)
class NewsSplit:
    split: mind.MindSplit
    table: NewsTable
    log: ClickLog


def load_split(
    data: ml_collections.ConfigDict,
    name: str,
    tokenizer: TextTokenizer,
    *,
    cache_dir: str | Path,
    report: mind.ReadReport,
    data_dir: str | Path | None = None,
) -> NewsSplit:
    """Reads `<data.dir>/<name>/`, tokenizes its news (or loads the cache), maps IDs to rows."""
    folder = Path(data_dir or data.dir) / name
    if not folder.is_dir():
        raise DataError(f"split folder {name}/ not found (config.data.dir)", path=str(folder))
    split = mind.read_split(
        folder, skip_bad_rows=data.skip_bad_rows, unknown_news=data.unknown_news, report=report
    )
    table = build_news_table(
        split.news,
        tokenizer,
        max_length=data.title_len,
        fields=tuple(data.news_fields),
        cache_dir=cache_dir,
    )
    return NewsSplit(split, table, click_log(split.impressions, table, data.history_len))
