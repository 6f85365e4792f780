"""LoRA on the tiny BERT: exact no-op at start, merge equivalence, HF names, frozen base."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from jaxrec.convert import hf
from jaxrec.errors import CheckpointError
from jaxrec.models.bert import BertConfig, BertModel
from jaxrec.models.lora import (
    TARGETS,
    LoRALinear,
    LoRAParam,
    add_lora,
    lora_filter,
    lora_trainable_filter,
    merge_lora,
)
from jaxrec.params import path_name

CONFIG = BertConfig(
    vocab_size=100,
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=4,
    intermediate_size=64,
    max_position_embeddings=16,
)
RANK, ALPHA = 4, 8.0


class Recommender(nnx.Module):
    """The shape of jaxrec's recommenders: an encoder at `.bert` and a head outside it."""

    def __init__(self, rngs: nnx.Rngs) -> None:
        self.bert = BertModel(CONFIG, rngs=rngs)
        self.head = nnx.Linear(CONFIG.hidden_size, 3, rngs=rngs)

    def __call__(self, input_ids: jax.Array) -> jax.Array:
        return self.head(self.bert.hidden_states(input_ids)[:, 0])


def inputs(seed: int = 0) -> jax.Array:
    return jax.random.randint(jax.random.key(seed), (3, 10), 1, CONFIG.vocab_size)


def param_shapes(model: nnx.Module) -> dict[str, tuple[type, tuple[int, ...]]]:
    return {
        path_name(path): (type(var), var.shape)
        for path, var in nnx.to_flat_state(nnx.state(model, nnx.Param))
    }


def randomise_lora_b(model: nnx.Module, seed: int = 1) -> None:
    # numpy, not jax.random: an eager jax.random call compiles anew for every shape.
    rng = np.random.default_rng(seed)
    state = nnx.state(model, LoRAParam)
    for path, var in nnx.to_flat_state(state):
        if path[-1] == "lora_b":
            var[...] = 0.1 * rng.standard_normal(var.shape, dtype=np.float32)
    nnx.update(model, state)


def test_fresh_adapters_leave_the_output_bit_identical():
    model = BertModel(CONFIG, rngs=nnx.Rngs(0))
    ids = inputs()
    before = np.asarray(model.hidden_states(ids))
    assert add_lora(model, rank=RANK, alpha=ALPHA, rngs=nnx.Rngs(1)) == 2 * 2
    np.testing.assert_array_equal(np.asarray(model.hidden_states(ids)), before)
    query = model.encoder.layer[0].attention.self.query
    assert isinstance(query, LoRALinear)
    assert query.lora_a.shape == (32, RANK) and query.lora_b.shape == (RANK, 32)
    assert query.scale == ALPHA / RANK
    assert np.abs(np.asarray(query.lora_a[...])).max() > 0
    assert not isinstance(model.encoder.layer[0].attention.self.key, LoRALinear)


def test_paths_keep_the_base_names_and_add_the_adapters():
    model = BertModel(CONFIG, rngs=nnx.Rngs(0))
    plain = param_shapes(model)
    add_lora(model, rank=RANK, alpha=ALPHA, targets=("key", "output"), rngs=nnx.Rngs(1))
    adapted = param_shapes(model)
    assert {k: v for k, v in adapted.items() if v[0] is not LoRAParam} == plain
    assert sorted(k for k, v in adapted.items() if v[0] is LoRAParam) == sorted(
        f"encoder.layer.{i}.{where}.{leaf}"
        for i in range(2)
        for where in ("attention.self.key", "output.dense")
        for leaf in ("lora_a", "lora_b")
    )
    # Unmerged adapters have no HF name: the export refuses them instead of dropping them.
    with pytest.raises(CheckpointError, match="lora_a"):
        hf.export_tensors(model)


