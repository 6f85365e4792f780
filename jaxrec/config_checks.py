"""check_config(config): every value a run depends on, checked before anything is read or built.

ml_collections checks the type of a command-line override against the field's default, but
not values that have the right type and are still impossible (a zero batch size, a learning
rate of -1), nor configs written as JSON (a trained workdir's config.json). Each failure is a
ConfigError naming the key, what it holds and what it should hold. Bounds that depend on the
pretrained encoder (its layers, its positions) come from its config.json; no weights are read.

``data.npratio`` (non-clicked candidates per clicked one) may exceed what an impression
offers: the training pipeline then samples the non-clicked candidates with replacement, so
only ``npratio < 1`` is an error.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import ml_collections

from jaxrec.errors import ConfigError, excerpt
from jaxrec.tasks import TASKS

SCHEDULES = ("linear", "cosine", "constant")  # jaxrec/optim.py's schedule()
DTYPES = ("float32", "bfloat16")
# What jaxrec/models/news.py's NewsRecommender accepts.
NEWS_POOLINGS = ("attention", "cls")
USER_ENCODERS = ("attention", "mhsa")
_MISSING = object()


def check_config(config: ml_collections.ConfigDict) -> None:
    """Raises ConfigError naming the first key whose value cannot work; dispatches on ``task``."""
    c = _Checker(config)
    task = c.choice("task", TASKS)
    _check_common(c)
    if task == "news":
        _check_news(c)
    else:
        _check_pair(c)
    _check_encoder(c, task)


class _Checker:
    """Reads dotted keys of a config and raises ConfigError naming the key when one is wrong."""

    def __init__(self, config: ml_collections.ConfigDict) -> None:
        self.config = config

    def get(self, key: str, default: Any = _MISSING) -> Any:
        node: Any = self.config
        for part in key.split("."):
            try:
                node = node[part]
            except (KeyError, TypeError, AttributeError):
                if default is not _MISSING:
                    return default
                raise ConfigError(f"config has no key {key}") from None
        return node

    def fail(self, key: str, value: Any, expected: str) -> ConfigError:
        return ConfigError(f"{key} is {excerpt(value, 80)}; expected {expected}")

    def integer(self, key: str, low: int | None = None, high: int | None = None) -> int:
        value = self.get(key)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(key, value, f"an integer{_bounds(low, high)}")
        if (low is not None and value < low) or (high is not None and value > high):
            raise self.fail(key, value, f"an integer{_bounds(low, high)}")
        return value

    def number(
        self,
        key: str,
        low: float | None = None,
        high: float | None = None,
        *,
        open_low: bool = False,
        open_high: bool = False,
    ) -> float:
        """A finite int or float within [low, high]; ``open_*`` leaves that end out."""
        value = self.get(key)
        if not _is_number(value):
            raise self.fail(key, value, f"a number{_bounds(low, high, open_low, open_high)}")
        too_low = low is not None and (value <= low if open_low else value < low)
        too_high = high is not None and (value >= high if open_high else value > high)
        if too_low or too_high:
            raise self.fail(key, value, f"a number{_bounds(low, high, open_low, open_high)}")
        return float(value)

    def boolean(self, key: str) -> bool:
        value = self.get(key)
        if not isinstance(value, bool):
            raise self.fail(key, value, "True or False")
        return value

    def string(self, key: str, *, empty: bool = True) -> str:
        value = self.get(key)
        if not isinstance(value, str) or (not empty and not value):
            raise self.fail(key, value, "a string" if empty else "a non-empty string")
        return value

    def choice(self, key: str, options: Sequence[str]) -> str:
        value = self.get(key)
        if value not in options:
            raise self.fail(key, value, f"one of {tuple(options)}")
        return value

    def strings(self, key: str, options: Sequence[str] | None = None) -> tuple[str, ...] | None:
        """A list or tuple of strings (each among ``options`` if given), or None."""
        value = self.get(key)
        if value is None:
            return None
        expected = "a list of strings" + (f" among {tuple(options)}" if options else "")
        if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
            raise self.fail(key, value, expected)
        if options is not None and any(v not in options for v in value):
            raise self.fail(key, value, expected)
        return tuple(value)

    def folder(self, key: str, path: str | Path, *subfolders: str) -> None:
        """``path`` and each of ``subfolders`` under it must be existing folders."""
        root = Path(path).expanduser()
        for folder in (root, *(root / s for s in subfolders)):
            if not folder.is_dir():
                raise ConfigError(f"{key}: folder {folder} does not exist")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _bounds(
    low: float | None, high: float | None, open_low: bool = False, open_high: bool = False
) -> str:
    if low is not None and high is not None:
        return f" in {'(' if open_low else '['}{low}, {high}{')' if open_high else ']'}"
    if low is not None:
        return f" > {low}" if open_low else f" >= {low}"
    if high is not None:
        return f" < {high}" if open_high else f" <= {high}"
    return ""


def _check_common(c: _Checker) -> None:
    c.integer("seed")
    _check_train(c)
    _check_mesh(c)
    c.string("model.init_from", empty=False)
    init_from = c.get("model.init_from")
    from jaxrec.pretrained import DEFAULT

    if init_from != DEFAULT:
        c.folder("model.init_from", init_from)
    c.choice("model.dtype", DTYPES)
    c.boolean("model.remat")
    c.integer("model.trainable_layers", low=-1)
    if c.get("model.dropout", None) is not None:
        c.number("model.dropout", 0.0, 1.0, open_high=True)
    c.boolean("data.skip_bad_rows")
    c.string("data.cache_dir")
    if c.get("data.max_skipped_share", None) is not None:
        c.number("data.max_skipped_share", 0.0, 1.0)


def _check_train(c: _Checker) -> None:
    batch = c.integer("train.batch_size", low=1)
    micro = c.integer("train.micro_batches", low=1)
    if batch % micro:
        raise c.fail("train.batch_size", batch, f"a multiple of train.micro_batches ({micro})")
    c.integer("train.num_steps", low=1)
    c.number("train.learning_rate", 0.0)  # 0 is allowed: evaluate a frozen model
    c.integer("train.warmup_steps", low=0)
    c.choice("train.schedule", SCHEDULES)
    c.number("train.weight_decay", 0.0)
    c.number("train.b1", 0.0, 1.0, open_high=True)
    c.number("train.b2", 0.0, 1.0, open_high=True)
    c.number("train.eps", 0.0, open_low=True)
    c.number("train.grad_clip", 0.0, open_low=True)
    for key in ("log_every", "eval_every", "save_every", "eval_batch_size", "keep_checkpoints"):
        c.integer(f"train.{key}", low=1)
    c.integer("train.patience", low=0)
    c.string("train.early_stopping_metric", empty=False)


def _check_mesh(c: _Checker) -> None:
    from jaxrec.sharding import MESH_AXES

    shape = c.get("mesh.shape")
    expected = f"{len(MESH_AXES)} sizes {MESH_AXES}, each positive or one of them -1"
    if not isinstance(shape, list | tuple) or len(shape) != len(MESH_AXES):
        raise c.fail("mesh.shape", shape, expected)
    if any(isinstance(s, bool) or not isinstance(s, int) or s == 0 or s < -1 for s in shape):
        raise c.fail("mesh.shape", shape, expected)
    if list(shape).count(-1) > 1:
        raise c.fail("mesh.shape", shape, expected)
    rules = c.get("mesh.rules")
    expected = f"(logical name, mesh axis or axes or None) pairs over the axes {MESH_AXES}"
    if not isinstance(rules, list | tuple):
        raise c.fail("mesh.rules", rules, expected)
    for rule in rules:
        if not (isinstance(rule, list | tuple) and len(rule) == 2 and isinstance(rule[0], str)):
            raise c.fail("mesh.rules", rule, expected)
        axes = rule[1]
        axes = () if axes is None else (axes,) if isinstance(axes, str) else axes
        if not isinstance(axes, list | tuple) or any(a not in MESH_AXES for a in axes):
            raise c.fail("mesh.rules", rule, expected)
    c.number("mesh.max_replicated_share", 0.0, 1.0)


def _check_news(c: _Checker) -> None:
    from jaxrec.data.mind import UNKNOWN_NEWS_POLICIES
    from jaxrec.data.news_table import TEXT_FIELDS
    from jaxrec.metrics import METRIC_NAMES

    c.choice("train.early_stopping_metric", METRIC_NAMES)
    c.choice("model.pooling", NEWS_POOLINGS)
    c.choice("model.user_encoder", USER_ENCODERS)
    c.integer("model.attention_hidden", low=1)
    c.integer("model.user_heads", low=1)
    c.boolean("model.cache_frozen_layers")
    fields = c.strings("data.news_fields", TEXT_FIELDS)
    if not fields or "title" not in fields:
        expected = f"a list of {TEXT_FIELDS} that includes 'title'"
        raise c.fail("data.news_fields", c.get("data.news_fields"), expected)
    c.integer("data.title_len", low=3 if "abstract" in fields else 2)
    c.integer("data.history_len", low=1)
    c.integer("data.npratio", low=1)
    c.integer("data.news_bucket", low=1)
    c.choice("data.unknown_news", UNKNOWN_NEWS_POLICIES)
    if c.get("data.max_unknown_news_share", None) is not None:  # older workdirs lack it
        c.number("data.max_unknown_news_share", 0.0, 1.0)
    c.string("data.dir", empty=False)
    c.folder("data.dir", c.get("data.dir"), "train", "dev")


def _check_pair(c: _Checker) -> None:
    from jaxrec.data.interactions import TASKS as PAIR_TASKS
    from jaxrec.data.interactions import UNKNOWN_ID_POLICIES
    from jaxrec.data.movielens import SPLITS_100K
    from jaxrec.data.pair_data import BUNDLED, FORMATS
    from jaxrec.models.lora import TARGETS
    from jaxrec.models.pair import ARCHITECTURES, HEADS, POOLINGS
    from jaxrec.pair_metrics import PAIR_METRICS

    fmt = c.choice("data.format", FORMATS)
    task = c.choice("data.task", PAIR_TASKS)
    if fmt != "interactions" and task != "rating":
        raise c.fail("data.task", task, f"'rating' (data.format={fmt!r} has ratings only)")
    c.choice("train.early_stopping_metric", PAIR_METRICS[task])
    architecture = c.choice("model.architecture", ARCHITECTURES)
    head = c.choice("model.head", HEADS)
    c.choice("model.pooling", POOLINGS)
    if head == "dot" and (architecture != "two_tower" or task == "multilabel"):
        raise c.fail(
            "model.head", head, "'mlp' ('dot' needs model.architecture='two_tower' and one output)"
        )
    c.boolean("model.use_ids")
    c.integer("model.id_dim", low=1)
    c.integer("model.mlp_hidden", low=1)
    if c.integer("model.lora_rank", low=0):
        c.number("model.lora_alpha", 0.0, open_low=True)
        c.strings("model.lora_targets", tuple(TARGETS))
    for key in ("data.user_len", "data.item_len"):
        c.integer(key, low=2)
    c.integer("data.text_bucket", low=1)
    c.choice("data.unknown_ids", UNKNOWN_ID_POLICIES)
    path = c.string("data.path")
    if path:
        c.folder("data.path", path)
    elif fmt not in BUNDLED and fmt != "movielens_tfds":
        raise c.fail("data.path", path, f"the folder to read for data.format={fmt!r}")
    if fmt == "movielens100k":
        c.choice("data.split", SPLITS_100K)
    if fmt in ("movielens1m", "movielens_tfds"):
        c.number("data.test_fraction", 0.0, 1.0, open_low=True, open_high=True)
    if fmt == "interactions":
        _check_rating_range(c)
        c.strings("data.user_columns")
        c.strings("data.item_columns")


def _check_encoder(c: _Checker, task: str) -> None:
    """Values bounded by the pretrained encoder: its config.json is read (no weights)."""
    from jaxrec import pretrained
    from jaxrec.convert import hf

    bert = hf.read_config(pretrained.resolve(c.get("model.init_from")))
    layers, positions = bert.num_hidden_layers, bert.max_position_embeddings
    c.integer("model.trainable_layers", low=-1, high=layers)
    if task == "news":
        c.integer("data.title_len", high=positions)
        heads = c.get("model.user_heads")
        if c.get("model.user_encoder") == "mhsa" and bert.hidden_size % heads:
            raise c.fail("model.user_heads", heads, f"a divisor of hidden size {bert.hidden_size}")
        return
    c.integer("data.user_len", high=positions)
    c.integer("data.item_len", high=positions)
    if c.get("model.architecture") == "cross":  # one sequence: [CLS] user [SEP] item [SEP]
        user_len, item_len = c.get("data.user_len"), c.get("data.item_len")
        if user_len + item_len - 1 > positions:
            expected = (
                f"data.user_len + data.item_len - 1 <= {positions} (the encoder's positions) "
                "for model.architecture='cross'"
            )
            raise c.fail("data.user_len", user_len, expected)


def _check_rating_range(c: _Checker) -> None:
    value = c.get("data.rating_range")
    if not (
        isinstance(value, list | tuple)
        and len(value) == 2
        and all(map(_is_number, value))
        and value[0] < value[1]
    ):
        raise c.fail("data.rating_range", value, "two finite numbers (low, high) with low < high")
