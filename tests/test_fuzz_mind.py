"""Generated MIND folders: valid files read back exactly; each corruption fails on its line and
field, or with skip_bad_rows drops exactly that row and counts it; nothing else ever escapes."""

from __future__ import annotations

import dataclasses
import datetime
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jaxrec.data import mind
from jaxrec.data.mind import Impression, News
from jaxrec.data.report import ReadReport
from jaxrec.errors import DataError
from tests.fuzzing import (
    INVALID_UTF8,
    WHITESPACE,
    examples,
    file_bytes,
    insert,
    insert_bytes,
    line_endings,
    scratch,
    some_text,
    some_word,
    text,
)

field_text = text(exclude="\t\n")
short_text = some_text(exclude="\t\n")
first_column = some_text(exclude="\t\n\ufeff", nonempty=True)  # U+FEFF first on line 1 is a BOM
# Columns the reader does not keep: a few shapes suffice.
unkept = st.sampled_from(["", "https://assets.msn.com/x", "[]", '[{"Label": "Ana", "Type": "P"}]'])
HUGE = 200_000  # a huge field now and then: the reader must neither choke on it nor print it


@dataclasses.dataclass(frozen=True)
class BehaviorRow:
    """What one behaviors.tsv line says, as written and as it should read back."""

    columns: tuple[str, str, str, str, str]
    time: datetime.datetime
    history: tuple[str, ...]
    candidates: tuple[str, ...]
    labels: tuple[int, ...] | None


@dataclasses.dataclass
class Files:
    """A generated split: rows of news.tsv (8 columns) and of behaviors.tsv, and how to write."""

    news: list[tuple[str, ...]]
    behaviors: list[BehaviorRow]
    newline: bytes
    bom: bool
    final: bool

    def news_lines(self) -> list[bytes]:
        return ["\t".join(row).encode() for row in self.news]

    def behavior_lines(self) -> list[bytes]:
        return ["\t".join(row.columns).encode() for row in self.behaviors]

    def write(self, folder, news=None, behaviors=None):
        for name, lines in ((mind.NEWS_FILE, news), (mind.BEHAVIORS_FILE, behaviors)):
            if lines is None:
                lines = self.news_lines() if name == mind.NEWS_FILE else self.behavior_lines()
            data = file_bytes(lines, newline=self.newline, bom=self.bom, final=self.final)
            (folder / name).write_bytes(data)
        return folder


EPOCH = datetime.datetime(1970, 1, 1)
SECONDS = st.integers(0, 130 * 365 * 86_400)  # 1970 to 2099: one draw, not a datetimes()


def clock_text(moment: datetime.datetime, pad: bool) -> str:
    """``M/D/YYYY h:mm:ss AM|PM``; with ``pad`` the month and day have two digits."""
    month, day = (f"{moment.month:02d}", f"{moment.day:02d}") if pad else (moment.month, moment.day)
    hour = moment.hour % 12 or 12
    half = "AM" if moment.hour < 12 else "PM"
    return f"{month}/{day}/{moment.year} {hour}:{moment.minute:02d}:{moment.second:02d} {half}"


# Separators between IDs: mostly one space, sometimes any whitespace run str.split() allows.
# Prebuilt as whole patterns so that a row draws its separators in one choice.
_rng = random.Random(0)
SEPARATORS = st.sampled_from(
    [(" ",) * 5]
    + [tuple(_rng.choice((" ",) * 8 + WHITESPACE) for _ in range(5)) for _ in range(63)]
)
EDGES = st.sampled_from([("", "")] * 4 + [(" ", ""), ("", " "), ("\x0c ", " \x0c"), ("\xa0", "")])


def spaced(tokens: list[str], seps: list[str], edges: tuple[str, str]) -> str:
    """``tokens`` joined by ``seps[i]`` before each token but the first, inside ``edges``."""
    inner = "".join((seps[i] if i else "") + t for i, t in enumerate(tokens))
    return edges[0] + inner + edges[1]


@st.composite
def news_rows(draw, min_size: int = 1, max_size: int = 5) -> list[tuple[str, ...]]:
    ids = draw(
        st.lists(some_word(exclude="-\ufeff"), min_size=min_size, max_size=max_size, unique=True)
    )
    texts = st.tuples(short_text, short_text, field_text, short_text, unkept, unkept, unkept)
    rows = [(news_id, *draw(texts)) for news_id in ids]
    if draw(st.integers(0, 40)) == 0:
        rows[0] = (*rows[0][:3], draw(st.sampled_from("aé東")) * HUGE, *rows[0][4:])
    return rows


