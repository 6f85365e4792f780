"""LoRA adapters for the BERT encoder's dense layers: add, train, merge back into plain BERT.

``add_lora`` swaps chosen ``nnx.Linear`` layers of a ``BertModel`` for ``LoRALinear``, which
computes ``x @ kernel + bias + (x @ lora_a) @ lora_b * alpha / rank``. ``merge_lora`` folds the
low-rank product into the kernel and swaps plain ``nnx.Linear`` layers back.

Parameter paths. ``LoRALinear`` subclasses ``nnx.Linear`` and takes over the original layer's
own ``kernel`` and ``bias`` Variables (the same objects, metadata such as sharding included),
so the base weights keep their paths: ``encoder.layer.0.attention.self.query.kernel`` stays
exactly that, with ``...query.lora_a`` and ``...query.lora_b`` beside it. Checkpoints of the
base weights, the HF rule table and the layer-scope filters in ``jaxrec.optim`` see the same
names as without LoRA. (Flax's own ``nnx.LoRALinear`` nests them under ``...query.lora.``.)

Variable type. ``LoRAParam`` subclasses ``nnx.Param``: ``nnx.state(model, nnx.Param)``,
checkpointing and the optimizer's weight-decay mask all include the adapters, and
``nnx.split(model, LoRAParam, ...)`` picks them alone. The HF export has no name for them:
``jaxrec.convert.hf.export_tensors`` on an unmerged model raises ``CheckpointError`` naming
``...lora_a`` rather than writing a checkpoint that silently lacks the adaptation. Export after
``merge_lora`` (on ``nnx.clone(model)`` to keep training the adapters).

No dropout on the LoRA input: the encoder calls its layers as ``layer(x)``, with no
deterministic flag or RNG stream to pass, and the encoder's own dropout still applies.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from jaxrec.params import path_name

# Where each target sits inside a `BertLayer`, by attribute path.
TARGETS: dict[str, tuple[str, ...]] = {
    "query": ("attention", "self", "query"),
    "key": ("attention", "self", "key"),
    "value": ("attention", "self", "value"),
    "attention_output": ("attention", "output", "dense"),
    "intermediate": ("intermediate", "dense"),
    "output": ("output", "dense"),
}

# Kaiming-uniform with a = sqrt(5), as PEFT and PyTorch's Linear initialise lora_A: bound
# 1 / sqrt(d_in), so x @ lora_a keeps roughly the scale of x whatever the rank.
_A_INIT = nnx.initializers.variance_scaling(1 / 3, "fan_in", "uniform")


class LoRAParam(nnx.Param):
    """A LoRA adapter weight: an ``nnx.Param`` that ``nnx.split(model, LoRAParam)`` singles out."""


lora_filter = LoRAParam


class LoRALinear(nnx.Linear):
    """An ``nnx.Linear`` plus a trainable low-rank update ``(x @ lora_a) @ lora_b * scale``.

    Built from an existing Linear, whose fields (``kernel``, ``bias``, ``dtype``, ``precision``,
    ...) it adopts, so the dense part is ``nnx.Linear.__call__`` itself. ``lora_a`` is
    ``[in_features, rank]``, ``lora_b`` ``[rank, out_features]`` and starts at zero, so a new
    adapter leaves the layer's output unchanged; ``scale`` is ``alpha / rank``. The update runs
    in the Linear's compute dtype, under the same dtype promotion.
    """

    def __init__(self, base: nnx.Linear, *, rank: int, alpha: float, rngs: nnx.Rngs) -> None:
        for name, value in vars(base).items():
            if not name.startswith("_pytree__"):  # NNX's bookkeeping, rebuilt for this object.
                setattr(self, name, value)
        self.rank = rank
        self.scale = float(alpha) / rank
        a_axes, b_axes = _adapter_axes(base.kernel)
        self.lora_a = LoRAParam(
            _A_INIT(rngs.params(), (self.in_features, rank), self.param_dtype), **a_axes
        )
        self.lora_b = LoRAParam(jnp.zeros((rank, self.out_features), self.param_dtype), **b_axes)

    def __call__(self, inputs: jax.Array, out_sharding: Any = None) -> jax.Array:
        y = super().__call__(inputs, out_sharding=out_sharding)
        x, a, b = self.promote_dtype((inputs, self.lora_a[...], self.lora_b[...]), dtype=self.dtype)
        update = jnp.matmul(jnp.matmul(x, a, precision=self.precision), b, precision=self.precision)
        return y + update * jnp.asarray(self.scale, update.dtype)

    def merged_kernel(self) -> jax.Array:
        """``kernel + scale * lora_a @ lora_b`` in the kernel's dtype."""
        kernel = self.kernel[...]
        # Full precision: on GPU/TPU the default float32 matmul may round through bf16/tf32,
        # and the merged model should reproduce the adapted one, not approximate it.
        delta = jnp.matmul(
            self.lora_a[...].astype(jnp.float32),
            self.lora_b[...].astype(jnp.float32),
            precision=jax.lax.Precision.HIGHEST,
        )
        return (kernel.astype(jnp.float32) + self.scale * delta).astype(kernel.dtype)


