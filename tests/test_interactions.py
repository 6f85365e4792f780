"""The generic interactions reader, the load_pair_data dispatcher, and the ecommerce sample."""

from __future__ import annotations

import collections
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import ml_collections
import numpy as np
import pytest

from jaxrec import pair_metrics
from jaxrec.data.interactions import ReadReport, read_interactions_dir
from jaxrec.data.pair_data import load_pair_data, read_pair_data
from jaxrec.errors import ConfigError, DataError

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "jaxrec" / "data" / "samples" / "ecommerce"
SCRIPT = ROOT / "scripts" / "make_ecommerce_sample.py"
SAMPLE_FILES = ("users.csv", "items.csv", "train.csv", "test.csv", "oracle.json")

USERS = ["id,city,profile", "u1,Zürich,Loves cooking", 'u2,,"Reads novels, mostly"']
ITEMS = [
    "id,title,description,price",
    'i1,Café Mug,"A big mug, 12 oz ""classic""",9',
    "i2,Skillet,,25",
    'i3,Tent,"Two lines\nof text",120',
]
TRAIN = [
    "user_id,item_id,rating,click,labels,note",
    "u1,i1,4,1,gift|sale,ignored",
    "u2,i2,1.5,0,,x",
    "u1,i3,5,1,eco,",
]
TEST = ["user_id,item_id,rating,click,labels,note", "u2,i1,3,0,sale|gift,", "u2,i3,2,1,,"]


def write(path: Path, rows: list[str], *, newline: str = "\n", bom: bool = False) -> Path:
    text = ("\ufeff" if bom else "") + "".join(row + newline for row in rows)
    path.write_bytes(text.encode("utf-8"))
    return path


def write_dir(
    root: Path,
    *,
    users: list[str] = USERS,
    items: list[str] = ITEMS,
    train: list[str] = TRAIN,
    test: list[str] = TEST,
    **kwargs,
) -> Path:
    for name, rows in (("users", users), ("items", items), ("train", train), ("test", test)):
        write(root / f"{name}.csv", rows, **kwargs)
    return root


@pytest.mark.parametrize(("newline", "bom"), [("\n", False), ("\r\n", True)])
def test_csv_round_trip(tmp_path: Path, newline: str, bom: bool) -> None:
    folder = write_dir(tmp_path, newline=newline, bom=bom)
    report = ReadReport()
    data = read_interactions_dir(folder, task="rating", report=report)

    assert data.task == "rating" and data.rating_range == (1.0, 5.0) and data.label_names == ()
    assert data.user_text == {
        "u1": "city: Zürich; profile: Loves cooking",
        "u2": "profile: Reads novels, mostly",
    }
    assert data.item_text == {
        "i1": 'title: Café Mug; description: A big mug, 12 oz "classic"; price: 9',
        "i2": "title: Skillet; price: 25",
        "i3": "title: Tent; description: Two lines\nof text; price: 120",  # csv reads \r\n as \n
    }
    train = data.train
    assert list(train.users) == ["u1", "u2", "u1"] and train.users.dtype == object
    assert list(train.items) == ["i1", "i2", "i3"]
    assert train.targets.dtype == np.float32 and train.targets.tolist() == [4.0, 1.5, 5.0]
    assert train.lines.dtype == np.int64 and train.lines.tolist() == [2, 3, 4]
    assert train.source == str(folder / "train.csv") and len(train) == 3
    assert data.test.lines.tolist() == [2, 3] and data.test.targets.tolist() == [3.0, 2.0]
    assert report.as_dict() == {}


def test_line_numbers_follow_a_multi_line_record(tmp_path: Path) -> None:
    items = [*ITEMS, "i4,Lamp,x,1"]
    train = ["user_id,item_id,rating", 'u1,i1,"4"', "", "u1,i4,9"]
    write_dir(tmp_path, items=items, train=train)
    with pytest.raises(DataError, match="outside the range") as caught:
        read_interactions_dir(tmp_path, task="rating")
    assert (caught.value.line, caught.value.field) == (4, "rating")  # the blank line 3 is skipped
    with pytest.raises(DataError) as caught:  # items.csv line 4 holds a two-line description
        read_interactions_dir(write_dir(tmp_path, items=[*ITEMS, "i1,Again,,"]), task="rating")
    assert (caught.value.path, caught.value.line) == (str(tmp_path / "items.csv"), 6)


