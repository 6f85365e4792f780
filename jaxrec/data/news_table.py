"""Each news item tokenized once (a TextTable, cached on disk); after this, the pipeline moves
integers only. Row 0 is the empty news item, used for padding and for IDs that `news.tsv`
does not list.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

from jaxrec.data.mind import News
from jaxrec.data.text_table import TextTable, build_table
from jaxrec.data.tokenize import TextTokenizer
from jaxrec.errors import ConfigError

log = logging.getLogger(__name__)
TEXT_FIELDS = ("category", "title", "abstract")


NewsTable = TextTable  # rows of news texts; row 0 is the empty news item


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
    seconds = [p[1] or "" for p in pairs] if "abstract" in fields else None
    return build_table(
        ids,
        [p[0] for p in pairs],
        seconds,
        tokenizer,
        max_length=max_length,
        cache_dir=cache_dir,
        name="news",
    )
