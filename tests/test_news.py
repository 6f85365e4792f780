"""The news path: integer pipeline, deduplicated encoding, one train step, train + predict."""

import json
import os
import subprocess
import sys
import zipfile

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from configs import news as news_config
from jaxrec import metrics, optim, pretrained, sharding, train
from jaxrec.data import mind
from jaxrec.data.news_data import load_split
from jaxrec.data.news_table import build_news_table
from jaxrec.data.pipeline import (
    length_buckets,
    length_sorted_batches,
    padded_batches,
    train_batches,
    train_samples,
)
from jaxrec.data.tokenize import TextTokenizer
from jaxrec.errors import CheckpointError
from jaxrec.models.news import NewsRecommender
from jaxrec.optim import frozen_bottom_layers
from jaxrec.tasks import news_inference as infer
from jaxrec.tasks.news import build_model, news_loss
from jaxrec.trained import load_trained


def _config(data_dir, bert_dir, **train_overrides):
    c = news_config.get_config("tiny")
    c.data.dir = str(data_dir)
    c.model.init_from = str(bert_dir)
    c.train.update(train_overrides)
    return c


@pytest.fixture(scope="module")
def tiny(tiny_mind_dir, tiny_bert_dir, tmp_path_factory):
    config = _config(tiny_mind_dir, tiny_bert_dir)
    bert, bert_config, folder = pretrained.load_bert(str(tiny_bert_dir))
    tok = TextTokenizer(folder, bert_config.vocab_size)
    cache = tmp_path_factory.mktemp("cache")
    report = mind.ReadReport()
    data = load_split(config.data, "train", tok, cache_dir=cache, report=report)
    return config, bert, tok, data


def test_news_table_row_zero_is_empty_news_and_cache_round_trips(tiny, tmp_path):
    config, _, tok, data = tiny
    assert data.table.tokens["attention_mask"][0].sum() == 2  # [CLS] [SEP]
    again = build_news_table(data.split.news, tok, max_length=16, cache_dir=tmp_path)
    cached = build_news_table(data.split.news, tok, max_length=16, cache_dir=tmp_path)
    assert len(list(tmp_path.glob("news-*.npz"))) == 1
    for k in again.tokens:
        np.testing.assert_array_equal(again.tokens[k], cached.tokens[k])
    build_news_table(data.split.news, tok, max_length=12, cache_dir=tmp_path)
    assert len(list(tmp_path.glob("news-*.npz"))) == 2  # another length, another key


def test_train_samples_hold_one_click_and_k_non_clicks(tiny):
    config, _, _, data = tiny
    samples = train_samples(data.log, npratio=4, seed=3)
    assert samples["candidates"].shape[1] == 5
    clicked = {
        (tuple(h), int(c))
        for h, cs, ys in zip(data.log.history, data.log.candidates, data.log.labels, strict=True)
        for c in cs[ys == 1]
    }
    for h, row in zip(samples["history"], samples["candidates"], strict=True):
        assert (tuple(h), int(row[0])) in clicked
    n_pos = sum(int(y.sum()) for y in data.log.labels)
    assert len(samples["candidates"]) == n_pos
    again = train_samples(data.log, npratio=4, seed=3)
    np.testing.assert_array_equal(samples["candidates"], again["candidates"])
    other = train_samples(data.log, npratio=4, seed=4)
    assert not np.array_equal(samples["candidates"], other["candidates"])


def test_dedup_batch_restores_every_slot(tiny):
    config, _, _, data = tiny
    batch = _first(
        next(train_batches(data.log, data.table, batch_size=8, npratio=4, seed=0, news_bucket=32))
    )
    (group,) = batch["news"]  # by default one group at the full width
    assert group["input_ids"].shape[0] % 32 == 0
    samples = train_samples(data.log, npratio=4, seed=0)
    ids = data.table.tokens["input_ids"]
    np.testing.assert_array_equal(
        group["input_ids"][batch["candidates"]], ids[samples["candidates"][:8]]
    )
    clicked = samples["history_mask"][:8] > 0  # padding slots point anywhere: they are masked
    np.testing.assert_array_equal(
        group["input_ids"][batch["history"]][clicked], ids[samples["history"][:8]][clicked]
    )
    real = np.unique(
        np.concatenate([samples["candidates"][:8].ravel(), samples["history"][:8].ravel()])
    )
    assert len(np.unique(group["input_ids"], axis=0)) == len(real)


