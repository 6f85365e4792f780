"""Training phases: what each one trains, at which learning rate, for how many steps.

`train.phases` lists them in order, each a dict of
  trainable_layers   the encoder layers it trains: -1 all, k the top k, 0 none (then only the
                     parts outside the encoder: heads, ID embeddings)
  num_epochs         its length in passes over the training samples (a float)
  learning_rate      the peak of its own warm-up and decay (train.warmup_steps, train.schedule)
Each phase starts with a fresh optimizer from the best parameters so far. Empty: one phase,
model.trainable_layers at train.learning_rate for train.num_steps.

Steps are numbered across the run: phase i owns steps first_step..last_step. A phase that
stops early (train.patience) leaves the rest of its steps untrained and the next begins at
its own first step, so which phase a step belongs to follows from the config alone: that is
what resuming a checkpoint needs.
"""

from __future__ import annotations

import dataclasses

import ml_collections

PHASE_KEYS = ("trainable_layers", "num_epochs", "learning_rate")


@dataclasses.dataclass(frozen=True)
class Phase:
    index: int
    trainable_layers: int
    learning_rate: float
    first_step: int
    last_step: int

    @property
    def num_steps(self) -> int:
        return self.last_step - self.first_step + 1


def plan(
    train: ml_collections.ConfigDict, model: ml_collections.ConfigDict, samples_per_epoch: int
) -> list[Phase]:
    """The run's phases, with their steps; an epoch is `samples_per_epoch // batch_size` steps."""
    if not train.phases:
        lr, steps = float(train.learning_rate), int(train.num_steps)
        return [Phase(0, int(model.trainable_layers), lr, 1, steps)]
    steps_per_epoch = max(samples_per_epoch // int(train.batch_size), 1)
    out, last = [], 0
    for i, p in enumerate(train.phases):
        steps = max(round(float(p["num_epochs"]) * steps_per_epoch), 1)
        out.append(
            Phase(i, int(p["trainable_layers"]), float(p["learning_rate"]), last + 1, last + steps)
        )
        last += steps
    return out


def phase_at(phases: list[Phase], step: int) -> Phase:
    """The phase that trained `step`, a completed step (step 0: the first phase)."""
    return next((p for p in phases if step <= p.last_step), phases[-1])


def describe(phase: Phase, count: int, batch_size: int, samples_per_epoch: int) -> str:
    k = phase.trainable_layers
    scope = {-1: "the whole encoder", 0: "no encoder layer"}.get(k, f"the top {k} encoder layers")
    epochs = phase.num_steps * batch_size / max(samples_per_epoch, 1)
    return (
        f"phase {phase.index + 1}/{count}: {scope} and the head, learning rate "
        f"{phase.learning_rate:g}, steps {phase.first_step}-{phase.last_step} of {batch_size} "
        f"({epochs:.2f} epochs of {samples_per_epoch} samples)"
    )
