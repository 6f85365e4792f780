"""PLM-NR: a BERT news encoder, a user encoder over the click history, dot-product scores.

Batches arrive deduplicated: `news` holds each distinct news item of the batch once, in
groups of a few token widths (token ids [R, width] per group); histories and candidates are
integer indices into the groups' vectors, in order. So every news item is encoded once per
step, however many histories and impressions share it. With a news-vector cache, history
indices from the number of encoded items on name rows of the cache instead (no gradient).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from jaxrec.models.bert import BertModel
from jaxrec.sharding import logical

NEG_INF = -1e9
POOLINGS = ("attention", "cls")  # how a news vector is read off BERT's hidden states
USER_ENCODERS = ("attention", "mhsa")  # PLM-NR's additive attention, or NRMS-style
_default_kernel = nnx.initializers.lecun_normal()  # nnx.Linear's own default


class AdditiveAttention(nnx.Module):
    """Pools a masked sequence of vectors with a learned query: softmax(q . tanh(W x + b))."""

    def __init__(self, dim: int, hidden: int, *, dtype: Any, rngs: nnx.Rngs) -> None:
        self.proj = nnx.Linear(
            dim, hidden, dtype=dtype, kernel_init=logical(_default_kernel, "embed", None), rngs=rngs
        )
        self.query = nnx.Linear(hidden, 1, use_bias=False, dtype=dtype, rngs=rngs)

    def __call__(self, x: jax.Array, mask: jax.Array) -> jax.Array:
        """x [..., T, D], mask [..., T] -> [..., D]; a row with nothing unmasked pools to zeros."""
        logits = self.query(jnp.tanh(self.proj(x)))[..., 0].astype(jnp.float32)
        weights = jax.nn.softmax(jnp.where(mask > 0, logits, NEG_INF), axis=-1)
        weights = jnp.where(mask > 0, weights, 0.0).astype(x.dtype)
        return jnp.einsum("...t,...td->...d", weights, x)


class ClsPooling(nnx.Module):
    """The [CLS] token's last hidden state as the news vector."""

    def __call__(self, x: jax.Array, mask: jax.Array) -> jax.Array:
        del mask
        return x[..., 0, :]


class SelfAttentionUserEncoder(nnx.Module):
    """NRMS-style: multi-head self-attention over the history, then additive attention."""

    def __init__(
        self, dim: int, heads: int, hidden: int, dropout: float, *, dtype: Any, rngs: nnx.Rngs
    ) -> None:
        self.mhsa = nnx.MultiHeadAttention(
            num_heads=heads,
            in_features=dim,
            dropout_rate=dropout,
            decode=False,
            keep_rngs=False,  # dropout keys come with each call, so the state is parameters only
            dtype=dtype,
            rngs=rngs,
        )
        self.pool = AdditiveAttention(dim, hidden, dtype=dtype, rngs=rngs)

    def __call__(self, x, mask, *, deterministic: bool, rngs) -> jax.Array:
        attn_mask = nnx.make_attention_mask(mask, mask)
        y = self.mhsa(x, mask=attn_mask, deterministic=deterministic, rngs=rngs)
        return self.pool(y, mask)


class AttentionUserEncoder(nnx.Module):
    """PLM-NR's user encoder: additive attention over the clicked news vectors."""

    def __init__(self, dim: int, hidden: int, *, dtype: Any, rngs: nnx.Rngs) -> None:
        self.pool = AdditiveAttention(dim, hidden, dtype=dtype, rngs=rngs)

    def __call__(self, x, mask, *, deterministic: bool, rngs) -> jax.Array:
        del deterministic, rngs
        return self.pool(x, mask)


