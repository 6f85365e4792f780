"""GPU throughput: a BERT-base training step (tokens/s, MFU) and PLM-NR news training.

Needs only jax, flax, optax and numpy besides jaxrec's model code (no TensorFlow, no
ml-collections), so it runs on a bare accelerator image: the training steps are built here,
the way `jaxrec.train.make_train_step` builds them (the model split into pure state once,
one jitted step over (params, opt_state, batch, rng) with the state donated).

1. BERT-base (random init: hidden 768, 12 layers, 12 heads, intermediate 3072, vocab 30522),
   sequence 128, bfloat16 compute with float32 parameters, forward + backward + AdamW on
   loss = mean(last_hidden_state^2) + mean(pooler_output^2). The batch starts at 256 and
   halves on out-of-memory.
   Model FLOPs per step (`jaxrec.flops`): 3 x the forward of the 12 encoder layers, where a
   layer's forward over B sequences of S tokens is 2 B S (4 h^2 + 2 h i) for the six matrix
   products plus 4 B S^2 h for Q K^T and the weighted sum of V; together
   6 x (non-embedding matmul parameters) x tokens + 12 x layers x S^2 x h x B. Embeddings,
   LayerNorms, softmax, the pooler and the optimizer are not counted. MFU = model FLOPs per
   step / step time / the device's dense bf16 peak (H100 SXM and H200: 989 TFLOP/s).
2. PLM-NR news training (`jaxrec.models.news.NewsRecommender`) with the MiniLM-L6 shape
   (random init: hidden 384, 6 layers, 12 heads, intermediate 1536), every layer trained,
   bfloat16 compute, on synthetic MIND-like samples: 60,000 news items of 5-31 tokens (mean
   15) drawn by a log-normal popularity, histories of log-normal length (median 29, at most
   50), 1 + 4 candidates, titles cut at 32 tokens. Batches are built as jaxrec builds them
   (`jaxrec.data.news_batches`: each step's distinct items once), twice: without speed-ups
   (every item at the full width) and at the best settings (length groups, the history
   cache refreshed every 50 steps, no dropout, so attention takes cuDNN's fused kernel).
   Impressions (samples) per second, with the batch halving on out-of-memory.

Run: python benchmarks/gpu_bench.py --out=gpu_results.json   (benchmarks/gpu.sh)
     python benchmarks/gpu_bench.py --smoke --out=/tmp/smoke.json   (tiny sizes, any device)
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402
from flax import nnx  # noqa: E402

from jaxrec import flops  # noqa: E402
from jaxrec.models.bert import BertConfig, BertModel  # noqa: E402
from jaxrec.models.news import NewsRecommender  # noqa: E402

BERT_BASE = BertConfig()  # the defaults are BERT-base's
MINILM = BertConfig(
    hidden_size=384, num_hidden_layers=6, num_attention_heads=12, intermediate_size=1536
)
SMOKE_BERT = BertConfig(
    vocab_size=1000,
    hidden_size=64,
    num_hidden_layers=2,
    num_attention_heads=4,
    intermediate_size=128,
    max_position_embeddings=64,
)


def timed_steps(run, steps: int, warmup: int) -> list[float]:
    """Seconds per step, each step blocked on; the first `warmup` (compilation) dropped."""
    times = []
    for i in range(warmup + steps):
        tick = time.perf_counter()
        jax.block_until_ready(run())
        if i >= warmup:
            times.append(time.perf_counter() - tick)
    return times


def is_oom(error: Exception) -> bool:
    text = str(error)
    return "RESOURCE_EXHAUSTED" in text or "Out of memory" in text or "out of memory" in text


def make_step(model: nnx.Module, loss_fn, tx: optax.GradientTransformation | None = None):
    """One jitted training step of `loss_fn(model, batch, rngs)`; the state stays inside.

    As `jaxrec.train.make_train_step` builds it: the model split into pure state once, the
    parameters and optimizer state donated. `tx` defaults to clipped AdamW.
    """
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    if tx is None:
        tx = optax.chain(optax.clip_by_global_norm(1.0), optax.adamw(1e-4, weight_decay=0.01))

    def step(params, opt_state, rest, batch, rng):
        def loss(params):
            return loss_fn(nnx.merge(graphdef, params, rest), batch, nnx.Rngs(dropout=rng))

        value, grads = jax.value_and_grad(loss)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, value

    step = jax.jit(step, donate_argnums=(0, 1))
    state = {"params": params, "opt": tx.init(params), "i": 0}
    key = jax.random.key(0)

    def run(batch):
        state["i"] += 1
        rng = jax.random.fold_in(key, state["i"])
        state["params"], state["opt"], value = step(state["params"], state["opt"], rest, batch, rng)
        return value

    return run


def bert_loss(model: BertModel, batch, rngs) -> jax.Array:
    hidden, pooled = model(
        batch["input_ids"], batch["attention_mask"], deterministic=False, rngs=rngs
    )
    return jnp.mean(hidden.astype(jnp.float32) ** 2) + jnp.mean(pooled.astype(jnp.float32) ** 2)


def bert_step_bench(config: BertConfig, batch: int, seq: int, steps: int, dtype) -> dict:
    model = BertModel(config, dtype=dtype, rngs=nnx.Rngs(0))
    run = make_step(model, bert_loss)
    rng = np.random.default_rng(0)
    data = {
        "input_ids": jnp.asarray(
            rng.integers(1000 % config.vocab_size, config.vocab_size, (batch, seq)), jnp.int32
        ),
        "attention_mask": jnp.ones((batch, seq), jnp.int32),
    }
    times = timed_steps(lambda: run(data), steps, warmup=2)
    step_s = statistics.median(times)
    step_flops = flops.encoder_step_flops(
        config,
        [(batch, seq)],
        computed_layers=config.num_hidden_layers,
        trained_layers=config.num_hidden_layers,
    )
    peak = flops.device_peak()
    return {
        "batch": batch,
        "seq": seq,
        "step_s_median": step_s,
        "step_s_min": min(times),
        "step_s_max": max(times),
        "tokens_per_s": batch * seq / step_s,
        "model_flops_per_step": step_flops,
        "achieved_tflops": step_flops / step_s / 1e12,
        "peak_tflops": peak / 1e12 if peak else None,
        "mfu": step_flops / step_s / peak if peak else None,
    }


def mind_like_samples(rng, count: int, news: int, history: int, cands: int):
    """Samples with MIND-like sharing: items by a log-normal popularity (row 0 is empty)."""
    weight = rng.lognormal(0.0, 1.5, news)
    weight /= weight.sum()
    lengths = np.clip(np.round(rng.lognormal(np.log(29), 0.8, count)), 0, history)
    return {
        "history": rng.choice(news, (count, history), p=weight).astype(np.int32) + 1,
        "history_mask": (np.arange(history)[None] < lengths[:, None]).astype(np.int32),
        "candidates": rng.choice(news, (count, cands), p=weight).astype(np.int32) + 1,
    }


def news_table(config: BertConfig, news: int, length: int, rng) -> dict[str, np.ndarray]:
    lengths = np.clip(np.round(rng.normal(15, 3.5, news + 1)), 5, 31).astype(int)
    lengths[0] = 2
    mask = (np.arange(length)[None] < np.minimum(lengths, length)[:, None]).astype(np.int32)
    ids = rng.integers(1000 % config.vocab_size, config.vocab_size, mask.shape) * mask
    return {"input_ids": ids.astype(np.int32), "attention_mask": mask, "token_type_ids": 0 * mask}


def news_batches(table, samples, batch: int, steps: int, refresh: int, grouped: bool):
    """`steps` global batches as jaxrec's pipeline builds them, and the layout used."""
    from jaxrec.data.news_batches import BatchBuilder, Layout, plan_layout, simulate

    lengths = table["attention_mask"].sum(axis=1)
    width = table["input_ids"].shape[1]
    parts = [{k: v[i * batch : (i + 1) * batch] for k, v in samples.items()} for i in range(steps)]
    if grouped:
        widths = tuple(range(8, width, 8)) + (width,)
        micro = [(p["history"], p["history_mask"], p["candidates"]) for p in parts]
        counts = simulate(lengths, widths, micro[: max(64, 4 * refresh)], refresh)
        layout = plan_layout(counts, widths, bucket=128)
    else:
        layout = Layout.full_width(width, 128)
    builder = BatchBuilder(lengths, layout, refresh=refresh)
    out = []
    for p in parts:
        step = builder.step(p["history"][None], p["history_mask"][None], p["candidates"][None])
        news = tuple(
            {"rows": rows[0]} | {k: v[:, :w][rows[0]] for k, v in table.items()}
            for rows, w in zip(step["rows"], step["widths"], strict=True)
        )
        out.append(
            {"news": news} | {k: step[k][0] for k in ("history", "history_mask", "candidates")}
        )
    return out, layout