@st.composite
def behavior_rows(draw, pool: list[str], labelled: bool, n: int) -> list[BehaviorRow]:
    ids = draw(st.lists(first_column, min_size=n, max_size=n, unique=True))
    picks = st.sampled_from(pool)
    row = st.tuples(
        some_text(exclude="\t\n", nonempty=True),  # user ID
        SECONDS,
        st.booleans(),  # zero-padded date
        st.lists(picks, max_size=4),  # history
        st.lists(picks, min_size=1, max_size=5),  # candidates
        st.integers(0, 31),  # labels, as bits
        SEPARATORS,
        EDGES,
        EDGES,
    )
    rows = []
    for impression_id in ids:
        user_id, seconds, pad, history, candidates, bits, seps, edges, edges2 = draw(row)
        moment = EPOCH + datetime.timedelta(seconds=seconds)
        labels = tuple(bits >> i & 1 for i in range(len(candidates))) if labelled else None
        shown = candidates
        if labelled:
            shown = [f"{c}-{y}" for c, y in zip(candidates, labels, strict=True)]
        columns = (
            impression_id,
            user_id,
            clock_text(moment, pad),
            spaced(history, seps, edges),
            spaced(shown, seps[::-1], edges2),
        )
        rows.append(BehaviorRow(columns, moment, tuple(history), tuple(candidates), labels))
    return rows


@st.composite
def splits(draw, min_impressions: int = 1) -> Files:
    news = draw(news_rows())
    known = [row[0] for row in news]
    unknown = [f"{t}?" for t in draw(st.lists(st.sampled_from(known), max_size=2, unique=True))]
    unknown = [t for t in unknown if t not in known]
    n = draw(st.integers(min_impressions, 5))
    behaviors = draw(behavior_rows(known + unknown, draw(st.booleans()), n))
    return Files(news, behaviors, draw(line_endings), draw(st.booleans()), draw(st.booleans()))


def expected(
    files: Files,
    folder,
    skip_news: set[int] = frozenset(),
    skip_behaviors: set[int] = frozenset(),
) -> tuple[mind.MindSplit, dict[str, int]]:
    """What read_split must return for ``files`` (as written in ``folder``) without the given
    row indices, and the report's counts."""
    news: dict[str, News] = {}
    for i, row in enumerate(files.news):
        if i not in skip_news:
            news.setdefault(row[0], News(*row[:5]))
    impressions = [
        Impression(r.columns[0], r.columns[1], r.time, r.history, r.candidates, r.labels, i + 1)
        for i, r in enumerate(files.behaviors)
        if i not in skip_behaviors
    ]
    counts = {"history.unknown_news": 0, "candidates.unknown_news": 0}
    unknown: dict[str, None] = {}
    for imp in impressions:
        for reason, ids in (("history", imp.history), ("candidates", imp.candidates)):
            missing = [i for i in ids if i not in news]
            counts[f"{reason}.unknown_news"] += len(missing)
            unknown.update(dict.fromkeys(missing))
    for news_id in unknown:
        news[news_id] = News(news_id, "", "", "", "")
    counts["news.added_empty"] = len(unknown)
    for role, name in (("news", mind.NEWS_FILE), ("behaviors", mind.BEHAVIORS_FILE)):
        data = (folder / name).read_bytes()
        last = data.removeprefix(b"\xef\xbb\xbf").rsplit(b"\n", 1)[-1]  # "" if it ends in \n
        counts[f"{role}.no_final_newline"] = int(bool(last.decode("utf-8", "replace").strip()))
    labelled = bool(impressions) and impressions[0].labels is not None
    return mind.MindSplit(news, impressions, labelled), {k: v for k, v in counts.items() if v}


def assert_split(got: mind.MindSplit, want: mind.MindSplit) -> None:
    assert list(got.news) == list(want.news)
    assert got.news == want.news
    assert got.impressions == want.impressions
    assert got.labelled == want.labelled


@settings(max_examples=examples(300))
@given(files=splits())
def test_valid_split_reads_back_exactly(files: Files) -> None:
    with scratch() as folder:
        files.write(folder)
        report = ReadReport()
        got = mind.read_split(folder, report=report)
        want, counts = expected(files, folder)
        assert_split(got, want)
        assert report.as_dict() == counts
        assert report.rows_dict() == {"news": len(files.news), "behaviors": len(files.behaviors)}
        report.check_share(0.0)  # nothing was skipped
        if "news.added_empty" in counts:  # the same unknown IDs are an error when asked
            with pytest.raises(DataError, match="is not in news.tsv") as caught:
                mind.read_split(folder, unknown_news="error")
            assert caught.value.field in ("history", "impressions")
            first = next(
                i
                for i in got.impressions
                if set(i.history + i.candidates) - {row[0] for row in files.news}
            )
            assert caught.value.line == first.line


