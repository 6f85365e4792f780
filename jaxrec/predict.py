"""Predict with a trained workdir.

  python -m jaxrec.predict --workdir=DIR --output=FILE [--split=dev|test] [--data_dir=DIR]
                          [--zip]

The task decides what a prediction file holds. News: every impression of a MIND split (dev by
default), in the leaderboard format: one line per impression in behaviors.tsv order,
`ImpressionID [r1,r2,...]`, the rank of each candidate in its listed order (1 = highest
score; equal scores rank in listed order). Pair configs (ratings, clicks, labels): one line
per interaction of the test file, in its order: `user_id<TAB>item_id<TAB>prediction`, the
prediction being the rating, the click probability, or `label:probability` pairs.
"""

from __future__ import annotations

import logging
import os
import zipfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from absl import app, flags  # noqa: E402

from jaxrec import cli  # noqa: E402
from jaxrec.errors import ConfigError  # noqa: E402

LEADERBOARD_FILE = "prediction.txt"  # the name the MIND competition expects inside its zip

FLAGS = flags.FLAGS
log = logging.getLogger(__name__)


def define_flags() -> None:
    """Defined only when run as a program, so importing this module defines no flags."""
    cli.define_flags()
    flags.DEFINE_string(
        "workdir", None, "A training workdir (config.json, encoder/, checkpoints/)."
    )
    flags.DEFINE_string(
        "split", None, "News: the split folder under the data dir (default dev). Pair: test."
    )
    flags.DEFINE_string("output", None, "Prediction file to write.")
    flags.DEFINE_string("data_dir", None, "Data folder; default: the config's.")
    flags.DEFINE_integer("step", None, "Checkpoint step; default: the best by the dev metric.")
    flags.DEFINE_integer("batch_size", 256, "Inference batch size.")
    flags.DEFINE_bool(
        "zip",
        False,
        "News: also write OUTPUT's zip (OUTPUT with .zip) holding prediction.txt, the file the "
        "MIND leaderboard takes.",
    )
    flags.mark_flags_as_required(["workdir", "output"])


def predict(
    workdir,
    split: str | None,
    output,
    data_dir=None,
    step=None,
    batch_size: int = 256,
    zip_for_leaderboard: bool = False,
) -> int:
    """Writes the prediction file (and with `zip_for_leaderboard` its zip for the MIND
    leaderboard); returns the number of lines written."""
    from jaxrec.trained import load_trained

    trained = load_trained(workdir, step)
    if zip_for_leaderboard and trained.config.task != "news":
        raise ConfigError("--zip: only news predictions go to the MIND leaderboard")
    n = trained.task.predict(
        trained.graphdef,
        trained.states,
        Path(output),
        split=split,
        data_dir=data_dir,
        batch_size=batch_size,
    )
    log.info("wrote %d predictions from checkpoint step %d to %s", n, trained.step, output)
    if zip_for_leaderboard:
        archive = Path(output).with_suffix(".zip")
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
            z.write(output, arcname=LEADERBOARD_FILE)
        log.info("and %s (%s inside) for the MIND leaderboard", archive, LEADERBOARD_FILE)
    return n


def main(argv: list[str]) -> None:
    def body() -> str:
        n = predict(
            FLAGS.workdir,
            FLAGS.split,
            FLAGS.output,
            FLAGS.data_dir,
            FLAGS.step,
            FLAGS.batch_size,
            FLAGS.zip,
        )
        return f"{n} predictions -> {FLAGS.output}"

    cli.run(argv, body)


if __name__ == "__main__":
    define_flags()
    app.run(main)
