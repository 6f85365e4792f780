"""A Flax NNX BERT encoder whose attribute paths mirror Hugging Face's parameter names.

`encoder.layer.3.attention.self.query.kernel` here is `encoder.layer.3.attention.self.query.weight`
(transposed) in PyTorch, so conversion in both directions is the short rule table in
`jaxrec.convert.hf`.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from flax import nnx

from jaxrec.errors import CheckpointError
from jaxrec.sharding import constrain, logical

# Compute dtypes (`config.model.dtype`); parameters stay float32 whichever is chosen.
COMPUTE_DTYPES = ("float32", "bfloat16")


def _gelu_exact(x: jax.Array) -> jax.Array:
    """x * Phi(x) through erf, as PyTorch computes it; jax.nn.gelu's erfc form costs more."""
    return 0.5 * x * (1.0 + jax.lax.erf(x * (1.0 / math.sqrt(2.0))))


_ACTIVATIONS = {
    "gelu": _gelu_exact,
    "gelu_new": lambda x: jax.nn.gelu(x, approximate=True),
    "gelu_pytorch_tanh": lambda x: jax.nn.gelu(x, approximate=True),
    "relu": jax.nn.relu,
}


@dataclasses.dataclass(frozen=True)
class BertConfig:
    """The architecture fields of a Hugging Face `config.json` for BERT."""

    vocab_size: int = 30522
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "gelu"
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12
    pad_token_id: int = 0

    @classmethod
    def from_hf_dict(cls, d: dict[str, Any], source: str = "config.json") -> BertConfig:
        """The fields jaxrec uses; refuses configs that are not absolute-position BERT."""
        model_type = d.get("model_type")
        if model_type != "bert":
            raise CheckpointError(f"{source}: model_type is {model_type!r}, expected 'bert'")
        if d.get("position_embedding_type", "absolute") != "absolute":
            raise CheckpointError(
                f"{source}: position_embedding_type {d['position_embedding_type']!r} "
                "is not supported (only 'absolute')"
            )
        if d.get("hidden_act", "gelu") not in _ACTIVATIONS:
            raise CheckpointError(f"{source}: hidden_act {d['hidden_act']!r} is not supported")
        fields = {f.name for f in dataclasses.fields(cls)}
        missing = sorted(
            f
            for f in ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads")
            if f not in d
        )
        if missing:
            raise CheckpointError(f"{source}: missing BERT config keys {missing}")
        config = cls(**{k: v for k, v in d.items() if k in fields})
        if config.hidden_size % config.num_attention_heads:
            raise CheckpointError(
                f"{source}: hidden_size {config.hidden_size} is not divisible by "
                f"num_attention_heads {config.num_attention_heads}"
            )
        return config

    def to_hf_dict(self) -> dict[str, Any]:
        return {
            "architectures": ["BertModel"],
            "model_type": "bert",
            "position_embedding_type": "absolute",
            **dataclasses.asdict(self),
        }


class Dropout(nnx.Module):
    """Inverted dropout drawing one fresh key per call from the `dropout` stream.

    nnx.Dropout's contract, with a cheaper mask: each element's keep bit comes from the
    murmur3 finalizer of (its position, the key) rather than from threefry, which costs
    about four times more on CPU and was one of the largest elementwise costs of a BERT
    training step. Dropout needs uniform, independent-looking bits, not a cryptographic
    stream; the keep probability is exact to 2^-32.
    """

    def __init__(self, rate: float) -> None:
        self.rate = rate

    def __call__(self, x: jax.Array, *, deterministic: bool, rngs) -> jax.Array:
        if deterministic or self.rate == 0.0:
            return x
        if rngs is None:
            raise ValueError("dropout is on (deterministic=False) but no rngs were passed")
        key = jax.random.key_data(rngs.dropout()).reshape(-1).astype(jnp.uint32)
        h = jax.lax.iota(jnp.uint32, x.size).reshape(x.shape) * jnp.uint32(0x9E3779B9)
        h = (h + key[0]) ^ key[-1]
        h = (h ^ (h >> 16)) * jnp.uint32(0x85EBCA6B)
        h = (h ^ (h >> 13)) * jnp.uint32(0xC2B2AE35)
        h = h ^ (h >> 16)
        keep = h >= jnp.uint32(min(round(self.rate * 2**32), 2**32 - 1))
        return jnp.where(keep, x / (1.0 - self.rate), 0).astype(x.dtype)


