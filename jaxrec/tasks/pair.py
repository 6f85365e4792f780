"""Rating regression, click prediction and multi-label tagging of (user, item) pairs.

The data: a PairData (MovieLens, or the generic interactions format) whose user and item
texts are tokenized once each into tables; interactions become integer arrays (table rows,
ID-embedding indices, targets). Three splits: `train`; `dev`, the validation split that early
stopping and model selection look at (carved from training by `data.dev_fraction`, seeded,
unless the data brings its own); and `test`, scored once at the end with the chosen model.
Training batches carry each distinct user and item text of a micro-batch once; with the
bottom layers frozen, two towers compute those layers once per user and item text per run.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from jaxrec import flops, optim, pair_metrics
from jaxrec.data.pair_data import load_pair_data
from jaxrec.data.pairs import Interactions
from jaxrec.data.pipeline import pair_batches
from jaxrec.data.text_table import TextTable, build_text_table
from jaxrec.errors import CheckpointError, ConfigError, DataError
from jaxrec.models.bert import BertConfig, BertModel
from jaxrec.models.lora import add_lora, lora_trainable_filter
from jaxrec.models.pair import PairRecommender
from jaxrec.tasks.base import RECORD_FILE, Task
from jaxrec.tasks.pair_inference import PairInference

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class PairLog:
    """One split's interactions as integers, in file order."""

    user_rows: np.ndarray  # [n] rows of the user text table
    item_rows: np.ndarray  # [n] rows of the item text table
    user_id: np.ndarray  # [n] ID-embedding index; 0 for IDs unseen in training
    item_id: np.ndarray  # [n]
    targets: np.ndarray  # [n, K] float32

    def arrays(self) -> dict[str, np.ndarray]:
        return dataclasses.asdict(self)

    def __len__(self) -> int:
        return len(self.targets)


# How a rating head's output becomes a rating: used as is, clipped to the range at inference.
RATING_OUTPUT = "clipped"


@dataclasses.dataclass(frozen=True)
class Vocab:
    """What the model's shape and inference depend on, saved in the workdir (task.json).

    `users[i]` and `items[i]` own ID-embedding row i + 1 (row 0: IDs unseen in training).
    """

    task: str  # rating | click | multilabel
    users: list[str]
    items: list[str]
    label_names: list[str]
    rating_range: list[float] | None
    target_mean: list[float]  # the training mean of each output: where the bias starts

    @property
    def outputs(self) -> int:
        return len(self.label_names) if self.task == "multilabel" else 1

    def rows(self) -> dict[str, dict[str, int]]:
        return {
            "users": {u: i + 1 for i, u in enumerate(self.users)},
            "items": {v: i + 1 for i, v in enumerate(self.items)},
        }


def pair_log(split: Interactions, users: TextTable, items: TextTable, ids: dict) -> PairLog:
    targets = split.targets.astype(np.float32)
    return PairLog(
        user_rows=users.rows(split.users),
        item_rows=items.rows(split.items),
        user_id=np.fromiter((ids["users"].get(u, 0) for u in split.users), np.int32, len(split)),
        item_id=np.fromiter((ids["items"].get(i, 0) for i in split.items), np.int32, len(split)),
        targets=targets.reshape(len(split), -1),
    )


def pair_loss(out: jax.Array, targets: jax.Array, task: str) -> jax.Array:
    """MSE of ratings (the output itself; inference clips it to the range); sigmoid
    cross-entropy of clicks and of each label."""
    if task == "rating":
        return jnp.mean((out - targets) ** 2)
    return jnp.mean(optax.sigmoid_binary_cross_entropy(out, targets))


