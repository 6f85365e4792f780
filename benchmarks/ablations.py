"""Which BERT speed-ups pay on this machine: jaxrec's training step with each one undone.

The step of `train_step.py` (packaged MiniLM-L6, batch 32 x 32 tokens, dropout 0.1, forward,
backward and AdamW), compiled once per variant and timed in alternating turns:

  jaxrec                  as shipped
  threefry dropout        flax's nnx.Dropout (threefry bits) instead of jaxrec's hashed mask
  erfc GELU               jax.nn.gelu(approximate=False) instead of x * (1 + erf(x / sqrt 2)) / 2
  separate Q/K/V        three projections instead of one product with the stacked kernels
  remat                   each layer recomputed in the backward pass (model.remat)
  bfloat16 compute        model.dtype = bfloat16, float32 parameters

Each variant changes only what it names; all share the data and start from the same weights.
Run: .venv/bin/python benchmarks/ablations.py [--repeats=10]
"""

from __future__ import annotations

import argparse
import contextlib
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import common  # noqa: E402  (sets the import path before jaxrec)
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
from flax import nnx  # noqa: E402
from train_step import jaxrec_step, make_batch  # noqa: E402

from jaxrec import pretrained  # noqa: E402
from jaxrec.models import bert  # noqa: E402


def threefry_dropout(model: bert.BertModel) -> None:
    for _, module in list(nnx.iter_graph(model)):
        if isinstance(module, nnx.Module) and isinstance(
            getattr(module, "dropout", None), bert.Dropout
        ):
            module.dropout = nnx.Dropout(module.dropout.rate)


def erfc_gelu(model: bert.BertModel) -> None:
    for layer in model.encoder.layer:
        layer.intermediate.act = lambda x: jax.nn.gelu(x, approximate=False)


def remat(model: bert.BertModel) -> None:
    model.remat = True


@contextlib.contextmanager
def separate_qkv():
    fused = bert.BertSelfAttention.project
    bert.BertSelfAttention.project = lambda self, x: (self.query(x), self.key(x), self.value(x))
    try:
        yield
    finally:
        bert.BertSelfAttention.project = fused


VARIANTS = {  # name -> (change to the model, context while tracing, compute dtype)
    "jaxrec": (None, contextlib.nullcontext, jnp.float32),
    "threefry dropout": (threefry_dropout, contextlib.nullcontext, jnp.float32),
    "erfc GELU": (erfc_gelu, contextlib.nullcontext, jnp.float32),
    "separate Q/K/V": (None, separate_qkv, jnp.float32),
    "remat": (remat, contextlib.nullcontext, jnp.float32),
    "bfloat16 compute": (None, contextlib.nullcontext, jnp.bfloat16),
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--variants", default=",".join(VARIANTS))
    common.add_malloc_flag(p)
    args = p.parse_args()
    names = args.variants.split(",")
    batch = None
    sides = {}
    for name in names:
        change, context, dtype = VARIANTS[name]
        model, config, _ = pretrained.load_bert(pretrained.DEFAULT, dtype=dtype)
        if batch is None:
            raw = make_batch(32, 32, config.vocab_size)
            batch = jax.device_put({k: jnp.asarray(v) for k, v in raw.items()})
        if change:
            change(model)
        run = jaxrec_step(model, dropout=True)
        with context():  # traced and compiled with the change in force
            run(batch)
            run(batch)
        sides[name] = lambda run=run, batch=batch: run(batch)
    times = common.alternate(sides, args.repeats)
    print(
        f"\nMiniLM-L6 train step, batch 32 x 32 tokens, dropout on, {args.repeats} alternating "
        f"repeats\n{common.machine()}\n"
    )
    print(common.table(times, "jaxrec", rate=("tokens/s", 32 * 32)))


if __name__ == "__main__":
    main()
