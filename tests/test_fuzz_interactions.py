"""Generated interactions folders (CSV and JSON Lines, mixed): valid ones read back exactly;
each corruption fails on its line and field, or with skip_bad_rows drops that row, counted."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jaxrec.data.interactions import TARGET_COLUMNS, read_interactions_dir
from jaxrec.data.pairs import parse_number
from jaxrec.data.report import ReadReport
from jaxrec.errors import DataError
from tests.fuzzing import (
    INVALID_UTF8,
    examples,
    scratch,
    some_text,
    some_word,
)

ROLES = ("users", "items", "train", "test")
LABELS = ("a", "b", "gift", "eco", "été", "x y")

# A record is the list of values of one row, in its file's column order; an override replaces
# one record by raw text (its line or lines, without the ending) or raw bytes.
Record = list[Any]


@dataclasses.dataclass
class File:
    role: str
    fmt: str  # "csv" or "jsonl"
    columns: list[str]
    records: list[Record]
    newline: bytes
    bom: bool
    quote_all: bool
    blank_before: set[int]  # records preceded by a blank line
    ascii_json: bool

    @property
    def name(self) -> str:
        return f"{self.role}.{self.fmt}"

    def encode(self, overrides: dict[int, str | bytes] | None = None) -> tuple[bytes, list[int]]:
        """The file's bytes, and the line on which each record starts."""
        overrides = overrides or {}
        newline = self.newline.decode()
        out: list[bytes] = []
        line = 1

        def emit(text: str | bytes) -> None:
            nonlocal line
            data = text if isinstance(text, bytes) else text.encode()
            out.append(data)
            line += data.count(b"\n")

        if self.fmt == "csv":
            emit(self.csv_line(self.columns))
        starts = []
        for i, record in enumerate(self.records):
            if i in self.blank_before:
                emit(newline)
            starts.append(line)
            if i in overrides:
                emit(overrides[i])
                emit(newline)
            elif self.fmt == "csv":
                emit(self.csv_line(record))
            else:
                emit(self.json_line(record) + newline)
        return (b"\xef\xbb\xbf" if self.bom else b"") + b"".join(out), starts

    def csv_line(self, values: list[Any], quote_all: bool | None = None) -> str:
        buffer = io.StringIO()
        quoting = csv.QUOTE_ALL if (self.quote_all if quote_all is None else quote_all) else 0
        csv.writer(buffer, lineterminator=self.newline.decode(), quoting=quoting).writerow(values)
        return buffer.getvalue()

    def json_line(self, record: Record) -> str:
        return json.dumps(
            dict(zip(self.columns, record, strict=True)), ensure_ascii=self.ascii_json
        )


@dataclasses.dataclass
class Folder:
    task: str
    files: dict[str, File]

    def write(self, folder, overrides: dict[str, dict[int, str | bytes]] | None = None):
        starts = {}
        for role, f in self.files.items():
            data, starts[role] = f.encode((overrides or {}).get(role))
            (folder / f.name).write_bytes(data)
        return starts


def _id(value: Any) -> str:
    return str(value)


# CSV text never ends in "\r": Python's csv writer leaves such a field unquoted when lines end
# in "\n", and the last field of a line then reads as ending in "\r\n", a CRLF line ending.
csv_text = some_text().filter(lambda t: not t.endswith("\r"))


def ids(fmt: str) -> st.SearchStrategy[Any]:
    """IDs as written: non-blank text, and in JSON Lines sometimes an integer."""
    words = some_text(nonempty=True).filter(lambda t: t.strip() and not t.endswith("\r"))
    return words if fmt == "csv" else st.one_of(words, st.integers(-5, 10**20))


def json_values() -> st.SearchStrategy[Any]:
    return st.one_of(
        some_text(), st.none(), st.integers(-3, 3), st.booleans(), st.lists(some_word(), max_size=2)
    )