class NewsRecommender(nnx.Module):
    """BERT news encoder + pooling, a user encoder, and dot-product scoring."""

    def __init__(
        self,
        bert: BertModel,
        *,
        pooling: str = "attention",
        user_encoder: str = "attention",
        attention_hidden: int = 200,
        user_heads: int = 8,
        dtype: Any = jnp.float32,
        rngs: nnx.Rngs,
    ) -> None:
        dim = bert.config.hidden_size
        self.bert = bert
        if pooling == "attention":
            self.news_pool = AdditiveAttention(dim, attention_hidden, dtype=dtype, rngs=rngs)
        elif pooling == "cls":
            self.news_pool = ClsPooling()
        else:
            raise ValueError(f"model.pooling must be one of {POOLINGS}, got {pooling!r}")
        if user_encoder == "attention":
            self.user_encoder = AttentionUserEncoder(dim, attention_hidden, dtype=dtype, rngs=rngs)
        elif user_encoder == "mhsa":
            dropout = bert.config.hidden_dropout_prob
            self.user_encoder = SelfAttentionUserEncoder(
                dim, user_heads, attention_hidden, dropout, dtype=dtype, rngs=rngs
            )
        else:
            raise ValueError(f"model.user_encoder must be one of {USER_ENCODERS}: {user_encoder!r}")

    def encode_groups(self, groups, *, deterministic: bool = True, rngs=None) -> jax.Array:
        """Token groups (each [R, width]) -> the vectors of all their rows, in order [E, D]."""
        return jnp.concatenate(
            [self.encode_news(g, deterministic=deterministic, rngs=rngs) for g in groups]
        )

    def encode_news(
        self, tokens: dict[str, jax.Array], *, deterministic: bool = True, rngs=None
    ) -> jax.Array:
        """Token ids [N, L] (input_ids, attention_mask, token_type_ids) -> news vectors [N, D]."""
        x = self.bert.embed(
            tokens["input_ids"], tokens["token_type_ids"], deterministic=deterministic, rngs=rngs
        )
        return self.encode_news_from(
            x, tokens["attention_mask"], 0, deterministic=deterministic, rngs=rngs
        )

    def encode_news_from(
        self,
        hidden: jax.Array,
        mask: jax.Array,
        start: int,
        *,
        deterministic: bool = True,
        rngs=None,
    ) -> jax.Array:
        """Finishes encoding from hidden states entering layer `start` (a frozen-layer cache)."""
        stop = len(self.bert.encoder.layer)
        x = self.bert.run_layers(hidden, mask, start, stop, deterministic=deterministic, rngs=rngs)
        return self.news_pool(x, mask)

    def lower_hidden(self, tokens: dict[str, jax.Array], stop: int) -> jax.Array:
        """Hidden states after the embeddings and layers [0, stop), in inference mode."""
        x = self.bert.embed(tokens["input_ids"], tokens["token_type_ids"])
        return self.bert.run_layers(x, tokens["attention_mask"], 0, stop)

    def encode_users(
        self,
        news_vecs: jax.Array,
        history: jax.Array,
        history_mask: jax.Array,
        *,
        cache: jax.Array | None = None,
        deterministic: bool = True,
        rngs=None,
    ) -> jax.Array:
        """News vectors [N, D] and history indices [B, H] into them (or, from N on, into
        `cache`) -> user vectors [B, D]."""
        clicked = take_news(news_vecs, history, cache)
        return self.user_encoder(clicked, history_mask, deterministic=deterministic, rngs=rngs)

    def __call__(self, batch: dict[str, Any], *, deterministic: bool = True, rngs=None):
        """Scores [B, C] of each row's candidates (indices into the groups of `batch['news']`)."""
        news_vecs = self.encode_groups(batch["news"], deterministic=deterministic, rngs=rngs)
        return self.score_batch(news_vecs, batch, deterministic=deterministic, rngs=rngs)

    def score_batch(
        self,
        news_vecs: jax.Array,
        batch: dict[str, Any],
        *,
        cache: jax.Array | None = None,
        deterministic: bool = True,
        rngs=None,
    ) -> jax.Array:
        """Scores [B, C] given the vectors [U, D] of the batch's encoded news items (and the
        news-vector cache that history indices from U on read)."""
        users = self.encode_users(
            news_vecs,
            batch["history"],
            batch["history_mask"],
            cache=cache,
            deterministic=deterministic,
            rngs=rngs,
        )
        return score(users, news_vecs, batch["candidates"])


def take_news(news_vecs: jax.Array, index: jax.Array, cache: jax.Array | None = None) -> jax.Array:
    """Rows of `news_vecs` [N, D] by `index`; with a cache, indices from N on read row
    `index - N` of the cache, without gradient."""
    if cache is None:
        return jnp.take(news_vecs, index, axis=0)
    n = news_vecs.shape[0]
    fresh = jnp.take(news_vecs, jnp.minimum(index, n - 1), axis=0)
    stored = jnp.take(jax.lax.stop_gradient(cache), jnp.maximum(index - n, 0), axis=0)
    return jnp.where((index < n)[..., None], fresh, stored.astype(fresh.dtype))


def write_news_cache(carry: dict[str, jax.Array], rows: jax.Array, vecs: jax.Array):
    """A news-vector cache (`{"vectors": [rows, D], "age": [rows]}`) after a micro-batch:
    `vecs` stored for table `rows` without gradient, every age one more and those rows' 0.
    Row 0 (the empty item, which pads) is never stored."""
    n = carry["vectors"].shape[0]
    at = jnp.where(rows > 0, rows, n)
    vectors = (
        carry["vectors"]
        .at[at]
        .set(jax.lax.stop_gradient(vecs).astype(carry["vectors"].dtype), mode="drop")
    )
    return {"vectors": vectors, "age": (carry["age"] + 1).at[at].set(0, mode="drop")}


def score(users: jax.Array, news_vecs: jax.Array, candidates: jax.Array) -> jax.Array:
    """Dot products of each user [B, D] with its candidates (indices [B, C] into news_vecs)."""
    cands = jnp.take(news_vecs, candidates, axis=0)
    return jnp.einsum("bd,bcd->bc", users, cands).astype(jnp.float32)
