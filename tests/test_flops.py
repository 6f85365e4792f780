"""Model FLOPs from the architecture agree with XLA's own count; device peaks by kind."""

import types

import jax
import jax.numpy as jnp
import pytest
from flax import nnx

from jaxrec import flops
from jaxrec.models.bert import BertConfig, BertModel


def test_layer_flops_match_the_compiled_forward_pass():
    config = BertConfig(
        vocab_size=64, hidden_size=256, num_hidden_layers=2, num_attention_heads=4,
        intermediate_size=1024, max_position_embeddings=64,
    )  # fmt: skip
    model = BertModel(config, rngs=nnx.Rngs(0))
    graphdef, state = nnx.split(model)
    x = jnp.ones((8, 32, 256))
    mask = jnp.ones((8, 32), jnp.int32)

    def layers(state, x, mask):
        return nnx.merge(graphdef, state).run_layers(x, mask, 0, 2)

    counted = jax.jit(layers).lower(state, x, mask).compile().cost_analysis()["flops"]
    ours = 2 * flops.layer_forward_flops(config, 8, 32)
    # XLA also counts softmax, GELU and LayerNorm, which the model count leaves out.
    assert ours <= counted <= 1.1 * ours


def test_step_flops_weigh_trained_frozen_and_lora_layers():
    config = BertConfig(hidden_size=64, num_hidden_layers=6, num_attention_heads=4,
                        intermediate_size=256)  # fmt: skip
    one = flops.layer_forward_flops(config, 10, 16)
    step = flops.encoder_step_flops
    assert step(config, [(10, 16)], computed_layers=6, trained_layers=6) == pytest.approx(18 * one)
    assert step(config, [(10, 16)], computed_layers=6, trained_layers=1) == pytest.approx(8 * one)
    # Five layers from the frozen-layer cache: only the trained top layer runs.
    assert step(config, [(10, 16)], computed_layers=1, trained_layers=1) == pytest.approx(3 * one)
    lora = step(config, [(10, 16)], computed_layers=6, trained_layers=0, lora=True)
    assert lora == pytest.approx(12 * one)


@pytest.mark.parametrize(
    "kind,peak",
    [("NVIDIA H100 80GB HBM3", 989e12), ("NVIDIA H200", 989e12), ("TPU v5 lite", 197e12),
     ("TPU v5p", 459e12), ("TPU v4", 275e12), ("cpu", None)],
)  # fmt: skip
def test_device_peaks_by_kind(kind, peak):
    assert flops.device_peak(types.SimpleNamespace(device_kind=kind)) == peak