class BertEmbeddings(nnx.Module):
    def __init__(self, config: BertConfig, *, dtype: Any, rngs: nnx.Rngs) -> None:
        h = config.hidden_size
        normal = nnx.initializers.normal(0.02)
        self.word_embeddings = nnx.Embed(
            config.vocab_size,
            h,
            dtype=dtype,
            rngs=rngs,
            embedding_init=logical(normal, "vocab", "embed"),
        )
        other = dict(dtype=dtype, rngs=rngs, embedding_init=logical(normal, None, "embed"))
        self.position_embeddings = nnx.Embed(config.max_position_embeddings, h, **other)
        self.token_type_embeddings = nnx.Embed(config.type_vocab_size, h, **other)
        self.LayerNorm = _layer_norm(config, dtype, rngs)
        self.dropout = Dropout(config.hidden_dropout_prob)

    def __call__(self, input_ids, token_type_ids, *, deterministic: bool, rngs) -> jax.Array:
        positions = jnp.arange(input_ids.shape[-1])
        x = (
            self.word_embeddings(input_ids)
            + self.position_embeddings(positions)
            + self.token_type_embeddings(token_type_ids)
        )
        x = constrain(self.LayerNorm(x), "batch", None, None)
        return self.dropout(x, deterministic=deterministic, rngs=rngs)


