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
from jaxrec.models.bert import COMPUTE_DTYPES
from jaxrec.optim import SCHEDULES

_MISSING = object()


def check_config(config: ml_collections.ConfigDict) -> None:
    """Raises ConfigError naming the first key whose value cannot work.

    The keys every run shares are checked here; each task checks its own
    (`Task.check_config`), with the bounds that its pretrained encoder sets.
    """
    from jaxrec import pretrained
    from jaxrec.convert import hf
    from jaxrec.tasks import TASKS, get_task

    c = Checker(config)
    task = get_task(c.choice("task", TASKS))
    _check_common(c)
    encoder = hf.read_config(pretrained.resolve(c.get("model.init_from")))
    c.integer("model.trainable_layers", low=-1, high=encoder.num_hidden_layers)
    _check_phases(c, task, encoder.num_hidden_layers)
    task.check_config(c, encoder)


class Checker:
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

    @staticmethod
    def is_number(value: Any) -> bool:
        """A finite int or float (not a bool)."""
        return _is_number(value)

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


def _check_common(c: Checker) -> None:
    c.integer("seed")
    _check_train(c)
    _check_mesh(c)
    c.string("model.init_from", empty=False)
    init_from = c.get("model.init_from")
    from jaxrec.pretrained import DEFAULT

    if init_from != DEFAULT:
        c.folder("model.init_from", init_from)
    c.choice("model.dtype", COMPUTE_DTYPES)
    c.boolean("model.remat")
    c.integer("model.trainable_layers", low=-1)
    if c.get("model.dropout", None) is not None:
        c.number("model.dropout", 0.0, 1.0, open_high=True)
    c.boolean("data.skip_bad_rows")
    c.string("data.cache_dir")
    if c.get("data.max_skipped_share", None) is not None:
        c.number("data.max_skipped_share", 0.0, 1.0)


def _check_train(c: Checker) -> None:
    c.integer("train.batch_size", low=1)
    c.integer("train.micro_batches", low=1)
    check_batch_split(c.config, shards=1, sharded_sizes=())
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


def _check_phases(c: Checker, task, num_layers: int) -> None:
    """train.phases: () or dicts of jaxrec.phases.PHASE_KEYS, for tasks that train in phases."""
    from jaxrec.phases import PHASE_KEYS

    phases = c.get("train.phases", ())
    if not isinstance(phases, list | tuple):
        raise c.fail("train.phases", phases, f"a list of dicts of {PHASE_KEYS}")
    if phases and not task.trains_in_phases:
        expected = f"() (config.task={task.name!r} trains one scope: model.trainable_layers)"
        raise c.fail("train.phases", phases, expected)
    for i, phase in enumerate(phases):
        key = f"train.phases[{i}]"
        if not hasattr(phase, "keys") or set(phase.keys()) != set(PHASE_KEYS):
            raise c.fail(key, phase, f"a dict of exactly {PHASE_KEYS}")
        k = phase["trainable_layers"]
        if isinstance(k, bool) or not isinstance(k, int) or not -1 <= k <= num_layers:
            raise c.fail(f"{key}.trainable_layers", k, f"an integer in [-1, {num_layers}]")
        for name, low in (("num_epochs", "> 0"), ("learning_rate", ">= 0")):
            value = phase[name]
            if not _is_number(value) or value < 0 or (value == 0 and low == "> 0"):
                raise c.fail(f"{key}.{name}", value, f"a number {low}")


def _check_mesh(c: Checker) -> None:
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


def check_batch_split(
    config: ml_collections.ConfigDict, *, shards: int, sharded_sizes: Sequence[str]
) -> None:
    """Batch shapes that split as they must: train.batch_size into train.micro_batches
    micro-batches of `shards` equal parts each (the mesh's batch shards), and every key of
    `sharded_sizes` (evaluation batch, distinct-text bucket) into `shards` parts."""
    batch, micro = int(config.train.batch_size), int(config.train.micro_batches)
    if micro <= 0 or batch <= 0 or batch % micro or (batch // micro) % shards:
        raise ConfigError(
            f"train.batch_size ({batch}) must be a positive multiple of train.micro_batches "
            f"({micro}) times the {shards} batch shards of the mesh"
        )
    for key in sharded_sizes:
        section, name = key.split(".")
        value = config[section][name]
        if value <= 0 or value % shards:
            raise ConfigError(
                f"{key} ({value}) must be a positive multiple of the {shards} batch shards "
                "of the mesh"
            )
