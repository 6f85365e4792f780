"""Reader for the MIND news-recommendation data (news.tsv and behaviors.tsv), as distributed.

Both files are tab-separated with no header and no quoting (titles contain quotes, so the csv
module must not be used). Lines end in ``\\n`` or ``\\r\\n``; a ``\\r`` anywhere else is part of a
field. Every malformed row raises :class:`~jaxrec.errors.DataError` naming file, line and field,
unless ``skip_bad_rows=True``, in which case it is dropped and counted in a :class:`ReadReport`.
Blank lines count as malformed rows: MIND files have none, so one signals a damaged file.
Files are UTF-8, a byte order mark allowed; invalid UTF-8 (or UTF-16) is an error even with
``skip_bad_rows``. News IDs hold no whitespace (behaviors.tsv separates IDs by whitespace, so
such an ID could never be referenced). Every file's rows are counted in the report under its
role (``news``, ``behaviors``), so that the share of skipped rows can be checked.
"""

from __future__ import annotations

import dataclasses
import datetime
import itertools
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

from jaxrec.data.lines import read_lines
from jaxrec.data.report import ReadReport
from jaxrec.errors import ConfigError, DataError, excerpt

NEWS_FILE = "news.tsv"
BEHAVIORS_FILE = "behaviors.tsv"
NEWS_COLUMNS = ("news_id", "category", "subcategory", "title", "abstract", "url",
                "title_entities", "abstract_entities")  # fmt: skip
BEHAVIORS_COLUMNS = ("impression_id", "user_id", "time", "history", "impressions")
UNKNOWN_NEWS_POLICIES = ("empty", "error")

_LABEL_SUFFIXES = ("-0", "-1")
_LABEL_VALUES = {"0": 0, "1": 1}

PathLike = str | os.PathLike[str]


@dataclasses.dataclass(frozen=True, slots=True)
class News:
    """One row of news.tsv; the URL and entity columns are not kept."""

    news_id: str
    category: str
    subcategory: str
    title: str
    abstract: str


@dataclasses.dataclass(frozen=True, slots=True)
class Impression:
    """One row of behaviors.tsv: a user's click history and the candidates shown to them."""

    impression_id: str
    user_id: str
    time: datetime.datetime  # naive: MIND gives no time zone
    history: tuple[str, ...]
    candidates: tuple[str, ...]
    labels: tuple[int, ...] | None  # None on the unlabelled test split
    line: int  # 1-based line in behaviors.tsv


@dataclasses.dataclass(frozen=True)
class MindSplit:
    """One MIND split folder: its news table and its impressions in file order."""

    news: dict[str, News]
    impressions: list[Impression]
    labelled: bool
    unknown: tuple[str, ...] = ()  # IDs behaviors.tsv names but news.tsv lacks (empty news)


def _split_row(text: str, n_columns: int, path: PathLike, number: int) -> list[str]:
    fields = text.split("\t")
    if len(fields) != n_columns:
        message = (
            "blank line"
            if not text.strip()
            else f"expected {n_columns} tab-separated columns, found {len(fields)}"
        )
        raise DataError(message, path=str(path), line=number)
    return fields


def _skip_or_raise(err: DataError, skip_bad_rows: bool, report: ReadReport, reason: str) -> None:
    """Raises ``err``, or with ``skip_bad_rows`` counts it under ``reason`` (the row is dropped)."""
    if not skip_bad_rows:
        raise err
    report.skip(reason, example=str(err))


def read_news(
    path: PathLike, *, skip_bad_rows: bool = False, report: ReadReport | None = None
) -> dict[str, News]:
    """Reads a MIND news.tsv into a dict from news ID to :class:`News`, in file order.

    A duplicate news ID is an error; with ``skip_bad_rows`` the first row wins.
    """
    report = report if report is not None else ReadReport()
    news: dict[str, News] = {}
    number = 0
    for number, text in read_lines(path, "news", report):
        try:
            item = _parse_news(text, path, number)
        except DataError as err:
            _skip_or_raise(err, skip_bad_rows, report, "news.bad_row")
            continue
        if item.news_id in news:
            message = f"duplicate news ID {excerpt(item.news_id)}"
            err = DataError(message, path=str(path), line=number, field="news_id")
            _skip_or_raise(err, skip_bad_rows, report, "news.duplicate_id")
            continue
        news[item.news_id] = item
    report.read("news", number, str(path))
    return news