def test_dedup_scores_equal_per_slot_encoding(tiny):
    config, bert, _, data = tiny
    model = NewsRecommender(bert, rngs=nnx.Rngs(0))
    batch = _first(
        next(train_batches(data.log, data.table, batch_size=8, npratio=4, seed=0, news_bucket=32))
    )
    scores = model(batch)
    # Reference: encode every history and candidate slot on its own, no sharing.
    samples = train_samples(data.log, npratio=4, seed=0)
    tok = {k: v for k, v in data.table.tokens.items()}

    def encode(rows):
        flat = rows.reshape(-1)
        vecs = model.encode_news({k: v[flat] for k, v in tok.items()})
        return vecs.reshape(*rows.shape, -1)

    hist = encode(samples["history"][:8])
    cands = encode(samples["candidates"][:8])
    users = model.user_encoder(
        hist, jnp.asarray(samples["history_mask"][:8]), deterministic=True, rngs=None
    )
    ref = jnp.einsum("bd,bcd->bc", users, cands)
    np.testing.assert_allclose(scores, ref, rtol=1e-4, atol=1e-4)


def test_padded_batches_cover_every_row_once():
    arrays = {"x": np.arange(23)}
    batches = list(padded_batches(arrays, 8))
    assert [len(b["x"]) for b in batches] == [8, 8, 8]
    seen = np.concatenate([b["x"][b["valid"]] for b in batches])
    np.testing.assert_array_equal(seen, np.arange(23))


def test_length_buckets_are_few_and_end_at_the_width():
    assert length_buckets(24) == (4, 8, 12, 16, 20, 24)
    assert length_buckets(128) == (24, 48, 72, 96, 120, 128)
    for width in range(1, 600):
        widths = length_buckets(width)
        assert widths[-1] == width and len(widths) <= 7
        assert list(widths) == sorted(set(widths))


def test_length_sorted_batches_hold_every_row_once_and_cut_only_padding():
    rng = np.random.default_rng(0)
    lengths = rng.integers(0, 25, 61)
    lengths[5] = 24
    mask = (np.arange(24)[None] < lengths[:, None]).astype(np.int32)
    ids = rng.integers(1, 100, mask.shape) * mask
    tokens = {"input_ids": ids, "attention_mask": mask}
    batches = list(length_sorted_batches(tokens, 16))
    rows = np.concatenate([b["rows"][b["valid"]] for b in batches])
    np.testing.assert_array_equal(np.sort(rows), np.arange(61))
    assert len({b["input_ids"].shape[1] for b in batches}) > 1  # short batches were cut
    for b in batches:
        width = b["input_ids"].shape[1]
        assert width in length_buckets(24) and len(b["rows"]) == 16
        np.testing.assert_array_equal(b["input_ids"], ids[b["rows"], :width])
        assert mask[b["rows"], width:].sum() == 0  # only padding was cut


def test_process_parts_of_a_batch_cover_it_once(tiny):
    """Each of 4 processes keeps its part; together they are the single-process batch."""
    _, _, _, data = tiny
    kw = dict(batch_size=8, npratio=4, seed=0, news_bucket=32, micro_batches=2)
    whole = next(train_batches(data.log, data.table, **kw))
    parts = [next(train_batches(data.log, data.table, block=(p, p + 1, 4), **kw)) for p in range(4)]
    for key in ("history", "history_mask", "candidates"):
        joined = np.concatenate([p[key] for p in parts], axis=1)
        np.testing.assert_array_equal(joined, whole[key])
    for g, group in enumerate(whole["news"]):
        for key in group:
            joined = np.concatenate([p["news"][g][key] for p in parts], axis=1)
            np.testing.assert_array_equal(joined, group[key])


def test_trainable_scope_top_k_layers():
    is_trainable = optim.trainable_filter(6, 2)
    param = nnx.Param(jnp.zeros(1))
    path = lambda s: tuple(s.split("."))  # noqa: E731
    assert is_trainable(path("bert.encoder.layer.5.output.dense.kernel"), param)
    assert is_trainable(path("bert.encoder.layer.4.attention.self.query.bias"), param)
    assert not is_trainable(path("bert.encoder.layer.3.output.dense.kernel"), param)
    assert not is_trainable(path("bert.embeddings.word_embeddings.embedding"), param)
    assert not is_trainable(path("bert.pooler.dense.kernel"), param)
    assert is_trainable(path("news_pool.proj.kernel"), param)
    assert not optim.trainable_filter(6, 0)(path("bert.encoder.layer.5.output.dense.kernel"), param)
    assert optim.trainable_filter(6, -1)(path("bert.embeddings.LayerNorm.scale"), param)
    with pytest.raises(ValueError, match="trainable_layers"):
        optim.trainable_filter(6, 7)


