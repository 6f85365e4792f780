"""Generated MovieLens 100K and 1M folders (Latin-1 or UTF-8) and TFDS columns: valid ones read
back exactly; each corruption fails on its line and field, or with skip_bad_rows drops that row,
counted."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jaxrec.data import movielens
from jaxrec.data.lines import read_lines
from jaxrec.data.report import ReadReport
from jaxrec.errors import DataError
from tests.fuzzing import examples, line_endings, scratch, some_text, some_word

# Latin-1 text whose bytes are never valid UTF-8 beyond ASCII (no byte 0x80-0xBF, so no
# continuation bytes): the reader tries UTF-8 first, and such a line must fall back to Latin-1.
LATIN1_LETTERS = "".join(map(chr, range(0xC0, 0x100)))
latin1_text = st.text(st.sampled_from("aZ09 .,'&()-/!?" + LATIN1_LETTERS), max_size=10)


def utf8_text(exclude: str) -> st.SearchStrategy[str]:
    return some_text(exclude="\n\r\x85" + exclude)


@dataclasses.dataclass
class Dataset:
    """A generated MovieLens folder: rows per file (lists of field strings), and how to write."""

    version: str  # "100k" or "1m"
    files: dict[str, list[list[str]]]  # file name -> rows of fields
    genres: tuple[str, ...]  # 100K: the genre names the flags follow
    write_genres: bool  # 100K: u.genre written, or the standard list assumed
    encodings: dict[str, str]  # file name -> "latin-1" or "utf-8"
    newline: bytes
    final: bool
    bom: bool  # a UTF-8 byte order mark, on the UTF-8 files

    @property
    def sep(self) -> str:
        return "|" if self.version == "100k" else "::"

    @property
    def rating_files(self) -> tuple[str, ...]:
        return ("u1.base", "u1.test") if self.version == "100k" else ("ratings.dat",)

    @property
    def tables(self) -> tuple[str, str]:
        return ("u.user", "u.item") if self.version == "100k" else ("users.dat", "movies.dat")

    def line(self, name: str, fields: list[str]) -> bytes:
        sep = "\t" if name in ("u1.base", "u1.test") else self.sep
        text = sep.join(fields)
        try:
            return text.encode(self.encodings.get(name, "utf-8"))
        except UnicodeEncodeError:  # a corruption Latin-1 cannot hold: a UTF-8 line in the file
            return text.encode("utf-8")

    def write(self, folder, overrides: dict[str, dict[int, bytes]] | None = None) -> None:
        overrides = overrides or {}
        for name, rows in self.files.items():
            lines = [overrides.get(name, {}).get(i, self.line(name, r)) for i, r in enumerate(rows)]
            body = self.newline.join(lines)
            if lines and (self.final or not lines[-1]):
                body += self.newline
            bom = self.bom and self.encodings.get(name) == "utf-8"
            (folder / name).write_bytes((b"\xef\xbb\xbf" if bom else b"") + body)
        if self.write_genres:
            text = "".join(f"{g}|{i}\n" for i, g in enumerate(self.genres)) + "\n"
            (folder / "u.genre").write_bytes(text.encode("utf-8"))


def _text(encoding: str, exclude: str) -> st.SearchStrategy[str]:
    if encoding == "latin-1":
        return latin1_text.filter(lambda t: not set(t) & set(exclude))
    return utf8_text(exclude)


# IDs are written into files of either encoding, so they are Latin-1 letters and ASCII: an ID
# read as Latin-1 from one file and as UTF-8 from another must come out the same.
ID_CHARS = "aZ09_.-'&!?" + LATIN1_LETTERS
ids = st.text(st.sampled_from(ID_CHARS), min_size=1, max_size=6)
UNKNOWN_ID = "unknown"  # longer than any generated ID


@st.composite
def datasets(draw, version: str | None = None) -> Dataset:
    version = version or draw(st.sampled_from(["100k", "1m"]))
    sep_chars = "|\t" if version == "100k" else ":\t"
    names = (
        ("u.user", "u.item", "u1.base", "u1.test")
        if version == "100k"
        else ("users.dat", "movies.dat", "ratings.dat")
    )
    encodings = {n: draw(st.sampled_from(["latin-1", "utf-8"])) for n in names}
    genres = movielens.GENRES_100K
    write_genres = version == "100k" and draw(st.booleans())
    if write_genres and draw(st.booleans()):
        genres = tuple(
            draw(st.lists(some_word(exclude="|\ufeff"), min_size=1, max_size=4, unique=True))
        )
    user_ids = draw(st.lists(ids, min_size=1, max_size=4, unique=True))
    item_ids = draw(st.lists(ids, min_size=1, max_size=4, unique=True))
    users_file, items_file = names[:2]
    enc_u, enc_i = encodings[users_file], encodings[items_file]
    files: dict[str, list[list[str]]] = {}
    if version == "100k":
        files[users_file] = [
            [
                u,
                str(draw(st.integers(0, 120))),
                draw(st.sampled_from(movielens.GENDERS)),
                draw(_text(enc_u, sep_chars).filter(str.strip)),
                draw(_text(enc_u, sep_chars + "\r")),
            ]
            for u in user_ids
        ]
        flags = st.integers(0, 2 ** len(genres) - 1)  # one choice for a movie's genre flags
        files[items_file] = [
            [
                i,
                draw(_text(enc_i, sep_chars)),
                draw(st.sampled_from(["01-Jan-1995", "", "1995"])),
                "",
                "http://us.imdb.com/M/title-exact?x",
                *(str(bit) for bit in _bits(draw(flags), len(genres))),
            ]
            for i in item_ids
        ]
    else:
        files[users_file] = [
            [
                u,
                draw(st.sampled_from(movielens.GENDERS)),
                draw(st.sampled_from(sorted(movielens.AGE_GROUPS_1M))),
                str(draw(st.integers(0, len(movielens.OCCUPATIONS_1M) - 1))),
                draw(_text(enc_u, sep_chars + "\r")),
            ]
            for u in user_ids
        ]
        genre_lists = st.lists(st.sampled_from(movielens.GENRES_100K[1:]), max_size=3)
        files[items_file] = [
            [i, draw(_text(enc_i, sep_chars)), "|".join(draw(genre_lists))] for i in item_ids
        ]
    for name in names[2:]:
        n = draw(st.integers(1 if name != "u1.test" else 0, 6))
        files[name] = [
            [
                draw(st.sampled_from(user_ids)),
                draw(st.sampled_from(item_ids)),
                draw(st.sampled_from(["1", "2", "3", "4", "5", "4.5", "3.0", " 4"])),
                str(draw(st.integers(0, 2**40))),
            ]
            for _ in range(n)
        ]
    return Dataset(
        version,
        files,
        genres,
        write_genres,
        encodings,
        draw(line_endings),
        draw(st.booleans()),
        draw(st.booleans()),
    )


def _bits(value: int, n: int) -> list[int]:
    return [value >> i & 1 for i in range(n)]


def expected(ds: Dataset, drop: tuple[str, int] | None = None):
    """(user_text, item_text, ratings per file as (users, items, values, lines), counts)."""
    users_file, items_file = ds.tables
    kept = {
        name: [(i, r) for i, r in enumerate(rows) if (name, i) != drop]
        for name, rows in ds.files.items()
    }
    if ds.version == "100k":
        user_text = {
            r[0]: f"age {r[1]}, gender {r[2]}, occupation {r[3]}" for _, r in kept[users_file]
        }
        item_text = {}
        for _, r in kept[items_file]:
            chosen = [g for g, flag in zip(ds.genres, r[5:], strict=True) if flag == "1"]
            item_text[r[0]] = f"{r[1]}; genres: {', '.join(chosen)}" if chosen else r[1]
    else:
        user_text = {
            r[0]: (
                f"age {movielens.AGE_GROUPS_1M[r[2]]}, gender {r[1]}, "
                f"occupation {movielens.OCCUPATIONS_1M[int(r[3])]}"
            )
            for _, r in kept[users_file]
        }
        item_text = {}
        for _, r in kept[items_file]:
            chosen = [g for g in r[2].split("|") if g]
            item_text[r[0]] = f"{r[1]}; genres: {', '.join(chosen)}" if chosen else r[1]
    ratings, counts = {}, {}
    for name in ds.rating_files:
        role = _role(ds, name)
        users, items, values, lines = [], [], [], []
        for i, r in kept[name]:
            reason = (
                "unknown_user"
                if r[0] not in user_text
                else "unknown_item"
                if r[1] not in item_text
                else None
            )
            if reason:
                counts[f"{role}.{reason}"] = counts.get(f"{role}.{reason}", 0) + 1
                continue
            users.append(r[0]), items.append(r[1]), values.append(float(r[2])), lines.append(i + 1)
        ratings[name] = (users, items, values, lines)
    return user_text, item_text, ratings, counts


def _role(ds: Dataset, name: str) -> str:
    return {
        "u.user": "users", "u.item": "items", "users.dat": "users", "movies.dat": "items",
        "u1.base": "train", "u1.test": "test", "ratings.dat": "ratings",
    }[name]  # fmt: skip


def read(ds: Dataset, folder, **options):
    if ds.version == "100k":
        return movielens.read_movielens_100k(folder, **options)
    return movielens.read_movielens_1m(folder, seed=3, **options)


def assert_read(data, ds: Dataset, want) -> None:
    user_text, item_text, ratings, _ = want
    assert data.user_text == user_text and list(data.user_text) == list(user_text)
    assert data.item_text == item_text and list(data.item_text) == list(item_text)
    if ds.version == "100k":
        pairs = (("u1.base", data.train), ("u1.test", data.test))
    else:  # the seeded split keeps file order within each part; together they are every row
        both = [(int(line), part) for part in (data.train, data.test) for line in part.lines]
        assert len(data.test) == round(len(ratings["ratings.dat"][0]) * 0.1)
        order = np.argsort([line for line, _ in both], kind="stable")
        merged = _concat(data.train, data.test, order)
        pairs = (("ratings.dat", merged),)
    for name, split in pairs:
        users, items, values, lines = ratings[name]
        assert list(split.users) == users and list(split.items) == items
        np.testing.assert_array_equal(split.targets, np.asarray(values, np.float32))
        assert list(split.lines) == lines


def _concat(a, b, order):
    class Rows:
        users = np.concatenate([a.users, b.users])[order]
        items = np.concatenate([a.items, b.items])[order]
        targets = np.concatenate([a.targets, b.targets])[order]
        lines = np.concatenate([a.lines, b.lines])[order]

    return Rows


def notes(ds: Dataset, folder) -> dict[str, int]:
    out = {}
    for name in ds.files:
        data = (folder / name).read_bytes().removeprefix(b"\xef\xbb\xbf")
        last = data.rsplit(b"\n", 1)[-1]  # empty when the file ends in a line ending
        if last.decode("latin-1").strip():
            out[f"{_role(ds, name)}.no_final_newline"] = 1
    return out


@settings(max_examples=examples(250))
@given(ds=datasets())
def test_valid_folder_reads_back_exactly(ds: Dataset) -> None:
    with scratch() as folder:
        ds.write(folder)
        report = ReadReport()
        data = read(ds, folder, report=report)
        assert_read(data, ds, expected(ds))
        assert report.as_dict() == notes(ds, folder)
        assert report.rows_dict() == {_role(ds, n): len(rows) for n, rows in ds.files.items()}


# -- Corruptions: each (ds, file name, k, data) -> Bad(line bytes, field, reason). ------------


@dataclasses.dataclass(frozen=True)
class Bad:
    line: bytes
    field: str | None
    reason: str  # skip reason; "encoding" is never skipped


def _set(ds, name, k, index, value: str) -> bytes:
    fields = list(ds.files[name][k])
    fields[index] = value
    return ds.line(name, fields)


def _wrong_field_count(ds, name, k, data):
    fields = list(ds.files[name][k])
    if data.draw(st.booleans()):
        fields.insert(data.draw(st.integers(0, len(fields))), "x")
    else:
        del fields[data.draw(st.integers(0, len(fields) - 1))]
    return Bad(ds.line(name, fields), None, "bad_row")


def _blank(ds, name, k, data):
    return Bad(data.draw(st.sampled_from([b"", b" ", b"\r", b"\t"])), None, "bad_row")


def _nul(ds, name, k, data):
    return Bad(ds.line(name, ds.files[name][k]) + b"\x00", None, "encoding")


def _empty_id(ds, name, k, data):
    if name in ds.rating_files:
        index = data.draw(st.integers(0, 1))
        return Bad(_set(ds, name, k, index, " "), ("user_id", "item_id")[index], "bad_row")
    field = "user_id" if name == ds.tables[0] else "movie_id"
    return Bad(
        _set(ds, name, k, 0, data.draw(st.sampled_from(["", " ", "\xa0"]))), field, "bad_row"
    )


def _duplicate_id(ds, name, k, data):
    earlier = ds.files[name][data.draw(st.integers(0, k - 1))][0]
    return Bad(_set(ds, name, k, 0, earlier), "id", "duplicate_id")


BAD_RATINGS = ["four", "", "4.5.1", "nan", "inf", "0", "6", "-1", "5.5", "٤", "1_0", "4,0", "0x4"]
BAD_TIMESTAMPS = ["", "12.5", "-5", "abc", "１２", "1e9", " 881250949"]


def _bad_rating(ds, name, k, data):
    return Bad(_set(ds, name, k, 2, data.draw(st.sampled_from(BAD_RATINGS))), "rating", "bad_row")


def _bad_timestamp(ds, name, k, data):
    value = data.draw(st.sampled_from(BAD_TIMESTAMPS))
    return Bad(_set(ds, name, k, 3, value), "timestamp", "bad_row")


def _unknown_id(ds, name, k, data):
    index = data.draw(st.integers(0, 1))
    kind = ("user", "item")[index]
    return Bad(_set(ds, name, k, index, UNKNOWN_ID), f"{kind}_id", f"unknown_{kind}")


def _bad_user(ds, name, k, data):
    """A demographic field outside what the format allows."""
    if ds.version == "100k":
        field, index, values = data.draw(
            st.sampled_from(
                [
                    ("age", 1, ["old", "", "２５", "-5", "2.5"]),
                    ("gender", 2, ["m", "", "X", "Male", " M"]),
                    ("occupation", 3, ["", " "]),
                ]
            )
        )
    else:
        field, index, values = data.draw(
            st.sampled_from(
                [
                    ("gender", 1, ["m", "", "X"]),
                    ("age", 2, ["2", "", "25 ", "025"]),
                    ("occupation", 3, ["21", "-1", "", "01", "x"]),
                ]
            )
        )
    return Bad(_set(ds, name, k, index, data.draw(st.sampled_from(values))), field, "bad_row")


def _bad_genre_flag(ds, name, k, data):
    column = data.draw(st.integers(0, len(ds.genres) - 1))
    flag = data.draw(st.sampled_from(["2", "", "yes", " 1", "1 "]))
    return Bad(_set(ds, name, k, 5 + column, flag), ds.genres[column], "bad_row")


def _corruptions(ds: Dataset, name: str) -> list:
    options = [_wrong_field_count, _blank, _nul, _empty_id]
    if name in ds.rating_files:
        return options + [_bad_rating, _bad_timestamp, _unknown_id]
    options.append(_duplicate_id)
    if name == ds.tables[0]:
        return options + [_bad_user]
    return options + ([_bad_genre_flag] if ds.version == "100k" else [])


@st.composite
def corrupted(draw):
    ds = draw(datasets())
    name = draw(st.sampled_from([n for n, rows in ds.files.items() if rows]))
    rows = ds.files[name]
    options = _corruptions(ds, name)
    if len(rows) < 2:
        options = [c for c in options if c is not _duplicate_id]
    corrupt = draw(st.sampled_from(options))
    k = draw(st.integers(1 if corrupt is _duplicate_id else 0, len(rows) - 1))
    return ds, name, k, corrupt(ds, name, k, draw(st.data()))


@settings(max_examples=examples(500))
@given(case=corrupted())
def test_corrupted_row_is_named_or_skipped_and_counted(case) -> None:
    ds, name, k, bad = case
    with scratch() as folder:
        ds.write(folder, {name: {k: bad.line}})
        with pytest.raises(DataError) as caught:
            read(ds, folder)
        assert (caught.value.path, caught.value.line) == (str(folder / name), k + 1)
        if bad.field is not None:
            assert caught.value.field == bad.field
        options = {"skip_bad_rows": True, "unknown_ids": "skip"}
        if bad.reason == "encoding":
            with pytest.raises(DataError) as caught:
                read(ds, folder, **options)
            assert caught.value.line == k + 1
            return
        report = ReadReport()
        data = read(ds, folder, report=report, **options)
        want = expected(ds, drop=(name, k))
        assert_read(data, ds, want)
        key = f"{_role(ds, name)}.{bad.reason}"
        counts = dict(want[3])
        counts[key] = counts.get(key, 0) + 1
        assert report.as_dict() == counts | notes(ds, folder)
        assert f"{name}:{k + 1}:" in report.examples[key]


CHUNKS = [
    b"|", b"::", b"\t", b"\n", b"\r\n", b"1", b"2", b"5", b"M", b"25", b"0|", b"\xe9", b"\xc3\xa9",
    b"\xef\xbb\xbf", b"\x00", b" ", b"x",
]  # fmt: skip
garbage = st.lists(st.sampled_from(CHUNKS), max_size=30).map(b"".join)


@settings(max_examples=examples(500))
@given(version=st.sampled_from(["100k", "1m"]), contents=st.lists(garbage, min_size=4, max_size=4))
def test_any_bytes_read_or_fail_with_a_data_error_and_lose_nothing_silently(version, contents):
    names = (
        ("u.user", "u.item", "u1.base", "u1.test")
        if version == "100k"
        else ("users.dat", "movies.dat", "ratings.dat")
    )
    with scratch() as folder:
        for name, data in zip(names, contents, strict=False):
            (folder / name).write_bytes(data)
        report = ReadReport()
        ds = Dataset(version, {}, (), False, {}, b"\n", True, False)
        try:
            data = read(ds, folder, report=report, skip_bad_rows=True, unknown_ids="skip")
        except DataError as err:  # with skip_bad_rows, only a file in another encoding
            assert "NUL character" in str(err) and err.line >= 1
            return
        rows = report.rows_dict()
        assert len(data.user_text) + report.skipped("users") == rows["users"]
        assert len(data.item_text) + report.skipped("items") == rows["items"]
        ratings = len(data.train) + len(data.test)
        roles = ("train", "test") if version == "100k" else ("ratings",)
        assert ratings + sum(report.skipped(r) for r in roles) == sum(rows[r] for r in roles)


# -- TFDS movielens/100k-ratings, as the numpy columns the reader receives. -------------------

BUCKETS = [*map(int, movielens.AGE_GROUPS_1M), 0, 99]


@st.composite
def tfds_columns(draw):
    n = draw(st.integers(1, 8))
    text = st.one_of(
        some_word().map(str.encode), st.sampled_from([b"", b"\xff", b"caf\xe9", b"\xc3\xa9"])
    )
    genres = ("Action", "Comedy", "Drama")
    columns = {
        "user_id": [draw(st.sampled_from([b"1", b"2", b"3", b"", b"\xff"])) for _ in range(n)],
        "movie_id": [draw(st.sampled_from([b"10", b"20", b" ", b"\xfe"])) for _ in range(n)],
        "user_rating": [
            draw(st.sampled_from([1.0, 2.5, 5.0, 0.0, 6.0, float("nan"), float("inf")]))
            for _ in range(n)
        ],
        "bucketized_user_age": [float(draw(st.sampled_from(BUCKETS))) for _ in range(n)],
        "user_gender": [draw(st.booleans()) for _ in range(n)],
        "user_occupation_text": [draw(text) for _ in range(n)],
        "movie_title": [draw(text) for _ in range(n)],
        "movie_genres": [[draw(st.sampled_from([0, 1])) for _ in genres] for _ in range(n)],
    }
    arrays = {k: np.array(v, dtype=object if k.endswith(("id", "text", "title")) else None)
              for k, v in columns.items()}  # fmt: skip
    return arrays, genres


def _is_bad(key: str, value: Any) -> bool:
    if key == "user_rating":
        return not 1.0 <= value <= 5.0  # NaN too
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return key in ("user_id", "movie_id") and not text.strip()


@settings(max_examples=examples(600))
@given(case=tfds_columns())
def test_tfds_columns_read_or_name_the_example_and_feature(case) -> None:
    columns, genres = case
    report = ReadReport()
    try:
        data = movielens.pair_data_from_tfds_columns(
            columns, genres, seed=0, test_fraction=0.5, report=report
        )
    except DataError as err:
        assert err.path == f"tfds:{movielens.TFDS_NAME}" and err.field in columns
        assert _is_bad(err.field, columns[err.field][err.line - 1])
        return
    first_rows = {}
    for row, user in enumerate(columns["user_id"]):
        first_rows.setdefault(user.decode(), row)
    for key in ("user_id", "movie_id", "user_rating"):  # each value that was used is good
        assert not any(_is_bad(key, v) for v in columns[key])
    unknown = sum(
        str(int(columns["bucketized_user_age"][row])) not in movielens.AGE_GROUPS_1M
        for row in first_rows.values()
    )
    assert report.as_dict() == ({"users.unknown_age": unknown} if unknown else {})
    assert len(data.train) + len(data.test) == len(columns["user_id"])
    assert set(data.user_text) == set(first_rows)


line_bytes = st.lists(
    st.sampled_from(
        [b"a", b"|", b" ", b"\r", b"\xe9", b"\xc3\xa9", b"\xc3", b"\xa9", b"\xef\xbb\xbf"]
    ),
    max_size=8,
).map(b"".join)


@settings(max_examples=examples(800))
@given(
    lines=st.lists(line_bytes.filter(lambda b: not b.endswith(b"\r")), min_size=1, max_size=5),
    newline=line_endings,
)
def test_each_line_reads_as_utf8_where_it_is_and_as_latin1_elsewhere(lines, newline) -> None:
    """GroupLens ships Latin-1; a re-saved copy is UTF-8; a line is never read as mojibake."""
    with scratch() as folder:
        path = folder / "u.user"
        path.write_bytes(newline.join(lines) + newline)
        got = [text for _, text in read_lines(path, "users", fallback="latin-1")]
    want = []
    for i, raw in enumerate(lines):
        raw = raw.removeprefix(b"\xef\xbb\xbf") if i == 0 else raw
        try:
            want.append(raw.decode("utf-8"))
        except UnicodeDecodeError:
            want.append(raw.decode("latin-1"))
    assert got == want
