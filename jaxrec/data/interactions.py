"""The generic interactions folder: a shop's or a site's log, for ratings, clicks or labels.

It returns a :class:`~jaxrec.data.pairs.PairData`, as every pair reader does. The folder holds
four files (five with its own validation split), each CSV (a header row, read with the csv
module) or JSON Lines, told apart by extension:

    users.csv | users.jsonl   ``id`` plus free-text columns
    items.csv | items.jsonl   ``id`` plus free-text columns
    train.csv | train.jsonl   ``user_id``, ``item_id`` and the task's target column
    test.csv  | test.jsonl
    dev.csv   | dev.jsonl     optional: the validation split (else carved from train)

The target column is ``rating`` (a number within the rating range), ``click`` (0 or 1) or
``labels`` (``|``-separated names in CSV, a list of strings in JSONL). Files are UTF-8, with or
without a BOM, with ``\\n`` or ``\\r\\n`` line endings; blank lines are ignored, and a ``\\r``
inside a line is text. Numbers written as text are plain decimals (``4``, ``-0.5``, ``1e3``).
CSV quoting is strict: a quote must close its field (``"a"b``, or a quote left open to the end
of the file, is an error even with ``skip_bad_rows``: where such a row ends is a guess). A JSON
object may not repeat a key. Every bad row raises :class:`~jaxrec.errors.DataError` naming file,
line and field, unless ``skip_bad_rows=True``, in which case it is dropped and counted in a
:class:`ReadReport`, as are the rows read from each file (under its role).
"""

from __future__ import annotations

import csv
import dataclasses
import json
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from jaxrec.data.lines import read_lines
from jaxrec.data.pairs import (
    TASKS,
    InteractionsBuilder,
    PairData,
    PathLike,
    RowPolicy,
    Target,
    check_rating_range,
    is_new_id,
    parse_click,
    parse_id,
    parse_labels,
    parse_rating,
)
from jaxrec.data.report import ReadReport
from jaxrec.errors import ConfigError, DataError, excerpt

TARGET_COLUMNS = {"rating": "rating", "click": "click", "multilabel": "labels"}
TABLE_ROLES = ("users", "items")
SPLIT_ROLES = ("train", "test")
EXTENSIONS = (".csv", ".jsonl")
# Python's csv refuses longer fields by default (128 KiB), and after refusing one inside quotes
# it resumes mid-record and reads the rest of that field as rows of its own.
_CSV_FIELD_LIMIT = 2**31 - 1

# -- Reading CSV and JSON Lines. ----------------------------------------------------------------