def news_step(model: NewsRecommender, tx, cached: bool):
    """One jitted PLM-NR training step over (params, opt_state, carry, batch, rng), as
    `jaxrec.train.make_train_step` builds it with the news task's loss."""
    from jaxrec.models.news import write_news_cache

    graphdef, params, rest = nnx.split(model, nnx.Param, ...)

    def step(params, opt_state, carry, rest, batch, rng):
        def loss(params, carry):
            m = nnx.merge(graphdef, params, rest)
            rngs = nnx.Rngs(dropout=rng)
            vecs = m.encode_groups(batch["news"], deterministic=False, rngs=rngs)
            cache = carry["vectors"] if cached else None
            scores = m.score_batch(vecs, batch, cache=cache, deterministic=False, rngs=rngs)
            if cached:
                rows = jnp.concatenate([g["rows"] for g in batch["news"]])
                carry = write_news_cache(carry, rows, vecs)
            return jnp.mean(jax.nn.logsumexp(scores, axis=-1) - scores[:, 0]), carry

        (value, carry), grads = jax.value_and_grad(loss, has_aux=True)(params, carry)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, carry, value

    return jax.jit(step, donate_argnums=(0, 1, 2)), params, rest


def news_bench(config: BertConfig, batch: int, length: int, steps: int, dtype, best: bool):
    history, cands, news, refresh = 50, 5, 60_000, 50
    rng = np.random.default_rng(0)
    table = news_table(config, news, length, rng)
    samples = mind_like_samples(rng, batch * (steps + 2), news, history, cands)
    batches, layout = news_batches(table, samples, batch, steps + 2, refresh * best, best)
    if best:
        config = dataclasses.replace(
            config, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0
        )
    bert = BertModel(config, dtype=dtype, rngs=nnx.Rngs(0))
    model = NewsRecommender(bert, dtype=dtype, rngs=nnx.Rngs(1))
    tx = optax.chain(optax.clip_by_global_norm(1.0), optax.adamw(1e-4, weight_decay=0.01))
    step, params, rest = news_step(model, tx, cached=best)
    state = {"params": params, "opt": tx.init(params), "i": 0, "carry": None}
    if best:
        size = (news + 1, config.hidden_size)
        state["carry"] = {
            "vectors": jnp.zeros(size, jnp.float32),
            "age": jnp.full(news + 1, refresh, jnp.int32),
        }
    key = jax.random.key(0)

    def run():
        i = state["i"]
        state["i"] += 1
        data = jax.device_put(batches[i])
        state["params"], state["opt"], state["carry"], value = step(
            state["params"], state["opt"], state["carry"], rest, data, jax.random.fold_in(key, i)
        )
        return value

    times = timed_steps(run, steps, warmup=2)
    step_s = statistics.median(times)
    tokens = [sum(g["input_ids"].size for g in b["news"]) for b in batches]
    return {
        "settings": "length groups, history cache (50 steps), no dropout" if best else "none",
        "batch": batch,
        "history": history,
        "candidates": cands,
        "title_len": length,
        "layout_widths": list(layout.widths),
        "layout_rows": list(layout.capacities),
        "encoded_tokens_per_step": float(np.mean(tokens)),
        "step_s_median": step_s,
        "step_s_min": min(times),
        "step_s_max": max(times),
        "impressions_per_s": batch / step_s,
    }


