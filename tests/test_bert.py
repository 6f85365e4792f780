"""The Flax BERT against PyTorch transformers.BertModel on the same pretrained weights."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import transformers
from flax import nnx

from jaxrec.data.tokenize import TextTokenizer
from jaxrec.models.bert import BertConfig, BertModel


@pytest.fixture(scope="module")
def torch_bert(minilm_dir):
    model = transformers.BertModel.from_pretrained(str(minilm_dir), local_files_only=True)
    return model.eval()


def _batch(minilm_dir, config):
    tok = TextTokenizer(minilm_dir, config.vocab_size)
    # Two lengths with padding, and a sentence pair so token_type_ids are non-zero.
    return (
        tok(
            ["Stocks rally as the Fed holds rates steady", "Rain tonight", "Local team wins"],
            max_length=16,
            pairs=["Investors cheer the decision", "Umbrellas out", "Fans celebrate downtown"],
        )
        | {}
    )


def test_parity_with_transformers(minilm, minilm_dir, torch_bert):
    model, config = minilm
    batch = _batch(minilm_dir, config)
    batch["attention_mask"][1, 9:] = 0  # an extra padded tail on one row
    assert batch["token_type_ids"].any() and not batch["attention_mask"].all()
    hidden, pooled = model(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"])
    with torch.no_grad():
        ref = torch_bert(**{k: torch.from_numpy(v).long() for k, v in batch.items()})
    mask = batch["attention_mask"].astype(bool)
    diff_hidden = np.abs(np.asarray(hidden) - ref.last_hidden_state.numpy())[mask].max()
    diff_pooled = np.abs(np.asarray(pooled) - ref.pooler_output.numpy()).max()
    assert diff_hidden <= 1e-4, diff_hidden
    assert diff_pooled <= 1e-4, diff_pooled


def test_padding_does_not_change_real_tokens(minilm, minilm_dir):
    model, config = minilm
    tok = TextTokenizer(minilm_dir, config.vocab_size)
    short = tok(["Markets slide on rate fears"], max_length=10)
    long = tok(["Markets slide on rate fears"], max_length=24)
    h_short = model.hidden_states(short["input_ids"], short["attention_mask"])
    h_long = model.hidden_states(long["input_ids"], long["attention_mask"])
    n = int(short["attention_mask"].sum())
    np.testing.assert_allclose(h_short[0, :n], h_long[0, :n], atol=1e-5)


def test_dropout_is_random_in_training_and_off_at_inference():
    config = BertConfig(
        vocab_size=50,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=16,
    )
    model = BertModel(config, rngs=nnx.Rngs(0))
    ids = jnp.arange(8)[None] % 50
    a = model.hidden_states(ids, deterministic=False, rngs=nnx.Rngs(dropout=1))
    b = model.hidden_states(ids, deterministic=False, rngs=nnx.Rngs(dropout=2))
    c, d = model.hidden_states(ids), model.hidden_states(ids)
    assert not np.allclose(a, b)
    np.testing.assert_array_equal(c, d)


def test_bfloat16_compute_stays_close(minilm_dir):
    from jaxrec import pretrained

    model, config, _ = pretrained.load_bert(str(minilm_dir), dtype=jnp.bfloat16)
    ref, _, _ = pretrained.load_bert(str(minilm_dir))
    batch = TextTokenizer(minilm_dir, config.vocab_size)(["A quiet day on Wall Street"], 12)
    h16 = model.hidden_states(batch["input_ids"], batch["attention_mask"])
    h32 = ref.hidden_states(batch["input_ids"], batch["attention_mask"])
    assert h16.dtype == jnp.bfloat16
    params = jax.tree.leaves(nnx.state(model, nnx.Param))
    assert all(p.dtype == jnp.float32 for p in params)
    # Cosine similarity per token: bf16 keeps the representation, not every digit.
    a, b = np.asarray(h16, np.float32)[0], np.asarray(h32)[0]
    cos = (a * b).sum(-1) / np.linalg.norm(a, axis=-1) / np.linalg.norm(b, axis=-1)
    assert cos.min() > 0.99, cos


TINY = BertConfig(
    vocab_size=50,
    hidden_size=16,
    num_hidden_layers=2,
    num_attention_heads=2,
    intermediate_size=32,
    max_position_embeddings=16,
)


def test_fused_qkv_projection_equals_the_three_layers():
    attention = BertModel(TINY, rngs=nnx.Rngs(0)).encoder.layer[0].attention.self
    x = jax.random.normal(jax.random.key(1), (3, 7, TINY.hidden_size))
    fused = attention.project(x)
    for got, layer in zip(fused, (attention.query, attention.key, attention.value), strict=True):
        np.testing.assert_allclose(got, layer(x), atol=1e-6)


def test_remat_gives_the_same_loss_and_gradients():
    ids = jnp.arange(24).reshape(2, 12) % TINY.vocab_size
    mask = jnp.ones_like(ids).at[1, 9:].set(0)

    def loss_and_grads(remat: bool):
        model = BertModel(TINY, remat=remat, rngs=nnx.Rngs(0))
        graphdef, params = nnx.split(model, nnx.Param)

        def loss(params):
            bert = nnx.merge(graphdef, params)
            # Dropout on: the recomputed layers must draw the same masks.
            h = bert.hidden_states(ids, mask, deterministic=False, rngs=nnx.Rngs(dropout=3))
            return jnp.mean(h**2)

        return jax.jit(jax.value_and_grad(loss))(params)

    (plain, g_plain), (remat, g_remat) = loss_and_grads(False), loss_and_grads(True)
    np.testing.assert_allclose(remat, plain, atol=1e-5)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, atol=1e-5), g_remat, g_plain)


def test_dropout_keeps_the_expected_share_and_scales_it():
    from jaxrec.models.bert import Dropout

    x = jnp.ones((64, 32, 48))
    y = np.asarray(Dropout(0.1)(x, deterministic=False, rngs=nnx.Rngs(dropout=0)))
    kept = y > 0
    assert abs(kept.mean() - 0.9) < 0.005, kept.mean()
    np.testing.assert_allclose(y[kept], 1 / 0.9, rtol=1e-6)
    # Neighbouring elements are not correlated (the mask hashes each position).
    flat = kept.reshape(-1).astype(np.float32)
    assert abs(np.corrcoef(flat[:-1], flat[1:])[0, 1]) < 0.01
    np.testing.assert_array_equal(Dropout(0.1)(x, deterministic=True, rngs=None), x)
    with pytest.raises(ValueError, match="rngs"):
        Dropout(0.1)(x, deterministic=False, rngs=None)


def test_fused_attention_equals_the_unfused_softmax():
    """Without attention dropout, attention runs through jax.nn.dot_product_attention (cuDNN's
    fused kernel on GPUs): on CPU it gives what the unfused products and softmax give."""
    import math

    from jaxrec.models.bert import AttentionMask, BertSelfAttention, attention_bias, fused_attention

    keys = jax.random.split(jax.random.key(0), 3)
    q, k, v = (jax.random.normal(key, (3, 7, 4, 8)) for key in keys)
    mask = jnp.array([[1] * 7, [1] * 4 + [0] * 3, [1] * 2 + [0] * 5])
    logits = jnp.einsum("bqnd,bknd->bnqk", q, k) / math.sqrt(8) + attention_bias(mask)
    unfused = jnp.einsum("bnqk,bknd->bqnd", jax.nn.softmax(logits, axis=-1), v)
    fused = fused_attention(q, k, v, AttentionMask(attention_bias(mask), mask.sum(-1)))
    np.testing.assert_allclose(fused, unfused, atol=1e-6)

    # In a layer: the fused form at inference, the unfused one under dropout (rate -> 0).
    config = BertConfig(hidden_size=32, num_attention_heads=4, attention_probs_dropout_prob=0.1)
    layer = BertSelfAttention(config, dtype=jnp.float32, rngs=nnx.Rngs(0))
    x = jax.random.normal(keys[0], (3, 7, 32))
    masks = AttentionMask(attention_bias(mask), mask.sum(-1))
    fused = layer(x, masks, deterministic=True, rngs=None)
    layer.dropout.rate = 1e-12  # the unfused path, dropping nothing
    unfused = layer(x, masks, deterministic=False, rngs=nnx.Rngs(dropout=1))
    np.testing.assert_allclose(fused, unfused, atol=1e-5)