def test_weight_decay_skips_biases_and_layernorm(tiny):
    _, bert, _, _ = tiny
    mask = optim.decay_mask(nnx.state(bert, nnx.Param))
    flat = {".".join(map(str, p)): v.get_value() for p, v in nnx.to_flat_state(mask)}
    assert flat["encoder.layer.0.attention.self.query.kernel"] is True
    assert flat["encoder.layer.0.attention.self.query.bias"] is False
    assert flat["encoder.layer.0.output.LayerNorm.scale"] is False
    assert flat["embeddings.word_embeddings.embedding"] is True


def test_schedule_warms_up_then_decays():
    c = news_config.get_config()
    c.train.update(learning_rate=1e-3, warmup_steps=10, schedule="linear")
    lr = optim.schedule(c.train, 110)
    assert float(lr(0)) == 0.0
    assert float(lr(10)) == pytest.approx(1e-3)
    assert float(lr(60)) == pytest.approx(5e-4)
    assert float(lr(110)) == pytest.approx(0.0, abs=1e-12)


def test_one_train_step_updates_only_the_trainable_scope(tiny):
    config, bert, _, data = tiny
    model = build_model(config, bert)
    is_trainable = optim.trainable_filter(2, 1)
    graphdef, trainable, frozen = nnx.split(model, is_trainable, ...)
    config = config.copy_and_resolve_references()
    config.train.warmup_steps = 0  # warm-up starts at 0: the first update would be zero
    lr = optim.schedule(config.train, 10)
    tx = optim.optimizer(config.train, lr, trainable)
    mesh = sharding.make_mesh((-1, 1, 1))
    rep = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())
    shardings = {
        "trainable": rep,
        "frozen": rep,
        "opt_state": rep,
        "replicated": rep,
        "batch": jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec(None, "data")),
    }
    step = train.make_train_step(graphdef, tx, news_loss(0), shardings)
    batch = next(
        train_batches(data.log, data.table, batch_size=8, npratio=4, seed=0, news_bucket=32)
    )
    before = jax.tree.map(np.asarray, trainable)
    new, _, _, m = step(
        trainable,
        frozen,
        tx.init(trainable),
        None,
        jax.device_put(batch, shardings["batch"]),
        jax.random.key(0),
        None,
    )
    assert np.isfinite(m["loss"]) and m["grad_norm"] > 0
    changed = jax.tree.map(lambda a, b: not np.array_equal(a, np.asarray(b)), before, new)
    flat = {".".join(map(str, p)): v.get_value() for p, v in nnx.to_flat_state(changed)}
    assert flat["bert.encoder.layer.1.output.dense.kernel"]
    assert flat["user_encoder.pool.proj.kernel"]
    assert not any(k.startswith("bert.encoder.layer.0") for k in flat)  # layer 0 is frozen


def test_train_then_predict_round_trip(tiny_mind_dir, tiny_bert_dir, tmp_path):
    from jaxrec import predict

    config = _config(tiny_mind_dir, tiny_bert_dir, num_steps=4, eval_every=2)
    results = train.train_and_evaluate(config, tmp_path / "wd")
    assert (tmp_path / "wd" / "metrics.json").exists()
    assert results["dev"]["num_impressions"] == 48
    assert results["best_step"] in (2, 4)

    # Running a finished workdir again resumes it: nothing left to train, the same results.
    again = train.train_and_evaluate(config, tmp_path / "wd")
    assert again["dev"] == results["dev"] and again["best_step"] == results["best_step"]

    out = tmp_path / "pred.txt"
    n = predict.predict(tmp_path / "wd", "dev", out)
    lines = out.read_text().splitlines()
    assert n == len(lines) == 48
    with pytest.raises(CheckpointError, match="no checkpoint for step 3"):
        load_trained(tmp_path / "wd", step=3)
    with pytest.raises(CheckpointError, match="not a training workdir"):
        load_trained(tmp_path)
    trained = load_trained(tmp_path / "wd")
    assert trained.step == results["best_step"]
    tok = trained.task.env.tokenizer
    dev = load_split(
        trained.config.data, "dev", tok, cache_dir=tmp_path / "c", report=mind.ReadReport()
    )
    fns = infer.NewsInference(trained.graphdef)
    scores = infer.score_split(fns, trained.states, dev.table, dev.log, 64)
    assert metrics.ranking_metrics(scores, dev.log.labels)["auc"] == pytest.approx(
        results["dev"]["auc"], abs=1e-6
    )
    for line, imp, s in zip(lines, dev.split.impressions, scores, strict=True):
        imp_id, ranks = line.split(" ")
        assert imp_id == imp.impression_id
        ranks = [int(r) for r in ranks.strip("[]").split(",")]
        assert sorted(ranks) == list(range(1, len(s) + 1))
        # The best score has rank 1, and ranks follow the scores.
        assert [r for _, r in sorted(zip(-s, ranks, strict=True))] == sorted(ranks)


