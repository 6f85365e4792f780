"""A trained workdir restored for inference: its config, task, model graph and parameters.

Only the workdir is read: config.json, the encoder's config and tokenizer (encoder/), what
the task recorded for inference (task.json: the pair tasks' ID vocabularies) and a checkpoint.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import jax.numpy as jnp
import ml_collections
from flax import nnx

from jaxrec import checkpointing, pretrained, workdirs
from jaxrec.convert import hf
from jaxrec.data.tokenize import TextTokenizer
from jaxrec.errors import CheckpointError
from jaxrec.models.bert import BertModel
from jaxrec.tasks import get_task
from jaxrec.tasks.base import RECORD_FILE, Task, TaskEnv


@dataclasses.dataclass(frozen=True)
class Trained:
    """What inference needs: the task (its record restored), the graph and the parameters."""

    config: ml_collections.ConfigDict
    task: Task
    graphdef: nnx.GraphDef
    states: tuple[nnx.State, nnx.State]  # (parameters, the rest)
    step: int

    @property
    def model(self) -> nnx.Module:
        return nnx.merge(self.graphdef, *self.states)


def load_trained(workdir: str | Path, step: int | str | None = None) -> Trained:
    """The workdir's model at `step`: an integer, "latest", or None for the best by the dev
    metric."""
    workdir = Path(workdir)
    config = workdirs.read_config(workdir)
    encoder_dir = workdir / pretrained.ENCODER_DIR
    bert_config = hf.read_config(encoder_dir)
    env = TaskEnv(TextTokenizer(encoder_dir, bert_config.vocab_size), workdir / "cache")
    task = get_task(config.task)(config, env)
    record_path = workdir / RECORD_FILE
    task.restore_record(_read_json(record_path, "task record") if record_path.exists() else {})

    def build():
        bert = BertModel(bert_config, dtype=jnp.dtype(config.model.dtype), rngs=nnx.Rngs(0))
        return task.build(bert)

    graphdef, abstract, rest = nnx.split(nnx.eval_shape(build), nnx.Param, ...)
    params, step = checkpointing.restore_params(workdir, abstract, step)
    return Trained(config, task, graphdef, (params, rest), step)


def _read_json(path: Path, what: str) -> dict[str, Any]:
    if not path.exists():
        raise CheckpointError(f"{path}: not a training workdir (no {path.name})")
    try:
        value = json.loads(path.read_text())
    except ValueError as e:
        raise CheckpointError(f"{path}: not a readable {what} ({e})") from None
    if not isinstance(value, dict):
        raise CheckpointError(f"{path}: not a readable {what} (not a JSON object)")
    return value