def _parse_news(text: str, path: PathLike, number: int) -> News:
    news_id, category, subcategory, title, abstract, *_ = _split_row(
        text, len(NEWS_COLUMNS), path, number
    )
    if not news_id:
        raise DataError("empty news ID", path=str(path), line=number, field="news_id")
    if news_id.split() != [news_id]:
        message = f"news ID {excerpt(news_id)} contains whitespace"
        raise DataError(message, path=str(path), line=number, field="news_id")
    return News(news_id, category, subcategory, title, abstract)


def read_behaviors(
    path: PathLike, *, skip_bad_rows: bool = False, report: ReadReport | None = None
) -> list[Impression]:
    """Reads a MIND behaviors.tsv into a list of :class:`Impression`, in file order.

    The first candidate decides whether the file is labelled (``N1-0``) or not (``N1``, the
    test split); every later candidate must agree. A duplicate impression ID is an error; with
    ``skip_bad_rows`` the first row wins.
    """
    report = report if report is not None else ReadReport()
    return list(_behaviors(_BehaviorsParser(path), skip_bad_rows, report))


def _behaviors(
    parser: _BehaviorsParser, skip_bad_rows: bool, report: ReadReport
) -> Iterator[Impression]:
    path = parser.path
    seen_ids: set[str] = set()
    number = 0
    for number, text in read_lines(path, "behaviors", report):
        try:
            impression = parser.parse(text, number)
        except DataError as err:
            _skip_or_raise(err, skip_bad_rows, report, "behaviors.bad_row")
            continue
        if impression.impression_id in seen_ids:
            message = f"duplicate impression ID {excerpt(impression.impression_id)}"
            err = DataError(message, path=str(path), line=number, field="impression_id")
            _skip_or_raise(err, skip_bad_rows, report, "behaviors.duplicate_id")
            continue
        seen_ids.add(impression.impression_id)
        yield impression
    report.read("behaviors", number, path)


class _BehaviorsParser:
    """Parses behaviors.tsv rows, remembering whether the file is labelled.

    The first row that parses decides it; a row that is rejected decides nothing, so that one
    damaged row at the top cannot turn every later row into a bad one.

    MINDlarge has 2.2M rows, so the common case avoids per-token Python work: users keep one
    history across a split (identical history strings share one tuple), times repeat their day
    and clock (both cached), and a well-formed impressions field is checked by counting
    substrings.

    ``ids`` maps each news ID to one shared string object, so that millions of references cost
    a pointer each. Pre-filled from news.tsv, it also finds unknown IDs for free: any key the
    parser adds is an ID that news.tsv lacks.
    """

    def __init__(self, path: PathLike, ids: dict[str, str] | None = None) -> None:
        self.path = str(path)
        self.labelled: bool | None = None
        self.ids: dict[str, str] = ids if ids is not None else {}
        self._histories: dict[str, tuple[str, ...]] = {}
        self._dates: dict[str, datetime.date] = {}
        self._clocks: dict[str, datetime.time] = {}

    def forget_histories(self) -> None:
        """Drops the shared history tuples (the next rows parse their histories afresh)."""
        self._histories.clear()

    def error(self, message: str, number: int, field: str | None = None) -> DataError:
        return DataError(message, path=self.path, line=number, field=field)

    def parse(self, text: str, number: int) -> Impression:
        impression_id, user_id, time, history, impressions = _split_row(
            text, len(BEHAVIORS_COLUMNS), self.path, number
        )
        if not impression_id:
            raise self.error("empty impression ID", number, "impression_id")
        if not user_id:
            raise self.error("empty user ID", number, "user_id")
        candidates, labels = self._parse_impressions(impressions, number)
        impression = Impression(
            impression_id=impression_id,
            user_id=user_id,
            time=self._parse_time(time, number),
            history=self._parse_history(history),
            candidates=candidates,
            labels=labels,
            line=number,
        )
        self.labelled = labels is not None
        return impression

    def _parse_history(self, history: str) -> tuple[str, ...]:
        ids = self._histories.get(history)
        if ids is None:
            ids = self._histories[history] = self._shared(history.split())
        return ids

    def _shared(self, tokens: list[str]) -> tuple[str, ...]:
        """``tokens`` as the shared string objects in ``ids``, adding any new ones."""
        shared = tuple(map(self.ids.get, tokens))
        if None in shared:  # rare once the table is warm: a second, slower pass adds the new IDs
            add = self.ids.setdefault
            shared = tuple([add(token, token) for token in tokens])
        return shared

    def _parse_time(self, text: str, number: int) -> datetime.datetime:
        """Parses ``M/D/YYYY h:mm:ss AM|PM``, e.g. ``11/11/2019 9:05:07 AM``."""
        date_text, _, clock_text = text.partition(" ")
        date = self._dates.get(date_text)
        clock = self._clocks.get(clock_text)
        if date is None or clock is None:
            try:
                date = self._dates[date_text] = _parse_date(date_text)
                clock = self._clocks[clock_text] = _parse_clock(clock_text)
            except ValueError:
                raise self.error(
                    f"cannot parse time {excerpt(text)}, expected M/D/YYYY h:mm:ss AM|PM",
                    number,
                    "time",
                ) from None
        return datetime.datetime.combine(date, clock)

    def _parse_impressions(
        self, text: str, number: int
    ) -> tuple[tuple[str, ...], tuple[int, ...] | None]:
        tokens = text.split()
        if not tokens:
            raise self.error("no candidates", number, "impressions")
        labelled = self.labelled if self.labelled is not None else "-" in tokens[0]
        if not labelled:
            if "-" in text:
                raise self.error("labelled candidate in an unlabelled file", number, "impressions")
            return self._shared(tokens), None
        if _is_clean_labelled(text, tokens):
            ids_and_labels = text.replace("-", " ").split(" ")
            candidates = self._shared(ids_and_labels[0::2])
            return candidates, tuple(map(_LABEL_VALUES.__getitem__, ids_and_labels[1::2]))
        return self._parse_labelled_tokens(tokens, number)

    def _parse_labelled_tokens(
        self, tokens: list[str], number: int
    ) -> tuple[tuple[str, ...], tuple[int, ...]]:
        """Token by token: for rows the fast check rejects, to parse them or name the culprit."""
        candidates: list[str] = []
        labels: list[int] = []
        for token in tokens:
            news_id, dash, label = token.rpartition("-")
            if not dash:
                message = f"unlabelled candidate {excerpt(token)} in a labelled file"
            elif label not in _LABEL_VALUES:
                message = f"candidate {excerpt(token)}: label must be 0 or 1"
            elif not news_id or "-" in news_id:
                message = f"candidate {excerpt(token)}: news ID empty or containing '-'"
            else:
                candidates.append(news_id)
                labels.append(_LABEL_VALUES[label])
                continue
            raise self.error(message, number, "impressions")
        return self._shared(candidates), tuple(labels)


