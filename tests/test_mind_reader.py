"""The MIND reader: exact parsing, and a DataError naming file, line and field for bad input."""

from __future__ import annotations

import datetime
import random
from pathlib import Path

import pytest

from jaxrec.data import mind
from jaxrec.data.mind import Impression, News, ReadReport
from jaxrec.errors import ConfigError, DataError

NEWS_ROWS = [
    'N1\tsports\tfootball_nfl\tCafé “Crêpes” win, 東京 says "yes"\tAbstract one.\thttps://x/1\t[]\t[]',
    "N2\tfinance\tmarkets\tStocks rise\t\thttps://x/2\t\t",
    "N3\thealth\tvoices\tSleep well\tAbstract ünïcode.\thttps://x/3\t[]\t[]",
]
BEHAVIOR_ROWS = [
    "1\tU1\t11/11/2019 9:05:07 AM\tN1 N2\tN3-1 N2-0",
    "2\tU2\t11/12/2019 12:00:00 AM\t\tN1-0 N3-0 N2-1",
    "3\tU1\t11/13/2019 12:30:59 PM\tN1 N2\tN2-0",
]
GOOD_IMPRESSION = BEHAVIOR_ROWS[0]
GOOD_NEWS = NEWS_ROWS[0]


def write(path: Path, rows: list[str], *, newline: str = "\n", bom: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = ("\ufeff" if bom else "") + "".join(row + newline for row in rows)
    path.write_bytes(text.encode("utf-8"))
    return path


def write_split(root: Path, news: list[str], behaviors: list[str]) -> Path:
    write(root / "news.tsv", news)
    write(root / "behaviors.tsv", behaviors)
    return root


def expected_impressions() -> list[Impression]:
    return [
        Impression("1", "U1", datetime.datetime(2019, 11, 11, 9, 5, 7), ("N1", "N2"),
                   ("N3", "N2"), (1, 0), 1),
        Impression("2", "U2", datetime.datetime(2019, 11, 12, 0, 0, 0), (),
                   ("N1", "N3", "N2"), (0, 0, 1), 2),
        Impression("3", "U1", datetime.datetime(2019, 11, 13, 12, 30, 59), ("N1", "N2"),
                   ("N2",), (0,), 3),
    ]  # fmt: skip


@pytest.mark.parametrize(("newline", "bom"), [("\n", False), ("\r\n", True)])
def test_round_trip(tmp_path: Path, newline: str, bom: bool) -> None:
    write(tmp_path / "news.tsv", NEWS_ROWS, newline=newline, bom=bom)
    write(tmp_path / "behaviors.tsv", BEHAVIOR_ROWS, newline=newline, bom=bom)
    report = ReadReport()
    split = mind.read_split(tmp_path, report=report)

    assert split.news == {
        "N1": News("N1", "sports", "football_nfl", 'Café “Crêpes” win, 東京 says "yes"',
                   "Abstract one."),
        "N2": News("N2", "finance", "markets", "Stocks rise", ""),
        "N3": News("N3", "health", "voices", "Sleep well", "Abstract ünïcode."),
    }  # fmt: skip
    assert list(split.news) == ["N1", "N2", "N3"]  # file order
    assert split.impressions == expected_impressions()
    assert split.labelled is True
    assert report.as_dict() == {}


def test_stray_carriage_return_stays_inside_its_field(tmp_path: Path) -> None:
    rows = ["N1\tc\ts\tHalf\rway\t\tu\t\t", "N2\tc\ts\tEnds in CR\r\t\tu\t\t"]
    news = mind.read_news(write(tmp_path / "news.tsv", rows, newline="\r\n"))
    assert news["N1"].title == "Half\rway"
    assert news["N2"].title == "Ends in CR\r"
    assert len(news) == 2


def test_unlabelled_test_split(tmp_path: Path) -> None:
    rows = ["7\tU9\t11/15/2019 8:55:22 AM\tN1\tN2 N3", "8\tU8\t11/15/2019 1:00:00 PM\t\tN1"]
    split = mind.read_split(write_split(tmp_path, NEWS_ROWS, rows))
    assert split.labelled is False
    assert [imp.labels for imp in split.impressions] == [None, None]
    assert [imp.candidates for imp in split.impressions] == [("N2", "N3"), ("N1",)]
    assert split.impressions[1].time == datetime.datetime(2019, 11, 15, 13, 0, 0)


def test_empty_file_reads_as_no_rows(tmp_path: Path) -> None:
    split = mind.read_split(write_split(tmp_path, [], []))
    assert (split.news, split.impressions, split.labelled) == ({}, [], False)


@pytest.mark.parametrize(
    ("row", "field", "message"),
    [
        ("1\tU1\t11/11/2019 9:05:07 AM\tN1", None, "expected 5"),
        ("1\tU1\t11/11/2019 9:05:07 AM\tN1\tN2-0\textra", None, "expected 5"),
        ("", None, "blank line"),
        ("2\tU1\t11/11/2019 9:05:07 AM\tN1\tN1-2", "impressions", "label must be 0 or 1"),
        ("2\tU1\t11/11/2019 9:05:07 AM\tN1\tN1-0 N2-", "impressions", "label must be 0 or 1"),
        ("2\tU1\t11/11/2019 9:05:07 AM\tN1\tN1-0 -1", "impressions", "news ID empty"),
        ("2\tU1\t11/11/2019 9:05:07 AM\tN1\tN1-0 N2-0-1", "impressions", "containing '-'"),
        ("2\tU1\t11/11/2019 9:05:07 AM\tN1\tN1-0 N2", "impressions", "unlabelled candidate"),
        ("2\tU1\t11/11/2019 9:05:07 AM\tN1\t", "impressions", "no candidates"),
        ("2\tU1\t11/11/2019 9:05:07 AM\tN1\t  ", "impressions", "no candidates"),
        ("2\tU1\t2019-11-11 09:05:07\tN1\tN1-0", "time", "cannot parse time"),
        ("2\tU1\t11/31/2019 9:05:07 AM\tN1\tN1-0", "time", "cannot parse time"),
        ("2\tU1\t11/11/2019 13:05:07 PM\tN1\tN1-0", "time", "cannot parse time"),
        ("2\tU1\t11/11/2019 9:05:07\tN1\tN1-0", "time", "cannot parse time"),
        ("2\tU1\t11/11/2019 9:05:07 am\tN1\tN1-0", "time", "cannot parse time"),
        ("2\tU1\t11/+1/2019 9:05:07 AM\tN1\tN1-0", "time", "cannot parse time"),
        ("\tU1\t11/11/2019 9:05:07 AM\tN1\tN1-0", "impression_id", "empty impression ID"),
        ("2\t\t11/11/2019 9:05:07 AM\tN1\tN1-0", "user_id", "empty user ID"),
        ("1\tU2\t11/11/2019 9:05:07 AM\tN1\tN1-0", "impression_id", "duplicate impression ID"),
    ],
)
def test_bad_behaviors_row_names_file_line_and_field(
    tmp_path: Path, row: str, field: str | None, message: str
) -> None:
    path = write(tmp_path / "behaviors.tsv", [GOOD_IMPRESSION, row, BEHAVIOR_ROWS[2]])
    with pytest.raises(DataError, match=message) as caught:
        mind.read_behaviors(path)
    assert (caught.value.path, caught.value.line, caught.value.field) == (str(path), 2, field)
    assert str(caught.value).startswith(f"{path}:2: ")


def test_labelled_candidate_in_unlabelled_file(tmp_path: Path) -> None:
    rows = ["1\tU1\t11/11/2019 9:05:07 AM\t\tN1 N2", "2\tU1\t11/11/2019 9:05:07 AM\t\tN1 N2-1"]
    with pytest.raises(DataError, match="labelled candidate") as caught:
        mind.read_behaviors(write(tmp_path / "behaviors.tsv", rows))
    assert (caught.value.line, caught.value.field) == (2, "impressions")


@pytest.mark.parametrize(
    ("row", "field", "message"),
    [
        ("N9\tc\ts\ttitle\tabstract\turl\t[]", None, "expected 8"),
        ("\tc\ts\ttitle\tabstract\turl\t[]\t[]", "news_id", "empty news ID"),
        ("N1\tc\ts\tagain\tabstract\turl\t[]\t[]", "news_id", "duplicate news ID 'N1'"),
        ("   ", None, "blank line"),
    ],
)
def test_bad_news_row_names_file_line_and_field(
    tmp_path: Path, row: str, field: str | None, message: str
) -> None:
    path = write(tmp_path / "news.tsv", [GOOD_NEWS, row])
    with pytest.raises(DataError, match=message) as caught:
        mind.read_news(path)
    assert (caught.value.path, caught.value.line, caught.value.field) == (str(path), 2, field)


def test_invalid_utf8_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "news.tsv"
    path.write_bytes(GOOD_NEWS.encode() + b"\nN2\tc\ts\tbad \xff byte\t\tu\t\t\n")
    with pytest.raises(DataError, match="invalid UTF-8") as caught:
        mind.read_news(path)
    assert (caught.value.path, caught.value.line) == (str(path), 2)


def test_missing_file_names_its_path(tmp_path: Path) -> None:
    write(tmp_path / "news.tsv", NEWS_ROWS)
    with pytest.raises(DataError, match="file not found") as caught:
        mind.read_split(tmp_path)
    assert caught.value.path == str(tmp_path / "behaviors.tsv")


def test_skip_bad_rows_drops_and_counts(tmp_path: Path) -> None:
    news = [*NEWS_ROWS, "N1\tc\ts\tdup\t\tu\t\t", "N4\ttoo few columns"]
    behaviors = [
        BEHAVIOR_ROWS[0],
        "9\tU1\tyesterday\tN77\tN78-0",  # its unknown IDs go with it
        "",
        BEHAVIOR_ROWS[1],
        "1\tU7\t11/11/2019 9:05:07 AM\tN1\tN1-0",  # duplicate impression ID
        "10\tU1\t11/11/2019 9:05:07 AM\tN1\tN1-5",
        BEHAVIOR_ROWS[2],
    ]
    report = ReadReport()
    split = mind.read_split(
        write_split(tmp_path, news, behaviors), skip_bad_rows=True, report=report
    )
    assert report.as_dict() == {
        "news.bad_row": 1,
        "news.duplicate_id": 1,
        "behaviors.bad_row": 3,
        "behaviors.duplicate_id": 1,
    }
    assert split.news["N1"].title.startswith("Café")  # the first N1 is kept
    assert "N78" not in split.news and "N77" not in split.news
    assert [imp.line for imp in split.impressions] == [1, 4, 7]
    assert [imp.impression_id for imp in split.impressions] == ["1", "2", "3"]
    assert "news.tsv:4:" in report.examples["news.duplicate_id"]


def test_unknown_news_become_empty_news_and_are_counted(tmp_path: Path) -> None:
    behaviors = [
        "1\tU1\t11/11/2019 9:05:07 AM\tN1 N404 N405\tN3-1 N406-0",
        "2\tU1\t11/11/2019 9:05:08 AM\tN1 N404 N405\tN406-0 N1-1",
        "3\tU2\t11/11/2019 9:05:09 AM\tN404\tN2-0",
    ]
    report = ReadReport()
    split = mind.read_split(write_split(tmp_path, NEWS_ROWS, behaviors), report=report)
    assert report.as_dict() == {
        "history.unknown_news": 5,
        "candidates.unknown_news": 2,
        "news.added_empty": 3,
    }
    for news_id in ("N404", "N405", "N406"):
        assert split.news[news_id] == News(news_id, "", "", "", "")
    assert split.news["N1"].title.startswith("Café")
    assert len(split.news) == 6
    assert split.impressions[0].history == ("N1", "N404", "N405")


@pytest.mark.parametrize("chunk", [1, 2, 3, 10])
def test_a_split_read_in_parts_reads_and_counts_as_a_whole(tmp_path: Path, chunk: int) -> None:
    behaviors = [
        "1\tU1\t11/11/2019 9:05:07 AM\tN1 N404 N405\tN3-1 N406-0",
        "2\tU1\t11/11/2019 9:05:08 AM\tN1 N404 N405\tN406-0 N1-1",
        "3\tU2\t11/11/2019 9:05:09 AM\tN404\tN2-0",
        "4\tU3\t11/11/2019 9:05:10 AM\t\tN2-1 N406-0",
    ]
    root = write_split(tmp_path, NEWS_ROWS, behaviors)
    whole_report, report = ReadReport(), ReadReport()
    whole = mind.read_split(root, report=whole_report)
    news, parts = mind.iter_split(root, chunk=chunk, report=report)
    parts = list(parts)
    assert [len(p) for p in parts] == [min(chunk, 4 - i) for i in range(0, 4, chunk)]
    assert [imp for part in parts for imp in part] == whole.impressions
    assert set(news) == {"N1", "N2", "N3"}  # unknown news are left to the table's empty row
    counts = whole_report.as_dict()
    del counts["news.added_empty"]
    assert report.as_dict() == counts == {"history.unknown_news": 5, "candidates.unknown_news": 3}
    _, parts = mind.iter_split(root, chunk=chunk, unknown_news="error")
    with pytest.raises(DataError, match="'N404' is not in news.tsv"):
        list(parts)


@pytest.mark.parametrize(
    ("history", "impressions", "field", "missing"),
    [("N1 N404", "N2-1", "history", "N404"), ("N1", "N2-1 N405-0", "impressions", "N405")],
)
def test_unknown_news_error(
    tmp_path: Path, history: str, impressions: str, field: str, missing: str
) -> None:
    behaviors = [GOOD_IMPRESSION, f"2\tU1\t11/11/2019 9:05:07 AM\t{history}\t{impressions}"]
    root = write_split(tmp_path, NEWS_ROWS, behaviors)
    with pytest.raises(DataError, match=f"'{missing}' is not in news.tsv") as caught:
        mind.read_split(root, unknown_news="error")
    assert (caught.value.path, caught.value.line, caught.value.field) == (
        str(root / "behaviors.tsv"), 2, field,
    )  # fmt: skip


def test_unknown_news_policy_is_checked(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown_news"):
        mind.read_split(write_split(tmp_path, NEWS_ROWS, BEHAVIOR_ROWS), unknown_news="drop")


@pytest.mark.parametrize(
    "impressions",
    ["N1-0  N2-1", " N1-0 N2-1", "N1-0 N2-1 ", "N1-0\x0bN2-1", "N1-0 N2-1"],
)
def test_irregular_spacing_parses_like_single_spaces(tmp_path: Path, impressions: str) -> None:
    rows = [f"1\tU1\t11/11/2019 9:05:07 AM\t N1  N2 \t{impressions}"]
    (imp,) = mind.read_behaviors(write(tmp_path / "behaviors.tsv", rows))
    assert (imp.history, imp.candidates, imp.labels) == (("N1", "N2"), ("N1", "N2"), (0, 1))


def test_same_history_string_shares_one_tuple(tmp_path: Path) -> None:
    first, _, third = mind.read_behaviors(write(tmp_path / "behaviors.tsv", BEHAVIOR_ROWS))
    assert first.history is third.history


def test_report_merge_adds_counts_and_keeps_first_example() -> None:
    a, b = ReadReport(), ReadReport()
    a.add("news.bad_row", example="first")
    b.add("news.bad_row", 2, example="second")
    b.add("history.unknown_news", 3)
    assert a.merge(b) is a
    assert a.as_dict() == {"history.unknown_news": 3, "news.bad_row": 3}
    assert a.examples == {"news.bad_row": "first"}
    assert b.as_dict() == {"history.unknown_news": 3, "news.bad_row": 2}


def reference_candidates(field: str) -> tuple[tuple[str, ...], tuple[int, ...]] | None:
    """A slow, obviously right parse of a labelled impressions field; None if malformed."""
    pairs = [token.rpartition("-") for token in field.split()]
    if not pairs or any(not i or "-" in i or not d or y not in ("0", "1") for i, d, y in pairs):
        return None
    return tuple(i for i, _, _ in pairs), tuple(int(y) for _, _, y in pairs)


def random_impressions_field(rng: random.Random) -> str:
    """Mostly well-formed ``ID-label`` tokens, some broken in each way the format allows."""
    shapes = ["N{}-0", "N{}-1"] * 6 + ["N{}", "N{}-", "N{}-2", "-1", "N{}-0-1", "N-{}-0", "N{}--1"]
    tokens = [rng.choice(shapes).format(rng.randrange(20)) for _ in range(rng.randrange(0, 5))]
    return "".join(t + rng.choice([" "] * 8 + ["  ", "\x0c"]) for t in tokens).strip(" ")


def test_candidate_parsing_matches_reference_on_random_fields(tmp_path: Path) -> None:
    rng = random.Random(0)
    fields = [random_impressions_field(rng) for _ in range(3000)]
    rows = [GOOD_IMPRESSION] + [
        f"{n}\tU1\t11/11/2019 9:05:07 AM\t\t{field}" for n, field in enumerate(fields, start=2)
    ]
    got = {
        imp.line: (imp.candidates, imp.labels)
        for imp in mind.read_behaviors(write(tmp_path / "behaviors.tsv", rows), skip_bad_rows=True)
    }
    want = {n: reference_candidates(f) for n, f in enumerate(fields, start=2)}
    want = {n: parsed for n, parsed in want.items() if parsed is not None}
    assert 100 < len(want) < len(fields)  # both outcomes are exercised
    assert {n: v for n, v in got.items() if n > 1} == want