def test_click_and_multilabel_targets(tmp_path: Path) -> None:
    folder = write_dir(tmp_path)
    click = read_interactions_dir(folder, task="click")
    assert click.train.targets.tolist() == [1.0, 0.0, 1.0] and click.rating_range is None

    multi = read_interactions_dir(folder, task="multilabel")
    assert multi.label_names == ("eco", "gift", "sale")  # sorted union over train
    assert multi.train.targets.dtype == np.float32
    assert multi.train.targets.tolist() == [[0, 1, 1], [0, 0, 0], [1, 0, 0]]
    assert multi.test.targets.tolist() == [[0, 1, 1], [0, 0, 0]]


def write_jsonl(path: Path, rows: list[object]) -> None:
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows) + "\n")


def test_jsonl_round_trip(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "users.jsonl", [{"id": 1, "bio": "Café owner"}, {"id": 2, "age": 31}])
    write_jsonl(tmp_path / "items.jsonl", [{"id": "a", "title": "Mug", "tags": ["x", "y"]}])
    write_jsonl(
        tmp_path / "train.jsonl",
        [
            {"user_id": 1, "item_id": "a", "labels": ["gift", "sale"], "extra": None},
            {"user_id": "2", "item_id": "a", "labels": []},
        ],
    )
    write_jsonl(tmp_path / "test.jsonl", [{"user_id": 2, "item_id": "a", "labels": "sale"}])
    data = read_interactions_dir(tmp_path, task="multilabel")

    assert data.user_text == {"1": "bio: Café owner", "2": "age: 31"}
    assert data.item_text == {"a": 'title: Mug; tags: ["x", "y"]'}
    assert list(data.train.users) == ["1", "2"] and data.train.lines.tolist() == [1, 2]
    assert data.label_names == ("gift", "sale")
    assert data.test.targets.tolist() == [[0.0, 1.0]]


def test_chosen_text_columns_in_the_given_order(tmp_path: Path) -> None:
    data = read_interactions_dir(
        write_dir(tmp_path),
        task="rating",
        user_columns=["profile"],
        item_columns=["price", "title"],
    )
    assert data.user_text["u1"] == "profile: Loves cooking"
    assert data.item_text["i2"] == "price: 25; title: Skillet"


def test_needs_exactly_one_file_per_table(tmp_path: Path) -> None:
    write_dir(tmp_path)
    write_jsonl(tmp_path / "items.jsonl", [{"id": "i1"}])
    with pytest.raises(DataError, match="both items.csv and items.jsonl") as caught:
        read_interactions_dir(tmp_path, task="rating")
    assert caught.value.path == str(tmp_path)
    (tmp_path / "items.jsonl").unlink()
    (tmp_path / "test.csv").unlink()
    with pytest.raises(DataError, match="neither of test.csv and test.jsonl"):
        read_interactions_dir(tmp_path, task="rating")


BAD_SPLIT_ROWS = [
    ("rating", "u1,i1,6,1,", "rating", "outside the range"),
    ("rating", "u1,i1,0.5,1,", "rating", "outside the range"),
    ("rating", "u1,i1,four,1,", "rating", "expected a finite number"),
    ("rating", "u1,i1,nan,1,", "rating", "expected a finite number"),
    ("rating", "u1,i1,,1,", "rating", "expected a finite number"),
    ("click", "u1,i1,4,2,", "click", "click must be 0 or 1"),
    ("click", "u1,i1,4,yes,", "click", "expected a finite number"),
    ("rating", "u1,i1,4,1", None, "expected 5 comma-separated fields, found 4"),
    ("rating", "u1,i1,4,1,,extra", None, "expected 5 comma-separated fields, found 6"),
    ("rating", ",i1,4,1,", "user_id", "empty user_id"),
    ("click", "u1, ,4,1,", "item_id", "empty item_id"),
]


@pytest.mark.parametrize(("task", "row", "field", "message"), BAD_SPLIT_ROWS)
def test_bad_row_names_file_line_and_field(
    tmp_path: Path, task: str, row: str, field: str | None, message: str
) -> None:
    header = "user_id,item_id,rating,click,labels"
    write_dir(tmp_path, train=[header, "u1,i1,4,1,", row, "u2,i2,3,0,"])
    path = str(tmp_path / "train.csv")
    with pytest.raises(DataError, match=message) as caught:
        read_interactions_dir(tmp_path, task=task)
    assert (caught.value.path, caught.value.line, caught.value.field) == (path, 3, field)
    assert str(caught.value).startswith(f"{path}:3: ")

    report = ReadReport()
    data = read_interactions_dir(tmp_path, task=task, skip_bad_rows=True, report=report)
    assert report.as_dict() == {"train.bad_row": 1}
    assert data.train.lines.tolist() == [2, 4]


