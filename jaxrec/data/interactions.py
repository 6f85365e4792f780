"""User-item interactions for rating, click and multi-label tasks, and the generic folder reader.

Every reader for these tasks (this module's generic one, :mod:`jaxrec.data.movielens`) returns a
:class:`PairData`: train and test interactions plus the text of every user and item.

The generic folder holds four files, each CSV (a header row, read with the csv module) or JSON
Lines, told apart by extension:

    users.csv | users.jsonl   ``id`` plus free-text columns
    items.csv | items.jsonl   ``id`` plus free-text columns
    train.csv | train.jsonl   ``user_id``, ``item_id`` and the task's target column
    test.csv  | test.jsonl

The target column is ``rating`` (a number within the rating range), ``click`` (0 or 1) or
``labels`` (``|``-separated names in CSV, a list of strings in JSONL). Files are UTF-8, with or
without a BOM, with ``\\n`` or ``\\r\\n`` line endings; blank lines are ignored. Every bad row
raises :class:`~jaxrec.errors.DataError` naming file, line and field, unless
``skip_bad_rows=True``, in which case it is dropped and counted in a :class:`ReadReport`.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import json
import math
import os
from collections.abc import Callable, Container, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from jaxrec.data.report import ReadReport
from jaxrec.errors import ConfigError, DataError

TASKS = ("rating", "click", "multilabel")
UNKNOWN_ID_POLICIES = ("error", "skip")
TARGET_COLUMNS = {"rating": "rating", "click": "click", "multilabel": "labels"}
TABLE_ROLES = ("users", "items")
SPLIT_ROLES = ("train", "test")
EXTENSIONS = (".csv", ".jsonl")
LABEL_SEPARATOR = "|"

_BOM = "\ufeff"

PathLike = str | os.PathLike[str]
Target = float | tuple[str, ...]


@dataclasses.dataclass(frozen=True, eq=False)  # eq=False: == on arrays has no single answer
class Interactions:
    """One split's interactions in file order."""

    users: np.ndarray  # [n] str (dtype object) user IDs
    items: np.ndarray  # [n] str item IDs
    targets: np.ndarray  # [n] float32 (rating, or click 0/1) or [n, num_labels] float32 multi-hot
    lines: np.ndarray  # [n] int64 1-based line numbers in the source file
    source: str  # the file path

    def __len__(self) -> int:
        return len(self.users)


@dataclasses.dataclass(frozen=True, eq=False)
class PairData:
    """What every rating/click/multi-label reader returns."""

    task: str  # one of TASKS
    train: Interactions
    test: Interactions
    user_text: dict[str, str]  # user ID -> text fed to the encoder
    item_text: dict[str, str]  # item ID -> text
    rating_range: tuple[float, float] | None  # (1.0, 5.0) for MovieLens; None unless "rating"
    label_names: tuple[str, ...]  # multilabel only, else ()


@dataclasses.dataclass
class RowPolicy:
    """What a reader does with a bad row or an unknown ID: raise DataError, or drop and count it.

    The two are separate switches: ``skip_bad_rows`` covers rows that break the format,
    ``unknown_ids`` rows that are well formed but name a user or item the tables lack.
    """

    skip_bad_rows: bool = False
    unknown_ids: str = "error"
    report: ReadReport = dataclasses.field(default_factory=ReadReport)

    def __post_init__(self) -> None:
        if self.unknown_ids not in UNKNOWN_ID_POLICIES:
            raise ConfigError(
                f"unknown_ids must be one of {UNKNOWN_ID_POLICIES}, got {self.unknown_ids!r}"
            )

    def reject(self, err: DataError, reason: str) -> None:
        """Raises ``err``, or with ``skip_bad_rows`` counts it under ``reason``."""
        if not self.skip_bad_rows:
            raise err
        self.report.add(reason, example=str(err))

    def unknown(self, err: DataError, reason: str) -> None:
        """Raises ``err``, or with ``unknown_ids="skip"`` counts it under ``reason``."""
        if self.unknown_ids == "error":
            raise err
        self.report.add(reason, example=str(err))


