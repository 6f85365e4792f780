"""Predict with a trained workdir.

  python -m jaxrec.predict --workdir=DIR --output=FILE [--split=dev] [--data_dir=MIND]

News: every impression of a MIND split, in the leaderboard format: one line per impression in
behaviors.tsv order, `ImpressionID [r1,r2,...]`, the rank of each candidate in its listed
order (1 = highest score; equal scores rank in listed order).

Pair configs (ratings, clicks, labels): one line per interaction of the config's test file,
in its order: `user_id<TAB>item_id<TAB>prediction`, the prediction being the rating, the
click probability, or `label:probability` pairs joined by commas. --split and --data_dir are
for news workdirs only: a pair workdir always predicts its config's test file.

--output is checked before any checkpoint is read: its folder must exist, and it must be
neither a folder nor a file that the training run keeps in its workdir.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402
from absl import app, flags  # noqa: E402

from jaxrec import cli  # noqa: E402
from jaxrec.errors import ConfigError  # noqa: E402

FLAGS = flags.FLAGS
log = logging.getLogger(__name__)


def define_flags() -> None:
    """Defined only when run as a program, so importing this module defines no flags."""
    cli.define_flags()
    flags.DEFINE_string(
        "workdir", None, "A training workdir (config.json, encoder/, checkpoints/)."
    )
    flags.DEFINE_string(
        "split", None, "News: split folder under the data dir, train, dev (default) or test."
    )
    flags.DEFINE_string("output", None, "Prediction file to write.")
    flags.DEFINE_string("data_dir", None, "MIND folder; default: the config's data.dir.")
    flags.DEFINE_integer("step", None, "Checkpoint step; default: the best by the dev metric.")
    flags.DEFINE_integer("batch_size", 256, "Inference batch size.")
    flags.mark_flags_as_required(["workdir", "output"])


def ranks(scores: np.ndarray) -> np.ndarray:
    """1-based rank of each score, highest first; ties keep the listed order."""
    order = np.argsort(-scores, kind="stable")
    out = np.empty(len(scores), np.int64)
    out[order] = np.arange(1, len(scores) + 1)
    return out


def predict(workdir, split: str | None, output, data_dir=None, step=None, batch_size=256) -> int:
    """Writes the prediction file; returns the number of impressions (or pairs) written.

    `split` (news: default dev; pairs: None or "test") and `data_dir` (news only) are checked
    against the workdir's task, and `output` against the file system, before any work.
    """
    from jaxrec import evaluate, workdirs
    from jaxrec.data import mind
    from jaxrec.data.news_data import load_split
    from jaxrec.trained import load_trained

    check_request(workdirs.read_config(workdir).task, split, data_dir)
    check_output(workdir, output)
    config, tokenizer, fns, states, step = load_trained(workdir, step)
    if config.task == "pair":
        return predict_pairs(fns, states, output, step)
    report = mind.ReadReport()
    data = load_split(
        config.data,
        split or "dev",
        tokenizer,
        cache_dir=Path(workdir) / "cache",
        report=report,
        data_dir=data_dir,
    )
    report.log(log)
    scores = evaluate.score_split(fns, states, data.table, data.log, batch_size)
    tmp = Path(f"{output}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        for imp, s in zip(data.split.impressions, scores, strict=True):
            f.write(f"{imp.impression_id} [{','.join(map(str, ranks(s)))}]\n")
    os.replace(tmp, output)
    log.info("wrote %d impressions from checkpoint step %d to %s", len(scores), step, output)
    return len(scores)


def check_request(task: str, split: str | None, data_dir) -> None:
    """Pair workdirs predict their test file: a --split or --data_dir for them is refused."""
    if task != "pair":
        return
    if split not in (None, "test"):
        raise ConfigError(
            f"--split={split}: a pair workdir predicts its config's test file (data.path), "
            "it has no other split"
        )
    if data_dir is not None:
        raise ConfigError(
            "--data_dir is for news workdirs; a pair workdir reads the data its config names"
        )


def check_output(workdir, output) -> None:
    """Raises ConfigError naming --output unless a prediction file can be written there."""
    from jaxrec import workdirs

    path = Path(output)
    if path.is_dir():
        raise ConfigError(f"--output {output} is a folder; predict writes a file")
    if not path.parent.is_dir():
        raise ConfigError(f"--output {output}: folder {path.parent} does not exist")
    workdirs.check_not_owned(workdir, path)


def predict_pairs(task, states, output, step: int) -> int:
    """Writes one line per test interaction; returns how many."""
    pred = task.predictions(states)
    data = task.data
    if data.task == "multilabel":
        values = [
            ",".join(f"{name}:{p:.6f}" for name, p in zip(data.label_names, row, strict=True))
            for row in pred
        ]
    else:
        values = [f"{p:.6f}" for p in pred[:, 0]]
    tmp = Path(f"{output}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        for user, item, value in zip(data.test.users, data.test.items, values, strict=True):
            f.write(f"{user}\t{item}\t{value}\n")
    os.replace(tmp, output)
    log.info("wrote %d predictions from checkpoint step %d to %s", len(values), step, output)
    return len(values)


def main(argv: list[str]) -> None:
    def body() -> str:
        n = predict(
            FLAGS.workdir, FLAGS.split, FLAGS.output, FLAGS.data_dir, FLAGS.step, FLAGS.batch_size
        )
        return f"{n} predictions -> {FLAGS.output}"

    cli.run(argv, body)


if __name__ == "__main__":
    define_flags()
    app.run(main)
