"""Each step's news in groups of a few widths, and the history news-vector cache."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from configs import news as news_config
from jaxrec import optim, pretrained, sharding, train
from jaxrec.data import mind
from jaxrec.data.news_batches import BatchBuilder, Layout, plan_layout, simulate
from jaxrec.data.news_data import load_split
from jaxrec.data.pipeline import (
    length_buckets,
    micro_batch_samples,
    text_lengths,
    train_batches,
    train_samples,
)
from jaxrec.data.tokenize import TextTokenizer
from jaxrec.models.bert import Dropout
from jaxrec.tasks import news_inference as infer
from jaxrec.tasks.news import build_model, news_loss


@pytest.fixture(scope="module")
def tiny(tiny_mind_dir, tiny_bert_dir, tmp_path_factory):
    config = news_config.get_config("tiny")
    config.data.dir, config.model.init_from = str(tiny_mind_dir), str(tiny_bert_dir)
    bert, bert_config, folder = pretrained.load_bert(str(tiny_bert_dir))
    tok = TextTokenizer(folder, bert_config.vocab_size)
    cache = tmp_path_factory.mktemp("cache")
    data = load_split(config.data, "train", tok, cache_dir=cache, report=mind.ReadReport())
    return config, bert, data


def _layout(data, refresh=0, batch_size=8):
    widths = length_buckets(data.table.tokens["input_ids"].shape[1])
    lengths = text_lengths(data.table.tokens["attention_mask"])
    samples = micro_batch_samples(data.log, batch_size=batch_size, npratio=4, seed=0, count=32)
    return plan_layout(simulate(lengths, widths, samples, refresh), widths, bucket=32, shards=8)


def _batches(data, **kw):
    kw = dict(batch_size=8, npratio=4, seed=0, news_bucket=32) | kw
    return train_batches(data.log, data.table, **kw)


def _first(batch):
    return jax.tree.map(lambda x: x[0], batch)


def test_length_groups_give_the_full_width_scores_with_fewer_tokens(tiny):
    config, bert, data = tiny
    layout = _layout(data)
    assert len(layout.widths) > 1 and layout.widths[-1] == 16
    model = build_model(config, bert)
    for step, (full, grouped) in enumerate(
        zip(_batches(data), _batches(data, layout=layout), strict=True)
    ):
        full, grouped = _first(full), _first(grouped)
        tokens = [g["input_ids"].size for g in grouped["news"]]
        assert sum(tokens) < full["news"][0]["input_ids"].size
        np.testing.assert_allclose(model(grouped), model(full), atol=1e-5)
        if step == 2:
            break
    # The frozen-layer cache path: the top layer on gathered, width-cut hidden states.
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    lower = infer.lower_cache(infer.NewsInference(graphdef), (params, rest), data.table, 1, 64)
    model = nnx.clone(model)
    for _, module in nnx.iter_modules(model):
        if isinstance(module, Dropout):
            module.rate = 0.0  # the loss runs in training mode: no dropout, for the comparison
    a, _ = news_loss(1)(model, full, lower.hidden, None, nnx.Rngs(dropout=0))
    b, _ = news_loss(1)(model, grouped, lower.hidden, None, nnx.Rngs(dropout=0))
    np.testing.assert_allclose(a, b, atol=1e-5)


def test_every_row_is_placed_once_in_a_group_that_holds_it():
    rng = np.random.default_rng(0)
    lengths = rng.integers(2, 25, 400)
    lengths[0] = 2  # row 0: the empty news item
    layout = Layout((8, 16, 24), (16, 16, 8), bucket=16)
    builder = BatchBuilder(lengths, layout)
    history = rng.integers(1, 400, (2, 6, 10))
    mask = (rng.random((2, 6, 10)) < 0.7).astype(np.int32)
    candidates = rng.integers(1, 400, (2, 6, 5))
    step = builder.step(history, mask, candidates)
    assert step["widths"] == [8, 16, 24]
    sizes = [r.shape[1] for r in step["rows"]]
    assert sizes[:2] == [16, 16] and sizes[2] > 8 and (sizes[2] - 8) % 16 == 0  # it grew
    for i in range(2):
        placed = np.concatenate([r[i] for r in step["rows"]])
        width = np.concatenate(
            [np.full(r.shape[1], w) for r, w in zip(step["rows"], step["widths"], strict=True)]
        )
        real = placed != 0
        wanted = np.union1d(candidates[i], history[i][mask[i] > 0])
        np.testing.assert_array_equal(np.sort(placed[real]), wanted)  # each once
        assert (lengths[placed] <= width).all()
        np.testing.assert_array_equal(placed[step["candidates"][i]], candidates[i])
        clicked = mask[i] > 0
        np.testing.assert_array_equal(placed[step["history"][i]][clicked], history[i][clicked])


def test_the_history_cache_refreshes_stale_rows_and_keeps_candidates_fresh():
    rng = np.random.default_rng(1)
    lengths = rng.integers(2, 17, 60)
    refresh = 3
    builder = BatchBuilder(lengths, Layout((8, 16), (64, 64), bucket=8), refresh=refresh)
    encoded_at = set()
    for _ in range(12):
        history = rng.integers(1, 60, (1, 4, 8))
        mask = np.ones_like(history)
        candidates = rng.integers(1, 60, (1, 4, 3))
        before = builder.age.copy()
        step = builder.step(history, mask, candidates)
        placed = np.concatenate([r[0] for r in step["rows"]])
        e = len(placed)
        cands = set(candidates.ravel())
        assert cands <= set(placed)  # candidates: always encoded
        for slot, row in zip(step["history"][0].ravel(), history[0].ravel(), strict=True):
            if slot >= e:  # read from the cache: only fresh history-only rows
                assert slot - e == row and row not in cands and before[row] < refresh
            else:
                assert placed[slot] == row
                assert row in cands or before[row] >= refresh  # encoded: stale (room enough)
        encoded_at |= set(placed[placed != 0])
        np.testing.assert_array_equal(builder.age[placed[placed != 0]], 0)
    assert len(encoded_at) > 30


def test_cached_vectors_read_without_gradient_give_the_fresh_scores(tiny):
    config, bert, data = tiny
    model = build_model(config, bert)
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    vectors = infer.news_vectors(infer.NewsInference(graphdef), (params, rest), data.table, 64)
    n = len(vectors)
    fresh = _first(next(_batches(data)))
    # Ages 0: every history-only row is fresh, so it is read from the cache.
    cached = _first(next(_batches(data, history_cache=5, age=np.zeros(n, np.int32))))
    encoded = sum(g["rows"].shape[0] for g in cached["news"])
    assert (cached["history"] >= encoded).any()
    assert encoded < sum(g["rows"].shape[0] for g in fresh["news"])
    table = jnp.asarray(vectors)

    def scores(params, batch, table):
        m = nnx.merge(graphdef, params, rest)
        return m.score_batch(m.encode_groups(batch["news"]), batch, cache=table)

    scores = jax.jit(scores)
    np.testing.assert_allclose(
        scores(params, cached, table), scores(params, fresh, None), atol=1e-5
    )

    def loss(table, params):
        s = scores(params, cached, table)
        return jnp.mean(jax.nn.logsumexp(s, axis=-1) - s[:, 0])

    to_table, to_params = jax.jit(jax.grad(loss, argnums=(0, 1)))(table, params)
    assert not np.asarray(to_table).any()  # stale entries pass no gradient
    assert np.asarray(to_params["user_encoder"]["pool"]["proj"]["kernel"][...]).any()


def test_the_step_keeps_the_cache_and_its_ages_as_the_batches_assume(tiny):
    """Sharded over 8 devices, two micro-batches a step: after each step the devices' ages
    equal the host's (in micro-batches), and the rows just encoded hold new vectors."""
    config, bert, data = tiny
    model = build_model(config, bert)
    is_trainable = optim.trainable_filter(2, -1)
    graphdef, trainable, frozen = nnx.split(model, is_trainable, ...)
    mesh = sharding.make_mesh((-1, 1, 1))
    steps, refresh, m = 4, 2, 2  # refresh in steps; ages count micro-batches
    with sharding.activate(mesh, sharding.DEFAULT_RULES):
        tx, _, opt_state, shardings = train.place_optimizer(config, trainable, frozen, mesh, 10)
        step_fn = train.make_train_step(graphdef, tx, news_loss(0), shardings)
        feed = sharding.Feed(mesh)
        n = len(data.table)
        carry = {
            "vectors": feed.replicate(np.zeros((n, 32), np.float32)),
            "age": feed.replicate(np.full(n, refresh * m, np.int32)),
        }
        layout = _layout(data, refresh * m)
        batches = train_batches(
            data.log,
            data.table,
            batch_size=16,
            npratio=4,
            seed=0,
            news_bucket=32,
            micro_batches=m,
            block=feed.block,
            layout=layout,
            history_cache=refresh,
        )
        lengths = text_lengths(data.table.tokens["attention_mask"])
        host = BatchBuilder(lengths, layout, refresh=refresh * m)
        samples = train_samples(data.log, 4, 0)
        for i in range(steps):
            local = next(batches)
            part = {k: v[i * 16 : (i + 1) * 16].reshape(m, 8, -1) for k, v in samples.items()}
            host.step(part["history"], part["history_mask"], part["candidates"])
            trainable, opt_state, carry, metrics = step_fn(
                trainable, frozen, opt_state, carry, feed.put_local(local, axis=1),
                jax.random.key(i), None,
            )  # fmt: skip
            np.testing.assert_array_equal(np.asarray(carry["age"]), host.age)
        assert np.isfinite(metrics["loss"])
        age = np.asarray(carry["age"])
        assert (age == 0)[1:].any() and age[0] > 0  # row 0 (padding) is never stored
        vectors = np.asarray(carry["vectors"])
        assert np.abs(vectors[age < steps * m]).sum(axis=1).min() > 0
        assert not vectors[age == refresh * m + steps * m].any()  # never written
