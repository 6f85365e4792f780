"""Comparing the end states of two training runs (their last checkpoints and metrics.json)."""

import json
from pathlib import Path

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest

from jaxrec import checkpointing

# Measured between meshes and between process layouts on 8 CPU devices: parameters differ
# by at most ~2e-7 after a few all-layer steps (reduction order only); metrics to ~1e-6.
PARAM_ATOL, METRIC_ATOL = 1e-5, 1e-4


def final_params(workdir) -> dict[str, np.ndarray]:
    """The latest checkpoint's parameters as host arrays, whatever devices saved them."""
    mngr = checkpointing.manager(workdir, read_only=True)
    path = Path(mngr.directory) / str(mngr.latest_step()) / "params"
    mngr.close()
    reader = ocp.PyTreeCheckpointer()
    tree = reader.metadata(path).item_metadata.tree
    as_numpy = jax.tree.map(lambda _: ocp.RestoreArgs(restore_type=np.ndarray), tree)
    restored = reader.restore(path, args=ocp.args.PyTreeRestore(restore_args=as_numpy))
    flat = jax.tree_util.tree_flatten_with_path(restored)[0]
    return {jax.tree_util.keystr(path): np.asarray(x) for path, x in flat}


def assert_same_results(a, b):
    pa, pb = final_params(a), final_params(b)
    assert pa.keys() == pb.keys()
    for key in pa:
        np.testing.assert_allclose(pa[key], pb[key], atol=PARAM_ATOL, rtol=0, err_msg=key)
    ma = json.loads((Path(a) / "metrics.json").read_text())
    mb = json.loads((Path(b) / "metrics.json").read_text())
    assert ma["dev"]["num_impressions"] == mb["dev"]["num_impressions"]
    for key, value in ma["dev"].items():
        assert value == pytest.approx(mb["dev"][key], abs=METRIC_ATOL), key


def run_main(*args: str, one_device: bool = False, timeout: int = 600):
    """`python -m jaxrec.main ARGS` from the repository root, on the CPU (with one device
    instead of the 8 fake ones when `one_device`: on 2 cores those cost 3x)."""
    import os
    import subprocess
    import sys

    env = dict(os.environ, JAX_PLATFORMS="cpu")
    if one_device:
        env.pop("XLA_FLAGS", None)
    return subprocess.run(
        [sys.executable, "-m", "jaxrec.main", *args],
        cwd=Path(__file__).resolve().parent.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