# -- Corruptions: each (files, lines, row index, data) -> Bad(line, field, skip reason). -----


@dataclasses.dataclass(frozen=True)
class Bad:
    line: bytes  # the corrupted line
    field: str | None  # what the DataError must name, where a field is to blame
    reason: str  # the ReadReport reason when skipped; "encoding": never skipped


def _column(lines: list[bytes], k: int, column: int, value: str) -> bytes:
    columns = lines[k].split(b"\t")
    columns[column] = value.encode()
    return b"\t".join(columns)


def _drop_column(files, lines, k, data):
    columns = lines[k].split(b"\t")
    del columns[data.draw(st.integers(0, len(columns) - 1))]
    return Bad(b"\t".join(columns), None, "bad_row")


def _extra_column(files, lines, k, data):
    return Bad(insert(data, lines[k].decode(), "\t").encode(), None, "bad_row")


def _blank(files, lines, k, data):
    return Bad(data.draw(st.sampled_from([b"", b" ", b"\r", b"  \x0c"])), None, "bad_row")


def _invalid_utf8(files, lines, k, data):
    return Bad(
        insert_bytes(data, lines[k], data.draw(st.sampled_from(INVALID_UTF8))), None, "encoding"
    )


def _nul(files, lines, k, data):
    return Bad(insert(data, lines[k].decode(), "\x00").encode(), None, "encoding")


def _empty_news_id(files, lines, k, data):
    return Bad(_column(lines, k, 0, ""), "news_id", "bad_row")


def _spaced_news_id(files, lines, k, data):
    news_id = insert(data, files.news[k][0], data.draw(st.sampled_from(WHITESPACE)))
    return Bad(_column(lines, k, 0, news_id), "news_id", "bad_row")


def _duplicate_news_id(files, lines, k, data):
    earlier = files.news[data.draw(st.integers(0, k - 1))][0]
    return Bad(_column(lines, k, 0, earlier), "news_id", "duplicate_id")


def _empty_impression_id(files, lines, k, data):
    return Bad(_column(lines, k, 0, ""), "impression_id", "bad_row")


def _empty_user_id(files, lines, k, data):
    return Bad(_column(lines, k, 1, ""), "user_id", "bad_row")


BAD_TIMES = [
    "", "2019-11-11 09:05:07", "13/11/2019 9:05:07 AM", "11/31/2019 1:00:00 PM",
    "11/11/2019 0:05:07 AM", "11/11/2019 9:05:07", "11/11/2019 9:05:07 am",
    "11/11/2019  9:05:07 AM", "１1/11/2019 9:05:07 AM", "11/11/2019 9:60:00 PM",
    "11/11 9:05:07 AM", "+1/11/2019 9:05:07 AM",
]  # fmt: skip


def _bad_time(files, lines, k, data):
    return Bad(_column(lines, k, 2, data.draw(st.sampled_from(BAD_TIMES))), "time", "bad_row")


def _duplicate_impression_id(files, lines, k, data):
    earlier = files.behaviors[data.draw(st.integers(0, k - 1))].columns[0]
    return Bad(_column(lines, k, 0, earlier), "impression_id", "duplicate_id")


def _no_candidates(files, lines, k, data):
    empty = data.draw(st.sampled_from(["", " ", "\x0c"]))
    return Bad(_column(lines, k, 4, empty), "impressions", "bad_row")


BAD_LABELS = ["{}-2", "{}-", "-1", "{}-0-1", "{}--1", "{}-01", "{}-x", "{}-١", "-{}-1", "{}-1-"]


def _labelled(row: BehaviorRow) -> list[str]:
    return [f"{c}-{y}" for c, y in zip(row.candidates, row.labels, strict=True)]


def _bad_label(files, lines, k, data):
    """A labelled file's candidate with a label that is not 0 or 1, or an ID with '-'."""
    row = files.behaviors[k]
    tokens = _labelled(row)
    shape = data.draw(st.sampled_from(BAD_LABELS))
    tokens[data.draw(st.integers(0, len(tokens) - 1))] = shape.format(row.candidates[0])
    return Bad(_column(lines, k, 4, " ".join(tokens)), "impressions", "bad_row")