@st.composite
def tables(draw, role: str) -> File:
    fmt = draw(st.sampled_from(["csv", "jsonl"]))
    names = draw(st.lists(some_word(exclude='"\ufeff'), max_size=3, unique=True))
    names = [n for n in names if n != "id"]
    columns = list(names)
    columns.insert(draw(st.integers(0, len(names))), "id")
    keys = draw(st.lists(ids(fmt), min_size=1, max_size=5, unique_by=_id))
    value = csv_text if fmt == "csv" else json_values()
    records = []
    for key in keys:
        row = [draw(value) for _ in names]
        row.insert(columns.index("id"), key)
        records.append(row)
    return File(role, fmt, columns, records, **draw(_layout(len(records))))


@st.composite
def _layout(draw, n: int) -> dict[str, Any]:
    """How a file is written: line ending, BOM, CSV quoting, JSON escaping (one choice, as
    bits), and which records follow a blank line."""
    bits = draw(st.integers(0, 15))
    return {
        "newline": b"\r\n" if bits & 1 else b"\n",
        "bom": bool(bits & 2),
        "quote_all": bool(bits & 4),
        "ascii_json": bool(bits & 8),
        "blank_before": set(draw(st.lists(st.integers(0, max(n - 1, 0)), max_size=1))),
    }


# How a target is written: (CSV text, JSON value) for each value the generator uses.
def rating_forms(value: float) -> list[tuple[str, Any]]:
    forms = [(repr(value), value), (f"{value:g}", f"{value:g}"), (f" {value} ", f"{value:.2e}")]
    if value == int(value):
        forms += [(str(int(value)), int(value)), (f"+{int(value)}", str(int(value)))]
    return forms


CLICK_FORMS = {0.0: [("0", 0), ("0.0", False), ("0e0", "0")], 1.0: [("1", 1), ("1.0", True)]}


@st.composite
def targets(draw, task: str, fmt: str, train_labels: set[str] | None) -> tuple[Any, Any]:
    """(value as written, value as it must read) for one interaction."""
    if task == "rating":
        value = draw(st.integers(100, 500)) / 100
        csv_text, json_value = draw(st.sampled_from(rating_forms(value)))
        return (csv_text if fmt == "csv" else json_value), value
    if task == "click":
        value = draw(st.sampled_from([0.0, 1.0]))
        csv_text, json_value = draw(st.sampled_from(CLICK_FORMS[value]))
        return (csv_text if fmt == "csv" else json_value), value
    pool = sorted(train_labels) if train_labels is not None else list(LABELS)
    names = draw(st.lists(st.sampled_from(pool), max_size=3)) if pool else []
    if fmt == "csv":
        return "|".join(draw(st.sampled_from(["", " "])) + n for n in names), names
    return names, names


@st.composite
def splits(draw, role: str, task: str, users: File, items: File, train_labels=None) -> File:
    fmt = draw(st.sampled_from(["csv", "jsonl"]))
    target = TARGET_COLUMNS[task]
    extra = draw(st.sampled_from([[], ["note"]]))
    columns = draw(st.permutations(["user_id", "item_id", target, *extra]))
    user_keys = [r[users.columns.index("id")] for r in users.records]
    item_keys = [r[items.columns.index("id")] for r in items.records]
    records = []
    n = draw(st.integers(1, 5))
    for _ in range(n):
        written, _ = draw(targets(task, fmt, train_labels))
        values = {
            "user_id": _as(fmt, draw(st.sampled_from(user_keys))),
            "item_id": _as(fmt, draw(st.sampled_from(item_keys))),
            target: written,
            "note": draw(csv_text),
        }
        records.append([values[c] for c in columns])
    return File(role, fmt, list(columns), records, **draw(_layout(n)))


def _as(fmt: str, key: Any) -> Any:
    """A reference to ``key`` in ``fmt``: CSV is text; JSON may use either form of an int."""
    return str(key) if fmt == "csv" or isinstance(key, str) else key


@st.composite
def folders(draw) -> Folder:
    task = draw(st.sampled_from(["rating", "click", "multilabel"]))
    users, items = draw(tables("users")), draw(tables("items"))
    train = draw(splits("train", task, users, items))
    labels = None
    if task == "multilabel":
        labels = {n for names in _targets(train, task) for n in names}
    test = draw(splits("test", task, users, items, labels))
    return Folder(task, {"users": users, "items": items, "train": train, "test": test})


