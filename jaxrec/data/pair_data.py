"""Picks the rating/click/multi-label reader that ``config.data.format`` names, and calls it."""

from __future__ import annotations

from pathlib import Path

import ml_collections

from jaxrec.data import movielens
from jaxrec.data.interactions import PairData, read_interactions_dir
from jaxrec.data.report import ReadReport
from jaxrec.errors import ConfigError, DataError

FORMATS = ("movielens100k", "movielens1m", "movielens_tfds", "interactions")
SAMPLES = Path(__file__).resolve().parent / "samples"
# What an empty data.path reads; movielens_tfds uses TFDS's own default data_dir instead.
BUNDLED = {"movielens100k": SAMPLES / "movielens100k", "interactions": SAMPLES / "ecommerce"}


def load_pair_data(cfg: ml_collections.ConfigDict, report: ReadReport | None = None) -> PairData:
    """Reads the data ``cfg`` (the ``data`` part of a config) describes.

    Fields: ``format`` (one of FORMATS), ``path`` (a folder; "" is the bundled sample, or TFDS's
    default data_dir), ``split`` (MovieLens 100K), ``seed`` and ``test_fraction`` (1M and TFDS),
    ``task``, ``rating_range``, ``user_columns`` and ``item_columns`` (interactions; MovieLens
    is always "rating"), ``skip_bad_rows``, ``unknown_ids``. Missing fields take the readers'
    defaults. A train or test split left without interactions is a DataError naming its file.
    """
    data = _read(cfg, report if report is not None else ReadReport())
    for role, split in (("train", data.train), ("test", data.test)):
        if not len(split):
            raise DataError(
                f"no {role} interactions: the file is empty, holds only a header, or every "
                "row was skipped",
                path=split.source,
            )
    return data


def _read(cfg: ml_collections.ConfigDict, report: ReadReport) -> PairData:
    fmt = cfg.format
    if fmt not in FORMATS:
        raise ConfigError(f"data.format must be one of {FORMATS}, got {fmt!r}")
    task = cfg.get("task", "rating")
    if fmt != "interactions" and task != "rating":
        raise ConfigError(f"data.format={fmt!r} has ratings only, but data.task is {task!r}")
    path = Path(cfg.path).expanduser() if cfg.get("path", "") else BUNDLED.get(fmt)
    rows = {
        "skip_bad_rows": cfg.get("skip_bad_rows", False),
        "unknown_ids": cfg.get("unknown_ids", "error"),
        "report": report,
    }
    split = {"seed": cfg.get("seed", 0), "test_fraction": cfg.get("test_fraction", 0.1)}
    if fmt == "movielens_tfds":
        return movielens.read_movielens_tfds(path, **split, report=report)
    if path is None:
        raise ConfigError(f"data.path must name the folder for data.format={fmt!r}")
    if fmt == "movielens100k":
        return movielens.read_movielens_100k(path, split=cfg.get("split", "u1"), **rows)
    if fmt == "movielens1m":
        return movielens.read_movielens_1m(path, **split, **rows)
    columns = {"user_columns": cfg.get("user_columns"), "item_columns": cfg.get("item_columns")}
    rating_range = tuple(cfg.get("rating_range", (1.0, 5.0)))
    return read_interactions_dir(path, task=task, rating_range=rating_range, **columns, **rows)
