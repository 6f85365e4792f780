"""The source article's recommenders: a BERT encoder over user and item text, one head.

Two ways to read a pair, chosen by config:
- `two_tower`: user text and item text each go through the shared encoder on their own.
  Batches carry each distinct user and item text once (indices say which row is whose), so
  a user with ten ratings in a batch is encoded once.
- `cross`: one sequence `[CLS] user [SEP] item [SEP]` per pair, so attention sees both texts.
  It is built on the device from the batch's two token rows, without tokenizing again.

Learned user-ID and item-ID embeddings (and biases) can join the text vectors, so that
collaborative signal and text complement each other. The head is, for two towers, biased
matrix factorisation whose user and item factors the text informs (`dot`), or an MLP over
the fused vector. Outputs: a rating (clipped to the rating range at inference), a click
logit, or one logit per label.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from jaxrec.models.bert import BertModel, Dropout
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
    """Encoder + optional ID embeddings + head; `__call__(batch)` gives outputs [B, K].

    Heads:
    - `dot` (two towers, one output): biased matrix factorisation whose factors the text
      informs. A user's factor is their ID embedding plus a projection of their text vector
      (L2-normalised), an item's likewise; the output is the global bias, the ID biases, a
      bias read from each text, and the dot product of the two factors. An ID seen rarely in
      training keeps a small embedding (`penalty`), so its text carries it; an unseen ID
      (row 0) has only its text.
    - `mlp`: an MLP over [u, i, u*i] (two towers) or the joint vector (cross), and the ID
      embeddings, plus the biases.
    Without text (`use_text=False`) no text is encoded: IDs alone, biased MF with `dot`.
    """

    def __init__(
        self,
        bert: BertModel,
        *,
        outputs: int,
        architecture: str = "two_tower",
        head: str = "mlp",
        pooling: str = "mean",
        use_text: bool = True,
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
        self.use_ids = num_users > 0 and num_items > 0
        if not (use_text or self.use_ids):
            raise ValueError("a pair model needs text (use_text) or ID embeddings (use_ids)")
        self.bert, self.use_text = bert, use_text
        self.architecture, self.head_kind, self.pooling = architecture, head, pooling
        h = bert.config.hidden_size
        dense = dict(dtype=dtype, rngs=rngs)
        small, zeros = nnx.initializers.normal(0.01), nnx.initializers.zeros_init()
        if self.use_ids:
            # Row 0 is for IDs not seen in training: their text alone has to carry them.
            self.user_ids = nnx.Embed(num_users + 1, id_dim, embedding_init=small, **dense)
            self.item_ids = nnx.Embed(num_items + 1, id_dim, embedding_init=small, **dense)
            self.user_bias = nnx.Embed(num_users + 1, 1, embedding_init=zeros, **dense)
            self.item_bias = nnx.Embed(num_items + 1, 1, embedding_init=zeros, **dense)
        if head == "dot" and use_text:
            # Text vectors -> the factor space and a bias; they start near zero, so training
            # begins as plain biased MF and the text earns its weight.
            factor = dict(kernel_init=logical(small, "embed", None), **dense)
            self.user_factor = nnx.Linear(h, id_dim, **factor)
            self.item_factor = nnx.Linear(h, id_dim, **factor)
            bias = dict(kernel_init=logical(zeros, "embed", None), use_bias=False, **dense)
            self.user_text_bias = nnx.Linear(h, 1, **bias)
            self.item_text_bias = nnx.Linear(h, 1, **bias)
        if head == "mlp":
            text = (3 * h if architecture == "two_tower" else h) if use_text else 0
            fused = text + (2 * id_dim if self.use_ids else 0)
            kernel = nnx.initializers.lecun_normal()
            self.hidden = nnx.Linear(
                fused, mlp_hidden, kernel_init=logical(kernel, "embed", "mlp"), **dense
            )
            self.out = nnx.Linear(
                mlp_hidden, outputs, kernel_init=logical(kernel, "mlp", None), **dense
            )
        self.dropout = Dropout(dropout)  # the head's: on its hidden layer, or (dot) the text
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

    def __call__(self, batch: dict[str, Any], **kw) -> jax.Array:
        """Outputs [B, K] (before any squashing) for the batch's pairs; see `forward`."""
        return self.forward(batch, **kw)[0]

    def forward(
        self,
        batch: dict[str, Any],
        *,
        lower: dict[str, jax.Array] | None = None,
        start: int = 0,
        deterministic: bool = True,
        rngs=None,
    ) -> tuple[jax.Array, dict[str, jax.Array]]:
        """(outputs [B, K], penalty terms) for the batch's pairs; see `head`.

        With `lower` (two towers only), the user and item texts' bottom `start` layers come
        from the per-table caches `lower["users"]`, `lower["items"]` [rows, L, H].
        """
        kw = dict(deterministic=deterministic, rngs=rngs)
        if not self.use_text:
            return self.head(None, None, batch, **kw)
        if lower is not None:
            u, i = batch["users"], batch["items"]
            users = self.encode_from(
                take_rows(lower["users"], u["rows"]), u["attention_mask"], start, **kw
            )
            items = self.encode_from(
                take_rows(lower["items"], i["rows"]), i["attention_mask"], start, **kw
            )
            pick = lambda x, index: jnp.take(x, index, axis=0)  # noqa: E731
            return self.head(
                pick(users, batch["user_index"]), pick(items, batch["item_index"]), batch, **kw
            )
        if self.architecture == "cross":
            pick = lambda table, index: jax.tree.map(lambda x: jnp.take(x, index, axis=0), table)  # noqa: E731
            pairs = cross_tokens(
                pick(batch["users"], batch["user_index"]), pick(batch["items"], batch["item_index"])
            )
            return self.head(self.encode(pairs, **kw), None, batch, **kw)
        users = jnp.take(self.encode(batch["users"], **kw), batch["user_index"], axis=0)
        items = jnp.take(self.encode(batch["items"], **kw), batch["item_index"], axis=0)
        return self.head(users, items, batch, **kw)

    def predict(self, users, items, batch) -> jax.Array:
        """The head at inference on text vectors per pair; see `head`."""
        return self.head(users, items, batch)[0]

    def head(self, users, items, batch, *, deterministic: bool = True, rngs=None):
        """(outputs [B, K], penalty terms) from text vectors per pair: users [B, H] and items
        [B, H] (two towers), or the pair's joint vector as `users` and None (cross-encoder);
        both None without text.

        The penalty terms are batch means for the loss to weigh: `factors`, the squared norms
        of the user and item factors each pair uses (ID embeddings, plus the text's part with
        the dot head), and `biases`, the squares of their ID biases. Per pair, so an ID's
        embedding is held back in proportion to how often it is trained.
        """
        kw = dict(deterministic=deterministic, rngs=rngs)
        uid, iid = batch["user_id"], batch["item_id"]
        out = self.global_bias[...]
        f_user = f_item = None
        zero = jnp.zeros((), jnp.float32)
        penalty = {"factors": zero, "biases": zero}
        if self.use_ids:
            b_user, b_item = self.user_bias(uid), self.item_bias(iid)
            out = out + b_user + b_item
            penalty["biases"] = jnp.mean(b_user[:, 0] ** 2 + b_item[:, 0] ** 2)
            f_user, f_item = self.user_ids(uid), self.item_ids(iid)
        if self.head_kind == "dot":
            if self.use_text:
                users, items = (self.dropout(_unit(x), **kw) for x in (users, items))
                out = out + self.user_text_bias(users) + self.item_text_bias(items)
                f_user = self.user_factor(users) + (0 if f_user is None else f_user)
                f_item = self.item_factor(items) + (0 if f_item is None else f_item)
            out = out + jnp.sum(f_user * f_item, axis=-1, keepdims=True)
        else:
            parts = [users] if items is None else [users, items, users * items]
            parts = parts if self.use_text else []
            if self.use_ids:
                parts += [f_user, f_item]
            x = jax.nn.gelu(self.hidden(jnp.concatenate(parts, axis=-1)))
            out = out + self.out(self.dropout(x, **kw))
        if f_user is not None:
            penalty["factors"] = jnp.mean(jnp.sum(f_user**2 + f_item**2, axis=-1))
        return out.astype(jnp.float32), penalty


def _unit(x: jax.Array) -> jax.Array:
    """Rows scaled to length 1: the text's direction, whatever the encoder's scale."""
    return x * jax.lax.rsqrt(jnp.sum(x * x, axis=-1, keepdims=True) + 1e-12)


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
