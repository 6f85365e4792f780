"""News training throughput: jaxrec's training step against a straightforward PyTorch PLM-NR.

Both sides train PLM-NR (MiniLM-L6 news encoder, additive attention pooling and user encoder,
softmax over 1 clicked + 4 non-clicked) on the bundled MIND sample with the same settings:
batch 32, history 50, titles of 24 tokens, AdamW with clipping, the same samples in the same
order (epoch 0 of `train_samples`). One call is one training step, including getting its
batch; the sides alternate step by step.

jaxrec runs exactly what `jaxrec.train` runs: the news task (`NewsTask`: the split read and
tokenized once, `news_loss`, batches from the tf.data pipeline `train_batches`), the model
created into its shardings on a 1-device mesh, `make_train_step`; each distinct news item of a
batch is encoded once. The PyTorch side
(`torch_plmnr.py`) encodes every history and candidate title of every sample.

Two configurations:
  default  jaxrec's default: the top layer trained, the frozen layers below computed once per
           news item (the cache); PyTorch trains the same top layer and recomputes the frozen
           layers (no grad) every step.
  all      every layer trained, no cache, on both sides.

Run: .venv/bin/python benchmarks/news_throughput.py [--repeats=5] [--configs=default,all]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import common  # noqa: E402  (sets the import path before jaxrec)
import jax  # noqa: E402
import torch  # noqa: E402
import torch_plmnr  # noqa: E402
from flax import nnx  # noqa: E402

from configs import news as news_config  # noqa: E402
from jaxrec import pretrained, sharding, train  # noqa: E402
from jaxrec.convert import hf  # noqa: E402
from jaxrec.data.news_data import NewsSplit  # noqa: E402
from jaxrec.data.pipeline import train_samples  # noqa: E402
from jaxrec.data.tokenize import TextTokenizer  # noqa: E402
from jaxrec.models.bert import BertConfig  # noqa: E402
from jaxrec.tasks.base import TaskEnv  # noqa: E402
from jaxrec.tasks.news import NewsTask  # noqa: E402

CONFIGS = {"default": 1, "all": -1}  # name -> model.trainable_layers


def make_config(trainable_layers: int):
    config = news_config.get_config()
    config.model.trainable_layers = trainable_layers
    config.model.cache_frozen_layers = True  # used only when some layers are frozen
    return config


def make_task(config, mesh, cache_dir: str) -> tuple[NewsTask, Path, BertConfig]:
    """The news task as `jaxrec.train` builds it: data read and tokenized once."""
    folder = pretrained.resolve(config.model.init_from)
    bert_config = hf.read_config(folder)
    env = TaskEnv(
        TextTokenizer(folder, bert_config.vocab_size), Path(cache_dir), sharding.Feed(mesh)
    )
    task = NewsTask(config, env)
    task.read()
    return task, folder, bert_config


def jaxrec_trainer(config, mesh, task: NewsTask, folder: Path, bert_config: BertConfig):
    """(one training step, seconds spent on `task.start`: the frozen-layer caches).

    The same calls, in the same order, as `jaxrec.train.train_and_evaluate`.
    """
    model = train.create_model(config, bert_config, folder, mesh, task.build)
    is_trainable = task.trainable_filter(bert_config.num_hidden_layers)
    graphdef, trainable, frozen = nnx.split(model, is_trainable, ...)
    tx, _, opt_state, shardings = train.place_optimizer(
        config, trainable, frozen, mesh, config.train.num_steps
    )
    tick = time.perf_counter()
    task.start(graphdef, (trainable, frozen))
    start_seconds = time.perf_counter() - tick
    step = train.make_train_step(graphdef, tx, task.loss, shardings)
    batches = task.batches(0)
    state = {"trainable": trainable, "opt": opt_state, "i": 0}
    rng = jax.random.key(config.seed)

    def run() -> float:
        state["i"] += 1
        batch = task.env.feed.put_local(next(batches), axis=1)
        state["trainable"], state["opt"], metrics = step(
            state["trainable"],
            frozen,
            state["opt"],
            batch,
            jax.random.fold_in(rng, state["i"]),
            task.extra,
        )
        return float(metrics["loss"])

    return run, start_seconds


def torch_trainer(config, folder: Path, data: NewsSplit):
    model = torch_plmnr.PLMNR(
        str(folder), config.model.trainable_layers, config.model.attention_hidden
    )
    model.train()
    t = config.train
    step = torch_plmnr.make_step(model, t.learning_rate, t.weight_decay, t.grad_clip)
    samples = train_samples(data.log, config.data.npratio, config.seed)
    batches = torch_plmnr.sample_batches(data.table.tokens, samples, t.batch_size)
    return lambda: step(next(batches))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--configs", default="default,all")
    p.add_argument("--threads", type=int, default=2)
    common.add_malloc_flag(p)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    results = []
    with tempfile.TemporaryDirectory() as cache_dir:
        for name in args.configs.split(","):
            config = make_config(CONFIGS[name])
            mesh = sharding.make_mesh((1, 1, 1))
            with sharding.activate(mesh, sharding.DEFAULT_RULES):
                task, folder, bert_config = make_task(config, mesh, cache_dir)
                run_jax, cache_s = jaxrec_trainer(config, mesh, task, folder, bert_config)
                run_torch = torch_trainer(config, folder, task.train)
                times = common.alternate(
                    {"PyTorch PLM-NR": run_torch, "jaxrec": run_jax}, args.repeats, warmup=1
                )
            results.append((name, config, times, cache_s))
    print(f"\n{common.machine()}")
    for name, config, times, cache_s in results:
        c = config
        print(
            f"\nconfig '{name}' (model.trainable_layers={c.model.trainable_layers}, "
            f"cache_frozen_layers={c.model.cache_frozen_layers}): batch {c.train.batch_size}, "
            f"history {c.data.history_len}, title {c.data.title_len} tokens, "
            f"npratio {c.data.npratio}, {args.repeats} alternating steps each"
        )
        if cache_s:
            print(f"jaxrec frozen-layer caches (train and dev news), once per run: {cache_s:.1f} s")
        print(
            common.table(
                times,
                "PyTorch PLM-NR",
                unit="s",
                scale=1.0,
                rate=("samples/s", c.train.batch_size),
            )
        )


if __name__ == "__main__":
    main()
