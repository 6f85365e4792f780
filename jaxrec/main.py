"""Command line: python -m jaxrec.main --config=configs/news.py --workdir=DIR [--config.a.b=v].

The only module that parses flags; everything else takes (config, workdir).
"""

from __future__ import annotations

import json
import os
import re
import sys
import traceback

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from absl import app, flags  # noqa: E402
from ml_collections import config_flags  # noqa: E402

from jaxrec import cli, malloc  # noqa: E402

# Before jax starts its thread pools; a no-op where glibc is absent (benchmarks/README.md).
malloc.keep_freed_memory()

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file(
    "config",
    None,
    "Python config file, e.g. configs/news.py or configs/news.py:tiny.",
    lock_config=True,
)
flags.DEFINE_string("workdir", None, "Where checkpoints, logs and metrics.json are written.")
flags.DEFINE_bool(
    "multihost",
    False,
    "Join a multi-process run whose settings jax detects itself (TPU VM pod slices, SLURM).",
)
flags.DEFINE_string(
    "coordinator_address",
    None,
    "HOST:PORT of process 0, for a multi-process run anywhere else (with the next two flags).",
)
flags.DEFINE_integer("num_processes", None, "Processes in a multi-process run.")
flags.DEFINE_integer("process_id", None, "This process's index, 0 .. num_processes - 1.")
flags.DEFINE_integer(
    "heartbeat_timeout",
    60,
    "Seconds without a heartbeat after which the other processes treat one as dead and stop.",
)
flags.mark_flags_as_required(["config", "workdir"])
cli.define_flags()


def main(argv: list[str]) -> None:
    # Keep TensorFlow on the CPU and out of the accelerators' memory: it only feeds data.
    import tensorflow as tf

    tf.config.set_visible_devices([], "GPU")
    from jaxrec import train

    def body() -> str:
        initialize_distributed()
        return report(train.train_and_evaluate(FLAGS.config, FLAGS.workdir), FLAGS.workdir)

    cli.run(argv, body)


def initialize_distributed() -> None:
    """Joins a multi-process run: detected (--multihost) or from the coordinator flags."""
    import jax

    explicit = FLAGS.coordinator_address is not None or FLAGS.num_processes is not None
    if not (explicit or FLAGS.multihost):
        return  # one process
    jax.distributed.initialize(
        coordinator_address=FLAGS.coordinator_address,
        num_processes=FLAGS.num_processes,
        process_id=FLAGS.process_id,
        heartbeat_timeout_seconds=FLAGS.heartbeat_timeout,
    )


def parse_flags(argv: list[str]) -> list[str]:
    """absl's parser, with flag and config errors reported in one line, not a traceback.

    A misspelt or locked config key, an override of the wrong type, a config file that is
    missing or fails to load, an unknown config variant: one line naming the flag, exit
    status 1 (``--verbose`` adds the traceback).
    """
    try:
        rest = FLAGS(argv)
        FLAGS.config.get("task")  # a config file that failed to load raises on first use
        return rest
    except (AttributeError, KeyError) as e:
        overrides = [a.split("=")[0] for a in argv[1:] if a.startswith("--config.")]
        detail = str(e.args[0] if e.args else e)
        detail = detail.replace("\\n", " ").replace("\\'", "'").replace("\n", " ").strip("'")
        _exit(argv, f"config error: unknown key in {overrides}: {detail}")
    except OSError as e:  # ml_collections: the config file could not be loaded
        _exit(argv, f"config error: --config: {_last_line(str(e))}")
    except flags.Error as e:  # a value that does not parse; get_config raising for its argument
        _exit(argv, f"flag error: {_flag_error(str(e))}")


def _exit(argv: list[str], message: str) -> None:
    if "--verbose" in argv:
        traceback.print_exc()
    sys.exit(cli.one_line(message))


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else text


def _flag_error(text: str) -> str:
    """absl's message, with a config file's traceback cut to the error it ended in."""
    first = text.splitlines()[0] if text else text
    if "Traceback (most recent call last)" not in text:
        return " ".join(line.strip() for line in text.splitlines())
    error = re.sub(r"^\w+(Error|Exception): ", "", _last_line(text))  # ValueError: ...
    return f"{first.split(': Error whilst')[0]}: {error}"


def report(results: dict, workdir: str) -> str:
    """The human-readable summary printed at the end of a run: dev (the split the model was
    chosen on) and, where the task has labels for it, test, each beside the baseline."""
    dev, baselines = results["dev"], results["baseline"]
    names = [k for k in dev if not k.startswith("num_")]
    counts = ", ".join(f"{k[4:]}: {v}" for k, v in dev.items() if k.startswith("num_"))
    base = results["baseline_name"]
    rows = [("jaxrec dev (best)", dev), (f"{base} dev", baselines["dev"])]
    if results.get("test"):
        rows += [("jaxrec test", results["test"]), (f"{base} test", baselines["test"])]
    width = max(len(label) for label, _ in rows) + 2
    table = [" " * width + "".join(f"{n:>10s}" for n in names)]
    table += [
        f"{label:{width}s}" + "".join(f"{values[n]:10.4f}" for n in names) for label, values in rows
    ]
    return "\n".join(
        [
            "",
            f"evaluated {counts} on dev; best step {results['best_step']}"
            f" of {results['last_step']}, {results['seconds']:.0f} s",
            *table,
            f"skipped or defaulted while reading: {json.dumps(results['read_report'])}",
            *_unknown_news(results.get("unknown_news_share")),
            f"outputs: {workdir}/metrics.json, {workdir}/checkpoints, {workdir}/tensorboard",
        ]
    )


def _unknown_news(shares: dict | None) -> list[str]:
    """News runs: the share of history and candidate slots whose news has no text."""
    if not shares:
        return []
    parts = [
        f"{split} {100 * s['history']:.2f}% of history, {100 * s['candidates']:.2f}% of candidates"
        for split, s in shares.items()
    ]
    return [f"slots naming news missing from news.tsv (empty text): {'; '.join(parts)}"]


if __name__ == "__main__":
    app.run(main, flags_parser=parse_flags)
