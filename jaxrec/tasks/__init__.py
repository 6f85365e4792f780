"""Tasks the trainer runs: each brings its data, model, loss, batches, inference and checks.

`jaxrec/tasks/base.py` defines the interface; `news.py` (PLM-NR on MIND) and `pair.py`
(rating, click or multi-label prediction for user-item pairs) fill it in.
"""

from __future__ import annotations

from jaxrec.errors import ConfigError

TASKS = ("news", "pair")


def get_task(name: str):
    """The Task class for `config.task`."""
    if name == "news":
        from jaxrec.tasks.news import NewsTask

        return NewsTask
    if name == "pair":
        from jaxrec.tasks.pair import PairTask

        return PairTask
    raise ConfigError(f"config.task must be one of {TASKS}, got {name!r}")
