"""The matrix products of a MiniLM training step alone: XLA:CPU against PyTorch.

A training step of `train_step.py` is mostly matrix products of [T, 384] activations with
[384, 1536]-sized kernels in three forms: forward (x @ W), input gradient (dy @ W.T) and
weight gradient (x.T @ dy). This times each form on both sides at T = 1024 tokens (the train
step's 32 x 32) and T = 12288 (a news batch of 512 titles x 24), alternating, and reports
GFLOP/s: how fast the step could be if nothing but its products took time.

Run: .venv/bin/python benchmarks/matmul.py [--repeats=10]
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import common  # noqa: E402
import jax  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

FORMS = {  # name -> the product of its two operands
    "x @ W": lambda a, b: a @ b,
    "dy @ W.T": lambda a, b: a @ b.T,
    "x.T @ dy": lambda a, b: a.T @ b,
}


def operands(form: str, tokens: int, hidden: int, inner: int, rng) -> tuple[np.ndarray, ...]:
    shapes = {
        "x @ W": ((tokens, hidden), (hidden, inner)),
        "dy @ W.T": ((tokens, inner), (hidden, inner)),
        "x.T @ dy": ((tokens, hidden), (tokens, inner)),
    }[form]
    return tuple(rng.standard_normal(s, dtype=np.float32) for s in shapes)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--threads", type=int, default=2)
    common.add_malloc_flag(p)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    print(f"{common.machine()}\n")
    print("| tokens | product | jax ms | jax GFLOP/s | torch ms | torch GFLOP/s |")
    print("|---|---|---|---|---|---|")
    for tokens in (1024, 12288):
        for form, product in FORMS.items():
            a, b = operands(form, tokens, 384, 1536, rng)
            ja, jb = jax.device_put(a), jax.device_put(b)
            ta, tb = torch.from_numpy(a), torch.from_numpy(b)
            fn = jax.jit(product)
            times = common.alternate(
                {
                    "jax": lambda fn=fn, ja=ja, jb=jb: fn(ja, jb).block_until_ready(),
                    "torch": lambda f=product, ta=ta, tb=tb: f(ta, tb),
                },
                args.repeats,
                pause=0.05,
            )
            gflop = 2 * tokens * 384 * 1536 / 1e9
            jt, tt = (float(np.median(times[k])) for k in ("jax", "torch"))
            print(
                f"| {tokens} | {form} | {jt * 1e3:.1f} | {gflop / jt:.0f} | "
                f"{tt * 1e3:.1f} | {gflop / tt:.0f} |"
            )


if __name__ == "__main__":
    main()