def test_frozen_layer_cache_gives_the_same_vectors_and_step(tiny):
    config, bert, _, data = tiny
    model = build_model(config, bert)
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    fns = infer.NewsInference(graphdef)
    states = (params, rest)
    cache = infer.lower_cache(fns, states, data.table, 1, 64)
    assert cache.hidden.shape[:2] == data.table.tokens["input_ids"].shape
    direct = infer.news_vectors(fns, states, data.table, 64)
    cached = infer.news_vectors(fns, states, data.table, 64, cache)
    np.testing.assert_allclose(cached, direct, atol=1e-5)

    # Length-sorted, width-cut batches give what one full-width pass over the table gives.
    tokens = data.table.tokens
    model = nnx.merge(graphdef, params, rest)
    assert len({b["input_ids"].shape[1] for b in length_sorted_batches(tokens, 64)}) > 1
    full = model.encode_news({k: jnp.asarray(v) for k, v in tokens.items()})
    np.testing.assert_allclose(direct, full, atol=1e-5)
    valid = tokens["attention_mask"] > 0
    full_hidden = np.asarray(model.lower_hidden(tokens, 1))
    np.testing.assert_allclose(np.asarray(cache.hidden)[valid], full_hidden[valid], atol=1e-5)

    # The train step from the cache: same loss as running the frozen layer, in inference mode.
    batch = _first(
        next(train_batches(data.log, data.table, batch_size=8, npratio=4, seed=0, news_bucket=32))
    )
    model = nnx.merge(graphdef, params, rest)
    (group,) = batch["news"]
    full = model.score_batch(model.encode_news(group), batch)
    vecs = model.encode_news_from(
        jnp.take(cache.hidden, group["rows"], axis=0), group["attention_mask"], 1
    )
    np.testing.assert_allclose(model.score_batch(vecs, batch), full, atol=1e-4)
    assert frozen_bottom_layers(config.model, 2) == 2 - config.model.trainable_layers


@pytest.mark.parametrize("pooling,user_encoder", [("cls", "mhsa"), ("attention", "attention")])
def test_padded_history_slots_do_not_change_the_user(tiny, pooling, user_encoder):
    _, bert, _, _ = tiny
    model = NewsRecommender(bert, pooling=pooling, user_encoder=user_encoder, rngs=nnx.Rngs(1))
    vecs = jax.random.normal(jax.random.key(0), (10, bert.config.hidden_size))
    history = jnp.array([[1, 2, 3, 0, 0], [1, 2, 3, 7, 9]])
    mask = jnp.array([[1, 1, 1, 0, 0], [1, 1, 1, 0, 0]])
    users = model.encode_users(vecs, history, mask)
    np.testing.assert_allclose(users[0], users[1], atol=1e-5)
    empty = model.encode_users(vecs, history, jnp.zeros_like(mask))
    assert np.isfinite(empty).all()
    tokens = {
        "input_ids": jnp.array([[101, 2000, 102, 0]]),
        "attention_mask": jnp.array([[1, 1, 1, 0]]),
        "token_type_ids": jnp.zeros((1, 4), jnp.int32),
    }
    assert model.encode_news(tokens).shape == (1, bert.config.hidden_size)


def test_early_stopping_keeps_the_best(tiny_mind_dir, tiny_bert_dir, tmp_path):
    # A zero learning rate never improves the dev metric: patience 1 stops at the 2nd eval.
    config = _config(
        tiny_mind_dir, tiny_bert_dir, num_steps=10, eval_every=2, patience=1, learning_rate=0.0
    )
    results = train.train_and_evaluate(config, tmp_path)
    assert results["last_step"] == 4 and results["best_step"] == 2
    from jaxrec.trained import load_trained

    assert load_trained(tmp_path).step == 2  # prediction's default: the best checkpoint


