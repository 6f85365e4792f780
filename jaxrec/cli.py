"""What every jaxrec command shares: its logging, and bad input reported in one line."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable

from absl import app

from jaxrec.errors import CheckpointError, ConfigError, DataError


def run(argv: list[str], body: Callable[[], str]) -> None:
    """Runs a command's body and prints its summary.

    jaxrec's own progress logs at INFO, libraries (Orbax's per-save lines, XLA) at WARNING.
    Bad input is the user's to fix: one line naming the culprit, exit status 1, no traceback.
    """
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    logging.getLogger().setLevel(logging.WARNING)
    logging.getLogger("jaxrec").setLevel(logging.INFO)
    from jaxrec.train import Preempted

    try:
        summary = body()
    except (DataError, CheckpointError, ConfigError) as e:
        sys.exit(f"error: {e}")
    except Preempted as e:
        print(e, file=sys.stderr)
        sys.exit(Preempted.exit_code)  # retryable: the next start resumes
    print(summary)
