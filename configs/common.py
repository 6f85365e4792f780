"""Fields every config shares: the optimizer and loop (`train`) and the device mesh (`mesh`)."""

import ml_collections

from jaxrec import sharding


def train_fields() -> ml_collections.ConfigDict:
    t = ml_collections.ConfigDict()
    t.batch_size = 32
    t.micro_batches = 1  # gradient accumulation: batch_size is split into this many
    t.num_steps = 200
    t.learning_rate = 1e-4
    # Training phases (jaxrec/phases.py), each a dict of trainable_layers, num_epochs and
    # learning_rate; empty: one phase of model.trainable_layers, learning_rate and num_steps.
    t.phases = ()
    t.head_lr_multiplier = 1.0  # learning rate of the heads and ID embeddings, relative
    t.warmup_steps = 20
    t.schedule = "linear"  # linear | cosine | constant
    t.weight_decay = 0.01
    t.b1 = 0.9
    t.b2 = 0.999
    t.eps = 1e-8
    t.grad_clip = 1.0
    t.log_every = 20
    t.eval_every = 100
    t.eval_batch_size = 256
    t.early_stopping_metric = ""  # set by each config
    t.patience = 3  # evaluations without improvement before stopping; 0: never stop
    t.save_every = 100  # also saved at every evaluation and at the end
    t.keep_checkpoints = 2  # the latest ones; the best by the dev metric is kept apart
    return t


def mesh_fields() -> ml_collections.ConfigDict:
    m = ml_collections.ConfigDict()
    m.shape = (-1, 1, 1)  # (data, fsdp, tensor); one -1 takes the remaining devices
    m.rules = sharding.DEFAULT_RULES  # logical axis -> mesh axes (jaxrec/sharding.py)
    m.max_replicated_share = 0.5  # with fsdp > 1, more replicated parameters is an error
    return m


def encoder_fields() -> ml_collections.ConfigDict:
    """The pretrained encoder and how much of it trains."""
    m = ml_collections.ConfigDict()
    m.init_from = "minilm"  # an HF BERT folder, or the packaged MiniLM-L6-H384
    m.dtype = "float32"  # compute dtype: float32 | bfloat16 (parameters stay float32)
    m.remat = False  # recompute each layer's activations in the backward pass: less memory
    m.trainable_layers = -1  # -1: whole encoder, k: top k layers, 0: frozen encoder
    m.dropout = ml_collections.config_dict.placeholder(float)  # None: the checkpoint's
    return m
