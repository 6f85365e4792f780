"""Readers for MovieLens 100K and 1M as GroupLens distributes them, and for TFDS's copy of 100K.

Each returns a :class:`~jaxrec.data.pairs.PairData` for the rating task (range 1-5), with
text for the encoder built from the demographic and movie fields:

    user: "age 24, gender M, occupation technician"       (1M: "age 25-34, ...")
    item: "Toy Story (1995); genres: Animation, Children's, Comedy"

GroupLens ships the files in Latin-1 with no header; lines end in ``\\n`` (``\\r\\n`` is accepted
too). A line that is valid UTF-8 is read as UTF-8 (a copy someone re-saved), any other as
Latin-1, so neither reads as mojibake; a UTF-8 byte order mark is dropped. A malformed row
raises :class:`~jaxrec.errors.DataError` naming file, line and field, or with
``skip_bad_rows=True`` is dropped and counted (``users.bad_row``, ``train.unknown_item``, ...;
100K's split files are the roles ``train`` and ``test``, 1M's ratings.dat is ``ratings``), as
are the rows read from each file.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from jaxrec.data.lines import read_lines
from jaxrec.data.pairs import (
    Interactions,
    InteractionsBuilder,
    PairData,
    RowPolicy,
    is_new_id,
    parse_id,
    parse_rating,
)
from jaxrec.data.report import ReadReport
from jaxrec.errors import ConfigError, DataError, excerpt

PathLike = str | os.PathLike[str]

RATING_RANGE = (1.0, 5.0)
SPLITS_100K = ("u1", "u2", "u3", "u4", "u5", "ua", "ub")
# The 19 genres of u.genre, in the order of u.item's genre flags.
GENRES_100K = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
    "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance",
    "Sci-Fi", "Thriller", "War", "Western",
)  # fmt: skip
ITEM_COLUMNS_100K = ("movie_id", "title", "release_date", "video_release_date", "imdb_url")
# ML-1M README: users.dat codes ages by the lower end of a range, occupations by number.
AGE_GROUPS_1M = {
    "1": "under 18", "18": "18-24", "25": "25-34", "35": "35-44", "45": "45-49",
    "50": "50-55", "56": "56+",
}  # fmt: skip
OCCUPATIONS_1M = (
    "other", "academic/educator", "artist", "clerical/admin", "college/grad student",
    "customer service", "doctor/health care", "executive/managerial", "farmer", "homemaker",
    "K-12 student", "lawyer", "programmer", "retired", "sales/marketing", "scientist",
    "self-employed", "technician/engineer", "tradesman/craftsman", "unemployed", "writer",
)  # fmt: skip
_OCCUPATION_CODES = {str(code): name for code, name in enumerate(OCCUPATIONS_1M)}
TFDS_NAME = "movielens/100k-ratings"
GENDERS = ("M", "F")


def _rows(
    path: Path, role: str, separator: str, n_fields: int, policy: RowPolicy
) -> Iterator[tuple[int, list[str]]]:
    """Yields (line, fields) for rows with ``n_fields`` fields; the others are bad rows.

    Blank lines are bad rows too: GroupLens files have none, so one signals a damaged file.
    Once the file is read, its lines are counted under ``role`` in the report.
    """
    number = 0
    for number, text in read_lines(path, role, policy.report, fallback="latin-1"):
        fields = text.split(separator)
        if len(fields) != n_fields:
            message = (
                "blank line"
                if not text.strip()
                else f"expected {n_fields} {separator!r}-separated fields, found {len(fields)}"
            )
            policy.reject(DataError(message, path=str(path), line=number), f"{role}.bad_row")
            continue
        yield number, fields
    policy.report.read(role, number, str(path))


def _read_table(
    path: Path,
    role: str,
    separator: str,
    n_fields: int,
    parse: Callable[[list[str], _Where], tuple[str, str]],
    policy: RowPolicy,
) -> dict[str, str]:
    """ID -> text for a users or items file; ``parse`` turns one row's fields into both."""
    table: dict[str, str] = {}
    for line, fields in _rows(path, role, separator, n_fields, policy):
        try:
            key, text = parse(fields, _Where(str(path), line))
        except DataError as err:
            policy.reject(err, f"{role}.bad_row")
            continue
        if is_new_id(table, key, path=path, line=line, role=role, policy=policy):
            table[key] = text
    return table


@dataclasses.dataclass(frozen=True)
class _Where:
    """The file and line a row parser reports in its errors."""

    path: str
    line: int

    def error(self, message: str, field: str) -> DataError:
        return DataError(message, path=self.path, line=self.line, field=field)

    def id(self, value: str, field: str) -> str:
        return parse_id(value, path=self.path, line=self.line, field=field)


