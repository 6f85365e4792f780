"""Orbax checkpoints that lose nothing: latest N plus the best by the dev metric, resumable.

A checkpoint holds three items: `params` (every model parameter, what prediction and export
restore), `opt_state`, and `progress` (JSON: the step and the early-stopping record), and a
fourth, `carry`, when the task's step carries state (the news-vector cache). The input
pipeline's position and every random key are functions of the step, so these are all a run
needs to continue exactly where it stopped.

Saves are asynchronous and atomic: Orbax writes into a temporary folder and renames it when
complete, and deletes old checkpoints only after a newer one is complete. When the latest
checkpoints cannot be read, the newest readable one is restored and the unreadable ones after
it are moved aside to `<step>.damaged` (kept for inspection; Orbax no longer counts them), so
that the resumed run can save those steps again and run to the end.

Every item has its handler registered, so that restoring some items (prediction restores only
`params`) reads exactly those, with no warnings about the others.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import orbax.checkpoint as ocp
from flax import nnx
from orbax.checkpoint import checkpoint_managers as policies

from jaxrec.errors import CheckpointError
from jaxrec.params import path_name

log = logging.getLogger(__name__)


def manager(
    workdir: str | Path,
    *,
    metric: str | None = None,
    higher_is_better: bool = True,
    keep: int = 2,
    read_only: bool = False,
) -> ocp.CheckpointManager:
    """Checkpoints under `workdir/checkpoints`: the latest `keep`, and the best by dev `metric`."""
    keep_policies = [policies.LatestN(keep)]
    sign = 1.0 if higher_is_better else -1.0  # BestN keeps the largest
    if metric:
        keep_policies.append(
            policies.BestN(
                get_metric_fn=lambda m: sign * float(m[metric]),
                n=1,
                keep_checkpoints_without_metrics=False,
            )
        )
    directory = Path(workdir).resolve() / "checkpoints"
    if directory.exists() and not directory.is_dir():
        raise CheckpointError(f"{directory}: expected a folder of checkpoints, found a file")
    options = ocp.CheckpointManagerOptions(
        preservation_policy=None if read_only else policies.AnyPreservationPolicy(keep_policies),
        # Orbax writes each checkpoint's metrics only with a best_fn: without them on disk, a
        # resumed run would not know its best checkpoint and could delete it.
        best_fn=(lambda m: sign * float(m[metric])) if metric else None,
        best_mode="max",
        create=not read_only,
        read_only=read_only,
        save_interval_steps=0 if read_only else 1,  # Orbax warns when it has to change it
    )
    with _quiet_read_only_notice() if read_only else contextlib.nullcontext():
        return _Manager(directory, options=options, handler_registry=_registry())


class _Manager(ocp.CheckpointManager):
    """Orbax's manager, reading a damaged metrics file as missing metrics.

    Orbax reads every step's metrics when it opens the folder; a garbled one would stop the
    recovery that `restore_latest` does (set the damaged step aside, resume from an older one).
    """

    def _get_metrics(self, step: int):
        try:
            return super()._get_metrics(step)
        except ValueError as e:  # json's decode errors
            log.warning("checkpoint %s/%d: unreadable metrics (%s)", self.directory, step, e)
            return None


def _registry() -> ocp.handlers.DefaultCheckpointHandlerRegistry:
    """A handler for each item, for saving and restoring."""
    registry = ocp.handlers.DefaultCheckpointHandlerRegistry()
    for item in ("params", "opt_state"):
        registry.add(item, ocp.args.StandardSave)
        registry.add(item, ocp.args.StandardRestore)
    registry.add("progress", ocp.args.JsonSave)
    registry.add("progress", ocp.args.JsonRestore)
    return registry


class _DropReadOnlyNotice(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Given directory is read only")


@contextlib.contextmanager
def _quiet_read_only_notice():
    """Orbax announces every read-only manager: prediction and export only read, as asked."""
    logger, notice = logging.getLogger("absl"), _DropReadOnlyNotice()
    logger.addFilter(notice)
    try:
        yield
    finally:
        logger.removeFilter(notice)


def save(
    mngr: ocp.CheckpointManager,
    step: int,
    *,
    params: nnx.State,
    opt_state: Any,
    progress: dict[str, Any],
    metrics: dict[str, float] | None = None,
    carry: Any = None,
) -> None:
    """Starts an asynchronous save of `step`; `mngr.wait_until_finished()` waits for it."""
    items = {
        "params": ocp.args.StandardSave(params),
        "opt_state": ocp.args.StandardSave(opt_state),
        "progress": ocp.args.JsonSave(progress),
    }
    if carry is not None:
        items["carry"] = ocp.args.StandardSave(carry)
    mngr.save(step, args=ocp.args.Composite(**items), metrics=metrics, force=True)


def restore_carry(mngr: ocp.CheckpointManager, step: int, abstract: Any) -> Any:
    """The `carry` item of `step`, into the shapes and shardings of `abstract`; `abstract`
    itself (with a warning) when the checkpoint has none (it was saved without one)."""
    path = Path(mngr.directory) / str(step)
    if not (path / "carry").is_dir():
        log.warning("%s holds no carried step state; starting it afresh", path)
        return abstract
    try:
        restored = mngr.restore(
            step, args=ocp.args.Composite(carry=ocp.args.StandardRestore(abstract))
        )
    except Exception as e:  # Orbax and tensorstore raise many types for damaged files
        raise CheckpointError(f"{path}/carry: unreadable: {e!r}") from None
    return restored["carry"]


def restore_latest(
    mngr: ocp.CheckpointManager,
    abstract_params: nnx.State,
    abstract_opt_state: Any | Callable[[int], Any],
) -> tuple[int, nnx.State, Any, dict[str, Any]] | None:
    """The newest readable checkpoint (step, params, opt_state, progress), or None if none.

    `abstract_opt_state` is the optimizer state to restore into, or a function of the step
    that gives it (training phases differ in what they train). An unreadable checkpoint is
    skipped with a warning naming it; once an older one reads, the unreadable ones after it are
    moved aside (`set_aside`), so that the run can save their steps again. With none readable,
    nothing is moved and CheckpointError names the steps. One that reads but does not fit the
    model is an error naming the mismatching parameters.
    """
    steps = sorted(mngr.all_steps(), reverse=True)
    unreadable: list[int] = []
    for step in steps:
        path = Path(mngr.directory) / str(step)
        check_fits(mngr, step, abstract_params)
        opt_state = abstract_opt_state
        if callable(opt_state):
            opt_state = opt_state(step)
        try:
            restored = mngr.restore(
                step,
                args=ocp.args.Composite(
                    params=ocp.args.StandardRestore(abstract_params),
                    opt_state=ocp.args.StandardRestore(opt_state),
                    progress=ocp.args.JsonRestore(),
                ),
            )
        except Exception as e:  # Orbax and tensorstore raise many types for damaged files
            log.warning("checkpoint %s is unreadable (%s); trying the one before it", path, e)
            unreadable.append(step)
            continue
        if not isinstance(restored["progress"], dict):
            log.warning("checkpoint %s has no progress record; trying the one before it", path)
            unreadable.append(step)
            continue
        set_aside(mngr, unreadable)
        return step, restored["params"], restored["opt_state"], dict(restored["progress"])
    if steps:
        raise CheckpointError(
            f"{mngr.directory}: no readable checkpoint among steps {steps}; move them away "
            "to start again from the pretrained weights"
        )
    return None


def set_aside(mngr: ocp.CheckpointManager, steps: list[int]) -> None:
    """Renames each step's folder to `<step>.damaged` (process 0), then reloads the manager.

    The folders stay for inspection; Orbax reads only integer names, so they no longer count
    as checkpoints and their steps can be saved again.
    """
    if not steps:
        return
    if jax.process_index() == 0:
        for step in steps:
            source = Path(mngr.directory) / str(step)
            target = source.with_name(f"{step}.damaged")
            n = 1
            while target.exists():
                n += 1
                target = source.with_name(f"{step}.damaged{n}")
            source.rename(target)
            log.warning("moved the unreadable checkpoint %s aside to %s", source, target.name)
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices("jaxrec: damaged checkpoints moved aside")
    mngr.reload()


def check_fits(mngr: ocp.CheckpointManager, step: int, abstract_params: nnx.State) -> None:
    """Raises CheckpointError naming every parameter whose saved shape differs from the model's.

    Does nothing when the metadata itself cannot be read (then restoring fails and the
    checkpoint is skipped as damaged).
    """
    try:
        saved = mngr.item_metadata(step)["params"]
    except Exception:
        return
    if saved is None:
        return
    want = _shapes(abstract_params)
    have = _shapes(saved)
    problems = [
        f"{k}: checkpoint {have.get(k)}, model {v}" for k, v in want.items() if have.get(k) != v
    ]
    problems += [f"{k}: in the checkpoint, not in the model" for k in have if k not in want]
    if problems:
        raise CheckpointError(
            f"{Path(mngr.directory) / str(step)} does not fit the configured model: "
            + "; ".join(sorted(problems)[:20])
        )


def _shapes(tree) -> dict[str, tuple[int, ...]]:
    flat = jax.tree_util.tree_flatten_with_path(tree)[0]
    out = {}
    for path, leaf in flat:
        if hasattr(leaf, "shape"):
            # Saved metadata spells an NNX Variable's wrapper as a dict key "value", which
            # path_name keeps; parameter names never end in it (kernel, bias, scale, ...).
            name = path_name(path).removesuffix(".value")
            out[name] = tuple(leaf.shape)
    return out


def restore_params(
    workdir: str | Path, abstract: nnx.State, step: int | str | None = None
) -> tuple[nnx.State, int]:
    """The parameters of `step`: an integer, "latest", or by default the best checkpoint.

    A checkpoint that cannot be read is an error naming its folder: prediction and export
    must use the step they were asked for, not quietly an older one.
    """
    mngr = manager(workdir, read_only=True)
    steps = mngr.all_steps()
    if not steps:
        raise CheckpointError(f"{Path(workdir) / 'checkpoints'}: no checkpoint to restore")
    if step is None:
        step = best_step(mngr)
    elif step == "latest":
        step = mngr.latest_step()
    if step not in steps:
        raise CheckpointError(f"{workdir}: no checkpoint for step {step} (have {sorted(steps)})")
    check_fits(mngr, step, abstract)
    try:
        restored = mngr.restore(
            step, args=ocp.args.Composite(params=ocp.args.StandardRestore(abstract))
        )
    except Exception as e:  # Orbax and tensorstore raise many types for damaged files
        raise CheckpointError(f"{Path(mngr.directory) / str(step)}: unreadable: {e!r}") from None
    return restored["params"], step


def best_step(mngr: ocp.CheckpointManager) -> int:
    """The best checkpoint by the dev metric, as the newest checkpoint's progress records it."""
    latest = mngr.latest_step()
    path = Path(mngr.directory) / str(latest)
    try:
        progress = mngr.restore(latest, args=ocp.args.Composite(progress=ocp.args.JsonRestore()))
        best = progress["progress"].get("best_step") or latest
    except Exception as e:  # Orbax and tensorstore raise many types for damaged files
        raise CheckpointError(f"{path}: unreadable progress record: {e!r}") from None
    if isinstance(best, bool) or not isinstance(best, int):
        raise CheckpointError(f"{path}: progress record names best_step {best!r}")
    return best
