"""A trained workdir restored for inference: its config, tokenizer, model and parameters."""

from __future__ import annotations

from pathlib import Path

import jax.numpy as jnp
from flax import nnx

from jaxrec import checkpointing, evaluate, train, workdirs
from jaxrec.convert import hf
from jaxrec.data.report import ReadReport
from jaxrec.data.tokenize import TextTokenizer
from jaxrec.models.bert import BertModel
from jaxrec.sharding import Feed
from jaxrec.tasks.news import build_model
from jaxrec.tasks.pair import PairTask


def load_trained(workdir: str | Path, step: int | str | None = None):
    """(config, tokenizer, inference, parameter states, step) of a training workdir.

    `inference` is a NewsInference for the news task; for pair tasks it is the PairTask
    itself (its ID embeddings index the training data, which it reads again), started.
    `step`: an integer, "latest", or None for the best checkpoint by the dev metric.
    """
    workdir = Path(workdir)
    config = workdirs.read_config(workdir)
    encoder_dir = workdir / train.ENCODER_DIR
    bert_config = hf.read_config(encoder_dir)
    tokenizer = TextTokenizer(encoder_dir, bert_config.vocab_size)

    task = None
    if config.task == "pair":
        task = PairTask(
            config,
            tokenizer=tokenizer,
            cache_dir=workdir / "cache",
            feed=Feed(),
            report=ReadReport(),
        )

    def build():
        bert = BertModel(bert_config, dtype=jnp.dtype(config.model.dtype), rngs=nnx.Rngs(0))
        return task.build(bert) if task else build_model(config, bert)

    graphdef, abstract, rest = nnx.split(nnx.eval_shape(build), nnx.Param, ...)
    params, step = checkpointing.restore_params(workdir, abstract, step)
    if task:
        task.start(graphdef, (params, rest))
        return config, tokenizer, task, (params, rest), step
    return config, tokenizer, evaluate.NewsInference(graphdef), (params, rest), step
