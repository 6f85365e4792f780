"""News training throughput: jaxrec's training step against a straightforward PyTorch PLM-NR.

Both sides train PLM-NR (MiniLM-L6 news encoder, additive attention pooling and user encoder,
softmax over 1 clicked + 4 non-clicked) on a MIND-format folder (by default the bundled
sample; `--data` for MIND-like data from `scripts/make_mind_like.py`) with the same settings:
`configs/news.py`'s batch, history and token length, AdamW with clipping, the same samples in
the same order (epoch 0 of `train_samples`). One call is one training step, including getting
its batch; the sides alternate step by step.

jaxrec runs exactly what `jaxrec.train` runs: the news task (`NewsTask`: the split read and
tokenized once, its loss, its batches, its caches), the model created into its shardings on
a 1-device mesh, `make_train_step`. The PyTorch side (`torch_plmnr.py`) encodes every history
and candidate text of every sample, batched and trimmed to the longest text.

Configurations (`--configs`):
  default    configs/news.py as it is (the speed-ups it turns on, and only its top layers
             trained, the frozen ones below computed once per news item); PyTorch trains the
             same layers and recomputes the frozen ones (no grad) every step.
  all        every layer trained, on both sides, beside jaxrec without its speed-ups
             (no length groups, no history cache): what each one buys.

Run: .venv/bin/python benchmarks/news_throughput.py [--repeats=5] [--configs=default,all]
     [--data=DIR] [--history-cache=N]
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


def make_config(data: str | None = None, **overrides):
    """configs/news.py with dotted-key overrides (`model__trainable_layers=-1`)."""
    config = news_config.get_config()
    if data:
        config.data.dir = data
    for key, value in overrides.items():
        section, name = key.split("__")
        config[section][name] = value
    return config


def sides(name: str, data: str | None, history_cache: int | None) -> dict[str, dict]:
    """The jaxrec configurations timed against PyTorch for one `--configs` entry."""
    cache = {} if history_cache is None else {"train__history_cache": history_cache}
    if name == "default":
        return {"jaxrec": make_config(data, **cache)}
    if name == "all":
        plain = {"data__length_groups": False, "train__history_cache": 0}
        fast = {"data__length_groups": True, "train__history_cache": history_cache or 50}
        return {
            "jaxrec, no speed-ups": make_config(data, model__trainable_layers=-1, **plain),
            "jaxrec": make_config(data, model__trainable_layers=-1, **fast),
        }
    raise ValueError(f"--configs takes default and all, not {name!r}")


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
    """(one training step, seconds spent on `task.start`: the frozen-layer and vector caches).

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
    step = train.make_train_step(graphdef, tx, task.step_loss, shardings)
    batches = task.batches(0)
    state = {"trainable": trainable, "opt": opt_state, "carry": task.carry, "i": 0}
    rng = jax.random.key(config.seed)

    def run() -> float:
        state["i"] += 1
        batch = task.env.feed.put_local(next(batches), axis=1)
        state["trainable"], state["opt"], state["carry"], metrics = step(
            state["trainable"],
            frozen,
            state["opt"],
            state["carry"],
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
    p.add_argument("--data", default=None, help="MIND-format folder (default: the sample)")
    p.add_argument("--history-cache", type=int, default=None, help="train.history_cache")
    p.add_argument("--threads", type=int, default=2)
    common.add_malloc_flag(p)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    results = []
    with tempfile.TemporaryDirectory() as cache_dir:
        for name in args.configs.split(","):
            configs = sides(name, args.data, args.history_cache)
            mesh = sharding.make_mesh((1, 1, 1))
            runners, start_seconds = {}, {}
            with sharding.activate(mesh, sharding.DEFAULT_RULES):
                for label, config in configs.items():
                    task, folder, bert_config = make_task(config, mesh, cache_dir)
                    runners[label], start_seconds[label] = jaxrec_trainer(
                        config, mesh, task, folder, bert_config
                    )
                    layout = task.layout
                runners = {"PyTorch PLM-NR": torch_trainer(config, folder, task.train)} | runners
                times = common.alternate(runners, args.repeats, warmup=1)
            results.append((name, configs, times, start_seconds, layout))
    print(f"\n{common.machine()}\ndata: {args.data or 'the bundled sample'}")
    for name, configs, times, start_seconds, layout in results:
        c = list(configs.values())[-1]
        print(
            f"\nconfig '{name}' (model.trainable_layers={c.model.trainable_layers}, "
            f"news_fields={tuple(c.data.news_fields)}): batch {c.train.batch_size}, "
            f"history {c.data.history_len}, {c.data.title_len} tokens, "
            f"npratio {c.data.npratio}, {args.repeats} alternating steps each"
        )
        for label, config in configs.items():
            print(
                f"{label}: length_groups={config.data.length_groups}, history_cache="
                f"{config.train.history_cache}; task.start (caches) {start_seconds[label]:.1f} s"
            )
        print(f"jaxrec's layout: widths {layout.widths}, rows {layout.capacities}")
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
