"""Predict with a trained workdir.

  python -m jaxrec.predict --workdir=DIR --output=FILE [--split=dev|test] [--data_dir=DIR]
                          [--zip]

The task decides what a prediction file holds. News: every impression of a MIND split (dev by
default), in the leaderboard format: one line per impression in behaviors.tsv order,
`ImpressionID [r1,r2,...]`, the rank of each candidate in its listed order (1 = highest
score; equal scores rank in listed order). Pair configs (ratings, clicks, labels): one line
per interaction of the test file, in its order: `user_id<TAB>item_id<TAB>prediction`, the
prediction being the rating, the click probability, or `label:probability` pairs.

--output is checked before any checkpoint is read: its folder must exist, and it must be
neither a folder nor a file that the training run keeps in its workdir.
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
    leaderboard); returns the number of lines written.

    The request (`split`, `data_dir`, the zip) is checked against the workdir's task, and
    `output` against the file system, before any checkpoint is read.
    """
    from jaxrec import workdirs
    from jaxrec.tasks import get_task
    from jaxrec.trained import load_trained

    get_task(workdirs.read_config(workdir).task).check_request(split, data_dir, zip_for_leaderboard)
    check_output(workdir, output)
    if zip_for_leaderboard:
        check_output(workdir, Path(output).with_suffix(".zip"))
    trained = load_trained(workdir, step)
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


def check_output(workdir, output) -> None:
    """Raises ConfigError naming --output unless a prediction file can be written there."""
    from jaxrec import workdirs

    path = Path(output)
    if path.is_dir():
        raise ConfigError(f"--output {output} is a folder; predict writes a file")
    if not path.parent.is_dir():
        raise ConfigError(f"--output {output}: folder {path.parent} does not exist")
    workdirs.check_not_owned(workdir, path)


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
