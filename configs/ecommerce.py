"""Generic interactions (a shop or content log): click prediction by default.

Run (the bundled synthetic shop log):
  python -m jaxrec.main --config=configs/ecommerce.py --workdir=workdirs/shop
Other heads on the same data: `:rating` (MSE on 1-5 ratings) or `:multilabel` (one sigmoid
per label). Your own data: --config.data.path=DIR, where DIR holds users.csv, items.csv,
train.csv and test.csv (or .jsonl): interactions with user_id, item_id and rating, click or
labels; tables with an id column and free-text columns.
"""

import ml_collections

from configs import movielens


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    task = arg if arg in ("rating", "click", "multilabel") else "click"
    c = movielens.get_config("tiny" if arg == "tiny" else None)
    c.data.format = "interactions"
    c.data.task = task
    c.data.rating_range = (1.0, 5.0)
    c.data.user_columns = ml_collections.config_dict.placeholder(tuple)  # None: all columns
    c.data.item_columns = ml_collections.config_dict.placeholder(tuple)
    c.data.user_len = 32
    c.data.item_len = 48
    c.train.early_stopping_metric = {"rating": "rmse", "click": "auc", "multilabel": "map"}[task]
    if task == "multilabel":
        c.model.head = "mlp"  # one output per label
    if arg not in (None, "", "tiny", "rating", "click", "multilabel"):
        raise ValueError(
            f"configs/ecommerce.py takes '', 'tiny', 'rating', 'click' or 'multilabel', not {arg!r}"
        )
    return c