def test_merge_reproduces_the_adapted_model_as_plain_bert():
    model = BertModel(CONFIG, rngs=nnx.Rngs(0))
    plain_export = hf.export_tensors(model)
    plain_shapes = param_shapes(model)
    ids = inputs()
    original = np.asarray(model.hidden_states(ids))
    add_lora(model, rank=RANK, alpha=ALPHA, targets=tuple(TARGETS), rngs=nnx.Rngs(1))
    randomise_lora_b(model)
    adapted = np.asarray(model.hidden_states(ids))
    assert np.abs(adapted - original).max() > 1e-3

    split_before = nnx.state(model, nnx.Param)
    kernel_before = np.array(model.encoder.layer[0].attention.self.query.kernel[...])

    assert merge_lora(model) == 2 * len(TARGETS)
    assert not any(isinstance(node, LoRALinear) for _, node in nnx.iter_graph(model))
    np.testing.assert_allclose(np.asarray(model.hidden_states(ids)), adapted, atol=1e-5)
    assert param_shapes(model) == plain_shapes
    export = hf.export_tensors(model)
    assert {k: v.shape for k, v in export.items()} == {k: v.shape for k, v in plain_export.items()}
    changed = [k for k in export if not np.array_equal(export[k], plain_export[k])]
    assert changed and all(k.endswith(".weight") and ".encoder.layer." in f".{k}" for k in changed)
    # State split off before the merge keeps the weights it was split with.
    kept = split_before["encoder"]["layer"][0]["attention"]["self"]["query"]["kernel"]
    np.testing.assert_array_equal(np.asarray(kept[...]), kernel_before)


def test_merging_a_clone_exports_and_keeps_the_adapters():
    model = BertModel(CONFIG, rngs=nnx.Rngs(0))
    add_lora(model, rank=RANK, alpha=ALPHA, rngs=nnx.Rngs(1))
    randomise_lora_b(model)
    merged = nnx.clone(model)
    merge_lora(merged)
    export = hf.export_tensors(merged)
    assert "encoder.layer.1.attention.self.value.weight" in export
    assert isinstance(model.encoder.layer[1].attention.self.value, LoRALinear)
    ids = inputs()
    np.testing.assert_allclose(
        np.asarray(merged.hidden_states(ids)), np.asarray(model.hidden_states(ids)), atol=1e-5
    )


def small_linear(**kwargs) -> nnx.Linear:
    # The tiny BERT's shapes and initialiser, so the eager ops compiled for it are reused.
    init = nnx.initializers.normal(0.02)
    return nnx.Linear(32, 32, kernel_init=init, rngs=nnx.Rngs(0), **kwargs)


def test_merged_kernel_is_kernel_plus_scaled_product():
    linear = small_linear()
    kernel, bias = np.asarray(linear.kernel[...]), np.asarray(linear.bias[...])
    lora = LoRALinear(linear, rank=RANK, alpha=ALPHA, rngs=nnx.Rngs(1))
    b = np.random.default_rng(0).standard_normal((RANK, 32), dtype=np.float32)
    lora.lora_b[...] = b
    merged = kernel + (ALPHA / RANK) * np.asarray(lora.lora_a[...]) @ b
    np.testing.assert_allclose(np.asarray(lora.merged_kernel()), merged, atol=1e-6)
    x = np.random.default_rng(1).standard_normal((3, 10, 32), dtype=np.float32)
    np.testing.assert_allclose(np.asarray(lora(x)), x @ merged + bias, rtol=1e-5, atol=1e-5)


def test_compute_dtype_is_the_base_layers():
    lora = LoRALinear(small_linear(dtype=jnp.bfloat16), rank=RANK, alpha=ALPHA, rngs=nnx.Rngs(1))
    assert lora(jnp.ones((3, 10, 32))).dtype == jnp.bfloat16
    assert lora.lora_a.dtype == lora.lora_b.dtype == jnp.float32


def test_sharding_annotations_follow_the_kernel():
    init = nnx.with_partitioning(nnx.initializers.normal(0.02), ("embed", "mlp"))
    with nnx.use_eager_sharding(False):
        linear = nnx.Linear(32, 32, kernel_init=init, rngs=nnx.Rngs(0))
    lora = LoRALinear(linear, rank=RANK, alpha=ALPHA, rngs=nnx.Rngs(1))
    assert lora.kernel is linear.kernel
    assert lora.lora_a.get_metadata()["out_sharding"] == ("embed", None)
    assert lora.lora_b.get_metadata()["out_sharding"] == (None, "mlp")