def is_new_id(
    table: Container[str],
    key: str,
    *,
    path: PathLike,
    line: int,
    role: str,
    policy: RowPolicy,
    field: str = "id",
) -> bool:
    """False for an ID already in a user or item table: an error, or a counted skip (first wins)."""
    if key not in table:
        return True
    err = DataError(f"duplicate ID {key!r}", path=str(path), line=line, field=field)
    policy.reject(err, f"{role}.duplicate_id")
    return False


class InteractionsBuilder:
    """Collects one split's rows in file order, dropping or refusing unknown users and items."""

    def __init__(
        self,
        path: PathLike,
        role: str,
        tables: tuple[Container[str], Container[str]],
        table_files: tuple[str, str],
        policy: RowPolicy,
    ) -> None:
        self.path, self.role, self.policy = str(path), role, policy
        self.known_users, self.known_items = tables
        self.table_files = table_files
        self.users: list[str] = []
        self.items: list[str] = []
        self.targets: list[Target] = []
        self.lines: list[int] = []

    def add(self, line: int, user: str, item: str, target: Target) -> None:
        for kind, value, known, table_file in (
            ("user", user, self.known_users, self.table_files[0]),
            ("item", item, self.known_items, self.table_files[1]),
        ):
            if value not in known:
                message = f"{kind} ID {value!r} is not in {table_file}"
                err = DataError(message, path=self.path, line=line, field=f"{kind}_id")
                self.policy.unknown(err, f"{self.role}.unknown_{kind}")
                return
        self.users.append(user)
        self.items.append(item)
        self.targets.append(target)
        self.lines.append(line)

    def build(self, label_names: Sequence[str] | None = None) -> Interactions:
        """The rows as arrays; with ``label_names`` the targets become multi-hot rows."""
        if label_names is None:
            targets = np.asarray(self.targets, dtype=np.float32)
        else:
            column = {name: i for i, name in enumerate(label_names)}
            targets = np.zeros((len(self.targets), len(label_names)), np.float32)
            for row, labels in enumerate(self.targets):
                targets[row, [column[name] for name in labels]] = 1.0
        return Interactions(
            users=_object_array(self.users),
            items=_object_array(self.items),
            targets=targets,
            lines=np.asarray(self.lines, dtype=np.int64),
            source=self.path,
        )


def _object_array(values: list[str]) -> np.ndarray:
    array = np.empty(len(values), dtype=object)
    array[:] = values
    return array


# -- Field parsers, shared with the MovieLens readers. ------------------------------------------


def parse_id(value: Any, *, path: PathLike, line: int, field: str) -> str:
    """An ID as text: a non-blank string, or an integer (JSON IDs are often numbers)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str):
        raise DataError(
            f"ID must be a string, got {value!r}", path=str(path), line=line, field=field
        )
    if not value.strip():
        raise DataError(f"empty {field}", path=str(path), line=line, field=field)
    return value


def parse_number(value: Any, *, path: PathLike, line: int, field: str) -> float:
    """A finite number from a JSON number or its text; booleans are refused."""
    number: float | None = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
    elif isinstance(value, str):
        with contextlib.suppress(ValueError):
            number = float(value)
    if number is None or not math.isfinite(number):
        message = f"expected a finite number, got {value!r}"
        raise DataError(message, path=str(path), line=line, field=field)
    return number


def parse_rating(
    value: Any, rating_range: tuple[float, float], *, path: PathLike, line: int, field: str
) -> float:
    rating = parse_number(value, path=path, line=line, field=field)
    low, high = rating_range
    if not low <= rating <= high:
        message = f"rating {rating:g} is outside the range [{low:g}, {high:g}]"
        raise DataError(message, path=str(path), line=line, field=field)
    return rating


def parse_click(value: Any, *, path: PathLike, line: int, field: str) -> float:
    if isinstance(value, bool):  # JSON true/false reads naturally as a click
        return float(value)
    click = parse_number(value, path=path, line=line, field=field)
    if click not in (0.0, 1.0):
        message = f"click must be 0 or 1, got {value!r}"
        raise DataError(message, path=str(path), line=line, field=field)
    return click


def parse_labels(value: Any, *, path: PathLike, line: int, field: str) -> tuple[str, ...]:
    """Label names from ``"a|b"`` (CSV) or ``["a", "b"]`` (JSONL); empty means no label."""
    if isinstance(value, str):
        names = value.split(LABEL_SEPARATOR)
    elif isinstance(value, list) and all(isinstance(name, str) for name in value):
        names = value
    else:
        message = f"labels must be {LABEL_SEPARATOR!r}-separated text or a list of strings"
        raise DataError(message, path=str(path), line=line, field=field)
    return tuple(dict.fromkeys(name.strip() for name in names if name.strip()))


def check_rating_range(rating_range: tuple[float, float]) -> tuple[float, float]:
    low, high = (float(x) for x in rating_range)
    if not (math.isfinite(low) and math.isfinite(high) and low < high):
        raise ConfigError(f"rating_range must be two finite numbers, low < high: {rating_range}")
    return low, high


# -- Reading CSV and JSON Lines. ----------------------------------------------------------------


def iter_rows(
    path: Path, role: str, required: Sequence[str], policy: RowPolicy
) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yields (1-based line, row) for each row of a ``.csv`` or ``.jsonl`` file.

    A CSV row's keys are the header's columns in order; a CSV record whose quoted field spans
    lines is numbered by its first line. Each column in ``required`` must be in the CSV header
    (else DataError on line 1) or in every JSON object. Rows with the wrong number of fields,
    invalid JSON or a missing key are bad rows, counted as ``<role>.bad_row``.
    """
    lines = _utf8_lines(path)
    if path.suffix == ".csv":
        yield from _csv_rows(path, lines, role, required, policy)
    else:
        yield from _jsonl_rows(path, lines, role, required, policy)


