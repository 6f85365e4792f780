"""Orbax checkpoints of the model parameters, kept by the configured dev metric."""

from __future__ import annotations

from pathlib import Path

import orbax.checkpoint as ocp
from flax import nnx

from jaxrec.errors import CheckpointError


def manager(
    workdir: str | Path, *, metric: str | None = None, keep: int = 2, read_only: bool = False
) -> ocp.CheckpointManager:
    """Checkpoints under `workdir/checkpoints`; with `metric`, the best `keep` by dev `metric`."""
    options = ocp.CheckpointManagerOptions(
        max_to_keep=keep,
        best_fn=(lambda m: float(m[metric])) if metric else None,
        best_mode="max",
        create=not read_only,
        read_only=read_only,
    )
    return ocp.CheckpointManager(Path(workdir).resolve() / "checkpoints", options=options)


def save(
    mngr: ocp.CheckpointManager,
    step: int,
    params: nnx.State,
    metrics: dict[str, float] | None = None,
) -> None:
    mngr.save(step, args=ocp.args.Composite(params=ocp.args.StandardSave(params)), metrics=metrics)


def restore_params(
    workdir: str | Path, abstract: nnx.State, step: int | str | None = None
) -> tuple[nnx.State, int]:
    """The parameters of `step`: an integer, "latest", or by default the best checkpoint."""
    mngr = manager(workdir, read_only=True)
    steps = mngr.all_steps()
    if not steps:
        raise CheckpointError(f"{Path(workdir) / 'checkpoints'}: no checkpoint to restore")
    if step is None:
        step = _best_step(mngr) or mngr.latest_step()
    elif step == "latest":
        step = mngr.latest_step()
    elif step not in steps:
        raise CheckpointError(f"{workdir}: no checkpoint for step {step} (have {sorted(steps)})")
    restored = mngr.restore(
        step, args=ocp.args.Composite(params=ocp.args.StandardRestore(abstract))
    )
    return restored["params"], step


def _best_step(mngr: ocp.CheckpointManager) -> int | None:
    """The step recorded as best in the workdir (the manager reading it has no best_fn)."""
    marker = Path(mngr.directory) / "best_step"
    return int(marker.read_text()) if marker.exists() else None


def mark_best(mngr: ocp.CheckpointManager, step: int) -> None:
    """Records which checkpoint holds the best parameters, for prediction and export."""
    (Path(mngr.directory) / "best_step").write_text(f"{step}\n")