def with_fallback(bench, batch: int, smallest: int) -> dict:
    """`bench(batch)`, halving the batch on out-of-memory down to `smallest`."""
    tried = []
    while True:
        try:
            result = bench(batch)
            result["batches_out_of_memory"] = tried
            return result
        except Exception as e:  # noqa: BLE001 - only out-of-memory is retried
            if not is_oom(e) or batch // 2 < smallest:
                raise
            tried.append(batch)
            batch //= 2
            jax.clear_caches()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default="gpu_results.json")
    p.add_argument("--smoke", action="store_true", help="tiny sizes and few steps, any device")
    p.add_argument("--steps", type=int, default=None)
    args = p.parse_args()
    dtype = jnp.bfloat16
    if args.smoke:
        bert_cfg, news_cfg, steps = SMOKE_BERT, SMOKE_BERT, args.steps or 2
        bert_batch, seq, news_batch_size, title_len = 4, 16, 4, 16
    else:
        bert_cfg, news_cfg, steps = BERT_BASE, MINILM, args.steps or 20
        bert_batch, seq, news_batch_size, title_len = 256, 128, 128, 48  # as configs/news.py
    device = jax.devices()[0]
    results = {
        "device": device.device_kind,
        "platform": device.platform,
        "smoke": args.smoke,
        "jax": jax.__version__,
        "python": platform.python_version(),
        "compute_dtype": "bfloat16",
        "param_dtype": "float32",
        "steps_timed": steps,
    }
    tick = time.perf_counter()
    results["bert_base_train_step"] = with_fallback(
        lambda b: bert_step_bench(bert_cfg, b, seq, steps, dtype), bert_batch, 1
    )
    print(json.dumps(results["bert_base_train_step"], indent=1), flush=True)
    for name, best in (("news_training_no_speedups", False), ("news_training_best", True)):
        results[name] = with_fallback(
            lambda b, best=best: news_bench(news_cfg, b, title_len, steps, dtype, best),
            news_batch_size,
            1,
        )
        print(json.dumps(results[name], indent=1), flush=True)
    results["seconds"] = time.perf_counter() - tick
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