def _is_clean_labelled(text: str, tokens: list[str]) -> bool:
    """True if ``text`` is ``ID-L ID-L ...`` with single spaces, IDs free of '-', L in {0, 1}.

    ``text`` must be its tokens joined by single spaces: other whitespace (a tab is impossible,
    but a form feed or no-break space is not) would otherwise stay glued to an ID. Then each of
    the n-1 spaces must follow "-0" or "-1", the last token must end so too, and with exactly n
    dashes and none starting a token, every token is one non-empty ID and one label.
    """
    n_tokens = len(tokens)
    return (
        text == " ".join(tokens)
        and text.count("-") == n_tokens
        and text.count("-0 ") + text.count("-1 ") == n_tokens - 1
        and text.endswith(_LABEL_SUFFIXES)
        and not text.startswith("-")
        and " -" not in text
    )


def _parse_date(text: str) -> datetime.date:
    month, day, year = _ascii_ints(text.split("/"))
    return datetime.date(year, month, day)


def _parse_clock(text: str) -> datetime.time:
    clock, half = text.split(" ")
    hour, minute, second = _ascii_ints(clock.split(":"))
    if half not in ("AM", "PM") or not 1 <= hour <= 12:
        raise ValueError(text)
    return datetime.time(hour % 12 + (12 if half == "PM" else 0), minute, second)


def _ascii_ints(parts: list[str]) -> list[int]:
    """int() of each part, refusing signs, spaces, underscores and non-ASCII digits."""
    if len(parts) != 3 or not all(p.isascii() and p.isdigit() for p in parts):
        raise ValueError(parts)
    return [int(p) for p in parts]