def _targets(f: File, task: str) -> list[Any]:
    column = f.columns.index(TARGET_COLUMNS[task])
    return [_read_target(r[column], task) for r in f.records]


def _read_target(value: Any, task: str) -> Any:
    """What a generated (valid) target reads as."""
    if task == "multilabel":
        names = value.split("|") if isinstance(value, str) else value
        return tuple(dict.fromkeys(n.strip() for n in names if n.strip()))
    return float(value)


def _text(row: dict[str, Any], columns: list[str]) -> str:
    parts = []
    for column in columns:
        value = row.get(column)
        if value is None:
            continue
        text = value.strip() if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        if text:
            parts.append(f"{column}: {text}")
    return "; ".join(parts)


def expected(folder: Folder, starts: dict[str, list[int]], drop: tuple[str, int] | None = None):
    """(user_text, item_text, splits, report counts, rows read) that reading must give, with
    record ``drop`` (role, index) left out and what its absence causes counted."""
    task, files = folder.task, folder.files
    kept = {
        role: [(i, r) for i, r in enumerate(f.records) if (role, i) != drop]
        for role, f in files.items()
    }
    texts = {}
    for role in ("users", "items"):
        f = files[role]
        rows = {
            _id(r[f.columns.index("id")]): dict(zip(f.columns, r, strict=True))
            for _, r in kept[role]
        }
        text_columns = [c for c in f.columns if c != "id"]
        texts[role] = {key: _text(row, text_columns) for key, row in rows.items()}
    counts: dict[str, int] = {}
    parts = {}
    label_names: tuple[str, ...] = ()
    for role in ("train", "test"):
        f = files[role]
        col = {c: f.columns.index(c) for c in f.columns}
        users, items, values, lines = [], [], [], []
        for i, r in kept[role]:
            user, item = _id(r[col["user_id"]]), _id(r[col["item_id"]])
            value = _read_target(r[col[TARGET_COLUMNS[task]]], task)
            if role == "test" and task == "multilabel" and set(value) - set(label_names):
                reason = "unknown_label"
            elif user not in texts["users"]:
                reason = "unknown_user"
            elif item not in texts["items"]:
                reason = "unknown_item"
            else:
                users.append(user), items.append(item), values.append(value)
                lines.append(starts[role][i])
                continue
            counts[f"{role}.{reason}"] = counts.get(f"{role}.{reason}", 0) + 1
        if role == "train" and task == "multilabel":
            label_names = tuple(sorted({n for names in values for n in names}))
        parts[role] = (users, items, values, lines)
    rows = {role: len(f.records) for role, f in files.items()}
    return texts, parts, label_names, counts, rows


def assert_read(data, folder: Folder, want) -> None:
    texts, parts, label_names, _, _ = want
    assert data.user_text == texts["users"] and list(data.user_text) == list(texts["users"])
    assert data.item_text == texts["items"] and list(data.item_text) == list(texts["items"])
    assert data.label_names == label_names
    for role, split in (("train", data.train), ("test", data.test)):
        users, items, values, lines = parts[role]
        assert split.users.tolist() == users and split.items.tolist() == items
        assert split.lines.tolist() == lines
        if folder.task == "multilabel":
            hot = np.zeros((len(values), len(label_names)), np.float32)
            for row, names in enumerate(values):
                hot[row, [label_names.index(n) for n in names]] = 1
            np.testing.assert_array_equal(split.targets, hot)
        else:
            np.testing.assert_array_equal(split.targets, np.asarray(values, np.float32))


def no_final_newline(folder, f: File) -> dict[str, int]:
    data = (folder / f.name).read_bytes()
    last = data.rsplit(b"\n", 1)[-1]
    return {f"{f.role}.no_final_newline": 1} if last.strip() else {}


@settings(max_examples=examples(200))
@given(folder=folders())
def test_valid_folder_reads_back_exactly(folder: Folder) -> None:
    with scratch() as path:
        starts = folder.write(path)
        report = ReadReport()
        data = read_interactions_dir(path, task=folder.task, report=report)
        want = expected(folder, starts)
        assert_read(data, folder, want)
        assert report.as_dict() == {}
        assert report.rows_dict() == want[4]


