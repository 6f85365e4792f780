"""The task interface: what the trainer, `predict` and `export` call, in the order they call it.

A task (PLM-NR news recommendation, or rating/click/multi-label pairs) owns its data, its
model, its loss, its batches, its inference, the checks of its own config and its prediction
format. The trainer and the inference commands never ask which task they hold.

Training calls, in order:
  check_config           before anything is read, written or compiled
  read                   read and tokenize the data; `record()` is then saved in the workdir
  build                  the model around a pretrained BERT
  then for each training phase (train.phases; one unless configured):
    begin_phase          the encoder layers the phase trains; `trainable_filter` its scope
    start                compile inference, fill the frozen-layer caches (`extra`) and the
                         state the step carries (`carry`; a resumed run then restores it)
    step_loss, batches   each step: `step_loss(model, batch, extra, carry, rngs)` on
                         `batches(step)`; tasks that carry nothing implement `loss` only
    evaluate             the validation split: early stopping and the best checkpoint
  test                   once, at the end, with the best checkpoint
Inference (`jaxrec.predict`, `jaxrec.export`) calls `restore_record` instead of `read`, then
`build`, and `predict` or `export_fields`: only the workdir is needed.
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import jax
import ml_collections
from flax import nnx

from jaxrec import optim
from jaxrec.data.report import ReadReport
from jaxrec.data.tokenize import TextTokenizer
from jaxrec.models.bert import BertConfig, BertModel
from jaxrec.sharding import Feed

RECORD_FILE = "task.json"  # what `Task.record` returns, saved in the workdir


@dataclasses.dataclass(frozen=True)
class TaskEnv:
    """What every task is given: the tokenizer, where token caches go, the device feed, and
    the report that counts what reading skipped or defaulted."""

    tokenizer: TextTokenizer
    cache_dir: Path
    feed: Feed = dataclasses.field(default_factory=Feed)
    report: ReadReport = dataclasses.field(default_factory=ReadReport)


class Task(abc.ABC):
    """One recommendation task. Subclasses fill in each phase; see the module docstring."""

    name: ClassVar[str]  # the value of config.task
    # Config sizes that the mesh's batch axes must divide (besides train.batch_size).
    sharded_sizes: ClassVar[tuple[str, ...]]
    metric_names: tuple[str, ...]
    baseline_name: str
    has_test_labels: ClassVar[bool] = False  # whether `test` scores anything
    # Whether training can run in phases of different scopes (train.phases): `start` then
    # fills the caches that the phase's scope allows, `step_flops` counts what it trains.
    trains_in_phases: ClassVar[bool] = False
    samples_per_epoch: int = 0
    cached_layers: int = 0  # bottom encoder layers computed once per run, not every step
    extra: Any = None  # what `start` computed for the train step (the frozen-layer caches)
    # What the train step updates besides the parameters (a news-vector cache): device
    # arrays that `start` creates, every checkpoint saves and a resumed run restores.
    carry: Any = None

    def __init__(self, config: ml_collections.ConfigDict, env: TaskEnv) -> None:
        self.config, self.env = config, env
        # The encoder layers the current phase trains: -1 all, k the top k, 0 none.
        self.trainable_layers = int(config.model.trainable_layers)

    # -- Configuration ------------------------------------------------------------------------

    @staticmethod
    @abc.abstractmethod
    def check_config(c, encoder: BertConfig) -> None:
        """Checks this task's config keys (a `config_checks.Checker`) against the encoder."""

    # -- 1. Data --------------------------------------------------------------------------------

    @abc.abstractmethod
    def read(self) -> None:
        """Reads and tokenizes the training, validation and (labelled) test data.

        Everything that can be refused is refused here, before any model is compiled.
        """

    def record(self) -> dict[str, Any]:
        """JSON that inference needs besides the config and a checkpoint (ID vocabularies)."""
        return {}

    def restore_record(self, record: dict[str, Any]) -> None:  # noqa: B027 (optional hook)
        """Inference: takes back what `record` saved, instead of reading the training data."""

    # -- 2. Model ------------------------------------------------------------------------------

    @abc.abstractmethod
    def build(self, bert: BertModel) -> nnx.Module:
        """The task's model around `bert` (created under nnx.eval_shape by the trainer)."""

    def begin_phase(self, trainable_layers: int) -> None:
        """Before a training phase (and its `start`): the encoder layers it trains."""
        self.trainable_layers = trainable_layers

    def trainable_filter(self, num_layers: int):
        """An nnx filter for the parameters that the current phase updates."""
        return optim.trainable_filter(num_layers, self.trainable_layers)

    # -- 3. Start ------------------------------------------------------------------------------

    @abc.abstractmethod
    def start(self, graphdef: nnx.GraphDef, states: tuple[nnx.State, ...]) -> None:
        """Compiles inference and fills the frozen-layer caches (`extra`), once per phase."""

    # -- 4. Loss and 5. batches ------------------------------------------------------------------

    @abc.abstractmethod
    def loss(self, model: nnx.Module, batch: Any, extra: Any, rngs: nnx.Rngs) -> jax.Array:
        """The scalar training loss of one micro-batch (traced inside the jitted step)."""

    def step_loss(
        self, model: nnx.Module, batch: Any, extra: Any, carry: Any, rngs: nnx.Rngs
    ) -> tuple[jax.Array, Any]:
        """The loss of one micro-batch and the carry after it (what the trainer calls)."""
        return self.loss(model, batch, extra, rngs), carry

    @abc.abstractmethod
    def batches(self, start_step: int) -> Iterator[Any]:
        """Endless training batches (this process's part), starting at batch `start_step`
        (called after `carry` holds the state of that step)."""

    @abc.abstractmethod
    def step_flops(self, local_batch: Any) -> float:
        """Model FLOPs of one step: only the layers that run (jaxrec/flops.py)."""

    # -- 6. Validation and 7. test -------------------------------------------------------------

    @abc.abstractmethod
    def higher_is_better(self, metric: str) -> bool: ...

    @abc.abstractmethod
    def evaluate(self, states: tuple[nnx.State, ...]) -> dict[str, float]:
        """Metrics on the validation split: what early stopping and model selection see."""

    def test(self, states: tuple[nnx.State, ...]) -> dict[str, float] | None:
        """Metrics on the test split, scored once with the chosen model (`has_test_labels`)."""
        return None

    @abc.abstractmethod
    def baseline(self) -> dict[str, dict[str, float] | None]:
        """A simple baseline's metrics on the same rows: {"dev": ..., "test": ... or None}."""

    def summary(self) -> dict[str, Any]:
        """What else the run's metrics.json should say about the data (task-specific)."""
        return {}

    # -- 8. Predict and 9. export --------------------------------------------------------------

    @classmethod  # noqa: B027 (an optional hook: most tasks accept every request)
    def check_request(cls, split: str | None, data_dir: str | None, leaderboard: bool) -> None:
        """Refuses (ConfigError naming the flag) a prediction request the task cannot serve:
        a split it does not have, another data folder, the MIND leaderboard's zip."""

    @abc.abstractmethod
    def predict(
        self,
        graphdef: nnx.GraphDef,
        states: tuple[nnx.State, ...],
        output: Path,
        *,
        split: str | None,
        data_dir: str | None,
        batch_size: int,
    ) -> int:
        """Writes the task's prediction file for a split; returns the number of lines."""

    @abc.abstractmethod
    def export_fields(self) -> dict[str, Any]:
        """What rebuilding the model in PyTorch needs besides its weights (jaxrec_heads.json)."""
