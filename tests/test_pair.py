"""Pair recommenders: deduplicated batches, both architectures, all three heads, LoRA, predict."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from safetensors.numpy import load_file

from configs import ecommerce, movielens
from jaxrec import export, flops, optim, pretrained, sharding, train
from jaxrec.data.pair_data import BUNDLED
from jaxrec.data.pipeline import pair_batches
from jaxrec.data.report import ReadReport
from jaxrec.data.tokenize import TextTokenizer
from jaxrec.models.pair import PairRecommender, cross_tokens
from jaxrec.predict import predict
from jaxrec.sharding import Feed
from jaxrec.tasks.base import TaskEnv
from jaxrec.tasks.pair import PairTask, baseline_predictions, task_metrics


def _config(bert_dir, arg="tiny", **train_overrides):
    c = ecommerce.get_config(arg) if arg != "movielens" else movielens.get_config("tiny")
    c.model.init_from = str(bert_dir)
    c.data.user_len, c.data.item_len = 16, 24
    c.train.num_steps = 4
    c.train.update(train_overrides)
    return c


@pytest.fixture(scope="module")
def shop(tiny_bert_dir, tmp_path_factory):
    config = _config(tiny_bert_dir)
    return config, _read_task(config, tiny_bert_dir, tmp_path_factory.mktemp("cache"))


def _read_task(config, bert_dir, cache_dir):
    _, bert_config, folder = pretrained.load_bert(str(bert_dir))
    env = TaskEnv(TextTokenizer(folder, bert_config.vocab_size), cache_dir, Feed(), ReadReport())
    task = PairTask(config, env)
    task.read()
    return task


def _batch(task, **kw):
    return next(
        pair_batches(
            task.train.arrays(),
            task.users.tokens,
            task.items.tokens,
            batch_size=16,
            seed=0,
            bucket=8,
            **kw,
        )
    )


def test_pair_batches_carry_each_text_once_and_restore_every_pair(shop):
    _, task = shop
    batch = jax.tree.map(lambda x: x[0], _batch(task))
    order = np.random.default_rng(0).permutation(len(task.train))[:16]
    users = task.users.tokens["input_ids"][task.train.user_rows[order]]
    items = task.items.tokens["input_ids"][task.train.item_rows[order]]
    np.testing.assert_array_equal(batch["users"]["input_ids"][batch["user_index"]], users)
    np.testing.assert_array_equal(batch["items"]["input_ids"][batch["item_index"]], items)
    np.testing.assert_array_equal(batch["targets"], task.train.targets[order])
    distinct = len(np.unique(task.train.user_rows[order]))
    assert len(batch["users"]["rows"]) == -(-distinct // 8) * 8  # padded to the bucket
    assert len(np.unique(batch["users"]["rows"][:distinct])) == distinct


def test_process_parts_of_a_pair_batch_cover_it_once(shop):
    _, task = shop
    whole = _batch(task, micro_batches=2)
    parts = [_batch(task, micro_batches=2, block=(p, p + 1, 2)) for p in range(2)]
    for key in ("user_index", "item_index", "user_id", "item_id", "targets"):
        np.testing.assert_array_equal(np.concatenate([p[key] for p in parts], axis=1), whole[key])
    for table in ("users", "items"):
        for key in whole[table]:
            joined = np.concatenate([p[table][key] for p in parts], axis=1)
            np.testing.assert_array_equal(joined, whole[table][key])


def test_cross_tokens_put_both_texts_in_one_sequence():
    user = {"input_ids": jnp.array([[101, 7, 102, 0]]), "attention_mask": jnp.array([[1, 1, 1, 0]])}
    item = {"input_ids": jnp.array([[101, 8, 9, 102]]), "attention_mask": jnp.array([[1, 1, 1, 1]])}
    out = cross_tokens(user, item)
    np.testing.assert_array_equal(out["input_ids"], [[101, 7, 102, 0, 8, 9, 102]])
    np.testing.assert_array_equal(out["attention_mask"], [[1, 1, 1, 0, 1, 1, 1]])
    np.testing.assert_array_equal(out["token_type_ids"], [[0, 0, 0, 0, 1, 1, 1]])


@pytest.mark.parametrize("architecture,head", [("two_tower", "mlp"), ("two_tower", "dot")])
def test_deduplicated_batch_scores_equal_per_pair_encoding(shop, tiny_bert_dir, architecture, head):
    _, task = shop
    bert, _, _ = pretrained.load_bert(str(tiny_bert_dir))
    model = PairRecommender(
        bert, outputs=1, architecture=architecture, head=head, num_users=5, num_items=5,
        rngs=nnx.Rngs(0),
    )  # fmt: skip
    batch = jax.tree.map(lambda x: x[0], _batch(task))
    batch["user_id"] = batch["user_id"] % 6
    batch["item_id"] = batch["item_id"] % 6
    out = model(batch)
    users = model.encode(jax.tree.map(lambda x: x[batch["user_index"]], batch["users"]))
    items = model.encode(jax.tree.map(lambda x: x[batch["item_index"]], batch["items"]))
    np.testing.assert_allclose(out, model.predict(users, items, batch), atol=1e-5)


def test_cross_encoder_reads_the_pair_together(shop, tiny_bert_dir):
    _, task = shop
    bert, _, _ = pretrained.load_bert(str(tiny_bert_dir))
    model = PairRecommender(bert, outputs=1, architecture="cross", rngs=nnx.Rngs(0))
    batch = jax.tree.map(lambda x: x[0], _batch(task))
    out = model(batch)
    pairs = cross_tokens(
        jax.tree.map(lambda x: x[batch["user_index"]], batch["users"]),
        jax.tree.map(lambda x: x[batch["item_index"]], batch["items"]),
    )
    np.testing.assert_allclose(out, model.predict(model.encode(pairs), None, batch), atol=1e-5)
    # The item text matters: another item for the same user changes the output.
    batch["item_index"] = jnp.roll(batch["item_index"], 1)
    assert not np.allclose(model(batch), out)


def test_rating_baseline_is_the_damped_bias_predictor(shop, tiny_bert_dir, tmp_path):
    config = _config(tiny_bert_dir, "movielens")
    task = _read_task(config, tiny_bert_dir, tmp_path)
    test = task.test_log
    pred = baseline_predictions("rating", (1.0, 5.0), task.train, test)
    assert pred.min() >= 1.0 and pred.max() <= 5.0
    mean_only = task_metrics("rating", test.targets, np.full_like(pred, task.train.targets.mean()))
    assert task_metrics("rating", test.targets, pred)["rmse"] < mean_only["rmse"] - 0.02


@pytest.mark.parametrize("arg", ["click", "rating", "multilabel"])
def test_each_head_trains_evaluates_and_predicts_in_test_order(shop, tiny_bert_dir, tmp_path, arg):
    config = _config(tiny_bert_dir, arg)
    config.data.task = arg
    config.train.early_stopping_metric = {"rating": "rmse", "click": "auc", "multilabel": "map"}[
        arg
    ]
    results = train.train_and_evaluate(config, tmp_path / "wd")
    names = {
        "rating": ("rmse", "mae"),
        "click": ("auc", "log_loss"),
        "multilabel": ("micro_f1", "macro_f1", "map"),
    }[arg]
    for split in ("dev", "test"):
        assert set(names) <= set(results[split]) and set(names) <= set(results["baseline"][split])
        assert all(np.isfinite(results[split][n]) for n in names)
    assert results["test"]["num_pairs"] == 2063

    out = tmp_path / "pred.tsv"
    assert predict(tmp_path / "wd", "test", out) == 2063
    lines = out.read_text().splitlines()
    rows = (BUNDLED["interactions"] / "test.csv").read_text(encoding="utf-8").splitlines()
    expected = [r.split(",")[:2] for r in rows[1:]]
    assert [line.split("\t")[:2] for line in lines] == expected
    value = lines[0].split("\t")[2]
    if arg == "rating":
        assert 1.0 <= float(value) <= 5.0
    elif arg == "click":
        assert 0.0 < float(value) < 1.0
    else:
        labels = [kv.split(":")[0] for kv in value.split(",")]
        assert labels == ["eco", "family", "gift", "premium", "sale"]


def test_lora_trains_few_parameters_and_exports_merged(tiny_bert_dir, tmp_path, caplog):
    config = _config(tiny_bert_dir, "click")
    config.model.lora_rank = 4
    config.model.lora_targets = ("query", "value")
    config.train.phases = ()  # LoRA trains in one phase of train.num_steps
    config.train.learning_rate = 1e-2
    with caplog.at_level("INFO"):
        train.train_and_evaluate(config, tmp_path / "wd")
    line = next(r.getMessage() for r in caplog.records if "trainable of" in r.getMessage())
    trainable, total = (int(x) for x in line.split()[1::3])
    assert trainable < total / 10  # adapters and heads only; full fine-tuning trains ~all
    export.export(tmp_path / "wd", tmp_path / "out")
    exported = load_file(str(tmp_path / "out" / "model.safetensors"))
    original = load_file(str(tiny_bert_dir / "model.safetensors"))
    assert set(exported) == set(original)  # a plain BERT: no adapter tensors
    q = "encoder.layer.0.attention.self.query.weight"
    k = "encoder.layer.0.attention.self.key.weight"
    assert not np.allclose(exported[q], original[q])  # the trained adapter, merged
    np.testing.assert_array_equal(exported[k], original[k])  # not adapted, not trained
    described = json.loads((tmp_path / "out" / "jaxrec_heads.json").read_text())
    assert described["merged_lora_layers"] == 4 and described["pair_task"] == "click"


def test_frozen_layer_cache_gives_the_same_outputs(shop, tiny_bert_dir):
    """Bottom layers from the per-table cache: the same outputs as running them (inference)."""
    _, task = shop
    bert, _, _ = pretrained.load_bert(str(tiny_bert_dir))
    model = PairRecommender(bert, outputs=1, num_users=5, num_items=5, rngs=nnx.Rngs(0))
    batch = jax.tree.map(lambda x: x[0], _batch(task))
    batch["user_id"], batch["item_id"] = batch["user_id"] % 6, batch["item_id"] % 6
    lower = {
        "users": model.lower_hidden(task.users.tokens, 1),
        "items": model.lower_hidden(task.items.tokens, 1),
    }
    np.testing.assert_allclose(model(batch, lower=lower, start=1), model(batch), atol=1e-5)


def test_head_learning_rate_multiplier_speeds_up_only_the_parts_outside_the_encoder():
    c = movielens.get_config()
    c.train.update(weight_decay=0.0, warmup_steps=0, schedule="constant")
    params = {"bert": {"kernel": jnp.ones(3)}, "head": {"kernel": jnp.ones(3)}}
    grads = {"bert": {"kernel": jnp.full(3, 0.5)}, "head": {"kernel": jnp.full(3, 0.5)}}

    def first_update(multiplier):
        c.train.head_lr_multiplier = multiplier
        tx = optim.optimizer(c.train, optim.schedule(c.train, 10), params)
        return tx.update(grads, tx.init(params), params)[0]

    base, fast = first_update(1.0), first_update(20.0)
    np.testing.assert_allclose(fast["bert"]["kernel"], base["bert"]["kernel"])
    np.testing.assert_allclose(fast["head"]["kernel"], 20 * base["head"]["kernel"], rtol=1e-6)


@pytest.fixture(scope="module")
def top_layer_only(tiny_bert_dir, tmp_path_factory):
    """A two-tower click task training 1 of the tiny BERT's 2 layers, and its model without
    dropout (the cached bottom layer runs in inference mode, so the two paths then agree)."""

    def make(cache: bool):
        config = _config(tiny_bert_dir, "click")
        config.model.trainable_layers, config.model.cache_frozen_layers = 1, cache
        config.model.dropout = 0.0
        task = _read_task(config, tiny_bert_dir, tmp_path_factory.mktemp("cache"))
        _, bert_config, folder = pretrained.load_bert(str(tiny_bert_dir))
        mesh = sharding.make_mesh((-1, 1, 1))
        model = train.create_model(config, bert_config, folder, mesh, task.build)
        graphdef, trainable, frozen = nnx.split(model, task.trainable_filter(2), ...)
        task.start(graphdef, (trainable, frozen))
        batch = jax.tree.map(lambda x: x[0], next(task.batches(0)))

        def loss(trainable, extra):
            model = nnx.merge(graphdef, trainable, frozen)
            return task.loss(model, batch, extra, nnx.Rngs(dropout=jax.random.key(0)))

        loss.model = lambda trainable: nnx.merge(graphdef, trainable, frozen)
        return task, trainable, batch, loss

    return make(True), make(False)


def test_frozen_layers_of_two_towers_come_from_the_cache_with_the_same_loss_and_gradients(
    top_layer_only,
):
    (cached, trainable, _, cached_loss), (plain, _, _, plain_loss) = top_layer_only
    assert cached.cached_layers == 1 and plain.cached_layers == 0
    assert set(cached.extra) == {"users", "items"}  # one cache per text table
    assert cached.extra["users"].shape[:2] == cached.users.tokens["input_ids"].shape
    value, grads = jax.value_and_grad(cached_loss)(trainable, cached.extra)
    want, want_grads = jax.value_and_grad(plain_loss)(trainable, None)
    np.testing.assert_allclose(value, want, rtol=1e-5)
    for (path, g), (_, w) in zip(
        jax.tree_util.tree_leaves_with_path(grads), jax.tree_util.tree_leaves_with_path(want_grads),
        strict=True,
    ):  # fmt: skip
        np.testing.assert_allclose(g, w, atol=1e-6, err_msg=jax.tree_util.keystr(path))


def test_a_cached_step_computes_only_the_trained_layers_and_step_flops_counts_them(
    top_layer_only,
):
    (cached, trainable, batch, cached_loss), (plain, _, _, plain_loss) = top_layer_only

    def compiled_flops(loss, extra):
        step = jax.jit(jax.value_and_grad(loss)).lower(trainable, extra).compile()
        return step.cost_analysis()["flops"]

    with_cache = compiled_flops(cached_loss, cached.extra)
    without = compiled_flops(plain_loss, None)
    encoded = [(len(batch[t]["rows"]), batch[t]["input_ids"].shape[-1]) for t in ("users", "items")]
    bottom_layer = sum(flops.layer_forward_flops(cached.bert_config, n, w) for n, w in encoded)
    # The frozen layer's forward pass is what the cache saves, every step.
    assert without - with_cache > 0.9 * bottom_layer
    local = jax.tree.map(lambda x: x[None], batch)
    assert cached.step_flops(local) == pytest.approx(plain.step_flops(local) - bottom_layer)
    # The task's count is the encoder's share of what XLA compiles (heads and norms aside;
    # with the small dot head, XLA's count of the encoder's own ops comes out ~1% lower).
    assert 0.97 * cached.step_flops(local) <= with_cache <= 1.5 * cached.step_flops(local)


def test_the_model_is_chosen_on_validation_and_the_test_split_scored_once(
    tiny_bert_dir, tmp_path, monkeypatch
):
    """Early stopping and the best checkpoint see the dev split only; test is scored once, at
    the end, by the best checkpoint (restored when a later step was trained)."""
    import shutil

    from jaxrec import checkpointing, pair_metrics

    folder = tmp_path / "shop"
    shutil.copytree(BUNDLED["interactions"], folder)
    train_rows = (folder / "train.csv").read_text().splitlines()
    (folder / "train.csv").write_text("\n".join(train_rows[:-300]) + "\n")
    (folder / "dev.csv").write_text("\n".join(train_rows[:1] + train_rows[-300:]) + "\n")
    config = _config(tiny_bert_dir, "click")
    config.data.path = str(folder)
    # A zero learning rate never improves: the best is step 2, and patience 1 stops at 4.
    config.train.update(num_steps=8, eval_every=2, patience=1, learning_rate=0.0)
    calls = {"test": 0, "restored": []}
    score_test, restore = PairTask.test, checkpointing.restore_params

    def counted_test(self, states):
        calls["test"] += 1
        return score_test(self, states)

    def recorded_restore(workdir, abstract, step=None):
        calls["restored"].append(step)
        return restore(workdir, abstract, step)

    monkeypatch.setattr(PairTask, "test", counted_test)
    monkeypatch.setattr(checkpointing, "restore_params", recorded_restore)
    results = train.train_and_evaluate(config, tmp_path / "wd")
    assert results["best_step"] == 2 and results["last_step"] == 4
    assert results["dev"]["num_pairs"] == 300  # dev.csv, not test.csv
    assert calls == {"test": 1, "restored": [2]}
    written = json.loads((tmp_path / "wd" / "metrics.json").read_text())
    assert written["dev"] == results["dev"] and written["test"] == results["test"]
    # What predict writes from the best checkpoint scores what the run reported as test.
    out = tmp_path / "pred.tsv"
    predict(tmp_path / "wd", None, out)
    probs = np.array([float(line.split("\t")[2]) for line in out.read_text().splitlines()])
    rows = (folder / "test.csv").read_text().splitlines()[1:]
    clicks = np.array([float(r.split(",")[3]) for r in rows])
    auc = pair_metrics.binary_auc(clicks, probs)
    assert results["test"]["num_pairs"] == len(rows)
    assert auc == pytest.approx(results["test"]["auc"], abs=2e-3)
    # The workdir keeps the ID vocabularies: export needs no data at all.
    shutil.rmtree(folder)
    export.export(tmp_path / "wd", tmp_path / "exported")
    described = json.loads((tmp_path / "exported" / "jaxrec_heads.json").read_text())
    # Row i + 1 of the user embeddings: the i-th user of train.csv, in order of appearance.
    assert described["user_ids"] == list(dict.fromkeys(r.split(",")[0] for r in train_rows[1:-300]))


def _pair_batch(uid, iid):
    return {"user_id": jnp.array(uid, jnp.int32), "item_id": jnp.array(iid, jnp.int32)}


def test_dot_head_is_biased_mf_whose_factors_the_text_informs(tiny_bert_dir):
    """out = mu + b_u + b_i + w_u.t_u + w_i.t_i + (p_u + A t_u + a).(q_i + B t_i + b), with
    t the L2-normalised text vectors; an item unseen in training (row 0) has its text only."""
    bert, _, _ = pretrained.load_bert(str(tiny_bert_dir))
    model = PairRecommender(
        bert, outputs=1, head="dot", num_users=3, num_items=3, id_dim=4, dropout=0.0,
        rngs=nnx.Rngs(0),
    )  # fmt: skip
    rng = np.random.default_rng(0)
    for layer in (model.user_text_bias, model.item_text_bias):
        layer.kernel[...] = rng.normal(size=layer.kernel.shape)
    for table in (model.user_bias, model.item_bias):
        table.embedding[...] = rng.normal(size=table.embedding.shape)
    users, items = rng.normal(size=(4, 32)), rng.normal(size=(4, 32))
    batch = _pair_batch([1, 2, 3, 1], [0, 0, 2, 3])
    out, penalty = model.head(jnp.asarray(users), jnp.asarray(items), batch)

    p = {k: np.asarray(v[...]) for k, v in nnx.to_flat_state(nnx.state(model, nnx.Param))}
    p = {".".join(map(str, k)): v for k, v in p.items()}
    u = users / np.linalg.norm(users, axis=1, keepdims=True)
    i = items / np.linalg.norm(items, axis=1, keepdims=True)
    uid, iid = np.array([1, 2, 3, 1]), np.array([0, 0, 2, 3])
    f_u = p["user_ids.embedding"][uid] + u @ p["user_factor.kernel"] + p["user_factor.bias"]
    f_i = p["item_ids.embedding"][iid] + i @ p["item_factor.kernel"] + p["item_factor.bias"]
    b_u, b_i = p["user_bias.embedding"][uid], p["item_bias.embedding"][iid]
    want = p["global_bias"] + b_u + b_i + u @ p["user_text_bias.kernel"]
    want = want + i @ p["item_text_bias.kernel"] + np.sum(f_u * f_i, 1, keepdims=True)
    np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-6)
    # The penalty: squared factor norms and ID biases, averaged over the pairs.
    np.testing.assert_allclose(penalty["factors"], np.mean(np.sum(f_u**2 + f_i**2, 1)), rtol=1e-5)
    np.testing.assert_allclose(
        penalty["biases"], np.mean(b_u[:, 0] ** 2 + b_i[:, 0] ** 2), rtol=1e-5
    )
    assert abs(out[0, 0] - out[1, 0]) > 1e-4  # two unseen items told apart by their text

    no_text = PairRecommender(
        bert, outputs=1, head="dot", use_text=False, num_users=3, num_items=3, id_dim=4,
        rngs=nnx.Rngs(0),
    )  # fmt: skip
    assert not hasattr(no_text, "user_factor")
    out, _ = no_text.head(None, None, _pair_batch([1, 1], [0, 0]))
    assert out[0, 0] == out[1, 0]  # IDs alone: unseen items are all alike


def test_head_dropout_is_on_in_training_only(tiny_bert_dir):
    bert, _, _ = pretrained.load_bert(str(tiny_bert_dir))
    users, items = jnp.ones((8, 32)), jnp.ones((8, 32)) * 0.5
    batch = _pair_batch([1] * 8, [2] * 8)
    for head in ("dot", "mlp"):
        model = PairRecommender(
            bert, outputs=1, head=head, num_users=3, num_items=3, dropout=0.5, rngs=nnx.Rngs(0)
        )
        if head == "dot":  # text factors that matter
            model.user_factor.kernel[...] = jnp.ones_like(model.user_factor.kernel[...])
            model.item_factor.kernel[...] = jnp.ones_like(model.item_factor.kernel[...])

        def train_out(seed, model=model):
            rngs = nnx.Rngs(dropout=jax.random.key(seed))
            return model.head(users, items, batch, deterministic=False, rngs=rngs)[0]

        assert not np.allclose(train_out(0), train_out(1))  # a fresh mask each step
        inference = model.predict(users, items, batch)
        np.testing.assert_allclose(inference, inference[:1].repeat(8, 0))  # no mask at all
        model.dropout.rate = 0.0
        np.testing.assert_allclose(train_out(0), inference, rtol=1e-6)


def test_ratings_are_trained_as_they_are_and_clipped_to_the_range_at_inference():
    from jaxrec.tasks.pair import pair_loss
    from jaxrec.tasks.pair_inference import to_prediction

    out = jnp.array([[0.2], [3.3], [7.0]])
    np.testing.assert_allclose(to_prediction(out, "rating", (1.0, 5.0)), [[1.0], [3.3], [5.0]])
    targets = jnp.array([[1.0], [3.0], [5.0]])
    np.testing.assert_allclose(pair_loss(out, targets, "rating"), (0.64 + 0.09 + 4.0) / 3)


def test_the_loss_adds_the_l2_penalty_of_the_factors_and_biases_each_pair_uses(top_layer_only):
    (task, trainable, batch, loss), _ = top_layer_only
    m = task.config.model
    model = loss.model(trainable)
    _, penalty = model.forward(batch, lower=task.extra, start=task.cached_layers)
    assert float(penalty["factors"]) > 0 and float(penalty["biases"]) >= 0
    saved = m.id_l2, m.id_bias_l2
    try:
        m.id_l2, m.id_bias_l2 = 0.0, 0.0
        plain = float(loss(trainable, task.extra))
        m.id_l2, m.id_bias_l2 = 0.5, 2.0
        penalised = float(loss(trainable, task.extra))
    finally:
        m.id_l2, m.id_bias_l2 = saved
    want = 0.5 * float(penalty["factors"]) + 2.0 * float(penalty["biases"])
    assert penalised - plain == pytest.approx(want, rel=1e-4)


def test_a_model_without_text_neither_runs_nor_trains_the_encoder(
    tiny_bert_dir, tmp_path, monkeypatch
):
    from jaxrec.models.bert import BertModel

    config = _config(tiny_bert_dir, "click")
    config.model.update(use_text=False, trainable_layers=-1)
    task = _read_task(config, tiny_bert_dir, tmp_path / "cache")
    _, bert_config, folder = pretrained.load_bert(str(tiny_bert_dir))
    model = train.create_model(
        config, bert_config, folder, sharding.make_mesh((-1, 1, 1)), task.build
    )
    graphdef, trainable, frozen = nnx.split(model, task.trainable_filter(2), ...)
    names = {".".join(map(str, k)) for k, _ in nnx.to_flat_state(trainable)}
    assert names and not any(n.startswith("bert.") for n in names)  # IDs, biases only
    task.start(graphdef, (trainable, frozen))
    assert task.cached_layers == 0 and task.extra is None  # no text encoded for a cache

    def no_encoder(*args, **kwargs):
        raise AssertionError("the encoder ran")

    monkeypatch.setattr(BertModel, "embed", no_encoder)
    batch = jax.tree.map(lambda x: x[0], next(task.batches(0)))
    out = nnx.merge(graphdef, trainable, frozen)(batch)
    assert out.shape == (config.train.batch_size, 1) and np.all(np.isfinite(out))


def test_a_rating_workdir_from_the_sigmoid_rating_head_is_refused(tmp_path):
    """Ratings were once sigmoid-squashed into the range; they are clipped now. A workdir
    whose record does not say how its ratings are read would predict wrong numbers silently."""
    from jaxrec.errors import CheckpointError

    vocab = {"task": "rating", "users": ["u"], "items": ["i"], "label_names": [],
             "rating_range": [1.0, 5.0], "target_mean": [3.5]}  # fmt: skip
    task = object.__new__(PairTask)  # restore_record reads only the record
    with pytest.raises(CheckpointError, match="sigmoid"):
        task.restore_record({"vocab": vocab})
    task.restore_record({"vocab": vocab, "rating_output": "clipped"})
    assert task.vocab.rating_range == [1.0, 5.0]
    click = dict(vocab, task="click", rating_range=None)
    task.restore_record({"vocab": click})  # clicks were always read through a sigmoid
    assert task.vocab.task == "click"