def _utf8_lines(path: Path) -> Iterator[str]:
    """Each line of ``path`` with its line ending, decoded alone so that an error names it."""
    try:
        with open(path, "rb") as handle:
            for number, raw in enumerate(handle, start=1):
                try:
                    text = raw.decode("utf-8")
                except UnicodeDecodeError as err:
                    message = f"invalid UTF-8: {err.reason}"
                    raise DataError(message, path=str(path), line=number) from None
                yield text[1:] if number == 1 and text.startswith(_BOM) else text
    except FileNotFoundError:
        raise DataError("file not found", path=str(path)) from None
    except OSError as err:
        raise DataError(f"cannot read file: {err.strerror}", path=str(path)) from None


def _csv_rows(
    path: Path, lines: Iterator[str], role: str, required: Sequence[str], policy: RowPolicy
) -> Iterator[tuple[int, dict[str, Any]]]:
    reader = csv.reader(lines)
    header = next(reader, [])
    for column in required:
        if column not in header:
            raise DataError(f"missing column {column!r}", path=str(path), line=1, field=column)
    if len(set(header)) != len(header):
        duplicate = next(c for c in header if header.count(c) > 1)
        raise DataError(f"duplicate column {duplicate!r}", path=str(path), line=1, field=duplicate)
    while True:
        start = reader.line_num + 1
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as err:
            policy.reject(
                DataError(f"bad CSV: {err}", path=str(path), line=start), f"{role}.bad_row"
            )
            continue
        if not fields:  # a blank line
            continue
        if len(fields) != len(header):
            message = f"expected {len(header)} comma-separated fields, found {len(fields)}"
            policy.reject(DataError(message, path=str(path), line=start), f"{role}.bad_row")
            continue
        yield start, dict(zip(header, fields, strict=True))


def _jsonl_rows(
    path: Path, lines: Iterator[str], role: str, required: Sequence[str], policy: RowPolicy
) -> Iterator[tuple[int, dict[str, Any]]]:
    for number, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        try:
            row = json.loads(text)
        except json.JSONDecodeError as err:
            policy.reject(
                DataError(f"invalid JSON: {err.msg}", path=str(path), line=number),
                f"{role}.bad_row",
            )
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


def find_file(folder: Path, stem: str) -> Path:
    """``folder/stem.csv`` or ``folder/stem.jsonl``, whichever exists; both or neither: error."""
    found = [folder / f"{stem}{ext}" for ext in EXTENSIONS if (folder / f"{stem}{ext}").is_file()]
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
    multihot = label_names if task == "multilabel" else None
    return PairData(
        task=task,
        train=train.build(multihot),
        test=test.build(multihot),
        user_text=user_text,
        item_text=item_text,
        rating_range=rating_range if task == "rating" else None,
        label_names=label_names,
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
            message = f"label {unknown[0]!r} does not occur in train (labels: {label_names})"
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
