"""The news input pipeline alone against what jaxrec's training step consumes.

`train_batches` (numpy on a background thread: sampling, each step's news placed in its
length groups, the history cache's choices, token gathering) is run with no model: samples
per second it produces. Beside it, in the same process and alternating, jaxrec's news
training step in the default config (the fastest step, so the strictest comparison), built
as `news_throughput.py` builds it: samples per second it consumes. The pipeline should
produce many times what the step consumes, so it never starves the step and leaves the
cores to it.

Settings: the default news config (configs/news.py) on the bundled sample.
Run: .venv/bin/python benchmarks/input_pipeline.py [--repeats=5] [--batches=200]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import common  # noqa: E402  (sets the import path before jaxrec)
from news_throughput import jaxrec_trainer, make_config, make_task  # noqa: E402

from jaxrec import sharding  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--batches", type=int, default=200, help="pipeline batches per timed call")
    common.add_malloc_flag(p)
    args = p.parse_args()
    config = make_config()
    batch_size = config.train.batch_size
    mesh = sharding.make_mesh((1, 1, 1))
    with tempfile.TemporaryDirectory() as cache_dir, sharding.activate(mesh, config.mesh.rules):
        task, folder, bert_config = make_task(config, mesh, cache_dir)
        pipeline = task.batches(0)
        run_step, _ = jaxrec_trainer(config, mesh, task, folder, bert_config)

        def pull():
            for _ in range(args.batches):
                next(pipeline)

        times = common.alternate(
            {"jaxrec train step (1 batch)": run_step, f"train_batches ({args.batches})": pull},
            args.repeats,
        )
    step_name, pipe_name = list(times)
    per_call = {step_name: batch_size, pipe_name: batch_size * args.batches}
    print(f"\n{common.machine()}\n")
    print("| | median s per call | min-max s | samples/s |\n|---|---|---|---|")
    rates = {}
    for name, ts in times.items():
        med = statistics.median(ts)
        rates[name] = per_call[name] / med
        print(f"| {name} | {med:.3f} | {min(ts):.3f}-{max(ts):.3f} | {rates[name]:.1f} |")
    print(f"\npipeline produces {rates[pipe_name] / rates[step_name]:.0f}x what the step consumes")


if __name__ == "__main__":
    main()