# -- Corruptions: each (folder, role, k, data) -> Bad(override, field, reason, line offset). --


@dataclasses.dataclass(frozen=True)
class Bad:
    override: str | bytes  # the record's new raw text or bytes
    field: str | None
    reason: str  # skip reason; "encoding" is never skipped
    offset: int = 0  # lines between the record's start and the line the error names


def _fields(f: File, k: int, **changes: Any) -> list[Any]:
    record = list(f.records[k])
    for column, value in changes.items():
        record[f.columns.index(column)] = value
    return record


def _raw(f: File, record: list[Any]) -> str:
    """``record`` as its file writes it, without the line ending."""
    if f.fmt == "csv":
        return f.csv_line(record).removesuffix(f.newline.decode())
    return f.json_line(record)


def _wrong_field_count(folder, f, k, data):
    record = list(f.records[k])
    if data.draw(st.booleans()) or len(record) == 1:
        record.insert(data.draw(st.integers(0, len(record))), "extra")
    else:
        del record[data.draw(st.integers(0, len(record) - 1))]
    return Bad(_raw(f, record), None, "bad_row")


def _missing_needed_key(folder, f, k, data):
    if f.role in ("users", "items"):
        needed = "id"
    else:
        needed = data.draw(st.sampled_from(["user_id", "item_id", TARGET_COLUMNS[folder.task]]))
    if f.fmt == "csv":  # a CSV row cannot lack a column: make the needed value blank instead
        if needed == TARGET_COLUMNS[folder.task]:
            return _bad_target(folder, f, k, data)
        return Bad(_raw(f, _fields(f, k, **{needed: " "})), needed, "bad_row")
    row = {c: v for c, v in zip(f.columns, f.records[k], strict=True) if c != needed}
    return Bad(json.dumps(row), needed, "bad_row")


def _empty_id(folder, f, k, data):
    column = (
        "id" if f.role in ("users", "items") else data.draw(st.sampled_from(["user_id", "item_id"]))
    )
    blank = data.draw(st.sampled_from(["", " ", "\t", "\u3000"]))
    return Bad(_raw(f, _fields(f, k, **{column: blank})), column, "bad_row")


BAD_RATINGS = ["four", "4,5", "1_0", "٤", "４", "nan", "inf", "", "4.5.1", "0x4", "½", "4 5"]
OUT_OF_RANGE = ["0", "6", "-1", "5.01", "0.99", "1e3", "1" + "0" * 30]
BAD_CLICKS = ["2", "0.5", "yes", "", "-1", "true", "1_0"]
# JSON values that are no target: NaN and Infinity (which Python's json reads), an integer too
# large for a float, a boolean rating, lists and objects.
JSON_RATINGS = [float("nan"), float("inf"), True, None, [4], {"v": 4}, 0, 6, 10**400, "four"]
JSON_CLICKS = [2, 0.5, None, "yes", [1], float("nan")]
JSON_LABELS = [None, 3, {"a": 1}, [1], ["a", None]]


def _bad_target(folder, f, k, data):
    column = TARGET_COLUMNS[folder.task]
    if f.fmt == "jsonl":
        values = {"rating": JSON_RATINGS, "click": JSON_CLICKS, "multilabel": JSON_LABELS}
        value = data.draw(st.sampled_from(values[folder.task]))
    elif folder.task == "rating":
        value = data.draw(st.sampled_from(BAD_RATINGS + OUT_OF_RANGE))
    elif folder.task == "click":
        value = data.draw(st.sampled_from(BAD_CLICKS))
    else:  # any CSV text is a list of labels
        return _empty_id(folder, f, k, data)
    return Bad(_raw(f, _fields(f, k, **{column: value})), column, "bad_row")


def _unknown_id(folder, f, k, data):
    kind = data.draw(st.sampled_from(["user", "item"]))
    missing = "☃ in no table"  # ☃ is not in the generators' alphabet
    return Bad(_raw(f, _fields(f, k, **{f"{kind}_id": missing})), f"{kind}_id", f"unknown_{kind}")


