"""Tasks the trainer runs: each brings its data, model, loss, batches and evaluation."""

from __future__ import annotations

from jaxrec.errors import ConfigError

TASKS = ("news", "pair")


def get_task(name: str):
    """The task class for `config.task`: news (PLM-NR on MIND) or pair (rating, click or
    multi-label prediction for user-item pairs)."""
    if name == "news":
        from jaxrec.tasks.news import NewsTask

        return NewsTask
    if name == "pair":
        from jaxrec.tasks.pair import PairTask

        return PairTask
    raise ConfigError(f"config.task must be one of {TASKS}, got {name!r}")
