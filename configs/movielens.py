"""Rating prediction on MovieLens: MiniLM over user and movie text, ID embeddings, MSE.

Run (the bundled synthetic sample in the MovieLens-100K format):
  python -m jaxrec.main --config=configs/movielens.py --workdir=workdirs/movielens
Real MovieLens-100K (split u1): --config.data.path=/path/to/ml-100k [--config.data.split=u2]
MovieLens-1M: --config.data.format=movielens1m --config.data.path=/path/to/ml-1m
Through TFDS: --config.data.format=movielens_tfds [--config.data.path=TFDS_DATA_DIR]
Variants: `:tiny` (a few steps, for tests), `:lora` (LoRA adapters instead of fine-tuning).
"""

import ml_collections

from configs import common


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.task = "pair"
    c.seed = 0

    c.model = common.encoder_fields()
    # -1: whole encoder, k: top k layers, 0: frozen encoder; each of train.phases sets its own.
    c.model.trainable_layers = 1
    # Two towers: the frozen layers below the top k run once per user and item text.
    c.model.cache_frozen_layers = True
    c.model.architecture = "two_tower"  # two_tower | cross (user and item in one sequence)
    # dot: biased MF, factors = ID embedding + projected text (two towers, one output);
    # mlp: an MLP over [u, i, u*i, IDs]
    c.model.head = "dot"
    c.model.pooling = "mean"  # mean | cls
    c.model.use_text = True  # False: no text at all (IDs alone)
    c.model.use_ids = True  # learned user/item ID embeddings and biases beside the text
    c.model.id_dim = 32
    # L2 penalty per training pair on the user and item factors it uses, and on its ID biases.
    c.model.id_l2 = 0.1
    c.model.id_bias_l2 = 0.02
    c.model.head_dropout = 0.0  # on the text vectors (dot) or the hidden layer (mlp)
    c.model.mlp_hidden = 256
    c.model.lora_rank = 0  # > 0: train LoRA adapters (and the head) instead of the encoder
    c.model.lora_alpha = 16.0
    c.model.lora_targets = ("query", "value")

    c.data = ml_collections.ConfigDict()
    c.data.format = "movielens100k"  # movielens100k | movielens1m | movielens_tfds | interactions
    c.data.path = ""  # empty: the bundled synthetic sample
    c.data.split = "u1"  # MovieLens-100K fold: u1..u5, ua, ub
    c.data.test_fraction = 0.1  # MovieLens-1M and TFDS: seeded random split
    # The validation split (early stopping, the best checkpoint): a seeded share of train,
    # unless the data brings its own (an interactions folder's dev.csv or dev.jsonl).
    c.data.dev_fraction = 0.1
    c.data.task = "rating"
    c.data.user_len = 16  # tokens per user text
    c.data.item_len = 32  # tokens per item text
    c.data.text_bucket = 32  # distinct users/items per batch padded to a multiple of this
    c.data.skip_bad_rows = False
    c.data.unknown_ids = "error"  # IDs missing from the user/item tables: error | skip
    c.data.cache_dir = ""  # token cache; empty: <workdir>/cache
    c.data.max_skipped_share = 0.1  # with skipping on, stop when more of a file is skipped

    c.train = common.train_fields()
    c.train.batch_size = 256
    # The head and ID embeddings on the frozen encoder's text vectors (cached: a step is
    # pooling and the head). A second phase that also fine-tunes the top layer, slower, from
    # the best of the first, is one more entry: dict(trainable_layers=1, num_epochs=1,
    # learning_rate=1e-4). On the sample's validation split it bought nothing for 6x the CPU
    # time (benchmarks/README.md), so it is not the default.
    c.train.phases = (dict(trainable_layers=0, num_epochs=20, learning_rate=3e-3),)
    c.train.schedule = "cosine"
    c.train.warmup_steps = 50
    c.train.eval_every = 200
    c.train.save_every = 200
    c.train.log_every = 50
    c.train.early_stopping_metric = "rmse"
    c.mesh = common.mesh_fields()

    if arg == "tiny":
        c.train.phases = ()  # one phase of train.num_steps
        c.train.batch_size = 16
        c.train.num_steps = 4
        c.train.warmup_steps = 1
        c.train.log_every = 2
        c.train.eval_every = 2
        c.train.save_every = 2
        c.train.eval_batch_size = 64
    elif arg == "lora":
        c.model.lora_rank = 8
        c.train.phases = ()  # one phase: the adapters, the head and the IDs together
        c.train.batch_size = 64
        c.train.num_steps = 600
        c.train.learning_rate = 1e-3
    elif arg:
        raise ValueError(f"configs/movielens.py takes '', 'tiny' or 'lora', not {arg!r}")
    return c
