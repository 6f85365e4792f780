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
   bfloat16 compute, on synthetic integer batches: B impressions of history 50 and 1 + 4
   candidates, titles of 24 tokens, each of the B x 55 titles distinct (no sharing, the
   least favourable case for jaxrec's per-batch deduplication). Impressions (samples) per
   second, with the batch halving on out-of-memory.

Run: python benchmarks/gpu_bench.py --out=gpu_results.json   (benchmarks/gpu.sh)
     python benchmarks/gpu_bench.py --smoke --out=/tmp/smoke.json   (tiny sizes, any device)
"""

from __future__ import annotations

import argparse
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


def news_batch(config: BertConfig, batch: int, history: int, cands: int, length: int, rng):
    """Synthetic PLM-NR batch in jaxrec's layout: distinct news tokens + indices into them."""
    slots = batch * (history + cands)
    lengths = rng.integers(length // 2, length + 1, slots)
    mask = (np.arange(length)[None] < lengths[:, None]).astype(np.int32)
    ids = rng.integers(1000 % config.vocab_size, config.vocab_size, (slots, length)) * mask
    order = rng.permutation(slots)
    hist_len = rng.integers(1, history + 1, batch)
    return {
        "news": {
            "input_ids": jnp.asarray(ids, jnp.int32),
            "attention_mask": jnp.asarray(mask),
            "token_type_ids": jnp.zeros((slots, length), jnp.int32),
        },
        "history": jnp.asarray(order[: batch * history].reshape(batch, history), jnp.int32),
        "history_mask": jnp.asarray(np.arange(history)[None] < hist_len[:, None], jnp.int32),
        "candidates": jnp.asarray(order[batch * history :].reshape(batch, cands), jnp.int32),
    }


def news_loss(model: NewsRecommender, batch, rngs) -> jax.Array:
    scores = model(batch, deterministic=False, rngs=rngs)
    return jnp.mean(jax.nn.logsumexp(scores, axis=-1) - scores[:, 0])


def news_bench(config: BertConfig, batch: int, length: int, steps: int, dtype) -> dict:
    history, cands = 50, 5
    bert = BertModel(config, dtype=dtype, rngs=nnx.Rngs(0))
    model = NewsRecommender(bert, dtype=dtype, rngs=nnx.Rngs(1))
    run = make_step(model, news_loss)
    data = news_batch(config, batch, history, cands, length, np.random.default_rng(0))
    times = timed_steps(lambda: run(data), steps, warmup=2)
    step_s = statistics.median(times)
    titles = batch * (history + cands)
    return {
        "batch": batch,
        "history": history,
        "candidates": cands,
        "title_len": length,
        "titles_per_step": titles,
        "step_s_median": step_s,
        "step_s_min": min(times),
        "step_s_max": max(times),
        "impressions_per_s": batch / step_s,
        "titles_per_s": titles / step_s,
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
        bert_batch, seq, news_batch_size, title_len = 4, 16, 2, 8
    else:
        bert_cfg, news_cfg, steps = BERT_BASE, MINILM, args.steps or 20
        bert_batch, seq, news_batch_size, title_len = 256, 128, 128, 24
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
    results["news_training"] = with_fallback(
        lambda b: news_bench(news_cfg, b, title_len, steps, dtype), news_batch_size, 1
    )
    print(json.dumps(results["news_training"], indent=1), flush=True)
    results["seconds"] = time.perf_counter() - tick
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