def _label_dropped(files, lines, k, data):
    """One candidate without its label in a labelled file (after the first row decided)."""
    row = files.behaviors[k]
    tokens = _labelled(row)
    tokens[data.draw(st.integers(0, len(tokens) - 1))] = row.candidates[0]
    return Bad(_column(lines, k, 4, " ".join(tokens)), "impressions", "bad_row")


def _label_added(files, lines, k, data):
    """A labelled candidate in an unlabelled file (after the first row decided)."""
    tokens = list(files.behaviors[k].candidates)
    tokens[data.draw(st.integers(0, len(tokens) - 1))] += data.draw(st.sampled_from(["-0", "-1"]))
    return Bad(_column(lines, k, 4, " ".join(tokens)), "impressions", "bad_row")


ANY_ROW = (_drop_column, _extra_column, _blank, _invalid_utf8, _nul)
NEWS_CORRUPTIONS = (*ANY_ROW, _empty_news_id, _spaced_news_id, _duplicate_news_id)
BEHAVIOR_CORRUPTIONS = (
    *ANY_ROW, _empty_impression_id, _empty_user_id, _bad_time, _duplicate_impression_id,
    _no_candidates, _bad_label, _label_dropped, _label_added,
)  # fmt: skip
NEEDS_EARLIER_ROW = {_duplicate_news_id, _duplicate_impression_id, _label_dropped, _label_added}
LABELLED_ONLY = {_bad_label, _label_dropped}


@st.composite
def corrupted(draw):
    """(files, file name, row index, corrupted lines, field, reason) for one corrupted row."""
    files = draw(splits())
    data = draw(st.data())
    role = draw(st.sampled_from(["news", "behaviors"]))
    rows = files.news if role == "news" else files.behaviors
    options = NEWS_CORRUPTIONS if role == "news" else BEHAVIOR_CORRUPTIONS
    if role == "behaviors":
        labelled = files.behaviors[0].labels is not None
        unfit = {_label_added} if labelled else LABELLED_ONLY
        options = [f for f in options if f not in unfit]
    if len(rows) < 2:
        options = [f for f in options if f not in NEEDS_EARLIER_ROW]
    corrupt = draw(st.sampled_from(options))
    low = 1 if corrupt in NEEDS_EARLIER_ROW else 0
    k = draw(st.integers(low, len(rows) - 1))
    lines = files.news_lines() if role == "news" else files.behavior_lines()
    bad = corrupt(files, lines, k, data)
    lines[k] = bad.line
    return files, role, k, lines, bad.field, bad.reason


@settings(max_examples=examples(600))
@given(case=corrupted())
def test_corrupted_row_is_named_or_skipped_and_counted(case) -> None:
    files, role, k, lines, field, reason = case
    name = mind.NEWS_FILE if role == "news" else mind.BEHAVIORS_FILE
    with scratch() as folder:
        files.write(folder, **{role: lines})
        with pytest.raises(DataError) as caught:
            mind.read_split(folder)
        assert (caught.value.path, caught.value.line) == (str(folder / name), k + 1)
        if field is not None:
            assert caught.value.field == field
        if reason == "encoding":  # a file in another encoding is never read in part
            with pytest.raises(DataError) as caught:
                mind.read_split(folder, skip_bad_rows=True)
            assert caught.value.line == k + 1
            return
        report = ReadReport()
        got = mind.read_split(folder, skip_bad_rows=True, report=report)
        skip = {f"skip_{role}": {k}}
        want, counts = expected(files, folder, **skip)
        assert_split(got, want)
        assert report.as_dict() == {**counts, f"{role}.{reason}": 1}
        assert f"{name}:{k + 1}:" in report.examples[f"{role}.{reason}"]
        rows = report.rows_dict()
        assert rows == {"news": len(files.news), "behaviors": len(files.behaviors)}
        report.check_share(1 / rows[role])  # exactly one row: within the share
        with pytest.raises(DataError, match=f"skipped 1 of {rows[role]} {role} rows"):
            report.check_share(0.999 / rows[role])


