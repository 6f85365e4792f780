"""Model FLOPs per training step from the architecture, and the devices' peaks, for MFU.

Counted: the encoder's matrix multiplies and attention products, 2 FLOPs per multiply-add.
A layer's forward pass over N sequences of length L costs
  2 N L (4 h^2 + 2 h i)   (Q, K, V, output and the two MLP projections)
+ 4 N L^2 h               (Q K^T and the weighted sum of V).
A trained layer costs 3x its forward (forward, gradients of activations and of weights);
a layer below the trained ones that is still computed costs 1x (no gradient reaches it);
with LoRA every layer costs 2x (activation gradients flow to the adapters; the adapters'
own products are negligible). Layers served from the frozen-layer cache cost nothing.
Embedding lookups and the small heads are not counted, so MFU is slightly understated.
"""

from __future__ import annotations

from collections.abc import Iterable

import jax

from jaxrec.models.bert import BertConfig

# Dense bf16 peak FLOP/s per device (the compute dtype a user would pick on these chips).
PEAKS = {
    "H100": 989e12,
    "H200": 989e12,
    "A100": 312e12,
    "TPU v4": 275e12,
    "TPU v5 lite": 197e12,  # v5e
    "TPU v5e": 197e12,
    "TPU v5p": 459e12,
    "TPU v5": 459e12,
}


def layer_forward_flops(config: BertConfig, sequences: int, length: int) -> float:
    h, i = config.hidden_size, config.intermediate_size
    tokens = sequences * length
    return 2.0 * tokens * (4 * h * h + 2 * h * i) + 4.0 * sequences * length * length * h


def encoder_step_flops(
    config: BertConfig,
    encoded: Iterable[tuple[int, int]],
    *,
    computed_layers: int,
    trained_layers: int,
    lora: bool = False,
) -> float:
    """FLOPs of one training step that encodes `encoded` = [(sequences, length), ...]."""
    if lora:
        per_layer = 2.0 * computed_layers
    else:
        trained = min(trained_layers, computed_layers)
        per_layer = 3.0 * trained + 1.0 * (computed_layers - trained)
    return sum(per_layer * layer_forward_flops(config, n, length) for n, length in encoded)


def device_peak(device: jax.Device | None = None) -> float | None:
    """The device's peak FLOP/s, or None when unknown (CPUs: throughput only)."""
    kind = (device or jax.devices()[0]).device_kind
    for name in sorted(PEAKS, key=len, reverse=True):
        if name.lower() in kind.lower():
            return PEAKS[name]
    return None