def _duplicate_id(folder, f, k, data):
    earlier = f.records[data.draw(st.integers(0, k - 1))][f.columns.index("id")]
    return Bad(_raw(f, _fields(f, k, id=earlier)), "id", "duplicate_id")


def _unknown_label(folder, f, k, data):
    value = "never-in-train" if f.fmt == "csv" else ["never-in-train"]
    return Bad(_raw(f, _fields(f, k, labels=value)), "labels", "unknown_label")


def _invalid_utf8(folder, f, k, data):
    raw = _raw(f, f.records[k]).encode()
    at = data.draw(st.integers(0, len(raw)))
    bad = raw[:at] + data.draw(st.sampled_from(INVALID_UTF8)) + raw[at:]
    return Bad(bad, None, "encoding", offset=raw[:at].count(b"\n"))


def _nul(folder, f, k, data):
    raw = _raw(f, f.records[k])
    return Bad(raw + "\x00", None, "encoding", offset=raw.count("\n"))


def _csv_text_after_quote(folder, f, k, data):
    record = list(f.records[k])
    record[0] = "\x01"  # a stand-in written bare, then replaced by a broken quoted field
    line = f.csv_line(record, quote_all=False).removesuffix(f.newline.decode())
    return Bad(line.replace("\x01", '"quoted"then text', 1), None, "structure")


def _csv_unclosed_quote(folder, f, k, data):
    return Bad('"never closed, ' + data.draw(some_word(exclude='"')), None, "structure")


BAD_JSON = [
    "[1, 2]", "3", "null", '"text"', "{", '{"id": }', "{'id': 1}", '{"a": 1} {"b": 2}',
]  # fmt: skip


def _json_not_an_object(folder, f, k, data):
    if data.draw(st.booleans()):
        raw = _raw(f, f.records[k])
        return Bad(raw[: data.draw(st.integers(1, len(raw) - 1))], None, "bad_row")  # cut short
    return Bad(data.draw(st.sampled_from(BAD_JSON)), None, "bad_row")


def _json_hostile(folder, f, k, data):
    """Valid-looking JSON that must still be refused: a repeated key, a huge integer, deep
    nesting, an escaped lone surrogate."""
    raw = _raw(f, f.records[k])
    kind = data.draw(st.sampled_from(["repeat", "huge", "deep", "surrogate"]))
    if kind == "repeat":
        first = f.columns[0]
        return Bad(raw[:-1] + f", {json.dumps(first)}: 1}}", None, "bad_row")
    extra = {"huge": "1" * 5000, "deep": "[" * 100_000 + "]" * 100_000, "surrogate": '"\\ud800"'}
    return Bad(raw[:-1] + f', "zz_extra": {extra[kind]}}}', None, "bad_row")


CORRUPTIONS = {
    "any": (_missing_needed_key, _empty_id, _invalid_utf8, _nul),
    "users": (_duplicate_id,),
    "items": (_duplicate_id,),
    "train": (_bad_target, _unknown_id),
    "test": (_bad_target, _unknown_id, _unknown_label),
    "csv": (_wrong_field_count, _csv_text_after_quote),
    "jsonl": (_json_not_an_object, _json_hostile),
}


@st.composite
def corrupted(draw):
    folder = draw(folders())
    role = draw(st.sampled_from(ROLES))
    f = folder.files[role]
    options = [*CORRUPTIONS["any"], *CORRUPTIONS[role], *CORRUPTIONS[f.fmt]]
    if len(f.records) < 2:
        options = [c for c in options if c is not _duplicate_id]
    if folder.task != "multilabel":
        options = [c for c in options if c is not _unknown_label]
    k = draw(st.integers(1 if _duplicate_id in options else 0, len(f.records) - 1))
    if f.fmt == "csv" and k == len(f.records) - 1:
        options.append(_csv_unclosed_quote)
    corrupt = draw(st.sampled_from(options))
    if corrupt is not _duplicate_id and draw(st.booleans()):
        k = draw(st.integers(0, len(f.records) - 1))
        if corrupt is _csv_unclosed_quote:
            k = len(f.records) - 1
    return folder, role, k, corrupt(folder, f, k, draw(st.data()))


