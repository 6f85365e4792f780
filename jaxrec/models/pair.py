"""The source article's recommenders: a BERT encoder over user and item text, one head.

Two ways to read a pair, chosen by config:
- `two_tower`: user text and item text each go through the shared encoder on their own.
  Batches carry each distinct user and item text once (indices say which row is whose), so
  a user with ten ratings in a batch is encoded once.
- `cross`: one sequence `[CLS] user [SEP] item [SEP]` per pair, so attention sees both texts.
  It is built on the device from the batch's two token rows, without tokenizing again.

Learned user-ID and item-ID embeddings (and biases) can join the text vectors, so that
collaborative signal and text complement each other. The head is an MLP over the fused
vector (or, for two towers, a dot product plus biases). Outputs: one value for a rating
(squashed into the rating range) or a click logit, or one logit per label.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from jaxrec.models.bert import BertModel
from jaxrec.sharding import constrain, logical, take_rows

ARCHITECTURES = ("two_tower", "cross")
HEADS = ("mlp", "dot")
POOLINGS = ("mean", "cls")


def pool(hidden: jax.Array, mask: jax.Array, how: str) -> jax.Array:
    """[N, L, H] hidden states -> [N, H]: the [CLS] state or the mean over real tokens."""
    if how == "cls":
        return hidden[:, 0]
    weights = mask.astype(hidden.dtype)[..., None]
    return jnp.sum(hidden * weights, axis=1) / jnp.maximum(jnp.sum(weights, axis=1), 1)


class PairRecommender(nnx.Module):
    """Encoder + optional ID embeddings + head; `__call__(batch)` gives outputs [B, K]."""

    def __init__(
        self,
        bert: BertModel,
        *,
        outputs: int,
        architecture: str = "two_tower",
        head: str = "mlp",
        pooling: str = "mean",
        num_users: int = 0,
        num_items: int = 0,
        id_dim: int = 32,
        mlp_hidden: int = 256,
        dropout: float = 0.1,
        dtype: Any = jnp.float32,
        rngs: nnx.Rngs,
    ) -> None:
        for name, value, allowed in (
            ("model.architecture", architecture, ARCHITECTURES),
            ("model.head", head, HEADS),
            ("model.pooling", pooling, POOLINGS),
        ):
            if value not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {value!r}")
        if head == "dot" and (architecture != "two_tower" or outputs != 1):
            raise ValueError("model.head='dot' needs the two_tower architecture and one output")
        self.bert = bert
        self.architecture, self.head_kind, self.pooling = architecture, head, pooling
        h = bert.config.hidden_size
        self.use_ids = num_users > 0 and num_items > 0
        dense = dict(dtype=dtype, rngs=rngs)
        if self.use_ids:
            # Row 0 is for IDs not seen in training: their text alone has to carry them.
            init = nnx.initializers.normal(0.01)
            width = h if head == "dot" else id_dim
            self.user_ids = nnx.Embed(num_users + 1, width, embedding_init=init, **dense)
            self.item_ids = nnx.Embed(num_items + 1, width, embedding_init=init, **dense)
            zeros = nnx.initializers.zeros_init()
            self.user_bias = nnx.Embed(num_users + 1, 1, embedding_init=zeros, **dense)
            self.item_bias = nnx.Embed(num_items + 1, 1, embedding_init=zeros, **dense)
        if head == "mlp":
            fused = (3 * h if architecture == "two_tower" else h) + (
                2 * id_dim if self.use_ids else 0
            )
            kernel = nnx.initializers.lecun_normal()
            self.hidden = nnx.Linear(
                fused, mlp_hidden, kernel_init=logical(kernel, "embed", "mlp"), **dense
            )
            self.out = nnx.Linear(
                mlp_hidden, outputs, kernel_init=logical(kernel, "mlp", None), **dense
            )
            self.dropout = nnx.Dropout(dropout)
        self.global_bias = nnx.Param(jnp.zeros((outputs,), jnp.float32))

    def encode(self, tokens: dict[str, jax.Array], *, deterministic: bool = True, rngs=None):
        """Token rows [N, L] -> pooled text vectors [N, H]."""
        x = self.bert.embed(
            tokens["input_ids"], tokens["token_type_ids"], deterministic=deterministic, rngs=rngs
        )
        return self.encode_from(
            x, tokens["attention_mask"], 0, deterministic=deterministic, rngs=rngs
        )

    def encode_from(self, hidden, mask, start: int, *, deterministic: bool = True, rngs=None):
        """Finishes encoding from hidden states entering layer `start` (a frozen-layer cache)."""
        stop = len(self.bert.encoder.layer)
        x = self.bert.run_layers(hidden, mask, start, stop, deterministic=deterministic, rngs=rngs)
        return constrain(pool(x, mask, self.pooling), "batch", None)

    def lower_hidden(self, tokens: dict[str, jax.Array], stop: int) -> jax.Array:
        """Hidden states after the embeddings and layers [0, stop), in inference mode."""
        x = self.bert.embed(tokens["input_ids"], tokens["token_type_ids"])
        return self.bert.run_layers(x, tokens["attention_mask"], 0, stop)

    def __call__(
        self,
        batch: dict[str, Any],
        *,
        lower: dict[str, jax.Array] | None = None,
        start: int = 0,
        deterministic: bool = True,
        rngs=None,
    ):
        """Outputs [B, K] (before any squashing) for the batch's pairs.

        With `lower` (two towers only), the user and item texts' bottom `start` layers come
        from the per-table caches `lower["users"]`, `lower["items"]` [rows, L, H].
        """
        kw = dict(deterministic=deterministic, rngs=rngs)
        if lower is not None:
            u, i = batch["users"], batch["items"]
            users = self.encode_from(
                take_rows(lower["users"], u["rows"]), u["attention_mask"], start, **kw
            )
            items = self.encode_from(
                take_rows(lower["items"], i["rows"]), i["attention_mask"], start, **kw
            )
            pick = lambda x, index: jnp.take(x, index, axis=0)  # noqa: E731
            return self.predict(
                pick(users, batch["user_index"]), pick(items, batch["item_index"]), batch, **kw
            )
        if self.architecture == "cross":
            pick = lambda table, index: jax.tree.map(lambda x: jnp.take(x, index, axis=0), table)  # noqa: E731
            pairs = cross_tokens(
                pick(batch["users"], batch["user_index"]), pick(batch["items"], batch["item_index"])
            )
            return self.predict(self.encode(pairs, **kw), None, batch, **kw)
        users = jnp.take(self.encode(batch["users"], **kw), batch["user_index"], axis=0)
        items = jnp.take(self.encode(batch["items"], **kw), batch["item_index"], axis=0)
        return self.predict(users, items, batch, **kw)

    def predict(self, users, items, batch, *, deterministic: bool = True, rngs=None):
        """The head on text vectors per pair: users [B, H] and items [B, H] (two towers), or
        the pair's joint vector as `users` and None (cross-encoder)."""
        uid, iid = batch["user_id"], batch["item_id"]
        bias = self.global_bias[...]
        if self.use_ids:
            bias = bias + self.user_bias(uid) + self.item_bias(iid)
        if self.head_kind == "dot":
            if self.use_ids:
                users, items = users + self.user_ids(uid), items + self.item_ids(iid)
            return jnp.sum(users * items, axis=-1, keepdims=True).astype(jnp.float32) + bias
        parts = [users] if items is None else [users, items, users * items]
        if self.use_ids:
            parts += [self.user_ids(uid), self.item_ids(iid)]
        x = jax.nn.gelu(self.hidden(jnp.concatenate(parts, axis=-1)))
        x = self.dropout(x, deterministic=deterministic, rngs=rngs)
        return self.out(x).astype(jnp.float32) + bias


def cross_tokens(user: dict[str, jax.Array], item: dict[str, jax.Array]) -> dict[str, jax.Array]:
    """`[CLS] user [SEP]` rows and `[CLS] item [SEP]` rows -> `[CLS] user [SEP] item [SEP]`.

    The item row loses its [CLS] and takes segment id 1. Padding between the two parts is
    masked out, so attention sees exactly the pair; positions follow the padded layout, the
    same for every pair, which fine-tuning learns.
    """
    ids = jnp.concatenate([user["input_ids"], item["input_ids"][:, 1:]], axis=1)
    mask = jnp.concatenate([user["attention_mask"], item["attention_mask"][:, 1:]], axis=1)
    segment = jnp.concatenate(
        [jnp.zeros_like(user["input_ids"]), jnp.ones_like(item["input_ids"][:, 1:])], axis=1
    )
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": segment}