@settings(max_examples=examples(200))
@given(files=splits(), data=st.data())
def test_truncated_file_keeps_every_whole_row(files: Files, data) -> None:
    """Cut anywhere, a file either fails on its last line or reads every whole row as written,
    and a last line cut short is noted."""
    role = data.draw(st.sampled_from(["news", "behaviors"]))
    name = mind.NEWS_FILE if role == "news" else mind.BEHAVIORS_FILE
    files.final = True
    with scratch() as folder:
        files.write(folder)
        want, _ = expected(files, folder)
        whole = (folder / name).read_bytes()
        cut = data.draw(st.integers(0, len(whole) - 1))
        (folder / name).write_bytes(whole[:cut])
        whole_rows = whole[:cut].count(b"\n")
        partial = cut > 0 and not whole[:cut].endswith(b"\n")
        report = ReadReport()
        try:
            got = mind.read_split(folder, report=report)
        except DataError as err:
            assert partial and (err.path, err.line) == (str(folder / name), whole_rows + 1)
            return
        if role == "behaviors":
            assert got.impressions[:whole_rows] == want.impressions[:whole_rows]
            assert len(got.impressions) == whole_rows + partial
        else:
            for row in files.news[:whole_rows]:
                assert got.news[row[0]] == News(*row[:5])
        assert report.as_dict().get(f"{role}.no_final_newline", 0) == partial


def line_count(data: bytes) -> int:
    """Lines in ``data``: a file that is only a byte order mark has none."""
    data = data.removeprefix(b"\xef\xbb\xbf")
    return data.count(b"\n") + (bool(data) and not data.endswith(b"\n"))


CHUNKS = [
    b"\t", b"\n", b"\r\n", b"\r", b" ", b"N1", b"N2", b"-1", b"-0", b"-", b"x", b"\xc3\xa9",
    b"11/11/2019 9:05:07 AM", b"\xef\xbb\xbf", b"\xff", b"\x00", b"\t\t\t\t", b"\t\t\t\t\t\t\t",
]  # fmt: skip
garbage = st.lists(st.sampled_from(CHUNKS), max_size=40).map(b"".join)


@settings(max_examples=examples(600))
@given(news=garbage, behaviors=garbage, skip=st.booleans())
def test_any_bytes_read_or_fail_with_a_data_error_and_lose_nothing_silently(
    news: bytes, behaviors: bytes, skip: bool
) -> None:
    with scratch() as folder:
        (folder / mind.NEWS_FILE).write_bytes(news)
        (folder / mind.BEHAVIORS_FILE).write_bytes(behaviors)
        report = ReadReport()
        try:
            split = mind.read_split(folder, skip_bad_rows=skip, report=report)
        except DataError as err:
            lines = {mind.NEWS_FILE: news, mind.BEHAVIORS_FILE: behaviors}[err.path.split("/")[-1]]
            assert 1 <= err.line <= lines.count(b"\n") + 1
            return
        # Every line is a row that was kept or counted as skipped.
        counts = report.as_dict()
        rows = report.rows_dict()
        news_lines, behavior_lines = line_count(news), line_count(behaviors)
        assert rows == {"news": news_lines, "behaviors": behavior_lines}
        read_news = len(split.news) - counts.get("news.added_empty", 0)
        assert read_news + report.skipped("news") == news_lines
        assert len(split.impressions) + report.skipped("behaviors") == behavior_lines


impressions_chunks = st.sampled_from(
    ["N1", "N2", "é", "-", "0", "1", "2", " ", " ", " ", "  ", "\x0c", "\xa0", "\x85", "\u3000"]
)


def reference(field: str, labelled: bool | None):
    """A slow, obviously right parse of an impressions field; None if malformed."""
    tokens = field.split()
    if not tokens:
        return None
    if labelled is None:
        labelled = "-" in tokens[0]
    if not labelled:
        return None if "-" in field else (tuple(tokens), None)
    pairs = [t.rpartition("-") for t in tokens]
    if any(not i or "-" in i or not d or y not in ("0", "1") for i, d, y in pairs):
        return None
    return tuple(i for i, _, _ in pairs), tuple(int(y) for _, _, y in pairs)


@settings(max_examples=examples(1500))
@given(
    field=st.lists(impressions_chunks, max_size=14).map("".join),
    labelled=st.sampled_from([None, True, False]),
)
def test_impressions_field_parses_like_the_reference(field: str, labelled: bool | None) -> None:
    parser = mind._BehaviorsParser("behaviors.tsv")
    parser.labelled = labelled
    want = reference(field, labelled)
    row = f"1\tU1\t11/11/2019 9:05:07 AM\t\t{field}"
    if want is None:
        with pytest.raises(DataError) as caught:
            parser.parse(row, 3)
        assert (caught.value.line, caught.value.field) == (3, "impressions")
        assert parser.labelled is labelled  # a rejected row decides nothing
    else:
        imp = parser.parse(row, 3)
        assert (imp.candidates, imp.labels) == want