@settings(max_examples=examples(450))
@given(case=corrupted())
def test_corrupted_row_is_named_or_skipped_and_counted(case) -> None:
    folder, role, k, bad = case
    f = folder.files[role]
    with scratch() as path:
        starts = folder.write(path, {role: {k: bad.override}})
        line = starts[role][k] + bad.offset
        with pytest.raises(DataError) as caught:
            read_interactions_dir(path, task=folder.task)
        assert (caught.value.path, caught.value.line) == (str(path / f.name), line), caught.value
        if bad.field is not None:
            assert caught.value.field == bad.field
        options = {"skip_bad_rows": True, "unknown_ids": "skip"}
        if bad.reason in ("encoding", "structure"):  # never skipped: see the reader
            with pytest.raises(DataError) as caught:
                read_interactions_dir(path, task=folder.task, **options)
            assert caught.value.line == line
            return
        report = ReadReport()
        data = read_interactions_dir(path, task=folder.task, report=report, **options)
        want = expected(folder, starts, drop=(role, k))
        assert_read(data, folder, want)
        counts = dict(want[3])
        key = f"{role}.{bad.reason}"
        counts[key] = counts.get(key, 0) + 1
        for other in folder.files.values():
            counts.update(no_final_newline(path, other))
        assert report.as_dict() == counts
        assert f"{f.name}:{line}:" in report.examples[key]
        assert report.rows_dict() == want[4]


CHUNKS = [
    b",", b"\n", b"\r\n", b'"', b"u1", b"i1", b"4", b"id", b"user_id", b"item_id", b"rating",
    b"{", b"}", b'"id": ', b'"user_id": "u1", ', b'"rating": 4', b"\xff", b"\x00", b" ",
]  # fmt: skip
garbage = st.lists(st.sampled_from(CHUNKS), max_size=25).map(b"".join)


@settings(max_examples=examples(500))
@given(
    contents=st.tuples(garbage, garbage, garbage, garbage),
    formats=st.tuples(*[st.sampled_from(["csv", "jsonl"])] * 4),
    skip=st.booleans(),
)
def test_any_bytes_read_or_fail_with_a_data_error_and_lose_nothing_silently(
    contents, formats, skip
) -> None:
    prefix = {"users": b"id\n", "items": b"id\n", "train": b"user_id,item_id,rating\n"}
    with scratch() as path:
        for role, data, fmt in zip(ROLES, contents, formats, strict=True):
            header = prefix.get(role, prefix["train"]) if fmt == "csv" else b""
            (path / f"{role}.{fmt}").write_bytes(header + data)
        report = ReadReport()
        options = {"skip_bad_rows": skip, "unknown_ids": "skip" if skip else "error"}
        try:
            data = read_interactions_dir(path, task="rating", report=report, **options)
        except DataError as err:
            assert err.line is not None and err.line >= 1
            return
        rows = report.rows_dict()
        assert len(data.user_text) + report.skipped("users") == rows["users"]
        assert len(data.item_text) + report.skipped("items") == rows["items"]
        assert len(data.train) + report.skipped("train") == rows["train"]
        assert len(data.test) + report.skipped("test") == rows["test"]


@settings(max_examples=examples(700))
@given(value=st.floats(allow_nan=False, allow_infinity=False), form=st.integers(0, 3))
def test_a_number_written_any_usual_way_reads_back_exactly(value: float, form: int) -> None:
    signed = f"+{value!r}" if math.copysign(1, value) > 0 else repr(value)
    text = [repr(value), f"{value:.17e}", f" {value!r}\t", signed]
    assert parse_number(text[form], path="f", line=1, field="x") == value


@settings(max_examples=examples(700))
@given(text=st.text(st.sampled_from("0123456789.+-eE_ x٤４½∞naif"), max_size=8))
def test_a_number_is_plain_ascii_decimal_text_or_an_error(text: str) -> None:
    try:
        number = parse_number(text, path="f", line=7, field="rating")
    except DataError as err:
        assert (err.line, err.field) == (7, "rating")
        return
    core = text.strip(" ")
    assert core.isascii() and "_" not in core and not set(core) & set("xnaif")
    assert math.isfinite(number) and number == float(core)