def task_metrics(task: str, targets: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    if task == "rating":
        return pair_metrics.rating_metrics(targets[:, 0], pred[:, 0])
    if task == "click":
        return pair_metrics.click_metrics(targets[:, 0], pred[:, 0])
    return pair_metrics.multilabel_metrics(targets, pred)


def baseline_predictions(task: str, rating_range, train: PairLog, test: PairLog) -> np.ndarray:
    """What the text model has to beat, [n_test, K].

    Ratings: global mean plus damped user and item biases (alternating least squares, the
    classic baseline predictor). Clicks and labels: each item's smoothed training rate.
    """
    y = train.targets
    if task == "rating":
        mu, damp = float(y.mean()), 10.0
        bu = np.zeros(train.user_id.max(initial=0) + 1)
        bi = np.zeros(train.item_id.max(initial=0) + 1)
        for _ in range(10):
            r = y[:, 0] - mu - bu[train.user_id]
            bi = np.bincount(train.item_id, r, len(bi)) / (
                np.bincount(train.item_id, None, len(bi)) + damp
            )
            r = y[:, 0] - mu - bi[train.item_id]
            bu = np.bincount(train.user_id, r, len(bu)) / (
                np.bincount(train.user_id, None, len(bu)) + damp
            )
        bu[0] = bi[0] = 0.0  # unseen IDs get no bias
        pred = mu + bu[test.user_id] + bi[test.item_id]
        lo, hi = rating_range
        return np.clip(pred, lo, hi)[:, None]
    prior, damp = y.mean(axis=0), 5.0
    counts = np.zeros((train.item_id.max(initial=0) + 1, y.shape[1]))
    np.add.at(counts, train.item_id, y)
    seen = np.bincount(train.item_id, None, len(counts))[:, None]
    rates = (counts + damp * prior) / (seen + damp)
    rates[0] = prior
    return rates[test.item_id]


class PairTask(Task):
    """A head on the encoder for (user, item) pairs: rating, click or multi-label."""

    name = "pair"
    sharded_sizes = ("data.text_bucket", "train.eval_batch_size")
    has_test_labels = True
    trains_in_phases = True

    @staticmethod
    def check_config(c, encoder: BertConfig) -> None:
        from jaxrec.data.movielens import SPLITS_100K
        from jaxrec.data.pair_data import BUNDLED, FORMATS
        from jaxrec.data.pairs import TASKS as PAIR_TASKS
        from jaxrec.data.pairs import UNKNOWN_ID_POLICIES
        from jaxrec.models.lora import TARGETS
        from jaxrec.models.pair import ARCHITECTURES, HEADS, POOLINGS

        fmt = c.choice("data.format", FORMATS)
        task = c.choice("data.task", PAIR_TASKS)
        if fmt != "interactions" and task != "rating":
            raise c.fail("data.task", task, f"'rating' (data.format={fmt!r} has ratings only)")
        c.choice("train.early_stopping_metric", pair_metrics.PAIR_METRICS[task])
        architecture = c.choice("model.architecture", ARCHITECTURES)
        head = c.choice("model.head", HEADS)
        c.choice("model.pooling", POOLINGS)
        if head == "dot" and (architecture != "two_tower" or task == "multilabel"):
            expected = "'mlp' ('dot' needs model.architecture='two_tower' and one output)"
            raise c.fail("model.head", head, expected)
        use_text, use_ids = c.boolean("model.use_text"), c.boolean("model.use_ids")
        if not (use_text or use_ids):
            raise c.fail("model.use_text", False, "True, or model.use_ids=True (IDs alone)")
        c.integer("model.id_dim", low=1)
        c.number("model.id_l2", 0.0)
        c.number("model.id_bias_l2", 0.0)
        c.number("model.head_dropout", 0.0, 1.0, open_high=True)
        c.integer("model.mlp_hidden", low=1)
        if c.integer("model.lora_rank", low=0):
            c.number("model.lora_alpha", 0.0, open_low=True)
            c.strings("model.lora_targets", tuple(TARGETS))
            if c.get("train.phases", ()):
                expected = "() (LoRA trains its adapters and the head in one phase)"
                raise c.fail("train.phases", c.get("train.phases"), expected)
        positions = encoder.max_position_embeddings
        user_len = c.integer("data.user_len", low=2, high=positions)
        item_len = c.integer("data.item_len", low=2, high=positions)
        if architecture == "cross" and user_len + item_len - 1 > positions:
            expected = (
                f"data.user_len + data.item_len - 1 <= {positions} (the encoder's positions) "
                "for model.architecture='cross'"
            )
            raise c.fail("data.user_len", user_len, expected)
        c.integer("data.text_bucket", low=1)
        c.choice("data.unknown_ids", UNKNOWN_ID_POLICIES)
        c.number("data.dev_fraction", 0.0, 1.0, open_low=True, open_high=True)
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
            value = c.get("data.rating_range")
            if not (
                isinstance(value, list | tuple)
                and len(value) == 2
                and all(map(c.is_number, value))
                and value[0] < value[1]
            ):
                expected = "two finite numbers (low, high) with low < high"
                raise c.fail("data.rating_range", value, expected)
            c.strings("data.user_columns")
            c.strings("data.item_columns")

    # -- 1. Data --------------------------------------------------------------------------------

    def read(self) -> None:
        data = self._read_data(self.config.data)
        d = self.config.data
        self.vocab = Vocab(
            task=data.task,
            users=list(dict.fromkeys(data.train.users)),
            items=list(dict.fromkeys(data.train.items)),
            label_names=list(data.label_names),
            rating_range=list(data.rating_range) if data.rating_range else None,
            target_mean=[float(x) for x in np.atleast_1d(data.train.targets.mean(axis=0))],
        )
        ids = self.vocab.rows()
        self.train, self.dev, self.test_log = (
            pair_log(split, self.users, self.items, ids)
            for split in (data.train, data.dev, data.test)
        )
        self.samples_per_epoch = len(self.train)
        batch = int(self.config.train.batch_size)
        if len(self.train) < batch:  # before any model is built
            raise DataError(
                f"{len(self.train)} training pairs, fewer than one batch "
                f"(train.batch_size={batch})",
                path=data.train.source,
            )
        log.info(
            "%s: %d train, %d dev (%s) and %d test pairs; %d users, %d items",
            data.task,
            len(self.train),
            len(self.dev),
            data.dev.source
            if data.dev.source != data.train.source
            else f"{d.dev_fraction:g} of train",
            len(self.test_log),
            len(self.users) - 1,
            len(self.items) - 1,
        )

    def _read_data(self, data_config):
        """Reads the pair data and tokenizes the user and item tables (cached on disk)."""
        report, tokenizer, cache = self.env.report, self.env.tokenizer, self.env.cache_dir
        data = load_pair_data(data_config, report)
        report.check_share(data_config.get("max_skipped_share", 1.0))  # older workdirs lack it
        self.users = build_text_table(data.user_text, tokenizer, data_config.user_len, cache)
        self.items = build_text_table(data.item_text, tokenizer, data_config.item_len, cache)
        return data

    def record(self) -> dict[str, Any]:
        return {"vocab": dataclasses.asdict(self.vocab), "rating_output": RATING_OUTPUT}

    def restore_record(self, record: dict[str, Any]) -> None:
        if "vocab" not in record:
            raise CheckpointError(
                f"the workdir's {RECORD_FILE} holds no ID vocabularies: retrain to predict"
            )
        vocab = Vocab(**record["vocab"])
        if vocab.task == "rating" and record.get("rating_output") != RATING_OUTPUT:
            # Earlier rating heads squashed their output into the range with a sigmoid; read
            # as clipped ratings, their predictions would be silently wrong.
            raise CheckpointError(
                f"the workdir's {RECORD_FILE} is from a rating model whose output was squashed "
                "by a sigmoid (an earlier jaxrec): retrain it to predict or export"
            )
        self.vocab = vocab

    @property
    def metric_names(self) -> tuple[str, ...]:
        return pair_metrics.PAIR_METRICS[self.vocab.task]

    @property
    def baseline_name(self) -> str:
        return "user+item bias baseline" if self.vocab.task == "rating" else "item rate baseline"

    # -- 2. Model ------------------------------------------------------------------------------

    def build(self, bert: BertModel) -> PairRecommender:
        m, v = self.config.model, self.vocab
        self.bert_config = bert.config
        rngs = nnx.Rngs(self.config.seed)
        model = PairRecommender(
            bert,
            outputs=v.outputs,
            architecture=m.architecture,
            head=m.head,
            pooling=m.pooling,
            use_text=self.use_text,
            num_users=len(v.users) if m.use_ids else 0,
            num_items=len(v.items) if m.use_ids else 0,
            id_dim=m.id_dim,
            mlp_hidden=m.mlp_hidden,
            dropout=m.get("head_dropout", bert.config.hidden_dropout_prob),  # older workdirs
            dtype=jnp.dtype(m.dtype),
            rngs=rngs,
        )
        model.global_bias[...] = self._initial_bias()
        if m.lora_rank:
            add_lora(bert, rank=m.lora_rank, alpha=m.lora_alpha, targets=m.lora_targets, rngs=rngs)
        return model

    @property
    def use_text(self) -> bool:
        return bool(self.config.model.get("use_text", True))  # older workdirs lack it

    def _initial_bias(self) -> np.ndarray:
        """Outputs start at the training mean (a rating, or the click and label rates)."""
        mean = np.asarray(self.vocab.target_mean, np.float64)
        if self.vocab.task == "rating":
            return mean.astype(np.float32)
        mean = np.clip(mean, 1e-3, 1 - 1e-3)
        return np.log(mean / (1 - mean)).astype(np.float32)

    def trainable_filter(self, num_layers: int):
        if not self.use_text:  # the encoder never runs: nothing of it to train or decay
            return optim.trainable_filter(num_layers, 0)
        if self.config.model.lora_rank:
            return lora_trainable_filter("bert")
        return super().trainable_filter(num_layers)

    # -- 3. Start ------------------------------------------------------------------------------

    def start(self, graphdef: nnx.GraphDef, states) -> None:
        """Compiles inference; with frozen bottom layers, runs them once per user and item.

        The phase's scope decides what is cached: with the whole encoder frozen, every
        layer, so a step is pooling and the head."""
        self.infer = self._inference(graphdef)
        m = self.config.model
        self.cached_layers, self.extra = 0, None
        if m.architecture == "two_tower" and not m.lora_rank and self.use_text:
            layers = self.bert_config.num_hidden_layers
            self.cached_layers = optim.frozen_bottom_layers(m, layers, self.trainable_layers)
        if not self.cached_layers:
            return
        tick, bs = time.time(), self.config.train.eval_batch_size
        self.extra = {
            name: self.infer.lower_table(states, table, self.cached_layers, bs)
            for name, table in (("users", self.users), ("items", self.items))
        }
        log.info(
            "frozen layers 0-%d computed once per user and item text in %.1f s",
            self.cached_layers - 1,
            time.time() - tick,
        )

    def _inference(self, graphdef: nnx.GraphDef) -> PairInference:
        v = self.vocab
        return PairInference(
            graphdef,
            self.env.feed,
            self.config.model.architecture,
            v.task,
            v.rating_range,
            use_text=self.use_text,
        )

    # -- 4. Loss and 5. batches ------------------------------------------------------------------

    def loss(self, model: PairRecommender, batch, extra, rngs) -> jax.Array:
        """The task's loss plus the L2 penalty of the factors and ID biases each pair uses
        (`model.id_l2`, `model.id_bias_l2`)."""
        m = self.config.model
        out, penalty = model.forward(
            batch, lower=extra, start=self.cached_layers, deterministic=False, rngs=rngs
        )
        loss = pair_loss(out, batch["targets"], self.vocab.task)
        return loss + m.id_l2 * penalty["factors"] + m.id_bias_l2 * penalty["biases"]

    def batches(self, start_step: int):
        c = self.config
        return pair_batches(
            self.train.arrays(),
            self.users.tokens,
            self.items.tokens,
            batch_size=c.train.batch_size,
            seed=c.seed,
            bucket=c.data.text_bucket,
            micro_batches=c.train.micro_batches,
            block=self.env.feed.block,
            start_batch=start_step,
        )

    def step_flops(self, local_batch) -> float:
        bert, m = self.bert_config, self.config.model
        users, items = local_batch["users"]["input_ids"], local_batch["items"]["input_ids"]
        scale = self.env.feed.scale
        if m.architecture == "cross":
            pairs = local_batch["targets"].shape[0] * local_batch["targets"].shape[1] * scale
            encoded = [(pairs, users.shape[-1] + items.shape[-1] - 1)]
        else:
            encoded = [
                (users.shape[0] * users.shape[1] * scale, users.shape[-1]),
                (items.shape[0] * items.shape[1] * scale, items.shape[-1]),
            ]
        if not self.use_text:
            return 0.0
        layers, k = bert.num_hidden_layers, self.trainable_layers
        return flops.encoder_step_flops(
            bert,
            encoded,
            computed_layers=layers - self.cached_layers,
            trained_layers=layers if k < 0 else k,
            lora=bool(m.lora_rank),
        )

    # -- 6. Validation and 7. test -------------------------------------------------------------

    def higher_is_better(self, metric: str) -> bool:
        return pair_metrics.HIGHER_IS_BETTER[metric]

    def predictions(self, states, split: PairLog) -> np.ndarray:
        """[n, K] predictions for a split's pairs, in file order."""
        bs = self.config.train.eval_batch_size
        return self.infer.predict(
            states, self.users, self.items, split.arrays(), bs, self.extra, self.cached_layers
        )

    def _metrics(self, states, split: PairLog) -> dict[str, float]:
        pred = self.predictions(states, split)
        return task_metrics(self.vocab.task, split.targets, pred) | {"num_pairs": len(pred)}

    def evaluate(self, states) -> dict[str, float]:
        return self._metrics(states, self.dev)

    def test(self, states) -> dict[str, float]:
        return self._metrics(states, self.test_log)

    def baseline(self) -> dict[str, dict[str, float]]:
        v = self.vocab
        return {
            name: task_metrics(
                v.task,
                split.targets,
                baseline_predictions(v.task, v.rating_range, self.train, split),
            )
            for name, split in (("dev", self.dev), ("test", self.test_log))
        }

    # -- 8. Predict and 9. export --------------------------------------------------------------

    @classmethod
    def check_request(cls, split: str | None, data_dir: str | None, leaderboard: bool) -> None:
        if split not in (None, "test"):
            raise ConfigError(
                f"--split={split}: a pair workdir predicts its config's test file (data.path), "
                "it has no other split"
            )
        if data_dir is not None:
            raise ConfigError(
                "--data_dir is for news workdirs; a pair workdir reads the data its config names"
            )
        if leaderboard:
            raise ConfigError("--zip: only news predictions go to the MIND leaderboard")

    def predict(self, graphdef, states, output: Path, *, split, data_dir, batch_size) -> int:
        """One line per interaction of the test file, in its order:
        `user_id<TAB>item_id<TAB>prediction`, the rating, the click probability, or
        `label:probability` pairs joined by commas."""
        data = self._read_data(self.config.data)
        test = pair_log(data.test, self.users, self.items, self.vocab.rows())
        infer = self._inference(graphdef)
        pred = infer.predict(states, self.users, self.items, test.arrays(), batch_size)
        if self.vocab.task == "multilabel":
            names = self.vocab.label_names
            values = [
                ",".join(f"{name}:{p:.6f}" for name, p in zip(names, row, strict=True))
                for row in pred
            ]
        else:
            values = [f"{p:.6f}" for p in pred[:, 0]]
        tmp = Path(f"{output}.tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            for user, item, value in zip(data.test.users, data.test.items, values, strict=True):
                f.write(f"{user}\t{item}\t{value}\n")
        os.replace(tmp, output)
        return len(values)

    def export_fields(self) -> dict[str, Any]:
        c, v = self.config, self.vocab
        return {
            "pair_task": v.task,
            "architecture": c.model.architecture,
            "head": c.model.head,
            "pooling": c.model.pooling,
            "use_text": self.use_text,
            "user_len": c.data.user_len,
            "item_len": c.data.item_len,
            "rating_range": v.rating_range,
            "label_names": v.label_names,
            # ID-embedding rows: row i + 1 is the i-th ID listed; row 0 is for unseen IDs.
            "user_ids": v.users if c.model.use_ids else [],
            "item_ids": v.items if c.model.use_ids else [],
        }