def iter_rows(
    path: Path, role: str, required: Sequence[str], policy: RowPolicy
) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yields (1-based line, row) for each row of a ``.csv`` or ``.jsonl`` file.

    A CSV row's keys are the header's columns in order; a CSV record whose quoted field spans
    lines is numbered by its first line. Each column in ``required`` must be in the CSV header
    (else DataError on the header's line) or in every JSON object. Rows with the wrong number of
    fields, invalid JSON or a missing key are bad rows, counted as ``<role>.bad_row``; invalid
    UTF-8 and broken CSV quoting are errors whatever the policy. Once the file is read, its
    rows (kept or not, blank lines aside) are counted under ``role``.
    """
    lines = read_lines(path, role, policy.report, keep_ending=True)
    rows = _csv_rows if path.suffix == ".csv" else _jsonl_rows
    counter = _RowCounter()
    yield from rows(path, lines, role, required, policy, counter)
    policy.report.read(role, counter.n, str(path))


@dataclasses.dataclass
class _RowCounter:
    n: int = 0


_CR_STAND_IN = "\x00"  # never in a line that reaches the CSV reader: read_lines refuses NUL


class _CarriageReturns:
    """Lines with each carriage return that does not end its line swapped for a stand-in.

    Python's csv reader refuses a ``\\r`` inside an unquoted field, yet its own writer leaves
    such fields unquoted when the line terminator is ``\\n`` (pandas' to_csv too): lines are
    split on ``\\n`` only, so the ``\\r`` is text, and is put back after parsing.
    """

    def __init__(self, lines: Iterator[tuple[int, str]]) -> None:
        self.lines, self.seen = lines, False

    def __iter__(self) -> Iterator[str]:
        for _, text in self.lines:
            body = text.removesuffix("\n").removesuffix("\r")
            if "\r" in body:
                self.seen = True
                text = body.replace("\r", _CR_STAND_IN) + text[len(body) :]
            yield text


def _csv_rows(
    path: Path,
    lines: Iterator[tuple[int, str]],
    role: str,
    required: Sequence[str],
    policy: RowPolicy,
    counter: _RowCounter,
) -> Iterator[tuple[int, dict[str, Any]]]:
    # Raising the limit only loosens a check that other code in the process may rely on.
    csv.field_size_limit(max(csv.field_size_limit(), _CSV_FIELD_LIMIT))
    crs = _CarriageReturns(lines)
    reader = csv.reader(crs, strict=True)
    header: list[str] = []
    try:
        while not header:  # blank lines before the header
            header = next(reader)
    except StopIteration:
        pass
    except csv.Error as err:
        raise DataError(f"bad CSV header: {err}", path=str(path), line=reader.line_num) from None
    header_line = max(reader.line_num, 1)
    if crs.seen:
        header = [f.replace(_CR_STAND_IN, "\r") for f in header]
    for column in required:
        if column not in header:
            message = f"missing column {column!r}"
            raise DataError(message, path=str(path), line=header_line, field=column)
    if len(set(header)) != len(header):
        duplicate = next(c for c in header if header.count(c) > 1)
        message = f"duplicate column {excerpt(duplicate)}"
        raise DataError(message, path=str(path), line=header_line, field=duplicate)
    while True:
        start = reader.line_num + 1
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as err:
            # Never skipped: after a broken quote the reader cannot tell where the row ends,
            # and would read the rest of a multi-line field as rows of its own.
            message = f"bad CSV: {err}"
            if str(err) == "unexpected end of data":
                message = "a quoted field opened here is never closed (the file ends on line "
                message += f"{reader.line_num})"
            raise DataError(message, path=str(path), line=start) from None
        if not fields:  # a blank line; one of spaces is a row with too few fields
            continue
        if crs.seen:
            fields = [f.replace(_CR_STAND_IN, "\r") for f in fields]
        counter.n += 1
        if len(fields) != len(header):
            message = f"expected {len(header)} comma-separated fields, found {len(fields)}"
            policy.reject(DataError(message, path=str(path), line=start), f"{role}.bad_row")
            continue
        yield start, dict(zip(header, fields, strict=True))


class _DuplicateKey(ValueError):
    pass


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object; a repeated key is an error rather than the last value silently winning."""
    row = dict(pairs)
    if len(row) != len(pairs):
        seen: set[str] = set()
        key = next(k for k, _ in pairs if k in seen or seen.add(k))
        raise _DuplicateKey(f"key {excerpt(key)} appears twice in one object")
    return row


_JSON = json.JSONDecoder(object_pairs_hook=_object)


def _parse_json(text: str) -> Any:
    """The JSON value of one line; ValueError with a short reason if it has none."""
    try:
        value = _JSON.decode(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"invalid JSON: {err.msg} (column {err.colno})") from None
    except ValueError as err:  # a repeated key, an integer of more than 4300 digits
        raise ValueError(f"invalid JSON: {err}") from None
    except RecursionError:
        raise ValueError("invalid JSON: nested too deeply") from None
    # An escaped lone surrogate ("\\ud800") decodes to a str that no UTF-8 file can hold.
    if "\\ud" in text or "\\uD" in text:
        try:
            json.dumps(value, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("invalid JSON: a \\u escape is an unpaired UTF-16 surrogate") from None
    return value


def _jsonl_rows(
    path: Path,
    lines: Iterator[tuple[int, str]],
    role: str,
    required: Sequence[str],
    policy: RowPolicy,
    counter: _RowCounter,
) -> Iterator[tuple[int, dict[str, Any]]]:
    for number, text in lines:
        if not text.strip():
            continue
        counter.n += 1
        try:
            row = _parse_json(text)
        except ValueError as err:
            policy.reject(DataError(str(err), path=str(path), line=number), f"{role}.bad_row")
            continue
        if not isinstance(row, dict):
            message = f"expected a JSON object, got {type(row).__name__}"
            policy.reject(DataError(message, path=str(path), line=number), f"{role}.bad_row")
            continue
        missing = next((column for column in required if column not in row), None)
        if missing is not None:
            err = DataError(f"missing key {missing!r}", path=str(path), line=number, field=missing)
            policy.reject(err, f"{role}.bad_row")
            continue
        yield number, row


def find_file(folder: Path, stem: str, *, required: bool = True) -> Path | None:
    """``folder/stem.csv`` or ``folder/stem.jsonl``, whichever exists; both, or neither when
    ``required``, is an error (None when neither exists and the file is optional)."""
    found = [folder / f"{stem}{ext}" for ext in EXTENSIONS if (folder / f"{stem}{ext}").is_file()]
    if not found and not required:
        return None
    if len(found) != 1:
        names = " and ".join(f"{stem}{ext}" for ext in EXTENSIONS)
        problem = "both" if found else "neither of"
        raise DataError(f"found {problem} {names}; expected exactly one", path=str(folder))
    return found[0]


# -- The generic folder reader. -----------------------------------------------------------------


def read_interactions_dir(
    folder: PathLike,
    *,
    task: str,
    rating_range: tuple[float, float] = (1.0, 5.0),
    user_columns: Sequence[str] | None = None,
    item_columns: Sequence[str] | None = None,
    skip_bad_rows: bool = False,
    unknown_ids: str = "error",
    report: ReadReport | None = None,
) -> PairData:
    """Reads a generic interactions folder (see the module docstring) for ``task``.

    User and item text is ``"column: value; column: value"`` over ``user_columns`` /
    ``item_columns`` (default: every column but ``id``, in file order), leaving out empty values.
    ``label_names`` is the sorted set of labels seen in train; a test label outside it is an
    error. IDs in train/test that the tables lack raise DataError, or with
    ``unknown_ids="skip"`` the row is dropped and counted (``train.unknown_user``, ...).
    """
    if task not in TASKS:
        raise ConfigError(f"task must be one of {TASKS}, got {task!r}")
    rating_range = check_rating_range(rating_range)
    policy = RowPolicy(skip_bad_rows, unknown_ids, report if report is not None else ReadReport())
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError("interactions folder not found", path=str(folder))
    paths = {role: find_file(folder, role) for role in TABLE_ROLES + SPLIT_ROLES}
    dev_path = find_file(folder, "dev", required=False)
    if dev_path is not None:
        paths["dev"] = dev_path
    user_text = _read_table(paths["users"], "users", user_columns, policy)
    item_text = _read_table(paths["items"], "items", item_columns, policy)
    tables = (user_text, item_text)
    files = (paths["users"].name, paths["items"].name)

    def read_split(role: str, parse: Callable[[Any, int], Target]) -> InteractionsBuilder:
        builder = InteractionsBuilder(paths[role], role, tables, files, policy)
        _read_split(builder, paths[role], TARGET_COLUMNS[task], parse)
        return builder

    train = read_split("train", _target_parser(task, rating_range, paths["train"], None))
    label_names: tuple[str, ...] = ()
    if task == "multilabel":
        label_names = tuple(sorted({name for labels in train.targets for name in labels}))
    test = read_split("test", _target_parser(task, rating_range, paths["test"], label_names))
    dev = None
    if dev_path is not None:
        dev = read_split("dev", _target_parser(task, rating_range, dev_path, label_names))
    multihot = label_names if task == "multilabel" else None
    return PairData(
        task=task,
        train=train.build(multihot),
        test=test.build(multihot),
        user_text=user_text,
        item_text=item_text,
        rating_range=rating_range if task == "rating" else None,
        label_names=label_names,
        dev=dev.build(multihot) if dev is not None else None,
    )


def _read_table(
    path: Path, role: str, columns: Sequence[str] | None, policy: RowPolicy
) -> dict[str, str]:
    rows: dict[str, dict[str, Any]] = {}
    for line, row in iter_rows(path, role, ("id", *(columns or ())), policy):
        try:
            key = parse_id(row["id"], path=path, line=line, field="id")
        except DataError as err:
            policy.reject(err, f"{role}.bad_row")
            continue
        if is_new_id(rows, key, path=path, line=line, role=role, policy=policy):
            rows[key] = row
    if columns is None:  # every column in first-seen order: the CSV header, or JSONL keys
        columns = [c for c in dict.fromkeys(k for row in rows.values() for k in row) if c != "id"]
    return {key: join_text(row, columns) for key, row in rows.items()}


def join_text(row: dict[str, Any], columns: Sequence[str]) -> str:
    """``"column: value; column: value"`` for the non-empty values of ``columns``."""
    parts = []
    for column in columns:
        value = row.get(column)
        if value is None:
            continue
        text = value.strip() if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        if text:
            parts.append(f"{column}: {text}")
    return "; ".join(parts)


def _target_parser(
    task: str, rating_range: tuple[float, float], path: Path, label_names: tuple[str, ...] | None
) -> Callable[[Any, int], Target]:
    """Parses one target value; ``label_names`` None means train, where any label is new."""
    column = TARGET_COLUMNS[task]
    if task == "rating":
        return lambda value, line: parse_rating(
            value, rating_range, path=path, line=line, field=column
        )
    if task == "click":
        return lambda value, line: parse_click(value, path=path, line=line, field=column)

    def labels(value: Any, line: int) -> tuple[str, ...]:
        names = parse_labels(value, path=path, line=line, field=column)
        if label_names is None:
            return names
        unknown = [name for name in names if name not in label_names]
        if unknown:
            known = excerpt(label_names, 200)
            message = f"label {excerpt(unknown[0])} does not occur in train (labels: {known})"
            raise _UnknownLabel(message, path=str(path), line=line, field=column)
        return names

    return labels


class _UnknownLabel(DataError):
    """A test label that train never uses: the model has no output for it."""


def _read_split(
    builder: InteractionsBuilder, path: Path, target: str, parse: Callable[[Any, int], Target]
) -> None:
    role, policy = builder.role, builder.policy
    for line, row in iter_rows(path, role, ("user_id", "item_id", target), policy):
        try:
            user = parse_id(row["user_id"], path=path, line=line, field="user_id")
            item = parse_id(row["item_id"], path=path, line=line, field="item_id")
            value = parse(row[target], line)
        except _UnknownLabel as err:
            policy.reject(err, f"{role}.unknown_label")
            continue
        except DataError as err:
            policy.reject(err, f"{role}.bad_row")
            continue
        builder.add(line, user, item, value)
