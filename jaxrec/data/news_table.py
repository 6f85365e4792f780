"""Each news item tokenized once, cached on disk; after this, the pipeline moves integers only.

Row 0 of every table is the empty news item (the tokenization of ""), used for padding
and for IDs that `news.tsv` does not list, so no row ever has an all-zero attention mask.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from jaxrec.data.mind import News
from jaxrec.data.tokenize import TextTokenizer
from jaxrec.errors import ConfigError

log = logging.getLogger(__name__)
TEXT_FIELDS = ("category", "title", "abstract")


@dataclasses.dataclass(frozen=True)
class NewsTable:
    """Token arrays [N + 1, L] for N news items; `index[news_id]` is the row (from 1)."""

    index: dict[str, int]
    tokens: dict[str, np.ndarray]

    def rows(self, news_ids) -> np.ndarray:
        return np.fromiter((self.index.get(n, 0) for n in news_ids), np.int32)

    def __len__(self) -> int:
        return len(self.tokens["input_ids"])


def news_texts(news: News, fields: tuple[str, ...]) -> tuple[str, str | None]:
    """The text pair fed to BERT: [category: ] title, and the abstract as the second segment."""
    first = news.title
    if "category" in fields and news.category:
        first = f"{news.category} {news.subcategory}: {first}"
    return first, (news.abstract if "abstract" in fields else None)


def build_news_table(
    news: Mapping[str, News],
    tokenizer: TextTokenizer,
    *,
    max_length: int,
    fields: tuple[str, ...] = ("title",),
    cache_dir: str | Path | None = None,
) -> NewsTable:
    """Tokenizes every news item once, or loads the cached arrays for the same inputs."""
    if set(fields) - set(TEXT_FIELDS) or "title" not in fields:
        raise ConfigError(
            f"data.news_fields must include 'title' and only {TEXT_FIELDS}, got {fields}"
        )
    ids = list(news)
    pairs = [news_texts(news[n], fields) for n in ids]
    key = _cache_key(ids, pairs, tokenizer.fingerprint, max_length)
    path = Path(cache_dir) / f"news-{key}.npz" if cache_dir else None
    if path is not None and path.exists():
        with np.load(path) as cached:
            tokens = {k: cached[k] for k in cached.files}
        log.info("news tokens from cache %s", path)
    else:
        firsts = [""] + [p[0] for p in pairs]
        seconds = None if "abstract" not in fields else [""] + [p[1] or "" for p in pairs]
        tokens = tokenizer(firsts, max_length, pairs=seconds)
        if path is not None:
            _save_atomically(path, tokens)
    return NewsTable(index={n: i + 1 for i, n in enumerate(ids)}, tokens=tokens)


def _cache_key(ids, pairs, fingerprint: str, max_length: int) -> str:
    h = hashlib.sha256()
    h.update(f"v1|{max_length}|".encode())
    h.update(hashlib.sha256(fingerprint.encode()).digest())
    for news_id, (first, second) in zip(ids, pairs, strict=True):
        h.update(f"{news_id}\t{first}\t{second}\n".encode())
    return h.hexdigest()[:20]


def _save_atomically(path: Path, tokens: dict[str, np.ndarray]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}.npz")
    np.savez(tmp, **tokens)
    os.replace(tmp, path)
