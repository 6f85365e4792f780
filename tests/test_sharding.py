"""Sharded training: the same run on every mesh, gradient accumulation, FSDP coverage."""

import os
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from configs import news as news_config
from jaxrec import sharding, train
from jaxrec.errors import ConfigError
from jaxrec.models.bert import BertConfig, BertModel
from jaxrec.models.news import NewsRecommender
from tests.runs import assert_same_results

ROOT = Path(__file__).resolve().parent.parent


def _config(data_dir, bert_dir, **overrides):
    c = news_config.get_config("tiny")
    c.data.dir = str(data_dir)
    c.model.init_from = str(bert_dir)
    c.model.trainable_layers = -1  # every layer trained: sharded gradients everywhere
    c.train.eval_every = 4
    c.train.patience = 0
    for key, value in overrides.items():
        section, name = key.split("__")
        c[section][name] = value
    return c


@pytest.fixture(scope="module")
def single_device_run(tiny_mind_dir, tiny_bert_dir, tmp_path_factory):
    """The reference: the same run as a separate process that sees one CPU device."""
    workdir = tmp_path_factory.mktemp("single") / "wd"
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    config = _config(tiny_mind_dir, tiny_bert_dir)
    overrides = [
        f"--config.data.dir={config.data.dir}",
        f"--config.model.init_from={config.model.init_from}",
        "--config.model.trainable_layers=-1",
        "--config.train.eval_every=4",
        "--config.train.patience=0",
    ]
    proc = subprocess.run(
        [sys.executable, "-m", "jaxrec.main", "--config=configs/news.py:tiny"]
        + [f"--workdir={workdir}", *overrides],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return workdir


@pytest.mark.parametrize("shape", [(8, 1, 1), (2, 4, 1), (2, 2, 2), (1, 8, 1)])
def test_every_mesh_ends_where_one_device_does(
    shape, single_device_run, tiny_mind_dir, tiny_bert_dir, tmp_path
):
    config = _config(tiny_mind_dir, tiny_bert_dir, mesh__shape=shape)
    results = train.train_and_evaluate(config, tmp_path / "wd")
    assert results["dev"]["num_impressions"] == 48  # every dev impression, once
    assert_same_results(tmp_path / "wd", single_device_run)


def test_accumulating_micro_batches_equals_the_whole_batch(tiny_mind_dir, tiny_bert_dir, tmp_path):
    """4 micro-batches of 8 give the update of one batch of 32 (dropout off: same masks)."""
    common = dict(train__batch_size=32, train__num_steps=2, train__eval_every=2, model__dropout=0.0)
    whole = _config(tiny_mind_dir, tiny_bert_dir, **common, train__micro_batches=1)
    micro = _config(tiny_mind_dir, tiny_bert_dir, **common, train__micro_batches=4)
    train.train_and_evaluate(whole, tmp_path / "whole")
    train.train_and_evaluate(micro, tmp_path / "micro")
    assert_same_results(tmp_path / "whole", tmp_path / "micro")


def test_micro_batches_must_split_over_the_batch_shards(tiny_mind_dir, tiny_bert_dir, tmp_path):
    config = _config(tiny_mind_dir, tiny_bert_dir, train__batch_size=16, train__micro_batches=4)
    with pytest.raises(ConfigError, match="train.micro_batches"):
        train.train_and_evaluate(config, tmp_path / "wd")
    assert not (tmp_path / "wd").exists()  # refused before anything was written


def _deep_model_state():
    """A 24-layer encoder at tiny widths with the news heads, abstract (nothing allocated)."""
    bert_config = BertConfig(
        vocab_size=1000,
        hidden_size=64,
        num_hidden_layers=24,
        num_attention_heads=4,
        intermediate_size=256,
        max_position_embeddings=64,
    )

    def create():
        bert = BertModel(bert_config, rngs=nnx.Rngs(0))
        return NewsRecommender(bert, attention_hidden=32, rngs=nnx.Rngs(0))

    return nnx.split(nnx.eval_shape(create))[1]


def test_fsdp_shards_every_large_parameter_of_a_24_layer_model():
    state = _deep_model_state()
    mesh = sharding.make_mesh((1, 8, 1))
    shardings = sharding.state_shardings(state, mesh, sharding.DEFAULT_RULES)
    flat = dict(nnx.to_flat_state(shardings))
    large = 0
    for path, var in nnx.to_flat_state(state):
        if np.prod(var.shape) >= 64 * 64:
            large += 1
            spec = flat[path].get_value().spec
            assert "fsdp" in jax.tree.leaves(tuple(spec)), (path, spec)
    assert large == 24 * 6 + 3  # q, k, v, attention out, MLP in/out per layer; 2 embeddings, pooler
    share = sharding.overview(state, shardings, mesh, max_replicated=0.05)
    assert share < 0.05


def test_fsdp_with_a_rule_table_that_misses_big_parameters_is_an_error():
    state = _deep_model_state()
    mesh = sharding.make_mesh((1, 8, 1))
    rules = [(name, axes) for name, axes in sharding.DEFAULT_RULES if name != "embed"]
    shardings = sharding.state_shardings(state, mesh, rules)
    with pytest.raises(ConfigError, match="replicated"):
        sharding.overview(state, shardings, mesh, max_replicated=0.5)


def test_spec_keeps_indivisible_dimensions_whole():
    mesh = sharding.make_mesh((2, 2, 2))
    rules = sharding.DEFAULT_RULES
    assert sharding.spec(("vocab", "embed"), (10, 8), mesh, rules) == jax.P("tensor", "fsdp")
    assert sharding.spec(("vocab", "embed"), (9, 8), mesh, rules) == jax.P(None, "fsdp")
    assert sharding.spec(("batch", None), (8, 3), mesh, rules) == jax.P(("data", "fsdp"), None)
    # A mesh axis is used once per array even if two names map to it.
    assert sharding.spec(("embed", "embed"), (8, 8), mesh, rules) == jax.P("fsdp", None)


@pytest.mark.parametrize(
    "shape,error",
    [((3, 1, 1), "needs 3 devices"), ((-1, -1, 1), "one of which"), ((5, -1, 1), "divisible")],
)
def test_mesh_shapes_that_do_not_fit_the_devices(shape, error):
    with pytest.raises(ConfigError, match=error):
        sharding.make_mesh(shape)


def test_feed_parts_rebuild_the_global_batch():
    mesh = sharding.make_mesh((2, 2, 2))
    feed = sharding.Feed(mesh)
    batch = {"x": np.arange(24).reshape(2, 12)}
    placed = feed.put(batch, axis=1)
    assert placed["x"].shape == (2, 12)
    np.testing.assert_array_equal(np.asarray(placed["x"]), batch["x"])
    assert placed["x"].sharding.spec == jax.P(None, ("data", "fsdp"))
    total = jnp.sum(placed["x"])  # a computation over the split array sees every row
    assert int(total) == batch["x"].sum()


def _cached_step_and_eval(config, mesh):
    """(frozen-layer cache, loss of one train step, dev metrics) of a news task on `mesh`."""
    from jaxrec import pretrained
    from jaxrec.convert import hf
    from jaxrec.data.tokenize import TextTokenizer
    from jaxrec.tasks.base import TaskEnv
    from jaxrec.tasks.news import NewsTask

    with sharding.activate(mesh, config.mesh.rules):
        folder = pretrained.resolve(config.model.init_from)
        bert_config = hf.read_config(folder)
        tok = TextTokenizer(folder, bert_config.vocab_size)
        task = NewsTask(config, TaskEnv(tok, Path(config.data.cache_dir), sharding.Feed(mesh)))
        task.read()
        model = train.create_model(config, bert_config, folder, mesh, task.build)
        graphdef, trainable, frozen = nnx.split(model, task.trainable_filter(2), ...)
        tx, _, opt_state, shardings = train.place_optimizer(config, trainable, frozen, mesh, 4)
        task.start(graphdef, (trainable, frozen))
        extra = jax.tree.map(lambda x: x.sharding, task.extra)
        step = train.make_train_step(graphdef, tx, task.step_loss, shardings | {"extra": extra})
        batch = task.env.feed.put_local(next(task.batches(0)), axis=1)
        trainable, _, _, metrics = step(
            trainable, frozen, opt_state, task.carry, batch, jax.random.key(0), task.extra
        )  # the step donates the old parameters: evaluate the updated ones
        return task.extra, float(metrics["loss"]), task.evaluate((trainable, frozen))


def test_the_frozen_layer_cache_is_split_by_rows_and_changes_no_result(
    tiny_mind_dir, tiny_bert_dir, tmp_path
):
    config = _config(tiny_mind_dir, tiny_bert_dir, model__trainable_layers=1)
    config.data.cache_dir = str(tmp_path)
    split, loss, dev = _cached_step_and_eval(config, sharding.make_mesh((8, 1, 1)))
    # Each of the 8 devices holds an eighth of the rows (the table padded to split evenly).
    rows = split.shape[0]
    assert rows % 8 == 0 and split.sharding.spec == jax.P(("data", "fsdp"))
    assert {s.data.shape[0] for s in split.addressable_shards} == {rows // 8}
    assert split.dtype == jnp.float32  # the compute dtype

    one = sharding.make_mesh((1, 1, 1), devices=jax.devices()[:1])
    whole, want_loss, want_dev = _cached_step_and_eval(config, one)
    assert whole.shape[0] <= rows  # one device: no padding rows
    np.testing.assert_allclose(np.asarray(split)[: whole.shape[0]], np.asarray(whole), atol=1e-6)
    assert loss == pytest.approx(want_loss, abs=1e-5)
    for key, value in want_dev.items():
        assert dev[key] == pytest.approx(value, abs=1e-5), key