def _read_ratings(
    builder: InteractionsBuilder, path: Path, separator: str, policy: RowPolicy
) -> None:
    """Adds each ``user, item, rating, timestamp`` row of ``path`` to ``builder``."""
    for line, (user, item, rating, timestamp) in _rows(path, builder.role, separator, 4, policy):
        where = _Where(str(path), line)
        try:
            user, item = where.id(user, "user_id"), where.id(item, "item_id")
            value = parse_rating(rating, RATING_RANGE, path=path, line=line, field="rating")
            if not (timestamp.isascii() and timestamp.isdigit()):
                raise where.error(
                    f"timestamp must be whole seconds, got {excerpt(timestamp)}", "timestamp"
                )
        except DataError as err:
            policy.reject(err, f"{builder.role}.bad_row")
            continue
        builder.add(line, user, item, value)


def _item_text(title: str, genres: list[str]) -> str:
    return f"{title}; genres: {', '.join(genres)}" if genres else title


def _user_text(age: str, gender: str, occupation: str) -> str:
    return f"age {age}, gender {gender}, occupation {occupation}"


# -- MovieLens 100K. ----------------------------------------------------------------------------


def read_movielens_100k(
    folder: PathLike,
    *,
    split: str = "u1",
    skip_bad_rows: bool = False,
    unknown_ids: str = "error",
    report: ReadReport | None = None,
) -> PairData:
    """Reads the ml-100k folder: ``{split}.base`` as train, ``{split}.test`` as test.

    u1-u5 are GroupLens's five 80/20 folds, ua/ub hold out ten ratings per user. Users come
    from u.user, movies from u.item, genre names from u.genre (the standard 19 if it is absent).
    """
    if split not in SPLITS_100K:
        raise ConfigError(f"MovieLens 100K split must be one of {SPLITS_100K}, got {split!r}")
    policy = RowPolicy(skip_bad_rows, unknown_ids, report if report is not None else ReadReport())
    folder = Path(folder)
    genres = _read_genres(folder / "u.genre")
    user_text = _read_table(folder / "u.user", "users", "|", 5, _parse_user_100k, policy)
    n_item_fields = len(ITEM_COLUMNS_100K) + len(genres)
    item_text = _read_table(
        folder / "u.item",
        "items",
        "|",
        n_item_fields,
        lambda fields, where: _parse_item_100k(fields, genres, where),
        policy,
    )
    tables = (user_text, item_text)
    parts = {}
    for role, suffix in (("train", "base"), ("test", "test")):
        path = folder / f"{split}.{suffix}"
        builder = InteractionsBuilder(path, role, tables, ("u.user", "u.item"), policy)
        _read_ratings(builder, path, "\t", policy)
        parts[role] = builder.build()
    return _rating_data(parts["train"], parts["test"], user_text, item_text)


def _rating_data(
    train: Interactions, test: Interactions, user_text: dict[str, str], item_text: dict[str, str]
) -> PairData:
    return PairData("rating", train, test, user_text, item_text, RATING_RANGE, ())


def _read_genres(path: Path) -> tuple[str, ...]:
    """Genre names in flag order from u.genre (``name|index`` lines, then a blank line)."""
    if not path.exists():
        return GENRES_100K
    names: list[str] = []
    for number, text in read_lines(path, "genres", fallback="latin-1"):
        if not text.strip():
            continue
        name, _, index = text.rpartition("|")
        if not name or index != str(len(names)):
            message = f"expected 'name|{len(names)}', got {excerpt(text)}"
            raise DataError(message, path=str(path), line=number)
        names.append(name)
    if not names:
        raise DataError("no genres (expected 'name|0', 'name|1', ... lines)", path=str(path))
    return tuple(names)


def _parse_user_100k(fields: list[str], where: _Where) -> tuple[str, str]:
    user_id, age, gender, occupation, _zip_code = fields
    if not (age.isascii() and age.isdigit()):
        raise where.error(f"age must be a whole number, got {excerpt(age)}", "age")
    _check_gender(gender, where)
    if not occupation.strip():
        raise where.error("empty occupation", "occupation")
    return where.id(user_id, "user_id"), _user_text(age, gender, occupation)


def _check_gender(gender: str, where: _Where) -> None:
    if gender not in GENDERS:
        raise where.error(f"gender must be one of {GENDERS}, got {excerpt(gender)}", "gender")


