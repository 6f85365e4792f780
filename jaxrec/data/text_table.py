"""Texts tokenized once into a table, cached on disk; after this, pipelines move integers only.

Row 0 of every table is the empty text (the tokenization of ""), used for padding and for
IDs the table does not list, so no row ever has an all-zero attention mask.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from jaxrec.data.tokenize import TextTokenizer

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class TextTable:
    """Token arrays [N + 1, L] for N texts; `index[id]` is the row (from 1)."""

    index: dict[str, int]
    tokens: dict[str, np.ndarray]

    def rows(self, ids) -> np.ndarray:
        return np.fromiter((self.index.get(i, 0) for i in ids), np.int32)

    def __len__(self) -> int:
        return len(self.tokens["input_ids"])


def build_table(
    ids: Sequence[str],
    firsts: Sequence[str],
    seconds: Sequence[str] | None,
    tokenizer: TextTokenizer,
    *,
    max_length: int,
    cache_dir: str | Path | None = None,
    name: str = "text",
) -> TextTable:
    """Tokenizes each (first[, second]) text once, or loads the cached arrays for the same
    inputs (the cache key covers the IDs, the texts, the tokenizer and the length).

    A cache file that does not read back whole (a truncated or damaged zip fails its CRC-32
    checks) or whose arrays do not have the table's shape is rebuilt, with a warning.
    """
    key = _cache_key(ids, firsts, seconds, tokenizer.fingerprint, max_length)
    path = Path(cache_dir) / f"{name}-{key}.npz" if cache_dir else None
    tokens = _load_cache(path, len(ids) + 1, max_length) if path is not None else None
    if tokens is not None:
        log.info("%s tokens from cache %s", name, path)
    else:
        pairs = None if seconds is None else ["", *seconds]
        tokens = tokenizer(["", *firsts], max_length, pairs=pairs)
        if path is not None:
            _save_atomically(path, tokens)
    return TextTable(index={n: i + 1 for i, n in enumerate(ids)}, tokens=tokens)


def _load_cache(path: Path, rows: int, max_length: int) -> dict[str, np.ndarray] | None:
    """The cached token arrays, or None when there are none or they are damaged."""
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as cached:
            tokens = {k: cached[k] for k in cached.files}
    except Exception as e:  # zipfile, numpy and the OS raise many types for a damaged file
        problem = f"{type(e).__name__}: {e}"
    else:
        shapes = {k: v.shape for k, v in tokens.items()}
        if "input_ids" in tokens and all(s == (rows, max_length) for s in shapes.values()):
            return tokens
        problem = f"arrays {shapes}, expected {rows} rows of {max_length}"
    log.warning("token cache %s is damaged (%s); rebuilding it", path, problem)
    return None


def build_text_table(
    texts: Mapping[str, str],
    tokenizer: TextTokenizer,
    max_length: int,
    cache_dir: str | Path | None = None,
    name: str = "text",
) -> TextTable:
    """A table of single texts by ID (user and item descriptions)."""
    ids = list(texts)
    return build_table(
        ids,
        [texts[i] for i in ids],
        None,
        tokenizer,
        max_length=max_length,
        cache_dir=cache_dir,
        name=name,
    )


def _cache_key(ids, firsts, seconds, fingerprint: str, max_length: int) -> str:
    h = hashlib.sha256()
    h.update(f"v1|{max_length}|".encode())
    h.update(hashlib.sha256(fingerprint.encode()).digest())
    seconds = seconds if seconds is not None else [None] * len(ids)
    for text_id, first, second in zip(ids, firsts, seconds, strict=True):
        h.update(f"{text_id}\t{first}\t{second}\n".encode())
    return h.hexdigest()[:20]


def _save_atomically(path: Path, tokens: dict[str, np.ndarray]) -> None:
    """Concurrent writers (one per process) each write a whole file and rename it into place."""
    tmp = path.with_suffix(f".tmp{os.getpid()}.npz")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(tmp, **tokens)
        os.replace(tmp, path)
    except OSError as e:  # a read-only or full disk: the tokens are still good for this run
        log.warning("cannot write token cache %s (%s); continuing without it", path, e.strerror)