def read_split(
    split_dir: PathLike,
    *,
    skip_bad_rows: bool = False,
    unknown_news: str = "empty",
    report: ReadReport | None = None,
) -> MindSplit:
    """Reads ``split_dir/news.tsv`` and ``split_dir/behaviors.tsv`` and cross-checks them.

    Every history and candidate ID must be in news.tsv. Unknown IDs are counted per reference
    (``history.unknown_news``, ``candidates.unknown_news``); with ``unknown_news="empty"`` each
    distinct one is added to ``news`` as a News with empty text (counted as
    ``news.added_empty``), with ``unknown_news="error"`` the first raises DataError.
    """
    report = report if report is not None else ReadReport()
    news, parts = _split_parts(split_dir, None, skip_bad_rows, unknown_news, report)
    impressions: list[Impression] = []
    unknown: dict[str, None] = {}
    for part, missing in parts:
        impressions += part
        unknown.update(dict.fromkeys(missing))
    for news_id in unknown:
        news[news_id] = News(news_id, "", "", "", "")
    report.add("news.added_empty", len(unknown))
    labelled = bool(impressions) and impressions[0].labels is not None
    return MindSplit(news=news, impressions=impressions, labelled=labelled, unknown=tuple(unknown))


def iter_split(
    split_dir: PathLike,
    *,
    chunk: int,
    skip_bad_rows: bool = False,
    unknown_news: str = "empty",
    report: ReadReport | None = None,
) -> tuple[dict[str, News], Iterator[list[Impression]]]:
    """``split_dir``'s news (read whole) and its impressions, `chunk` at a time, in file order.

    What `read_split` does for a split held in memory, for one too large to hold: the same
    checks, and unknown news IDs counted per reference as each part is read (with
    ``unknown_news="error"`` the first raises). Unknown news are not added to the news table:
    a table looks them up as its empty row. Memory stays bounded by a part, whatever the file.
    """
    report = report if report is not None else ReadReport()
    news, parts = _split_parts(split_dir, chunk, skip_bad_rows, unknown_news, report)
    return news, (part for part, _ in parts)


def _split_parts(
    split_dir: PathLike, chunk: int | None, skip_bad_rows: bool, unknown_news: str, report
) -> tuple[dict[str, News], Iterator[tuple[list[Impression], list[str]]]]:
    """news.tsv read whole, and behaviors.tsv in parts of `chunk` impressions (None: one),
    each with the unknown news IDs it names (counted per reference, or an error)."""
    if unknown_news not in UNKNOWN_NEWS_POLICIES:
        raise ConfigError(
            f"unknown_news must be one of {UNKNOWN_NEWS_POLICIES}, got {unknown_news!r}"
        )
    split_dir = Path(split_dir)
    news = read_news(split_dir / NEWS_FILE, skip_bad_rows=skip_bad_rows, report=report)
    behaviors_path = split_dir / BEHAVIORS_FILE
    # Pre-filled with news.tsv's IDs: any key the parser adds is an ID news.tsv lacks (some
    # may come from skipped rows only, so each part is searched for the ones it names).
    ids = {news_id: news_id for news_id in news}
    parser = _BehaviorsParser(behaviors_path, ids)

    def parts() -> Iterator[tuple[list[Impression], list[str]]]:
        suspects: set[str] = set()
        rows = _behaviors(parser, skip_bad_rows, report)
        while part := list(itertools.islice(rows, chunk)):
            suspects.update(itertools.islice(ids, len(news) + len(suspects), None))
            missing = []
            if suspects:
                missing = _find_unknown_news(suspects, part, behaviors_path, unknown_news, report)
            if chunk is not None:
                parser.forget_histories()  # shared within a part; across parts they pile up
            yield part, missing

    return news, parts()


def _find_unknown_news(
    suspects: set[str],
    impressions: Sequence[Impression],
    behaviors_path: Path,
    unknown_news: str,
    report: ReadReport,
) -> list[str]:
    """Returns the unknown news IDs in first-seen order, counting each reference to them."""
    unknown: dict[str, None] = {}
    for imp in impressions:
        for field, reason, ids in (
            ("history", "history.unknown_news", imp.history),
            ("impressions", "candidates.unknown_news", imp.candidates),
        ):
            if suspects.isdisjoint(ids):
                continue
            missing = [i for i in ids if i in suspects]
            if unknown_news == "error":
                message = f"news ID {excerpt(missing[0])} is not in {NEWS_FILE}"
                raise DataError(message, path=str(behaviors_path), line=imp.line, field=field)
            report.add(reason, len(missing), example=f"{behaviors_path}:{imp.line}: {missing[0]}")
            unknown.update(dict.fromkeys(missing))
    return list(unknown)
