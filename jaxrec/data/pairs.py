"""What every rating, click and multi-label reader shares: the data types and the row rules.

Every reader for these tasks (:mod:`jaxrec.data.interactions`, the generic folder, and
:mod:`jaxrec.data.movielens`) returns a :class:`PairData`: train and test interactions (and a
validation split where the data brings one) plus the text of every user and item. Rows are
collected by an :class:`InteractionsBuilder` under a :class:`RowPolicy` (bad rows and unknown
IDs raise, or are dropped and counted), and fields parsed by the ``parse_*`` functions, which
name file, line and field in every error.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import re
from collections.abc import Container, Sequence
from typing import Any

import numpy as np

from jaxrec.data.report import ReadReport
from jaxrec.errors import ConfigError, DataError, excerpt

TASKS = ("rating", "click", "multilabel")
UNKNOWN_ID_POLICIES = ("error", "skip")
LABEL_SEPARATOR = "|"

# float() also takes "1_000", "nan" and digits of any script ("٤"); a data file means none.
_DECIMAL = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", re.ASCII)

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
    dev: Interactions | None = None  # the validation split, when the data brings one


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
        self.report.skip(reason, example=str(err))

    def unknown(self, err: DataError, reason: str) -> None:
        """Raises ``err``, or with ``unknown_ids="skip"`` counts it under ``reason``."""
        if self.unknown_ids == "error":
            raise err
        self.report.skip(reason, example=str(err))


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
    err = DataError(f"duplicate ID {excerpt(key)}", path=str(path), line=line, field=field)
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
                message = f"{kind} ID {excerpt(value)} is not in {table_file}"
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
            f"ID must be a string, got {excerpt(value)}", path=str(path), line=line, field=field
        )
    if not value.strip():
        raise DataError(f"empty {field}", path=str(path), line=line, field=field)
    return value


def parse_number(value: Any, *, path: PathLike, line: int, field: str) -> float:
    """A finite number from a JSON number or its text (a plain decimal); booleans are refused."""
    number: float | None = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        with contextlib.suppress(OverflowError):  # a JSON integer too large for a float
            number = float(value)
    elif isinstance(value, str) and _DECIMAL.fullmatch(value.strip(" \t")):
        number = float(value)
    if number is None or not math.isfinite(number):
        message = f"expected a finite number, got {excerpt(value)}"
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
        message = f"click must be 0 or 1, got {excerpt(value)}"
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
