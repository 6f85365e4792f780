"""Checkpoint cost for the packaged MiniLM news model: how much an asynchronous save blocks.

  .venv/bin/python benchmarks/checkpoint_io.py [repeats]

Saves every parameter and the AdamW state (all layers trainable) `repeats` times, reporting
the time the training loop is blocked (device-to-host copy) against the time until the
checkpoint is complete on disk, then the time to restore the newest one.
"""

import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import jax  # noqa: E402
from flax import nnx  # noqa: E402

from configs import news as news_config  # noqa: E402
from jaxrec import checkpointing, optim, pretrained  # noqa: E402
from jaxrec.tasks.news import build_model  # noqa: E402


def main(repeats: int = 5) -> None:
    config = news_config.get_config()
    bert, _, _ = pretrained.load_bert(config.model.init_from)
    _, params, _ = nnx.split(build_model(config, bert), nnx.Param, ...)
    tx = optim.optimizer(config.train, optim.schedule(config.train, 100), params)
    opt_state = tx.init(params)
    mngr = checkpointing.manager(tempfile.mkdtemp(), keep=2)
    blocking, complete = [], []
    for step in range(1, repeats + 1):
        start = time.perf_counter()
        checkpointing.save(mngr, step, params=params, opt_state=opt_state, progress={"step": step})
        blocking.append(time.perf_counter() - start)
        mngr.wait_until_finished()
        complete.append(time.perf_counter() - start)
    start = time.perf_counter()
    checkpointing.restore_latest(mngr, params, opt_state)
    restore = time.perf_counter() - start
    size = sum(x.nbytes for x in jax.tree.leaves((params, opt_state))) / 2**20
    med_b, med_c = statistics.median(blocking), statistics.median(complete)
    print(
        f"| {size:.0f} MiB | {med_b:.2f} s ({min(blocking):.2f}-{max(blocking):.2f}) "
        f"| {med_c:.2f} s ({min(complete):.2f}-{max(complete):.2f}) "
        f"| {1 - med_b / med_c:.0%} | {restore:.2f} s |"
    )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5)