def test_unknown_test_label_is_an_error_or_a_counted_skip(tmp_path: Path) -> None:
    test = [TEST[0], "u2,i1,3,0,sale,", "u2,i2,3,0,gift|wrapped,"]
    write_dir(tmp_path, test=test)
    with pytest.raises(DataError, match="label 'wrapped' does not occur in train") as caught:
        read_interactions_dir(tmp_path, task="multilabel")
    assert (caught.value.path, caught.value.line) == (str(tmp_path / "test.csv"), 3)
    assert caught.value.field == "labels"
    report = ReadReport()
    data = read_interactions_dir(tmp_path, task="multilabel", skip_bad_rows=True, report=report)
    assert report.as_dict() == {"test.unknown_label": 1} and len(data.test) == 1


def test_unknown_ids_raise_or_are_skipped_and_counted(tmp_path: Path) -> None:
    train = [*TRAIN, "u9,i1,3,1,,", "u1,i9,3,1,,", "u8,i8,3,1,,"]
    test = [*TEST, "u2,i7,3,1,,"]
    write_dir(tmp_path, train=train, test=test)
    with pytest.raises(DataError, match="user ID 'u9' is not in users.csv") as caught:
        read_interactions_dir(tmp_path, task="rating", skip_bad_rows=True)  # still an error
    assert (caught.value.line, caught.value.field) == (5, "user_id")

    report = ReadReport()
    data = read_interactions_dir(tmp_path, task="rating", unknown_ids="skip", report=report)
    assert report.as_dict() == {
        "train.unknown_user": 2,  # u8/i8 counts once, as an unknown user
        "train.unknown_item": 1,
        "test.unknown_item": 1,
    }
    assert data.train.lines.tolist() == [2, 3, 4] and data.test.lines.tolist() == [2, 3]
    assert "train.csv:6:" in report.examples["train.unknown_item"]


def test_duplicate_table_id(tmp_path: Path) -> None:
    write_dir(tmp_path, users=[*USERS, "u1,Oslo,Second u1"])
    with pytest.raises(DataError, match="duplicate ID 'u1'") as caught:
        read_interactions_dir(tmp_path, task="click")
    assert (caught.value.path, caught.value.line, caught.value.field) == (
        str(tmp_path / "users.csv"),
        4,
        "id",
    )
    report = ReadReport()
    data = read_interactions_dir(tmp_path, task="click", skip_bad_rows=True, report=report)
    assert report.as_dict() == {"users.duplicate_id": 1}
    assert data.user_text["u1"] == "city: Zürich; profile: Loves cooking"  # the first wins


@pytest.mark.parametrize(
    ("kwargs", "file", "column"),
    [
        ({"task": "rating", "user_columns": ["age"]}, "users.csv", "age"),
        ({"task": "rating", "item_columns": ["title", "brand"]}, "items.csv", "brand"),
        ({"task": "multilabel"}, "train.csv", "labels"),
    ],
)
def test_missing_csv_column_names_the_header(
    tmp_path: Path, kwargs: dict, file: str, column: str
) -> None:
    write_dir(tmp_path, train=["user_id,item_id,rating", "u1,i1,4"])
    with pytest.raises(DataError, match=f"missing column '{column}'") as caught:
        read_interactions_dir(tmp_path, **kwargs)
    assert (caught.value.path, caught.value.line, caught.value.field) == (
        str(tmp_path / file),
        1,
        column,
    )


def test_missing_jsonl_key_names_its_line(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "users.jsonl", [{"id": "u1", "bio": "a"}, {"id": "u2"}])
    write_jsonl(tmp_path / "items.jsonl", [{"id": "i1"}])
    write_jsonl(tmp_path / "train.jsonl", [{"user_id": "u1", "item_id": "i1", "click": 1}])
    write_jsonl(tmp_path / "test.jsonl", [{"user_id": "u1", "item_id": "i1"}])
    with pytest.raises(DataError, match="missing key 'click'") as caught:
        read_interactions_dir(tmp_path, task="click")
    assert (caught.value.line, caught.value.field) == (1, "click")
    with pytest.raises(DataError, match="missing key 'bio'") as caught:
        read_interactions_dir(tmp_path, task="click", user_columns=["bio"])
    assert (caught.value.path, caught.value.line) == (str(tmp_path / "users.jsonl"), 2)


