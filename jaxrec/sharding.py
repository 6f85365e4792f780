"""Where arrays live: the device mesh, the logical-axis rule table, and multi-process batches.

Model code names the dimensions of its parameters (`logical(init, "embed", "mlp")`) and of a
few activations (`constrain(x, "batch", None, None)`) with logical names. One short rule table
(`config.mesh.rules`) maps each logical name to mesh axes, so the same model runs data
parallel, fully sharded (FSDP) or tensor parallel by changing the config, not the code.

The mesh has three axes: `data` (batch only), `fsdp` (batch, and parameters split along their
`embed` dimension, gathered for each use) and `tensor` (attention heads and MLP columns).
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Iterator, Sequence
from typing import Any

import jax
import numpy as np
from flax import nnx
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from jaxrec.errors import ConfigError
from jaxrec.params import path_name

MESH_AXES = ("data", "fsdp", "tensor")
BATCH_AXES = ("data", "fsdp")  # a batch is split over both; `tensor` devices share their rows

# logical name -> mesh axis or axes; names not listed are replicated.
DEFAULT_RULES = (
    ("batch", ("data", "fsdp")),
    ("vocab", "tensor"),
    ("embed", "fsdp"),
    ("heads", "tensor"),
    ("mlp", "tensor"),
)

Rules = Sequence[tuple[str, str | tuple[str, ...] | None]]
log = logging.getLogger(__name__)


def logical(init, *names: str | None):
    """An initializer whose parameter records the logical name of each of its dimensions."""
    return nnx.with_metadata(init, logical_axes=names)


def make_mesh(shape: Sequence[int], devices: Sequence[jax.Device] | None = None) -> Mesh:
    """A (data, fsdp, tensor) mesh; one size may be -1 to take the remaining devices."""
    devices = list(devices if devices is not None else jax.devices())
    shape = [int(s) for s in shape]
    if len(shape) != len(MESH_AXES) or shape.count(-1) > 1 or any(s == 0 or s < -1 for s in shape):
        raise ConfigError(
            f"mesh.shape {tuple(shape)} must give 3 positive sizes (data, fsdp, tensor), "
            "one of which may be -1"
        )
    known = math.prod(s for s in shape if s != -1)
    if -1 in shape:
        if len(devices) % known:
            raise ConfigError(
                f"mesh.shape {tuple(shape)}: {len(devices)} devices are not divisible by {known}"
            )
        shape[shape.index(-1)] = len(devices) // known
    if math.prod(shape) != len(devices):
        raise ConfigError(
            f"mesh.shape {tuple(shape)} needs {math.prod(shape)} devices; there are {len(devices)}"
        )
    return jax.make_mesh(
        tuple(shape),
        MESH_AXES,
        axis_types=(jax.sharding.AxisType.Auto,) * len(MESH_AXES),
        devices=devices,
    )


def batch_shards(mesh: Mesh) -> int:
    """How many parts every batch is split into."""
    return math.prod(mesh.shape[a] for a in BATCH_AXES)


def spec(names: Sequence[str | None], shape: Sequence[int], mesh: Mesh, rules: Rules) -> P:
    """The PartitionSpec for an array whose dimensions have these logical names.

    A dimension that its mesh axes do not divide stays whole (replicated) rather than failing:
    a tiny vocabulary or an odd head count then costs memory, not correctness.
    """
    table = dict(rules)
    used: set[str] = set()
    out = []
    for name, size in zip(names, shape, strict=True):
        axes = table.get(name) if name else None
        axes = (axes,) if isinstance(axes, str) else tuple(axes or ())
        axes = tuple(a for a in axes if mesh.shape[a] > 1 and a not in used)
        if axes and size % math.prod(mesh.shape[a] for a in axes) == 0:
            used.update(axes)
            out.append(axes[0] if len(axes) == 1 else axes)
        else:
            out.append(None)
    return P(*out)


def state_shardings(state: nnx.State, mesh: Mesh, rules: Rules) -> nnx.State:
    """A NamedSharding per variable, from the logical names its initializer recorded."""

    def one(var):
        names = var.get_metadata().get("logical_axes") or (None,) * len(var.shape)
        return var.replace(NamedSharding(mesh, spec(names, var.shape, mesh, rules)))

    return jax.tree.map(one, state, is_leaf=lambda x: isinstance(x, nnx.Variable))


_active: list[tuple[Mesh, Rules]] = []


@contextlib.contextmanager
def activate(mesh: Mesh, rules: Rules) -> Iterator[None]:
    """Makes `constrain` place activations on `mesh` by `rules` (while tracing jitted code)."""
    _active.append((mesh, tuple(rules)))
    try:
        with jax.set_mesh(mesh):
            yield
    finally:
        _active.pop()


def constrain(x: jax.Array, *names: str | None) -> jax.Array:
    """Tells the compiler how an activation is laid out; a no-op outside `activate`."""
    if not _active:
        return x
    mesh, rules = _active[-1]
    return jax.lax.with_sharding_constraint(
        x, NamedSharding(mesh, spec(names, x.shape, mesh, rules))
    )


def process_block(mesh: Mesh) -> tuple[int, int, int]:
    """(lo, hi, n): this process feeds parts lo..hi-1 of the n parts of every batch.

    Every process builds the same global batch layout (cheap integer work) and materializes
    only its own rows; the mesh decides which rows those are.
    """
    n = batch_shards(mesh)
    index_map = NamedSharding(mesh, P(BATCH_AXES)).addressable_devices_indices_map((n,))
    parts = sorted({idx[0].start or 0 for idx in index_map.values()})
    lo, hi = parts[0], parts[-1] + 1
    if parts != list(range(lo, hi)):
        raise ConfigError(f"this process's devices hold non-contiguous batch parts {parts}")
    return lo, hi, n


def local_rows(array: np.ndarray, block: tuple[int, int, int], axis: int = 0) -> np.ndarray:
    """This process's rows of a global array (its `block` of the leading batch axis)."""
    lo, hi, n = block
    size = array.shape[axis]
    if size % n:
        raise ValueError(f"a batch axis of {size} rows does not split into {n} parts")
    index = [slice(None)] * array.ndim
    index[axis] = slice(lo * size // n, hi * size // n)
    return array[tuple(index)]


class Feed:
    """Host arrays to device arrays and back: global arrays on a mesh, or one plain device.

    `put` takes a global host batch (the same on every process) and sends this process's rows;
    `put_local` takes rows already cut by `process_block`. Inference outputs are replicated, so
    `get` reads them on every process without a collective.
    """

    def __init__(self, mesh: Mesh | None = None) -> None:
        self.mesh = mesh
        self.block = process_block(mesh) if mesh is not None else (0, 1, 1)
        self.replicated = NamedSharding(mesh, P()) if mesh is not None else None
        lo, hi, n = self.block
        self.scale = n // (hi - lo)  # global batch rows per local row

    def put(self, batch: Any, axis: int = 0) -> Any:
        if self.mesh is None:
            return batch
        local = jax.tree.map(lambda x: local_rows(np.asarray(x), self.block, axis), batch)
        return self.put_local(local, axis)

    def put_local(self, local: Any, axis: int = 0) -> Any:
        if self.mesh is None:
            return local
        lo, hi, n = self.block
        sharding = NamedSharding(self.mesh, P(*([None] * axis), BATCH_AXES))

        def one(x):
            x = np.asarray(x)
            shape = (*x.shape[:axis], x.shape[axis] * n // (hi - lo), *x.shape[axis + 1 :])
            return jax.make_array_from_process_local_data(sharding, x, shape)

        return jax.tree.map(one, local)

    def replicate(self, x: np.ndarray) -> jax.Array:
        """The same host array on every device (all processes pass the same array)."""
        if self.mesh is None:
            return jax.device_put(x)
        x = np.asarray(x)
        return jax.make_array_from_callback(x.shape, self.replicated, lambda index: x[index])

    @staticmethod
    def get(x: jax.Array) -> np.ndarray:
        return np.asarray(x.addressable_data(0)) if isinstance(x, jax.Array) else np.asarray(x)


def overview(state: nnx.State, shardings: nnx.State, mesh: Mesh, max_replicated: float) -> float:
    """Logs how parameters are split; returns the replicated share of parameter elements.

    With FSDP on, a large replicated share means the rule table misses a big parameter (every
    device would hold a whole copy), which is a ConfigError rather than a silent memory cost.
    """
    total = replicated = 0
    rows = []
    flat_shardings = dict(nnx.to_flat_state(shardings))
    for path, var in nnx.to_flat_state(state):
        size = math.prod(var.shape)
        sharding = flat_shardings[path].get_value()
        total += size
        if all(p is None for p in sharding.spec):
            replicated += size
        rows.append((size, path_name(path), var.shape, sharding.spec))
    share = replicated / max(total, 1)
    log.info(
        "mesh %s; %d parameters, %.1f%% replicated",
        dict(mesh.shape),
        total,
        100 * share,
    )
    for _, name, shape, spec_ in sorted(rows, reverse=True)[:8]:
        log.info("  %-60s %-16s %s", name, tuple(shape), spec_)
    if mesh.shape["fsdp"] > 1 and share > max_replicated:
        biggest = [n for _, n, _, s in sorted(rows, reverse=True) if all(a is None for a in s)]
        raise ConfigError(
            f"FSDP is on (mesh fsdp={mesh.shape['fsdp']}) but {100 * share:.0f}% of the "
            f"parameters are replicated (mesh.max_replicated_share={max_replicated}); "
            f"largest replicated: {biggest[:5]}. Add their logical axes to mesh.rules."
        )
    return share


def row_sharding(mesh: Mesh) -> NamedSharding:
    """Rows split over the batch axes: how frozen-layer caches are kept, one share a device."""
    return NamedSharding(mesh, P(BATCH_AXES))


def padded_rows(rows: int, mesh: Mesh | None) -> int:
    """`rows` rounded up to a multiple of the batch shards, so that a table splits evenly."""
    shards = batch_shards(mesh) if mesh is not None else 1
    return -(-rows // shards) * shards


def take_rows(table: jax.Array, rows: jax.Array, width: int | None = None) -> jax.Array:
    """`table[rows, :width]` for a table split by rows over the batch axes (`row_sharding`),
    without gathering the table onto any device.

    Each device picks the requested rows that its share holds (zeros for the others), and one
    reduce-scatter sums the parts and leaves each device its share of the requested rows,
    split over the batch axes like the batch itself. Outside `activate`, or on a mesh without
    batch shards, it is `jnp.take`. `len(rows)` must split over the batch shards.
    """
    if not _active or batch_shards(_active[-1][0]) == 1:
        return jax.numpy.take(table, rows, axis=0)[:, :width]
    mesh = _active[-1][0]

    def pick(share, rows):
        n = share.shape[0]
        local = rows - jax.lax.axis_index(BATCH_AXES) * n
        held = (local >= 0) & (local < n)
        part = jax.numpy.take(share, jax.numpy.clip(local, 0, n - 1), axis=0)[:, :width]
        part = jax.numpy.where(held.reshape(-1, *[1] * (part.ndim - 1)), part, 0)
        return jax.lax.psum_scatter(part, BATCH_AXES, scatter_dimension=0, tiled=True)

    return jax.shard_map(pick, mesh=mesh, in_specs=(P(BATCH_AXES), P()), out_specs=P(BATCH_AXES))(
        table, rows
    )
