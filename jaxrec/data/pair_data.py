"""Picks the rating/click/multi-label reader that ``config.data.format`` names, and calls it."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import ml_collections

from jaxrec.data import movielens
from jaxrec.data.interactions import read_interactions_dir
from jaxrec.data.pairs import PairData
from jaxrec.data.report import ReadReport
from jaxrec.errors import ConfigError, DataError

FORMATS = ("movielens100k", "movielens1m", "movielens_tfds", "interactions")
SAMPLES = Path(__file__).resolve().parent / "samples"
# What an empty data.path reads; movielens_tfds uses TFDS's own default data_dir instead.
BUNDLED = {"movielens100k": SAMPLES / "movielens100k", "interactions": SAMPLES / "ecommerce"}


def load_pair_data(cfg: ml_collections.ConfigDict, report: ReadReport | None = None) -> PairData:
    """Reads the data ``cfg`` (the ``data`` part of a config) describes.

    Fields: ``format`` (one of FORMATS), ``path`` (a folder; "" is the bundled sample, or
    TFDS's default data_dir), ``split`` (MovieLens 100K), ``seed`` and ``test_fraction`` (1M
    and TFDS), ``dev_fraction`` (the share of train that becomes the validation split, unless
    the data brings its own), ``task``, ``rating_range``, ``user_columns`` and
    ``item_columns`` (interactions; MovieLens is always "rating"), ``skip_bad_rows``,
    ``unknown_ids``. Missing fields take the readers' defaults. A split left without
    interactions is a DataError naming its file.
    """
    report = report if report is not None else ReadReport()
    data = read_pair_data(cfg, report)
    # A stream apart from the 1M/TFDS test split's, so the two draws are independent.
    fraction, seed = cfg.get("dev_fraction", 0.1), [cfg.get("seed", 0), 1]
    data = with_dev_split(data, fraction=fraction, seed=seed)
    for role, split in (("train", data.train), ("dev", data.dev), ("test", data.test)):
        if not len(split):
            raise DataError(
                f"no {role} interactions: the file is empty, holds only a header, or every "
                "row was skipped"
                + (
                    f" (or data.dev_fraction={fraction:g} is too small)"
                    if role == "dev" and data.dev.source == data.train.source
                    else ""
                ),
                path=split.source,
            )
    return data


def read_pair_data(cfg: ml_collections.ConfigDict, report: ReadReport) -> PairData:
    """The data as its reader returns it: no validation split carved from train."""
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


def with_dev_split(data: PairData, *, fraction: float, seed: int) -> PairData:
    """`data` with a validation split: its own, or a seeded random `fraction` of train.

    Model selection (early stopping, the best checkpoint) looks at this split only, so the
    test split is scored once, by the chosen model.
    """
    if data.dev is not None:
        return data
    train, dev = movielens.random_split(data.train, seed=seed, test_fraction=fraction)
    return dataclasses.replace(data, train=train, dev=dev)