def test_predict_on_an_unlabelled_split(tiny_mind_dir, tiny_bert_dir, tmp_path):
    from jaxrec import predict

    data = tmp_path / "mind"
    (data / "test").mkdir(parents=True)
    (data / "test" / "news.tsv").write_text((tiny_mind_dir / "dev" / "news.tsv").read_text())
    rows = (tiny_mind_dir / "dev" / "behaviors.tsv").read_text().splitlines()
    with open(data / "test" / "behaviors.tsv", "w") as f:
        for row in rows:
            cols = row.split("\t")
            cols[4] = " ".join(c.rsplit("-", 1)[0] for c in cols[4].split())
            f.write("\t".join(cols) + "\n")
    train.train_and_evaluate(_config(tiny_mind_dir, tiny_bert_dir, num_steps=2), tmp_path / "wd")
    out = tmp_path / "prediction.txt"
    n = predict.predict(tmp_path / "wd", "test", out, data_dir=data, zip_for_leaderboard=True)
    lines = out.read_text().splitlines()
    assert n == len(lines) == len(rows)
    # The leaderboard's format: every impression in behaviors.tsv order, its candidates'
    # ranks in listed order (a permutation of 1..n).
    for line, row in zip(lines, rows, strict=True):
        impression_id, ranks = line.split(" ")
        assert impression_id == row.split("\t")[0]
        ranks = [int(r) for r in ranks.strip("[]").split(",")]
        assert sorted(ranks) == list(range(1, len(row.split("\t")[4].split()) + 1))
    with zipfile.ZipFile(tmp_path / "prediction.zip") as z:
        assert z.namelist() == ["prediction.txt"]
        assert z.read("prediction.txt").decode().splitlines() == lines


@pytest.mark.slow
def test_a_short_run_on_the_bundled_sample_learns(tmp_path):
    # The real command line on the bundled sample and the packaged MiniLM, frozen (its
    # layers computed once per news item) with the attention pooling and user encoder
    # trained. Run on the host's single CPU device: 8 fake devices on 2 cores cost 4x here.
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "jaxrec.main",
            "--config=configs/news.py",
            f"--workdir={tmp_path}",
            "--config.model.trainable_layers=0",
            "--config.data.history_len=20",
            "--config.train.num_steps=60",
            "--config.train.eval_every=60",
            "--config.train.learning_rate=1e-3",
            "--config.train.warmup_steps=5",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((tmp_path / "metrics.json").read_text())
    assert "popularity baseline" in proc.stdout and f"{results['dev']['auc']:.4f}" in proc.stdout
    assert results["dev"]["num_impressions"] == 1000
    assert results["dev"]["auc"] > 0.62, results
    assert results["dev"]["auc"] > results["baseline"]["dev"]["auc"] + 0.05, results


def _first(batch):
    """The first micro-batch of a stacked training batch."""
    return jax.tree.map(lambda x: x[0], batch)


def test_evaluation_in_chunks_encodes_each_history_once_and_changes_nothing(tiny):
    config, bert, _, data = tiny
    model = build_model(config, bert)
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    fns, states = infer.NewsInference(graphdef), (params, rest)
    whole = metrics.ranking_metrics(
        infer.score_split(fns, states, data.table, data.log, 64), data.log.labels
    )
    parts = infer.evaluate_split(fns, states, data.table, data.log, 64, chunk=7)
    for key, value in whole.items():
        assert parts[key] == pytest.approx(value, abs=1e-12), key
    # 160 impressions in chunks of 7: every distinct history is encoded once in all, and a
    # user met again in a later chunk is looked up, giving the vector it had.
    news_vecs = infer.news_vectors(fns, states, data.table, 64)
    users = infer.UserVectors(fns, states, news_vecs, 64)
    chunked = np.concatenate([users(part) for part in infer.chunks(data.log, 7)])
    keys = np.concatenate([data.log.history, data.log.history_mask], axis=1)
    distinct = len(np.unique(keys, axis=0))
    assert len(users.rows) == distinct < len(data.log)
    once = infer.UserVectors(fns, states, news_vecs, 64)(data.log)
    np.testing.assert_array_equal(chunked, once)