def _parse_item_100k(fields: list[str], genres: tuple[str, ...], where: _Where) -> tuple[str, str]:
    movie_id, title = fields[:2]
    flags = fields[len(ITEM_COLUMNS_100K) :]
    for name, flag in zip(genres, flags, strict=True):
        if flag not in ("0", "1"):
            raise where.error(f"genre flag must be 0 or 1, got {excerpt(flag)}", name)
    chosen = [name for name, flag in zip(genres, flags, strict=True) if flag == "1"]
    return where.id(movie_id, "movie_id"), _item_text(title, chosen)


# -- MovieLens 1M. ------------------------------------------------------------------------------


def read_movielens_1m(
    folder: PathLike,
    *,
    seed: int = 0,
    test_fraction: float = 0.1,
    skip_bad_rows: bool = False,
    unknown_ids: str = "error",
    report: ReadReport | None = None,
) -> PairData:
    """Reads the ml-1m folder (ratings.dat, movies.dat, users.dat; fields split by ``::``).

    ML-1M ships no split: a seeded random ``test_fraction`` of the ratings that were read
    (bad rows and unknown IDs already dropped) is the test set; both parts keep file order.
    """
    _check_test_fraction(test_fraction)
    policy = RowPolicy(skip_bad_rows, unknown_ids, report if report is not None else ReadReport())
    folder = Path(folder)
    user_text = _read_table(folder / "users.dat", "users", "::", 5, _parse_user_1m, policy)
    item_text = _read_table(folder / "movies.dat", "items", "::", 3, _parse_movie_1m, policy)
    path = folder / "ratings.dat"
    tables = (user_text, item_text)
    builder = InteractionsBuilder(path, "ratings", tables, ("users.dat", "movies.dat"), policy)
    _read_ratings(builder, path, "::", policy)
    train, test = random_split(builder.build(), seed=seed, test_fraction=test_fraction)
    return _rating_data(train, test, user_text, item_text)


def _parse_user_1m(fields: list[str], where: _Where) -> tuple[str, str]:
    user_id, gender, age, occupation, _zip_code = fields
    _check_gender(gender, where)
    if age not in AGE_GROUPS_1M:
        raise where.error(f"age must be one of the codes {list(AGE_GROUPS_1M)}", "age")
    if occupation not in _OCCUPATION_CODES:
        raise where.error(f"occupation must be a code 0-{len(OCCUPATIONS_1M) - 1}", "occupation")
    text = _user_text(AGE_GROUPS_1M[age], gender, _OCCUPATION_CODES[occupation])
    return where.id(user_id, "user_id"), text


def _parse_movie_1m(fields: list[str], where: _Where) -> tuple[str, str]:
    movie_id, title, genres = fields
    return where.id(movie_id, "movie_id"), _item_text(title, [g for g in genres.split("|") if g])


def _check_test_fraction(test_fraction: float) -> None:
    if not 0.0 < test_fraction < 1.0:
        raise ConfigError(f"test_fraction must be between 0 and 1, got {test_fraction}")


def random_split(
    data: Interactions, *, seed: int | Sequence[int], test_fraction: float
) -> tuple[Interactions, Interactions]:
    """A seeded random (train, test) split of ``data``; each part keeps ``data``'s order."""
    _check_test_fraction(test_fraction)
    order = np.random.default_rng(seed).permutation(len(data))
    is_test = np.zeros(len(data), dtype=bool)
    is_test[order[: round(len(data) * test_fraction)]] = True
    return _subset(data, ~is_test), _subset(data, is_test)


def _subset(data: Interactions, mask: np.ndarray) -> Interactions:
    return Interactions(
        users=data.users[mask],
        items=data.items[mask],
        targets=data.targets[mask],
        lines=data.lines[mask],
        source=data.source,
    )


# -- TFDS movielens/100k-ratings. ---------------------------------------------------------------


# The features of movielens/100k-ratings that PairData uses.
_TFDS_FEATURES = (
    "user_id", "movie_id", "user_rating", "movie_title", "user_gender", "bucketized_user_age",
    "user_occupation_text",
)  # fmt: skip


