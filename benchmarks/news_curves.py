"""Dev AUC against CPU time: news training recipes compared by what they learn per CPU minute.

Each run trains `configs/news.py` with some overrides, in its own process on one CPU
device, exactly as `jaxrec.main` does, and records at every evaluation the step, the
process's CPU time (user + system, every thread) and wall time spent outside evaluation, and
the dev metrics. CPU time counts everything a user waits for but evaluation itself: reading
(tokens come from a shared cache after the first run), the frozen-layer and news-vector
caches, compilation and the steps. On a shared machine CPU time is the fair clock: a
neighbour's load slows the wall clock, not the work.

Run:
  .venv/bin/python benchmarks/news_curves.py --out=curves.jsonl \\
      --data=data/mind_like_05 --cache-dir=/tmp/tokens \\
      --run="today:model.trainable_layers=1" \\
      --run="heads x10:train.head_lr_multiplier=10.0"
A run is NAME:KEY=VALUE,KEY=VALUE (values as Python literals, or bare strings); runs go one
after another, never two at once. Each writes one JSON line to --out as it ends.
`benchmarks/plot_curves.py` draws the lines and prints the table.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def parse_run(spec: str) -> tuple[str, dict[str, object]]:
    name, _, rest = spec.partition(":")
    overrides: dict[str, object] = {}
    for item in filter(None, _split_top(rest)):
        key, _, value = item.partition("=")
        try:
            overrides[key.strip()] = ast.literal_eval(value.strip())
        except (ValueError, SyntaxError):
            overrides[key.strip()] = value.strip()
    return name, overrides


def _split_top(text: str) -> list[str]:
    """Splits on commas outside brackets: `a=(1,2),b=3` -> ['a=(1,2)', 'b=3']."""
    parts, depth, current = [], 0, ""
    for ch in text:
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += ch
    return [*parts, current]


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class OutOfBudget(Exception):
    """The run's CPU budget is spent: it ends at this evaluation."""


def child(
    name: str, overrides: dict[str, object], data: str, cache_dir: str, out: str, budget: float
) -> None:
    """One run in this process: trains (until `budget` CPU seconds outside evaluation are
    spent, if given) and appends its curve to `out`."""
    sys.path.insert(0, str(ROOT))
    from jaxrec import malloc

    malloc.keep_freed_memory()
    from configs import news as news_config
    from jaxrec import train
    from jaxrec.tasks.news import NewsTask

    config = news_config.get_config()
    config.data.dir = data
    config.data.cache_dir = cache_dir
    for key, value in overrides.items():
        node = config
        *parents, leaf = key.split(".")
        for part in parents:
            node = node[part]
        node[leaf] = value
    start_cpu, start_wall = cpu_seconds(), time.time()
    spent = {"cpu": 0.0, "wall": 0.0}
    points: list[dict[str, float]] = []
    evaluate, log_eval = NewsTask.evaluate, train._log_eval

    def timed_evaluate(self, states):
        cpu, wall = cpu_seconds(), time.time()
        points.append(
            {
                "cpu_s": cpu - start_cpu - spent["cpu"],
                "wall_s": wall - start_wall - spent["wall"],
            }
        )
        result = evaluate(self, states)
        spent["cpu"] += cpu_seconds() - cpu
        spent["wall"] += time.time() - wall
        return result

    def record(writer, step, result, names):
        points[-1].update({"step": step} | {k: result[k] for k in names})
        print(f"[{name}] step {step}: {points[-1]}", flush=True)
        log_eval(writer, step, result, names)
        if budget and points[-1]["cpu_s"] >= budget:
            raise OutOfBudget

    NewsTask.evaluate, train._log_eval = timed_evaluate, record
    task = {}
    start = NewsTask.start

    def keep(self, *args):
        task["task"] = self
        return start(self, *args)

    NewsTask.start = keep
    with tempfile.TemporaryDirectory() as workdir, contextlib.suppress(OutOfBudget):
        train.train_and_evaluate(config, workdir)
    line = {
        "name": name,
        "overrides": overrides,
        "data": data,
        "points": points,
        "best": max(points, key=lambda p: p["auc"]),
        "baseline": task["task"].baseline()["dev"],
        "total_cpu_s": cpu_seconds() - start_cpu,
        "eval_cpu_s": spent["cpu"],
        "total_wall_s": time.time() - start_wall,
    }
    with open(out, "a") as f:
        f.write(json.dumps(line) + "\n")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", required=True, help="a MIND-format folder with train/ and dev/")
    p.add_argument("--run", action="append", default=[], help="NAME:KEY=VALUE,...")
    p.add_argument("--out", required=True, help="JSON lines, one per finished run")
    p.add_argument("--cache-dir", default=os.path.join(tempfile.gettempdir(), "jaxrec-tokens"))
    p.add_argument("--budget-cpu-min", type=float, default=0.0, help="stop a run after this")
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child is not None:
        name, overrides = parse_run(args.child)
        child(name, overrides, args.data, args.cache_dir, args.out, 60 * args.budget_cpu_min)
        return
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}  # one CPU device
    env |= {"JAX_PLATFORMS": "cpu", "TF_CPP_MIN_LOG_LEVEL": "2"}
    for spec in args.run:
        command = [sys.executable, __file__, f"--child={spec}", f"--data={args.data}"]
        command += [f"--out={args.out}", f"--cache-dir={args.cache_dir}"]
        command += [f"--budget-cpu-min={args.budget_cpu_min}"]
        print(f"== {spec}", flush=True)
        subprocess.run(command, env=env, check=True)


if __name__ == "__main__":
    main()