class BertSelfAttention(nnx.Module):
    def __init__(self, config: BertConfig, *, dtype: Any, rngs: nnx.Rngs) -> None:
        h = config.hidden_size
        self.num_heads = config.num_attention_heads
        self.query = _linear(h, h, ("embed", "heads"), dtype, rngs)
        self.key = _linear(h, h, ("embed", "heads"), dtype, rngs)
        self.value = _linear(h, h, ("embed", "heads"), dtype, rngs)
        self.dropout = Dropout(config.attention_probs_dropout_prob)

    def __call__(self, x, mask: AttentionMask, *, deterministic: bool, rngs) -> jax.Array:
        b, t, h = x.shape
        split = (b, t, self.num_heads, h // self.num_heads)
        q, k, v = (
            constrain(y.reshape(split), "batch", None, "heads", None) for y in self.project(x)
        )
        if deterministic or self.dropout.rate == 0.0:  # no dropout on the probabilities
            return fused_attention(q, k, v, mask).reshape(b, t, h)
        logits = jnp.einsum("bqnd,bknd->bnqk", q, k) / math.sqrt(split[-1])
        # Softmax in float32 whatever the compute dtype: padded keys get -inf-like bias.
        probs = jax.nn.softmax(logits.astype(jnp.float32) + mask.bias, axis=-1).astype(x.dtype)
        probs = self.dropout(probs, deterministic=deterministic, rngs=rngs)
        return jnp.einsum("bnqk,bknd->bqnd", probs, v).reshape(b, t, h)

    def project(self, x: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
        """Queries, keys and values [B, T, H]: one matmul when all three are plain Linears.

        The three kernels are stacked at call time, so parameters keep their own (HF) names;
        one [B*T, H] x [H, 3H] product and its two backward products run faster than three
        of each. Stacking on a new middle axis leaves every kernel's `heads` dimension where
        it was, so a tensor-sharded kernel needs no resharding. Other layer types (LoRA's
        adapted Linears) are called as they are.
        """
        layers = (self.query, self.key, self.value)
        if any(type(layer) is not nnx.Linear or layer.bias is None for layer in layers):
            return tuple(layer(x) for layer in layers)
        first = self.query
        kernel = jnp.stack([layer.kernel[...] for layer in layers], axis=1)
        bias = jnp.stack([layer.bias[...] for layer in layers])
        x, kernel, bias = first.promote_dtype((x, kernel, bias), dtype=first.dtype)
        extra = {}
        if first.preferred_element_type is not None:
            extra["preferred_element_type"] = first.preferred_element_type
        qkv = first.dot_general(
            x, kernel, (((x.ndim - 1,), (0,)), ((), ())), precision=first.precision, **extra
        )
        qkv = qkv + bias
        return qkv[..., 0, :], qkv[..., 1, :], qkv[..., 2, :]


class BertSelfOutput(nnx.Module):
    """Projection, dropout, residual and LayerNorm; HF calls both sub-blocks' versions this."""

    def __init__(
        self, d_in: int, in_axis: str, config: BertConfig, *, dtype: Any, rngs: nnx.Rngs
    ) -> None:
        self.dense = _linear(d_in, config.hidden_size, (in_axis, "embed"), dtype, rngs)
        self.LayerNorm = _layer_norm(config, dtype, rngs)
        self.dropout = Dropout(config.hidden_dropout_prob)

    def __call__(self, x, residual, *, deterministic: bool, rngs) -> jax.Array:
        x = self.dropout(self.dense(x), deterministic=deterministic, rngs=rngs)
        return constrain(self.LayerNorm(x + residual), "batch", None, None)


class BertAttention(nnx.Module):
    def __init__(self, config: BertConfig, *, dtype: Any, rngs: nnx.Rngs) -> None:
        self.self = BertSelfAttention(config, dtype=dtype, rngs=rngs)
        self.output = BertSelfOutput(config.hidden_size, "heads", config, dtype=dtype, rngs=rngs)

    def __call__(self, x, mask: AttentionMask, *, deterministic: bool, rngs) -> jax.Array:
        y = self.self(x, mask, deterministic=deterministic, rngs=rngs)
        return self.output(y, x, deterministic=deterministic, rngs=rngs)


class BertIntermediate(nnx.Module):
    def __init__(self, config: BertConfig, *, dtype: Any, rngs: nnx.Rngs) -> None:
        self.dense = _linear(
            config.hidden_size, config.intermediate_size, ("embed", "mlp"), dtype, rngs
        )
        self.act = _ACTIVATIONS[config.hidden_act]

    def __call__(self, x) -> jax.Array:
        return constrain(self.act(self.dense(x)), "batch", None, "mlp")


class BertLayer(nnx.Module):
    def __init__(self, config: BertConfig, *, dtype: Any, rngs: nnx.Rngs) -> None:
        self.attention = BertAttention(config, dtype=dtype, rngs=rngs)
        self.intermediate = BertIntermediate(config, dtype=dtype, rngs=rngs)
        self.output = BertSelfOutput(
            config.intermediate_size, "mlp", config, dtype=dtype, rngs=rngs
        )

    def __call__(self, x, mask: AttentionMask, *, deterministic: bool, rngs) -> jax.Array:
        x = self.attention(x, mask, deterministic=deterministic, rngs=rngs)
        return self.output(self.intermediate(x), x, deterministic=deterministic, rngs=rngs)


class BertEncoder(nnx.Module):
    def __init__(self, config: BertConfig, *, dtype: Any, rngs: nnx.Rngs) -> None:
        self.layer = nnx.List(
            [BertLayer(config, dtype=dtype, rngs=rngs) for _ in range(config.num_hidden_layers)]
        )


class BertPooler(nnx.Module):
    def __init__(self, config: BertConfig, *, dtype: Any, rngs: nnx.Rngs) -> None:
        self.dense = _linear(config.hidden_size, config.hidden_size, ("embed", None), dtype, rngs)

    def __call__(self, hidden: jax.Array) -> jax.Array:
        return jnp.tanh(self.dense(hidden[:, 0]))


class BertModel(nnx.Module):
    """BERT: embeddings, `num_hidden_layers` transformer layers, and the CLS pooler.

    `dtype` is the compute dtype; parameters stay float32. Dropout is active when
    `deterministic=False`, drawing from the `dropout` stream of the `rngs` passed to the call.
    `remat=True` recomputes each layer's activations in the backward pass instead of keeping
    them: less memory for longer sequences or larger batches, about a third more compute.
    """

    def __init__(
        self,
        config: BertConfig,
        *,
        dtype: Any = jnp.float32,
        remat: bool = False,
        rngs: nnx.Rngs,
    ) -> None:
        self.config = config
        self.remat = remat
        self.embeddings = BertEmbeddings(config, dtype=dtype, rngs=rngs)
        self.encoder = BertEncoder(config, dtype=dtype, rngs=rngs)
        self.pooler = BertPooler(config, dtype=dtype, rngs=rngs)

    def __call__(
        self,
        input_ids: jax.Array,
        attention_mask: jax.Array | None = None,
        token_type_ids: jax.Array | None = None,
        *,
        deterministic: bool = True,
        rngs: nnx.Rngs | None = None,
    ) -> tuple[jax.Array, jax.Array]:
        """Returns (last_hidden_state [B, T, H], pooler_output [B, H])."""
        hidden = self.hidden_states(
            input_ids, attention_mask, token_type_ids, deterministic=deterministic, rngs=rngs
        )
        return hidden, self.pooler(hidden)

    def hidden_states(
        self,
        input_ids: jax.Array,
        attention_mask: jax.Array | None = None,
        token_type_ids: jax.Array | None = None,
        *,
        deterministic: bool = True,
        rngs: nnx.Rngs | None = None,
    ) -> jax.Array:
        """The last layer's hidden states, without the pooler (what recommenders pool)."""
        if attention_mask is None:
            attention_mask = jnp.ones_like(input_ids)
        x = self.embed(input_ids, token_type_ids, deterministic=deterministic, rngs=rngs)
        return self.run_layers(
            x, attention_mask, 0, len(self.encoder.layer), deterministic=deterministic, rngs=rngs
        )

    def embed(
        self,
        input_ids: jax.Array,
        token_type_ids: jax.Array | None = None,
        *,
        deterministic: bool = True,
        rngs: nnx.Rngs | None = None,
    ) -> jax.Array:
        if token_type_ids is None:
            token_type_ids = jnp.zeros_like(input_ids)
        return self.embeddings(input_ids, token_type_ids, deterministic=deterministic, rngs=rngs)

    def run_layers(
        self,
        x: jax.Array,
        attention_mask: jax.Array,
        start: int,
        stop: int,
        *,
        deterministic: bool = True,
        rngs: nnx.Rngs | None = None,
    ) -> jax.Array:
        """Transformer layers [start, stop) on hidden states x [B, T, H]."""
        mask = AttentionMask(
            attention_bias(attention_mask), jnp.sum(attention_mask > 0, axis=-1, dtype=jnp.int32)
        )

        def run(layer, x, mask, rngs):
            return layer(x, mask, deterministic=deterministic, rngs=rngs)

        if self.remat:
            run = nnx.remat(run)
        for layer in self.encoder.layer[start:stop]:
            x = run(layer, x, mask, rngs)
        return x


class AttentionMask(NamedTuple):
    """Which keys each row attends to, in the two forms attention kernels take."""

    bias: jax.Array  # [B, 1, 1, T] float32: 0, or a large negative for padding
    lengths: jax.Array  # [B] int32: attended tokens, padding being at the end of each row


def attention_bias(attention_mask: jax.Array) -> jax.Array:
    """[B, T] 1/0 mask -> [B, 1, 1, T] additive float32 bias (0 or a large negative)."""
    big_negative = jnp.finfo(jnp.float32).min
    return jnp.where(attention_mask[:, None, None, :] > 0, 0.0, big_negative).astype(jnp.float32)


def fused_attention(q: jax.Array, k: jax.Array, v: jax.Array, mask: AttentionMask) -> jax.Array:
    """softmax(q k^T / sqrt(d) + bias) v for [B, T, N, d] inputs, by jax.nn.dot_product_attention.

    On GPUs with 16-bit inputs it is cuDNN's fused (flash) kernel, which takes the padding as
    key lengths (jaxrec's token rows are padded at the end); elsewhere XLA's, with the bias:
    the same products and float32 softmax as the unfused form.
    """
    if jax.default_backend() == "gpu" and q.dtype in (jnp.bfloat16, jnp.float16):
        return jax.nn.dot_product_attention(
            q, k, v, key_value_seq_lengths=mask.lengths, implementation="cudnn"
        )
    return jax.nn.dot_product_attention(q, k, v, bias=mask.bias)


def _linear(d_in: int, d_out: int, axes: tuple, dtype: Any, rngs: nnx.Rngs) -> nnx.Linear:
    """A dense layer whose kernel dimensions carry the logical names `axes` (bias: output's)."""
    return nnx.Linear(
        d_in,
        d_out,
        dtype=dtype,
        kernel_init=logical(nnx.initializers.normal(0.02), *axes),
        bias_init=logical(nnx.initializers.zeros_init(), axes[1]),
        rngs=rngs,
    )


def _layer_norm(config: BertConfig, dtype: Any, rngs: nnx.Rngs) -> nnx.LayerNorm:
    return nnx.LayerNorm(config.hidden_size, epsilon=config.layer_norm_eps, dtype=dtype, rngs=rngs)