def read_movielens_tfds(
    data_dir: PathLike | None = None,
    *,
    seed: int = 0,
    test_fraction: float = 0.1,
    report: ReadReport | None = None,
) -> PairData:
    """Reads TFDS's ``movielens/100k-ratings`` (prepared beforehand; nothing is downloaded).

    TFDS stores a single split, so the test set is a seeded random ``test_fraction`` as for
    1M. ``lines`` are 1-based positions in TFDS's example order. Ages are TFDS's buckets
    (``bucketized_user_age``), shown with the ML-1M range names.
    """
    import tensorflow_datasets as tfds

    _check_test_fraction(test_fraction)
    data_dir = None if data_dir is None else str(data_dir)
    builder = tfds.builder(TFDS_NAME, data_dir=data_dir)
    if not builder.is_prepared():
        raise DataError(
            f"TFDS dataset {TFDS_NAME} is not prepared here. Build it once (needs network) with "
            f"`tfds build {TFDS_NAME} --data_dir=...` or "
            f"`tfds.load({TFDS_NAME!r}, data_dir=..., download=True)`",
            path=str(builder.data_dir),
        )
    import tensorflow as tf  # only now: importing it takes seconds, the check above does not

    genre_names = builder.info.features["movie_genres"].feature.names
    ds = tfds.load(TFDS_NAME, split="train", data_dir=data_dir, download=False)

    def encode(example: dict[str, Any]) -> dict[str, Any]:
        features = {key: example[key] for key in _TFDS_FEATURES}
        # Genre lists differ in length: as multi-hot rows they batch into one dense array.
        genres = tf.one_hot(example["movie_genres"], len(genre_names), dtype=tf.int32)
        features["movie_genres"] = tf.reduce_sum(genres, axis=0)
        return features

    batches = list(tfds.as_numpy(ds.map(encode).batch(8192)))
    if not batches:
        raise DataError(f"TFDS dataset {TFDS_NAME} has no examples", path=str(builder.data_dir))
    columns = {key: np.concatenate([b[key] for b in batches]) for key in batches[0]}
    return pair_data_from_tfds_columns(
        columns, genre_names, seed=seed, test_fraction=test_fraction, report=report
    )


def pair_data_from_tfds_columns(
    columns: dict[str, np.ndarray],
    genre_names: list[str] | tuple[str, ...],
    *,
    seed: int,
    test_fraction: float,
    report: ReadReport | None = None,
) -> PairData:
    """PairData from movielens/100k-ratings features as numpy columns (strings as bytes).

    ``columns["movie_genres"]`` is the [n, len(genre_names)] multi-hot of each movie's genres.
    A value that cannot be used raises DataError naming the example (1-based, as ``line``) and
    the feature; an age bucket outside the ML-1M codes reads as "unknown" and is counted
    (``users.unknown_age``).
    """
    report = report if report is not None else ReadReport()
    source = f"tfds:{TFDS_NAME}"

    def text(key: str, row: int) -> str:
        try:
            return columns[key][row].decode("utf-8")
        except UnicodeDecodeError as err:
            message = f"invalid UTF-8: {err.reason}"
            raise DataError(message, path=source, line=row + 1, field=key) from None

    def id_(key: str, row: int) -> str:
        return parse_id(text(key, row), path=source, line=row + 1, field=key)

    n = len(columns["user_id"])
    users = [id_("user_id", row) for row in range(n)]
    items = [id_("movie_id", row) for row in range(n)]
    ratings = np.asarray(columns["user_rating"], dtype=np.float64)
    low, high = RATING_RANGE
    bad = np.flatnonzero(~(np.isfinite(ratings) & (ratings >= low) & (ratings <= high)))
    if len(bad):
        row = int(bad[0])
        message = f"rating {ratings[row]:g} is not a number in [{low:g}, {high:g}]"
        raise DataError(message, path=source, line=row + 1, field="user_rating")
    user_text: dict[str, str] = {}
    item_text: dict[str, str] = {}
    for row, (user, item) in enumerate(zip(users, items, strict=True)):
        if user not in user_text:
            bucket = str(int(columns["bucketized_user_age"][row]))
            age = AGE_GROUPS_1M.get(bucket)
            if age is None:
                age = "unknown"
                example = f"{source}:{row + 1}: bucketized_user_age {bucket}"
                report.add("users.unknown_age", example=example)
            gender = "M" if columns["user_gender"][row] else "F"
            occupation = text("user_occupation_text", row)
            user_text[user] = _user_text(age, gender, occupation)
        if item not in item_text:
            flags = columns["movie_genres"][row]
            genres = [name for name, flag in zip(genre_names, flags, strict=True) if flag]
            item_text[item] = _item_text(text("movie_title", row), genres)
    report.read("ratings", n, source)
    data = Interactions(
        users=np.array(users, dtype=object),
        items=np.array(items, dtype=object),
        targets=ratings.astype(np.float32),
        lines=np.arange(1, n + 1, dtype=np.int64),
        source=source,
    )
    train, test = random_split(data, seed=seed, test_fraction=test_fraction)
    return _rating_data(train, test, user_text, item_text)
