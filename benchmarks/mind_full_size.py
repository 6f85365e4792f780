"""MIND at full size: each phase of a news run timed, with its peak memory, one process each.

  .venv/bin/python scripts/make_mind_like.py --size=large --out=/data/mind-large
  .venv/bin/python benchmarks/mind_full_size.py /data/mind-large [--phases=read,...]

Phases (each in a process of its own, so that each peak resident memory is its own):
  read      read train/ and dev/, tokenize every news item with the packaged MiniLM, build
            the integer click logs, and write the token caches (a second run loads them)
  pipeline  one training epoch of the input pipeline alone (tf.data: samples drawn, news
            deduplicated per batch, tokens gathered), no model
  evaluate  the dev split scored with MiniLM as `jaxrec.main` scores it (every news item and
            every distinct history encoded once, impressions scored in chunks); impressions/s
  predict   `jaxrec.predict --split=test` on the test split (a workdir trained for one step
            on the bundled sample: prediction cost does not depend on the weights), the
            leaderboard file written as impressions are scored
Prints a table (wall seconds, CPU seconds, peak resident GiB, throughput) for
benchmarks/README.md. Token caches go to a folder of their own under the data folder.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PHASES = ("read", "pipeline", "evaluate", "predict")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("data_dir", type=Path)
    p.add_argument("--phases", default=",".join(PHASES))
    p.add_argument("--phase", help=argparse.SUPPRESS)  # one phase, in its own process
    args = p.parse_args()
    if args.phase:
        result = run_phase(args.phase, args.data_dir)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB -> GiB
        print(json.dumps(result | {"peak_gib": peak}))
        return
    rows = [measure(phase, args.data_dir) for phase in args.phases.split(",")]
    print("\n| phase | wall s | CPU s | peak GiB | throughput |\n|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['phase']} | {r['wall']:.0f} | {r['cpu']:.0f} | {r['peak_gib']:.2f} "
            f"| {r.get('throughput', '')} |"
        )


def measure(phase: str, data_dir: Path) -> dict:
    """Runs one phase in a child process; its wall and CPU time and peak resident memory."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    tick = time.time()
    proc = subprocess.run(
        [sys.executable, __file__, str(data_dir), f"--phase={phase}"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    wall = time.time() - tick
    if proc.returncode:
        sys.exit(f"phase {phase} failed:\n{proc.stderr[-3000:]}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    row = {"phase": phase, "wall": wall, "cpu": cpu}  # the child reports its own peak
    print(json.dumps(row | result), flush=True)
    return row | result


def run_phase(phase: str, data_dir: Path) -> dict:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.path.insert(0, str(ROOT))
    from jaxrec import malloc

    malloc.keep_freed_memory()  # as jaxrec.main does
    import logging

    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    from configs import news as news_config

    config = news_config.get_config()
    config.data.dir = str(data_dir)
    config.data.cache_dir = str(data_dir / "jaxrec-cache")
    return {"read": _read, "pipeline": _pipeline, "evaluate": _evaluate, "predict": _predict}[
        phase
    ](config)


def _task(config, splits=("train", "dev")):
    from jaxrec import pretrained, sharding
    from jaxrec.convert import hf
    from jaxrec.data.tokenize import TextTokenizer
    from jaxrec.tasks.base import TaskEnv
    from jaxrec.tasks.news import NewsTask

    folder = pretrained.resolve(config.model.init_from)
    bert_config = hf.read_config(folder)
    mesh = sharding.make_mesh((-1, 1, 1))
    env = TaskEnv(
        TextTokenizer(folder, bert_config.vocab_size),
        Path(config.data.cache_dir),
        sharding.Feed(mesh),
    )
    task = NewsTask(config, env)
    for name in splits:
        setattr(task, name, task._load(name))
    return task, folder, bert_config, mesh


def _read(config) -> dict:
    task, *_ = _task(config)
    n = len(task.train.log) + len(task.dev.log)
    news = len(task.train.table) + len(task.dev.table) - 2
    return {"throughput": f"{n} impressions, {news} news"}


def _pipeline(config) -> dict:
    from jaxrec.data.pipeline import count_train_samples

    task, *_ = _task(config, ("train",))
    per_epoch = count_train_samples(task.train.log) // config.train.batch_size
    tick = time.time()
    batches = task.batches(0)
    for _ in range(per_epoch):
        next(batches)
    seconds = time.time() - tick
    samples = per_epoch * config.train.batch_size
    return {"throughput": f"{samples / seconds:,.0f} samples/s ({samples} samples)"}


def _evaluate(config) -> dict:
    from flax import nnx

    from jaxrec import sharding, train
    from jaxrec.tasks import news_inference as infer

    task, folder, bert_config, mesh = _task(config, ("dev",))
    with sharding.activate(mesh, config.mesh.rules):
        model = train.create_model(config, bert_config, folder, mesh, task.build)
        graphdef, params, rest = nnx.split(model, nnx.Param, ...)
        fns = infer.NewsInference(graphdef, task.env.feed)
        tick = time.time()
        result = infer.evaluate_split(
            fns, (params, rest), task.dev.table, task.dev.log, config.train.eval_batch_size
        )
    seconds = time.time() - tick
    n = result["num_impressions"]
    return {"throughput": f"{n / seconds:,.0f} impressions/s ({n} in {seconds:.0f} s)"}


def _predict(config) -> dict:
    from jaxrec import predict, train

    with tempfile.TemporaryDirectory() as tmp:
        sample = news_config_for_workdir()
        train.train_and_evaluate(sample, Path(tmp) / "wd")
        tick = time.time()
        n = predict.predict(
            Path(tmp) / "wd", "test", Path(tmp) / "prediction.txt", config.data.dir, None, 256
        )
    seconds = time.time() - tick
    return {"throughput": f"{n / seconds:,.0f} impressions/s ({n} in {seconds:.0f} s)"}


def news_config_for_workdir():
    """The default news config, one step on the bundled sample: a workdir to predict from."""
    from configs import news as news_config

    c = news_config.get_config()
    c.train.update(num_steps=1, eval_every=1, warmup_steps=0)
    return c


if __name__ == "__main__":
    main()
