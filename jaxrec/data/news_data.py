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
    """Reads split `name` (train, dev or test), tokenizes its news (or loads the cache) and
    maps IDs to table rows. `data_dir` (a MIND folder) replaces the config's source."""
    folder = split_folder(data, name, data_dir)
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
