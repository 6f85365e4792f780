"""jaxrec's BERT against transformers.BertModel: one training step on identical work.

Both sides load the packaged pretrained MiniLM-L6 (hidden 384, 6 layers, 12 heads), take the
same token ids and attention mask (batch 32 x 32 tokens, rows padded to random lengths), run
in training mode (dropout 0.1), and do forward, backward and an AdamW update of every
parameter with loss = mean(last_hidden_state^2) + mean(pooler_output^2). float32, 2 threads.

The jaxrec step is how jaxrec trains: the model split into pure state once, then one jitted
function of (params, opt_state, batch, rng) with the parameters and optimizer state donated.

Run: .venv/bin/python benchmarks/train_step.py [--repeats=20]
"""

from __future__ import annotations

import argparse
import os
import statistics

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import common  # noqa: E402  (sets the import path before jaxrec)
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
from gpu_bench import make_step  # noqa: E402

from jaxrec import flops, pretrained  # noqa: E402

LR, WEIGHT_DECAY = 1e-5, 0.01


def make_batch(batch: int, seq: int, vocab: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    ids = rng.integers(1000, vocab, (batch, seq)).astype(np.int32)
    lengths = rng.integers(seq // 2, seq + 1, batch)
    mask = (np.arange(seq)[None] < lengths[:, None]).astype(np.int32)
    ids[:, 0], ids[mask == 0] = 101, 0
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}


def loss_of(hidden, pooled):
    return (hidden.astype(jnp.float32) ** 2).mean() + (pooled.astype(jnp.float32) ** 2).mean()


def jaxrec_step(model, dropout: bool):
    """Runs one step (and returns its loss) of the jitted step over the split state."""

    def loss_fn(bert, batch, rngs):
        hidden, pooled = bert(
            batch["input_ids"],
            batch["attention_mask"],
            batch["token_type_ids"],
            deterministic=not dropout,
            rngs=rngs,
        )
        return loss_of(hidden, pooled)

    run = make_step(model, loss_fn, optax.adamw(LR, weight_decay=WEIGHT_DECAY))
    return lambda batch: jax.block_until_ready(run(batch))


def torch_step(model, dropout: bool):
    model.train(dropout)
    opt = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=WEIGHT_DECAY)

    def run(batch):
        opt.zero_grad(set_to_none=True)
        out = model(**batch)
        loss = out.last_hidden_state.pow(2).mean() + out.pooler_output.pow(2).mean()
        loss.backward()
        opt.step()
        return loss.detach()

    return run


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--seq", type=int, default=32)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--no-dropout", action="store_true", help="both sides in inference mode")
    common.add_malloc_flag(p)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    dropout = not args.no_dropout

    model, config, folder = pretrained.load_bert(pretrained.DEFAULT)
    ref = transformers.BertModel.from_pretrained(str(folder), local_files_only=True)
    batch = make_batch(args.batch, args.seq, config.vocab_size)
    jax_batch = jax.device_put({k: jnp.asarray(v) for k, v in batch.items()})
    torch_batch = {k: torch.from_numpy(v).long() for k, v in batch.items()}

    run_jax, run_torch = jaxrec_step(model, dropout), torch_step(ref, dropout)
    # Same weights, same data: the first losses agree (dropout aside).
    print(
        f"first loss: jaxrec {float(run_jax(jax_batch)):.5f}, "
        f"transformers {float(run_torch(torch_batch)):.5f}"
    )
    times = common.alternate(
        {
            "transformers.BertModel": lambda: run_torch(torch_batch),
            "jaxrec BertModel": lambda: run_jax(jax_batch),
        },
        args.repeats,
    )
    tokens = args.batch * args.seq
    layers = config.num_hidden_layers
    step_flops = flops.encoder_step_flops(
        config, [(args.batch, args.seq)], computed_layers=layers, trained_layers=layers
    )
    print(
        f"\nMiniLM-L6 train step, batch {args.batch} x {args.seq} tokens, float32, "
        f"dropout {'on' if dropout else 'off'}, {args.repeats} alternating repeats\n"
        f"{common.machine()}\n"
    )
    print(common.table(times, "transformers.BertModel", rate=("tokens/s", tokens)))
    print(
        f"\nmodel FLOPs per step (jaxrec.flops): {step_flops / 1e9:.1f} G; at the medians "
        + ", ".join(f"{n} {step_flops / statistics.median(t) / 1e9:.0f}" for n, t in times.items())
        + " GFLOP/s"
    )


if __name__ == "__main__":
    main()