def test_trainable_parameters_are_the_adapters_and_the_head():
    model = Recommender(nnx.Rngs(0))
    total = sum(x.size for x in jax.tree.leaves(nnx.state(model, nnx.Param)))
    targets = ("query", "value", "intermediate", "output")
    add_lora(model.bert, rank=RANK, alpha=ALPHA, targets=targets, rngs=nnx.Rngs(1))
    _, trainable, frozen = nnx.split(model, lora_trainable_filter("bert"), ...)
    h, m = CONFIG.hidden_size, CONFIG.intermediate_size
    sizes = {"query": (h, h), "value": (h, h), "intermediate": (h, m), "output": (m, h)}
    lora_size = CONFIG.num_hidden_layers * sum(RANK * (i + o) for i, o in sizes.values())
    head_size = h * 3 + 3
    assert sum(x.size for x in jax.tree.leaves(trainable)) == lora_size + head_size
    assert sum(x.size for x in jax.tree.leaves(frozen)) == total - head_size
    assert lora_size + head_size < total / 5
    names = {path_name(p) for p, _ in nnx.to_flat_state(trainable)}
    assert {"head.kernel", "head.bias"} <= names
    assert all(n.startswith("head.") or n.endswith(("lora_a", "lora_b")) for n in names)
    only_lora = nnx.state(model, lora_filter)
    assert len(jax.tree.leaves(only_lora)) == 2 * len(targets) * CONFIG.num_hidden_layers


def test_training_moves_only_the_adapters_and_the_head():
    model = Recommender(nnx.Rngs(0))
    add_lora(model.bert, rank=RANK, alpha=ALPHA, rngs=nnx.Rngs(1))
    before = {path_name(p): np.array(v[...]) for p, v in nnx.to_flat_state(nnx.state(model))}
    graphdef, trainable, frozen = nnx.split(model, lora_trainable_filter(), ...)
    tx = optax.adam(1e-2)
    opt_state = tx.init(trainable)
    ids, target = inputs(), jnp.ones((3, 3))

    @jax.jit
    def step(trainable, opt_state):
        def loss_fn(trainable):
            return jnp.mean((nnx.merge(graphdef, trainable, frozen)(ids) - target) ** 2)

        loss, grads = jax.value_and_grad(loss_fn)(trainable)
        updates, opt_state = tx.update(grads, opt_state, trainable)
        return optax.apply_updates(trainable, updates), opt_state, loss

    losses = []
    for _ in range(4):
        trainable, opt_state, loss = step(trainable, opt_state)
        losses.append(float(loss))
    assert losses[-1] < losses[0]
    nnx.update(model, trainable)
    after = {path_name(p): np.asarray(v[...]) for p, v in nnx.to_flat_state(nnx.state(model))}
    moved = {name for name in before if not np.array_equal(before[name], after[name])}
    adapters = {n for n in before if n.endswith(("lora_a", "lora_b"))}
    assert adapters and adapters <= moved  # lora_a moves from step 2, once lora_b is non-zero.
    assert moved - adapters == {"head.kernel", "head.bias"}


def test_bad_targets_are_named():
    model = BertModel(CONFIG, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="'keys'"):
        add_lora(model, rank=RANK, alpha=ALPHA, targets=("query", "keys"), rngs=nnx.Rngs(1))
    assert not any(isinstance(node, LoRALinear) for _, node in nnx.iter_graph(model))
    with pytest.raises(ValueError, match="rank"):
        add_lora(model, rank=0, alpha=ALPHA, rngs=nnx.Rngs(1))
    add_lora(model, rank=RANK, alpha=ALPHA, targets="value", rngs=nnx.Rngs(1))
    with pytest.raises(ValueError, match=r"encoder\.layer\.0\.attention\.self\.value already"):
        add_lora(model, rank=RANK, alpha=ALPHA, targets=("key", "value"), rngs=nnx.Rngs(1))
    assert not isinstance(model.encoder.layer[0].attention.self.key, LoRALinear)
