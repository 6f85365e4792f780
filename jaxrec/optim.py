"""AdamW with decoupled weight decay, warm-up + decay schedule, clipping, and fine-tuning scope."""

from __future__ import annotations

import re

import jax
import ml_collections
import optax
from flax import nnx

from jaxrec.params import path_name

# No weight decay on biases and LayerNorm parameters (BERT's fine-tuning practice).
_NO_DECAY = re.compile(r"(^|\.)(bias|LayerNorm\.scale|LayerNorm\.bias)$")
SCHEDULES = ("linear", "cosine", "constant")  # after the linear warm-up


def schedule(
    train: ml_collections.ConfigDict, num_steps: int, peak: float | None = None
) -> optax.Schedule:
    """Linear warm-up to `peak` (train.learning_rate by default), then linear or cosine decay
    to 0 at `num_steps`."""
    warmup = min(int(train.warmup_steps), num_steps)
    peak = float(train.learning_rate if peak is None else peak)
    decay_steps = max(num_steps - warmup, 1)
    if train.schedule == "linear":
        decay = optax.linear_schedule(peak, 0.0, decay_steps)
    elif train.schedule == "cosine":
        decay = optax.cosine_decay_schedule(peak, decay_steps)
    elif train.schedule == "constant":
        decay = optax.constant_schedule(peak)
    else:
        raise ValueError(f"train.schedule must be one of {SCHEDULES}: {train.schedule!r}")
    warm = optax.linear_schedule(0.0, peak, warmup) if warmup else optax.constant_schedule(peak)
    return optax.join_schedules([warm, decay], [warmup])


def decay_mask(params: nnx.State) -> nnx.State:
    """True where weight decay applies: every parameter but biases and LayerNorms."""
    return jax.tree_util.tree_map_with_path(
        lambda path, _: not _NO_DECAY.search(path_name(path)), params
    )


def optimizer(
    train: ml_collections.ConfigDict, lr: optax.Schedule, params: nnx.State
) -> optax.GradientTransformation:
    """Clipping, then AdamW; the parts outside the encoder (heads, ID embeddings) can learn
    `train.head_lr_multiplier` times faster than the pretrained weights, which a large
    learning rate would wreck but freshly initialized parameters need."""
    parts = [
        optax.clip_by_global_norm(float(train.grad_clip)),
        optax.adamw(
            lr,
            b1=float(train.b1),
            b2=float(train.b2),
            eps=float(train.eps),
            weight_decay=float(train.weight_decay),
            mask=decay_mask(params),
        ),
    ]
    multiplier = float(train.head_lr_multiplier)
    if multiplier != 1.0:
        outside = jax.tree_util.tree_map_with_path(
            lambda path, _: not path_name(path).startswith("bert."), params
        )
        parts.append(optax.masked(optax.scale(multiplier), outside))
    return optax.chain(*parts)


def trainable_filter(num_layers: int, trainable_layers: int):
    """An nnx filter for the parameters that fine-tuning updates.

    trainable_layers = -1: the whole encoder; k > 0: the top k transformer layers only;
    0: a frozen encoder. The recommendation parts outside `bert` always train; BERT's
    pooler is never trained because the news model pools hidden states itself.
    """
    if trainable_layers < -1 or trainable_layers > num_layers:
        raise ValueError(
            f"model.trainable_layers must be -1 (all) or 0..{num_layers}, got {trainable_layers}"
        )
    first = 0 if trainable_layers == -1 else num_layers - trainable_layers
    pattern = re.compile(r"^bert\.encoder\.layer\.(\d+)\.")

    def is_trainable(path, value) -> bool:
        if not isinstance(value, nnx.Param):
            return False
        name = path_name(path)
        if not name.startswith("bert."):
            return True
        if name.startswith("bert.pooler."):
            return False
        if trainable_layers == -1:
            return True
        m = pattern.match(name)
        return bool(m) and int(m.group(1)) >= first

    return is_trainable


def frozen_bottom_layers(
    model: ml_collections.ConfigDict, num_layers: int, trainable_layers: int | None = None
) -> int:
    """How many bottom encoder layers are frozen and cached (0: none, or caching is off), with
    `trainable_layers` (by default model.trainable_layers) trained.

    Frozen layers run in inference mode (no dropout) when cached; that is the only difference
    from running them in every step, and it saves all of their compute after the first pass.
    """
    k = model.trainable_layers if trainable_layers is None else trainable_layers
    if not model.cache_frozen_layers or k < 0 or k >= num_layers:
        return 0
    return num_layers - k