def add_lora(
    model: nnx.Module,
    *,
    rank: int,
    alpha: float,
    targets: Sequence[str] = ("query", "value"),
    rngs: nnx.Rngs,
) -> int:
    """Replaces the target Linears of every layer of a ``BertModel`` by ``LoRALinear``, in place.

    ``targets`` name positions in each ``BertLayer`` (see ``TARGETS``): ``query``, ``key``,
    ``value``, ``attention_output`` (attention.output.dense), ``intermediate``
    (intermediate.dense) and ``output`` (the layer's output.dense). The pooler is never
    adapted. Returns how many layers were replaced.

    Raises:
      ValueError: for an unknown target, a rank below 1, or a layer that already has LoRA.
    """
    if isinstance(targets, str):
        targets = (targets,)
    unknown = [t for t in targets if t not in TARGETS]
    if unknown:
        raise ValueError(f"unknown LoRA target(s) {unknown}; known: {sorted(TARGETS)}")
    if rank < 1:
        raise ValueError(f"LoRA rank must be at least 1, got {rank}")
    # Every site is checked before any is replaced, so a refused call changes nothing.
    sites = []
    for i, layer in enumerate(model.encoder.layer):
        for target in dict.fromkeys(targets):
            *parents, name = TARGETS[target]
            parent = layer
            for attr in parents:
                parent = getattr(parent, attr)
            linear = getattr(parent, name)
            where = f"encoder.layer.{i}.{'.'.join(TARGETS[target])}"
            if isinstance(linear, LoRALinear):
                raise ValueError(f"{where} already has LoRA")
            if not isinstance(linear, nnx.Linear):
                raise ValueError(f"{where} is a {type(linear).__name__}, not an nnx.Linear")
            sites.append((parent, name, linear))
    for parent, name, linear in sites:
        setattr(parent, name, LoRALinear(linear, rank=rank, alpha=alpha, rngs=rngs))
    return len(sites)


def merge_lora(model: nnx.Module) -> int:
    """Folds every ``LoRALinear`` in ``model`` into a plain ``nnx.Linear``, in place.

    The new Linear's ``kernel`` holds the merged weights under the old kernel's type and
    metadata; ``bias`` and every other field are the old layer's, all at the same paths, and
    ``lora_a``/``lora_b`` disappear. The result is a plain BERT again, for
    ``jaxrec.convert.hf.export_tensors`` or serving. Returns how many layers were merged.
    """
    found = [(path, node) for path, node in nnx.iter_graph(model) if isinstance(node, LoRALinear)]
    if any(not path for path, _ in found):
        raise ValueError("merge_lora cannot replace the model itself; pass its parent module")
    for path, lora in found:
        # A new Variable rather than an in-place write: states split from the model earlier
        # share its Variables, and they should keep the weights they were split with.
        lora.kernel = lora.kernel.replace(lora.merged_kernel())
        _replace(model, path, _plain_linear(lora))
    return len(found)


def lora_trainable_filter(encoder_path: str = "bert") -> Callable[[tuple, Any], bool]:
    """An nnx filter for LoRA fine-tuning: every ``LoRAParam``, and each ``nnx.Param`` outside
    the encoder (the recommendation heads). The encoder's own weights, pooler included, stay
    frozen.

    ``encoder_path`` is the encoder's dotted attribute path from the model given to
    ``nnx.split``, e.g. ``"bert"``; it matches a path prefix, not a name anywhere in the path.
    """
    prefix = encoder_path + "."

    def is_trainable(path: tuple, value: Any) -> bool:
        if isinstance(value, LoRAParam):
            return True
        return isinstance(value, nnx.Param) and not path_name(path).startswith(prefix)

    return is_trainable


def _adapter_axes(kernel: nnx.Param) -> tuple[dict, dict]:
    """Sharding annotations for lora_a and lora_b that follow the kernel's, if it has any.

    lora_a shares the kernel's input axis and lora_b its output axis; the rank axis is small
    and stays replicated. Only the annotation is set (no eager placement), so adding LoRA works
    with or without an active mesh; the trainer places the state from these annotations.
    """
    axes = kernel.get_metadata().get("out_sharding")
    if not axes:
        return {}, {}
    return (
        {"out_sharding": (axes[0], None), "eager_sharding": False},
        {"out_sharding": (None, axes[1]), "eager_sharding": False},
    )


def _plain_linear(lora: LoRALinear) -> nnx.Linear:
    # An abstract Linear allocates no kernel; every field is then taken from the LoRA layer.
    linear = nnx.eval_shape(
        lambda: nnx.Linear(
            lora.in_features, lora.out_features, use_bias=lora.use_bias, rngs=nnx.Rngs(0)
        )
    )
    for name in vars(linear):
        if not name.startswith("_pytree__"):
            setattr(linear, name, getattr(lora, name))
    return linear


def _replace(root: nnx.Module, path: tuple, new: nnx.Module) -> None:
    parent = root
    for key in path[:-1]:
        parent = parent[key] if isinstance(key, int) else getattr(parent, key)
    if isinstance(path[-1], int):
        parent[path[-1]] = new
    else:
        setattr(parent, path[-1], new)
