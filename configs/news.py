"""PLM-NR news recommendation: MiniLM news encoder, attention user encoder, MIND data.

Run:
  python -m jaxrec.main --config=configs/news.py --workdir=workdirs/news
Variants: `configs/news.py:tiny` (a few steps, for tests), `configs/news.py:mind` (settings
for MIND: downloads MIND-small through TFDS; --config.data.tfds_config=large for MIND-large,
--config.data.dir=/path/to/MIND to read an unzipped copy instead). Any field can be overridden,
e.g. --config.train.batch_size=32.
"""

from pathlib import Path

import ml_collections

from configs import common

SAMPLE = str(Path(__file__).resolve().parent.parent / "jaxrec" / "data" / "samples" / "mind")


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.task = "news"
    c.seed = 0

    c.model = common.encoder_fields()
    c.model.trainable_layers = 1  # -1: whole encoder, k: top k layers, 0: frozen encoder
    c.model.pooling = "attention"  # news vector: attention | cls
    c.model.user_encoder = "attention"  # attention (PLM-NR) | mhsa (NRMS-style)
    c.model.attention_hidden = 200
    c.model.user_heads = 8
    # Compute the frozen layers below the top k once per news item, not in every step.
    c.model.cache_frozen_layers = True

    c.data = ml_collections.ConfigDict()
    c.data.source = "folder"  # folder: data.dir | tfds: TFDS's MIND builder downloads MIND
    c.data.dir = SAMPLE  # holds train/ and dev/ (optionally test/); tfds: its manual folder
    c.data.tfds_config = "small"  # with data.source="tfds": small | large | demo
    c.data.tfds_data_dir = ""  # with data.source="tfds": empty is TFDS's own default
    # Any of category, title, abstract: "category subcategory: title" and the abstract as the
    # second segment. An empty category adds nothing, so data without one costs nothing more.
    c.data.news_fields = ("category", "title", "abstract")
    c.data.title_len = 48  # tokens per news item (whole text); MIND's abstracts run past 48
    c.data.history_len = 50
    c.data.npratio = 4  # non-clicked candidates per clicked one
    # Each step's distinct news encoded in groups of a few token widths (sized on the first
    # batches), not all at title_len; outputs are the same.
    c.data.length_groups = True
    c.data.news_bucket = 128  # rows added at full width when a batch's news do not fit
    c.data.skip_bad_rows = False
    c.data.unknown_news = "empty"  # IDs missing from news.tsv: empty | error
    c.data.cache_dir = ""  # token cache; empty: <workdir>/cache
    c.data.max_skipped_share = 0.1  # with skipping on, stop when more of a file is skipped
    # Stop when news.tsv lacks more than this share of the history or candidate slots. MIND
    # lists every news its behaviors name (0%); a few missing cost a few empty texts, but past
    # 1 in 20 the news.tsv is more likely another split's, and the model would learn from blanks.
    c.data.max_unknown_news_share = 0.05

    c.train = common.train_fields()
    c.train.early_stopping_metric = "auc"  # auc | mrr | ndcg@5 | ndcg@10
    c.train.num_steps = 500
    # The attention pooling and the user encoder start from scratch: they learn faster at 10x
    # the encoder's rate (dev AUC per CPU minute, benchmarks/README.md "News recipes").
    c.train.head_lr_multiplier = 10.0
    # N > 0: history news read their vectors from a cache (no gradient), re-encoded when N
    # steps old; candidates are always encoded. 0: every history item encoded every step.
    c.train.history_cache = 20
    c.mesh = common.mesh_fields()

    if arg == "tiny":
        c.model.trainable_layers = 1
        c.data.news_fields = ("title",)
        c.data.title_len = 16
        c.data.history_len = 8
        c.data.news_bucket = 32
        c.train.batch_size = 8
        c.train.num_steps = 4
        c.train.warmup_steps = 1
        c.train.log_every = 2
        c.train.eval_every = 2
        c.train.save_every = 2
        c.train.eval_batch_size = 64
        c.train.history_cache = 0  # tests turn it on where they test it
    elif arg == "mind":
        # MIND through TFDS: downloaded once, or from --config.data.dir as a manual folder.
        c.data.source, c.data.dir = "tfds", ""
        c.model.trainable_layers = -1
        c.data.news_bucket = 256
        c.train.batch_size = 32
        c.train.num_steps = 20_000
        c.train.learning_rate = 2e-5
        c.train.warmup_steps = 1_000
        c.train.eval_every = 2_000
    elif arg:
        raise ValueError(f"configs/news.py takes '', 'tiny' or 'mind', not {arg!r}")
    return c