@pytest.mark.parametrize(
    ("text", "message"),
    [('{"user_id": "u1", "item_id": ', "invalid JSON"), ('["u1", "i1", 1]', "a JSON object")],
)
def test_bad_jsonl_row(tmp_path: Path, text: str, message: str) -> None:
    write_dir(tmp_path)
    (tmp_path / "test.csv").unlink()
    (tmp_path / "test.jsonl").write_text('{"user_id": "u1", "item_id": "i1", "click": 0}\n' + text)
    with pytest.raises(DataError, match=message) as caught:
        read_interactions_dir(tmp_path, task="click")
    assert (caught.value.path, caught.value.line) == (str(tmp_path / "test.jsonl"), 2)


def test_invalid_utf8_names_its_line(tmp_path: Path) -> None:
    write_dir(tmp_path)
    (tmp_path / "items.csv").write_bytes(b"id,title\ni1,ok\ni2,caf\xe9\n")  # Latin-1, not UTF-8
    with pytest.raises(DataError, match="invalid UTF-8") as caught:
        read_interactions_dir(tmp_path, task="rating", skip_bad_rows=True)
    assert (caught.value.path, caught.value.line) == (str(tmp_path / "items.csv"), 3)


def test_skip_bad_rows_counts_each_reason(tmp_path: Path) -> None:
    users = [*USERS, ",Nowhere,empty id", "u1,Oslo,again"]
    items = [*ITEMS, "i4,too,many,fields,here"]
    train = [*TRAIN, "u1,i2,9,1,,", "u2,i1,4,1,,,", "u7,i1,4,1,,"]
    report = ReadReport()
    data = read_interactions_dir(
        write_dir(tmp_path, users=users, items=items, train=train),
        task="rating",
        skip_bad_rows=True,
        unknown_ids="skip",
        report=report,
    )
    assert report.as_dict() == {
        "users.bad_row": 1,
        "users.duplicate_id": 1,
        "items.bad_row": 1,
        "train.bad_row": 2,
        "train.unknown_user": 1,
    }
    assert set(data.user_text) == {"u1", "u2"} and set(data.item_text) == {"i1", "i2", "i3"}
    assert data.train.lines.tolist() == [2, 3, 4]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"task": "ranking"}, "task must be one of"),
        ({"task": "rating", "unknown_ids": "ignore"}, "unknown_ids must be one of"),
        ({"task": "rating", "rating_range": (5.0, 1.0)}, "rating_range"),
    ],
)
def test_bad_arguments_are_config_errors(tmp_path: Path, kwargs: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        read_interactions_dir(write_dir(tmp_path), **kwargs)


def test_rating_range_is_configurable(tmp_path: Path) -> None:
    data = read_interactions_dir(write_dir(tmp_path), task="rating", rating_range=(0.0, 10.0))
    assert data.rating_range == (0.0, 10.0)
    with pytest.raises(DataError, match=r"outside the range \[2, 5\]"):
        read_interactions_dir(tmp_path, task="rating", rating_range=(2, 5))


# -- load_pair_data. -----------------------------------------------------------------------------


def data_config(**fields) -> ml_collections.ConfigDict:
    return ml_collections.ConfigDict({"format": "interactions", "path": "", **fields})


def test_load_pair_data_reads_a_folder_and_reports(tmp_path: Path) -> None:
    write_dir(tmp_path, train=[*TRAIN, "u9,i1,3,1,,"])
    report = ReadReport()
    cfg = data_config(path=str(tmp_path), task="click", unknown_ids="skip", dev_fraction=0.3)
    data = load_pair_data(cfg, report)
    assert data.task == "click" and (len(data.train), len(data.dev)) == (2, 1)
    assert report.as_dict() == {"train.unknown_user": 1}


def test_the_validation_split_is_carved_from_train_seeded_or_read_from_dev(tmp_path) -> None:
    cfg = data_config(task="click", dev_fraction=0.2)
    whole = read_pair_data(cfg, ReadReport())
    data, again = load_pair_data(cfg), load_pair_data(cfg)
    assert len(data.dev) == round(0.2 * len(whole.train))
    assert len(data.train) + len(data.dev) == len(whole.train)
    assert list(data.dev.lines) == list(again.dev.lines)  # seeded: the same rows each time
    assert not set(data.dev.lines) & set(data.train.lines)  # disjoint, in file order
    assert list(data.dev.lines) == sorted(data.dev.lines)
    assert len(data.test) == len(whole.test)  # the test split is never touched

    folder = write_dir(tmp_path)
    write(folder / "dev.csv", ["user_id,item_id,rating,click,labels", "u2,i3,4,1,gift"])
    own = load_pair_data(data_config(path=str(folder), task="multilabel", dev_fraction=0.5))
    assert len(own.train) == 3 and list(own.dev.users) == ["u2"]  # its own dev: train kept
    assert own.dev.targets.tolist() == [[0.0, 1.0, 0.0]]  # multi-hot over eco, gift, sale


def test_load_pair_data_refuses_an_unknown_format() -> None:
    with pytest.raises(ConfigError, match="data.format must be one of") as caught:
        load_pair_data(data_config(format="movielens20m"))
    assert "movielens100k" in str(caught.value) and "interactions" in str(caught.value)


# -- The shipped ecommerce sample. --------------------------------------------------------------


def test_shipped_sample_matches_its_script(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, str(SCRIPT), "--out", str(tmp_path)], check=True, capture_output=True
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(SAMPLE_FILES)
    for name in SAMPLE_FILES:
        assert (tmp_path / name).read_bytes() == (SAMPLE / name).read_bytes(), name


@pytest.fixture(scope="module")
def sample() -> dict[str, object]:
    return {
        task: read_pair_data(data_config(task=task), ReadReport())
        for task in ("rating", "click", "multilabel")
    }


@pytest.fixture(scope="module")
def generator():
    """scripts/make_ecommerce_sample.py as a module."""
    spec = importlib.util.spec_from_file_location("make_ecommerce_sample", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def generated(generator, sample):
    """Users, items, train and test rows as the generator makes them, each row with the
    probabilities it was drawn from; checked against the shipped files."""
    users, items, train, test = generator.generate()
    for rows, part in ((train, sample["click"].train), (test, sample["click"].test)):
        assert [r["user_id"] for r in rows] == list(part.users)
        assert [r["item_id"] for r in rows] == list(part.items)
        assert [r["click"] for r in rows] == part.targets.tolist()
    return users, items, train, test


def test_sample_sizes(sample: dict) -> None:
    data = sample["multilabel"]
    assert (len(data.user_text), len(data.item_text)) == (300, 400)
    assert (len(data.train), len(data.test)) == (7036, 2063)
    assert data.label_names == ("eco", "family", "gift", "premium", "sale")
    assert sum(p.stat().st_size for p in SAMPLE.iterdir()) < 1_000_000
    pairs = {
        (u, i)
        for part in (data.train, data.test)
        for u, i in zip(part.users, part.items, strict=True)
    }
    assert len(pairs) == len(data.train) + len(data.test), "a pair appears twice"


def test_sample_targets_look_like_a_shop(sample: dict) -> None:
    ratings = sample["rating"].train.targets
    assert set(np.unique(ratings)) == {1, 2, 3, 4, 5} and 3.2 < ratings.mean() < 3.9
    assert 0.3 < sample["click"].train.targets.mean() < 0.6
    label_rates = sample["multilabel"].train.targets.mean(axis=0)
    assert np.all((label_rates > 0.04) & (label_rates < 0.2)), label_rates


def test_sample_activity_and_popularity_are_skewed(sample: dict) -> None:
    data = sample["click"]
    users = np.concatenate([data.train.users, data.test.users])
    items = np.concatenate([data.train.items, data.test.items])
    per_user = np.array(list(collections.Counter(users).values()))
    seen = collections.Counter(items)
    assert per_user.min() >= 8 and per_user.max() > 4 * np.median(per_user)
    per_item = np.array([seen[i] for i in data.item_text])
    assert np.mean(per_item < 5) > 0.15  # a long tail of products with a handful of rows
    assert per_item.max() > 0.25 * len(data.user_text)  # and a few that everyone sees
    new = set(data.test.items) - set(data.train.items)
    assert len(new) >= 10, "new products, in test only"
    assert 0.05 < np.isin(data.test.items, list(new)).mean() < 0.25


KEYWORDS = ("cooking", "hiking", "gaming", "reading", "playtime", "skincare")
LABEL_WORDS = {
    "eco": "eco-friendly",
    "family": "family",
    "gift": "gift",
    "premium": "premium",
    "sale": "sale",
}


def _shared_keyword(data, part) -> np.ndarray:
    return np.array(
        [
            any(k in data.user_text[u] and k in data.item_text[i] for k in KEYWORDS)
            for u, i in zip(part.users, part.items, strict=True)
        ]
    )


def test_sample_signal_is_in_the_text(sample: dict) -> None:
    """Sharing a keyword in profile and description raises clicks; labels need both sides."""
    click = sample["click"]
    clicks = click.train.targets
    shared = _shared_keyword(click, click.train)
    assert clicks[shared].mean() - clicks[~shared].mean() > 0.2

    multi = sample["multilabel"]
    for column, name in enumerate(multi.label_names):
        word = LABEL_WORDS[name]
        both = np.array(
            [
                word in multi.user_text[u].lower() and word in multi.item_text[i].lower()
                for u, i in zip(multi.train.users, multi.train.items, strict=True)
            ]
        )
        rates = multi.train.targets[both, column].mean(), multi.train.targets[~both, column].mean()
        assert rates[0] > 0.5 and rates[1] < 0.1, (name, rates)


def test_sample_signal_is_also_in_the_log(sample: dict) -> None:
    """What the text does not say shows in what a shopper did: on rows where profile and
    description share no keyword, a shopper's training click rate ranks their test clicks."""
    data = sample["click"]
    quiet = ~_shared_keyword(data, data.train)
    sums = collections.Counter()
    counts = collections.Counter(data.train.users[quiet])
    for user, y in zip(data.train.users[quiet], data.train.targets[quiet], strict=True):
        sums[user] += y
    prior = data.train.targets[quiet].mean()
    test_quiet = ~_shared_keyword(data, data.test)
    users = data.test.users[test_quiet]
    rate = np.array([(sums[u] + 5 * prior) / (counts[u] + 5) for u in users])
    assert pair_metrics.binary_auc(data.test.targets[test_quiet], rate) > 0.55


def test_oracle_json_is_the_generators(generator, generated) -> None:
    _, _, train, test = generated
    # The probabilities are the ones the rows were drawn with: calibrated on all rows.
    rows = train + test
    p = np.array([r["p_click"] for r in rows])
    clicks = np.array([r["click"] for r in rows])
    for quarter in np.array_split(np.argsort(p), 4):
        assert abs(clicks[quarter].mean() - p[quarter].mean()) < 0.03
    labels = np.array([[name in r["labels"] for name in generator.LABELS] for r in rows])
    p_labels = np.array([r["p_labels"] for r in rows])
    np.testing.assert_allclose(labels.mean(axis=0), p_labels.mean(axis=0), atol=0.01)
    ratings = np.array([r["rating"] for r in rows])
    expected, _ = generator.expected_ratings(np.array([r["p_mean"] for r in rows]))
    assert abs(ratings.mean() - expected.mean()) < 0.02

    oracle = json.loads((SAMPLE / "oracle.json").read_text())
    truth = generator.targets(test)
    assert oracle["n_test"] == len(test)
    assert pair_metrics.binary_auc(truth["click"], generator.oracle_predictions(test)["click"]) == (
        pytest.approx(oracle["all"]["click"]["auc"], abs=1e-4)
    )
    p_test = np.array([r["p_labels"] for r in test])
    assert pair_metrics.mean_average_precision(truth["labels"], p_test) == pytest.approx(
        oracle["all"]["multilabel"]["map"], abs=1e-4
    )
    new = np.array([r["new"] for r in test])
    assert oracle["n_new_items"] == new.sum() > 100
    rmse = pair_metrics.rmse(truth["rating"][new], expected[len(train) :][new])
    assert rmse == pytest.approx(oracle["new_items"]["rating"]["rmse"], abs=1e-4)


def test_oracle_is_far_above_the_item_rate_baselines(generator, generated) -> None:
    """jaxrec's baselines (item rates, damped biases) leave a wide gap to the oracle, widest on
    new products, where an item rate knows nothing."""
    _, _, train, test = generated
    truth = generator.targets(test)
    new = np.array([r["new"] for r in test])
    baseline = generator.baseline_predictions(train, test)
    oracle = json.loads((SAMPLE / "oracle.json").read_text())
    ours = generator.task_metrics(truth, baseline)
    assert ours["click"]["auc"] + 0.15 < oracle["all"]["click"]["auc"]
    assert ours["multilabel"]["map"] + 0.15 < oracle["all"]["multilabel"]["map"]
    assert ours["rating"]["rmse"] - 0.1 > oracle["all"]["rating"]["rmse"]
    new_click = pair_metrics.binary_auc(truth["click"][new], baseline["click"][new])
    assert new_click == 0.5 and oracle["new_items"]["click"]["auc"] > 0.7
