"""Dev evaluation: jaxrec's `infer.score_split` against re-encoding every impression.

Scores all 1000 impressions of the bundled MIND sample's dev split with the packaged MiniLM
PLM-NR model (titles of 24 tokens, history 50), no frozen-layer cache: the whole encoder runs.

  jaxrec          `infer.score_split`: every news item of the split encoded once (in
                  length-sorted batches cut to a few widths), one user
                  vector per distinct history, then dot products per impression.
  per impression  what evaluation code usually does: for each impression, its history titles
                  and candidate titles encoded as one batch (padded to a multiple of 16 rows),
                  trimmed to its longest title (rounded up to a multiple of 8 tokens, as a
                  tokenizer's padding="longest" would, in few compiled shapes), then its user
                  vector from them and its scores. In JAX, with the very same
                  compiled jaxrec encoder and user functions, so the ratio measures the
                  algorithm, not the framework.

Both produce the same scores (checked). Run: .venv/bin/python benchmarks/evaluation.py [--repeats=2]
"""

from __future__ import annotations

import argparse
import os
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import common  # noqa: E402  (sets the import path before jaxrec)
import numpy as np  # noqa: E402
from flax import nnx  # noqa: E402
from news_throughput import make_config, make_task  # noqa: E402

from jaxrec import sharding, train  # noqa: E402
from jaxrec.tasks import news_inference as infer  # noqa: E402

ROWS_BUCKET = 16  # per-impression batches padded to a multiple of this: few compiled shapes


def per_impression_scores(fns, states, table, log) -> tuple[list[np.ndarray], int]:
    """(scores of every impression, titles encoded), each impression encoded on its own."""
    feed, history_len = fns.feed, log.history.shape[1]
    out, titles = [], 0
    for hist, mask, cands in zip(log.history, log.history_mask, log.candidates, strict=True):
        clicked = hist[mask > 0]
        rows = np.concatenate([clicked, cands])
        titles += len(rows)
        padded = np.zeros(-(-len(rows) // ROWS_BUCKET) * ROWS_BUCKET, np.int32)
        padded[: len(rows)] = rows
        width = -(-int(table.tokens["attention_mask"][rows].sum(1).max()) // 8) * 8
        tokens = feed.put({k: v[padded, :width] for k, v in table.tokens.items()})
        vecs = fns.news(states, tokens)
        index = np.zeros((1, history_len), np.int32)
        index[0, : len(clicked)] = np.arange(len(clicked))
        user_mask = (np.arange(history_len) < len(clicked)).astype(np.int32)[None]
        put = feed.put({"history": index, "history_mask": user_mask})
        user = feed.get(fns.users(states, vecs, put["history"], put["history_mask"]))[0]
        cand_vecs = feed.get(vecs)[len(clicked) : len(rows)]
        out.append(cand_vecs.astype(np.float32) @ user.astype(np.float32))
    return out, titles


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--repeats", type=int, default=2)
    common.add_malloc_flag(p)
    args = p.parse_args()
    config = make_config(model__trainable_layers=-1)
    bs = config.train.eval_batch_size
    mesh = sharding.make_mesh((1, 1, 1))
    with tempfile.TemporaryDirectory() as cache_dir, sharding.activate(mesh, config.mesh.rules):
        task, folder, bert_config = make_task(config, mesh, cache_dir)
        model = train.create_model(config, bert_config, folder, mesh, task.build)
        graphdef, params, rest = nnx.split(model, nnx.Param, ...)
        states = (params, rest)
        fns = infer.NewsInference(graphdef, task.env.feed)
        dev = task.dev
        # Compile every shape first (the per-impression side has one per row count).
        fast = infer.score_split(fns, states, dev.table, dev.log, bs)
        slow, titles = per_impression_scores(fns, states, dev.table, dev.log)
        diff = max(float(np.abs(a - b).max()) for a, b in zip(fast, slow, strict=True))
        times = common.alternate(
            {
                "per impression": lambda: per_impression_scores(fns, states, dev.table, dev.log),
                "jaxrec score_split": lambda: infer.score_split(
                    fns, states, dev.table, dev.log, bs
                ),
            },
            args.repeats,
            warmup=0,
        )
    n = len(dev.log)
    print(
        f"\n{common.machine()}\n\ndev split: {n} impressions, {len(dev.table) - 1} news; "
        f"titles encoded: jaxrec {len(dev.table)}, per impression {titles}; "
        f"largest score difference {diff:.2e}; {args.repeats} alternating runs each\n"
    )
    print(common.table(times, "per impression", unit="s", scale=1.0, rate=("impressions/s", n)))


if __name__ == "__main__":
    main()
