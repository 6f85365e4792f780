"""What every jaxrec command shares: its logging, and bad input reported in one line."""

from __future__ import annotations

import logging
import sys
import traceback
from collections.abc import Callable

from absl import app, flags

from jaxrec.errors import CheckpointError, ConfigError, DataError

VERBOSE_FLAG = "verbose"


def define_flags() -> None:
    """Defines ``--verbose`` (a traceback with the one-line error) unless already defined.

    Each command calls it beside its own flag definitions, so that importing a module never
    defines flags and a command that imports another still defines it once.
    """
    if VERBOSE_FLAG not in flags.FLAGS:
        flags.DEFINE_bool(
            VERBOSE_FLAG, False, "On bad input, print the traceback as well as the error."
        )


def run(argv: list[str], body: Callable[[], str], *, verbose: bool | None = None) -> None:
    """Runs a command's body and prints its summary.

    jaxrec's own progress logs at INFO, libraries (Orbax's per-save lines, XLA) at WARNING.
    Bad input is the user's to fix: one line naming the culprit, exit status 1, and no
    traceback unless ``verbose`` (by default the ``--verbose`` flag, where it is defined).
    """
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    if verbose is None:
        verbose = _verbose_flag()
    logging.getLogger().setLevel(logging.WARNING)
    logging.getLogger("jaxrec").setLevel(logging.INFO)
    from jaxrec.preemption import Preempted

    try:
        summary = body()
    except (DataError, CheckpointError, ConfigError) as e:
        if verbose:
            traceback.print_exc(file=sys.stderr)
        sys.exit(f"error: {one_line(str(e))}")
    except Preempted as e:
        print(e, file=sys.stderr)
        sys.exit(Preempted.exit_code)  # retryable: the next start resumes
    print(summary)


def one_line(text: str) -> str:
    """``text`` with control characters escaped: a bad field cannot break or rewrite the line."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _verbose_flag() -> bool:
    fs = flags.FLAGS
    return VERBOSE_FLAG in fs and fs.is_parsed() and bool(fs[VERBOSE_FLAG].value)
