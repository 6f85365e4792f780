"""Text to token ids with the fast `tokenizers` library, from a checkpoint folder."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer
from tokenizers.implementations import BertWordPieceTokenizer

from jaxrec.errors import CheckpointError, ConfigError


class TextTokenizer:
    """Batched BERT tokenization to fixed-length int32 arrays.

    Reads `tokenizer.json` when the folder has one, else `vocab.txt` (lower-casing as
    `tokenizer_config.json` says). Checks the vocabulary against the model's `vocab_size`.
    """

    def __init__(self, folder: str | Path, vocab_size: int | None = None) -> None:
        folder = Path(folder)
        self.source = _tokenizer_file(folder)
        try:
            if self.source.name == "tokenizer.json":
                self._tok = Tokenizer.from_file(str(self.source))
            else:
                self._tok = BertWordPieceTokenizer(
                    str(self.source), lowercase=_lowercase(folder)
                )._tokenizer
        except Exception as e:  # tokenizers raises bare Exceptions for bad files
            raise CheckpointError(f"{self.source}: unreadable tokenizer: {e}") from None
        self._tok.no_truncation()
        self._tok.no_padding()
        size = self._tok.get_vocab_size()
        if vocab_size is not None and size > vocab_size:
            raise CheckpointError(
                f"{self.source}: tokenizer has {size} tokens but the model's vocab_size is "
                f"{vocab_size}"
            )
        self.pad_id = self._tok.token_to_id("[PAD]") or 0
        self.fingerprint = self._tok.to_str()

    def __call__(
        self, texts: Sequence[str], max_length: int, pairs: Sequence[str] | None = None
    ) -> dict[str, np.ndarray]:
        """int32 `input_ids`, `attention_mask`, `token_type_ids`, each [len(texts), max_length].

        Longer texts are truncated (the pair's second text first shortened when one is given),
        shorter ones padded with [PAD].
        """
        # [CLS] and [SEP] (and a second [SEP] for pairs) must fit, or rows come back ragged.
        needed = 2 if pairs is None else 3
        if max_length < needed:
            raise ConfigError(f"token length {max_length} is too short: need at least {needed}")
        tok = self._tok
        tok.enable_truncation(max_length, strategy="longest_first")
        tok.enable_padding(length=max_length, pad_id=self.pad_id, pad_token="[PAD]")
        try:
            inputs = list(zip(texts, pairs, strict=True)) if pairs is not None else list(texts)
            encodings = tok.encode_batch(inputs)
        finally:
            tok.no_truncation()
            tok.no_padding()
        return {
            "input_ids": np.array([e.ids for e in encodings], np.int32).reshape(-1, max_length),
            "attention_mask": np.array([e.attention_mask for e in encodings], np.int32).reshape(
                -1, max_length
            ),
            "token_type_ids": np.array([e.type_ids for e in encodings], np.int32).reshape(
                -1, max_length
            ),
        }


def _tokenizer_file(folder: Path) -> Path:
    for name in ("tokenizer.json", "vocab.txt"):
        if (folder / name).is_file():
            return folder / name
    raise CheckpointError(f"{folder}: no tokenizer.json or vocab.txt")


def _lowercase(folder: Path) -> bool:
    path = folder / "tokenizer_config.json"
    if not path.exists():
        return True
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as e:
        raise CheckpointError(f"{path}: unreadable: {e!r}") from None
    if not isinstance(config, dict):
        raise CheckpointError(f"{path}: expected a JSON object")
    return bool(config.get("do_lower_case", True))
