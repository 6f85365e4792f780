"""Hostile inputs the fuzzing found or that readers once got wrong, pinned one by one, and the
ReadReport's per-role counts and skipped-share check."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest

from jaxrec.data import mind, movielens
from jaxrec.data.interactions import read_interactions_dir
from jaxrec.data.pairs import parse_number
from jaxrec.data.report import ReadReport
from jaxrec.errors import ConfigError, DataError

TIME = "11/11/2019 9:05:07 AM"


def write_mind(folder: Path, news: list[str], behaviors: list[str]) -> Path:
    (folder / "news.tsv").write_text("".join(r + "\n" for r in news), encoding="utf-8")
    (folder / "behaviors.tsv").write_text("".join(r + "\n" for r in behaviors), encoding="utf-8")
    return folder


NEWS = [f"N{i}\tc\ts\tTitle {i}\t\t\t\t" for i in (1, 2, 3)]


# -- MIND. -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "field", ["\xa0N1-0 N2-1", "N1-0 \x0cN2-1", "N1-0 N2-1\u3000", "N1-0 \x85N2-1"]
)
def test_whitespace_beside_a_space_never_sticks_to_a_candidate_id(tmp_path, field) -> None:
    # Once glued to the next ID ("\x0cN2"), it made a news ID missing from news.tsv, read as
    # empty news without an error.
    split = mind.read_split(write_mind(tmp_path, NEWS, [f"1\tU1\t{TIME}\t\t{field}"]))
    assert split.impressions[0].candidates == ("N1", "N2")
    assert list(split.news) == ["N1", "N2", "N3"]


def test_a_rejected_first_row_does_not_decide_whether_the_file_is_labelled(tmp_path) -> None:
    # "N1" (no label) used to mark the file unlabelled before the row was rejected, so every
    # later, labelled row was dropped as bad too.
    behaviors = [
        f"1\tU1\t{TIME}\t\tN1 N2-1",
        f"2\tU1\t{TIME}\t\tN1-0 N2-1",
        f"3\tU2\t{TIME}\t\tN3-1",
    ]
    report = ReadReport()
    split = mind.read_split(
        write_mind(tmp_path, NEWS, behaviors), skip_bad_rows=True, report=report
    )
    assert [imp.impression_id for imp in split.impressions] == ["2", "3"]
    assert split.labelled and report.as_dict() == {"behaviors.bad_row": 1}


def test_a_news_id_with_whitespace_is_refused(tmp_path) -> None:
    with pytest.raises(DataError, match="contains whitespace") as caught:
        mind.read_news(write_mind(tmp_path, ["N 1\tc\ts\tt\t\t\t\t"], []) / "news.tsv")
    assert (caught.value.line, caught.value.field) == (1, "news_id")


def test_utf16_nul_and_bom_only_files(tmp_path) -> None:
    path = tmp_path / "news.tsv"
    path.write_bytes("N1\tc\ts\tt\t\t\t\t\n".encode("utf-16"))
    with pytest.raises(DataError, match="UTF-16") as caught:
        mind.read_news(path, skip_bad_rows=True)
    assert caught.value.line == 1
    path.write_bytes("N1\tc\ts\tt\t\t\t\t\n".encode("utf-16-le"))  # no byte order mark
    with pytest.raises(DataError, match="NUL"):
        mind.read_news(path, skip_bad_rows=True)
    path.write_bytes(b"\xef\xbb\xbf")
    report = ReadReport()
    assert mind.read_news(path, report=report) == {} and report.as_dict() == {}


def test_a_huge_bad_field_is_shown_cut_short(tmp_path) -> None:
    write_mind(tmp_path, NEWS, [f"1\tU1\t{'9' * 100_000}\t\tN1-1"])
    with pytest.raises(
        DataError, match=r"cannot parse time '9{10,}\.\.\.9+' \(100002 chars\)"
    ) as c:
        mind.read_split(tmp_path)
    assert len(str(c.value)) < 400


def test_a_missing_final_newline_is_read_and_noted(tmp_path) -> None:
    (tmp_path / "news.tsv").write_text("\n".join(NEWS), encoding="utf-8")
    (tmp_path / "behaviors.tsv").write_text(f"1\tU1\t{TIME}\t\tN1-1", encoding="utf-8")
    report = ReadReport()
    split = mind.read_split(tmp_path, report=report)
    assert len(split.news) == 3 and len(split.impressions) == 1
    assert report.as_dict() == {"behaviors.no_final_newline": 1, "news.no_final_newline": 1}
    assert report.rows_dict() == {"news": 3, "behaviors": 1}


def test_the_tfds_builder_names_the_bad_file_and_line(tmp_path) -> None:
    import tensorflow_datasets as tfds

    from jaxrec.data import tfds_mind

    for split, behaviors in (
        ("train", [f"1\tU1\t{TIME}\t\tN1-1"]),
        ("dev", ["2\tU1\tnoon\t\tN2-1"]),
    ):
        (tmp_path / "manual" / split).mkdir(parents=True)
        write_mind(tmp_path / "manual" / split, NEWS, behaviors)
    builder = tfds_mind.Mind(config="small", data_dir=str(tmp_path / "data"))
    config = tfds.download.DownloadConfig(manual_dir=str(tmp_path / "manual"))
    with pytest.raises(DataError) as caught:
        builder.download_and_prepare(download_config=config)
    dev = tmp_path / "manual" / "dev" / "behaviors.tsv"
    assert (caught.value.path, caught.value.line, caught.value.field) == (str(dev), 1, "time")


# -- Generic interactions. ---------------------------------------------------------------------


def write_folder(folder: Path, **files: str) -> Path:
    contents = {
        "users.csv": "id,city\nu1,Bern\n",
        "items.csv": "id,title\ni1,Mug\n",
        "train.csv": "user_id,item_id,rating\nu1,i1,4\n",
        "test.csv": "user_id,item_id,rating\nu1,i1,5\n",
    }
    contents |= {name.replace("_", "."): text for name, text in files.items()}
    for name, text in contents.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


PAIR = '"user_id": "u1", "item_id": "i1"'
DEEP = "[" * 100_000 + "]" * 100_000


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (f'{{{PAIR}, "rating": {"9" * 5000}}}', "Exceeds the limit"),
        (f'{{{PAIR}, "rating": 4, "x": {DEEP}}}', "nested too deeply"),
        ('{"user_id": "\\ud800", "item_id": "i1", "rating": 4}', "unpaired UTF-16 surrogate"),
        (f'{{{PAIR}, "rating": 4, "rating": 5}}', "'rating' appears twice"),
    ],
)
def test_hostile_json_lines_are_bad_rows_on_their_line(tmp_path, line, message) -> None:
    # Each used to escape as ValueError, RecursionError, a crash in the token cache, or the
    # last value silently winning.
    (write_folder(tmp_path) / "test.csv").unlink()
    (tmp_path / "test.jsonl").write_text('{"user_id": "u1", "item_id": "i1", "rating": 3}\n' + line)
    with pytest.raises(DataError, match=message) as caught:
        read_interactions_dir(tmp_path, task="rating")
    assert (caught.value.path, caught.value.line) == (str(tmp_path / "test.jsonl"), 2)
    report = ReadReport()
    data = read_interactions_dir(tmp_path, task="rating", skip_bad_rows=True, report=report)
    assert len(data.test) == 1 and report.as_dict()["test.bad_row"] == 1


def test_a_json_integer_too_large_for_a_float_is_a_bad_rating(tmp_path) -> None:
    (write_folder(tmp_path) / "test.csv").unlink()
    big = "1" + "0" * 400  # json reads it; float() of it raised OverflowError
    (tmp_path / "test.jsonl").write_text(f'{{"user_id": "u1", "item_id": "i1", "rating": {big}}}\n')
    with pytest.raises(DataError, match="expected a finite number") as caught:
        read_interactions_dir(tmp_path, task="rating")
    assert (caught.value.line, caught.value.field) == (1, "rating")


@pytest.mark.parametrize("text", ["1_0", "٤", "４", "NaN", "infinity", "0x4", "4 5", "½"])
def test_numbers_are_plain_ascii_decimals(text) -> None:
    with pytest.raises(DataError, match="expected a finite number"):
        parse_number(text, path="train.csv", line=3, field="rating")


def test_a_csv_field_longer_than_the_csv_module_default_reads_whole(tmp_path) -> None:
    # Python's csv refused fields over 128 KiB, and after refusing a quoted one read its
    # remainder as rows of their own.
    bio = "word, " * 40_000
    write_folder(tmp_path, users_csv=f'id,city\nu1,"{bio}"\nu2,Rome\n')
    data = read_interactions_dir(tmp_path, task="rating")
    assert data.user_text["u1"] == f"city: {bio.strip()}" and "u2" in data.user_text


def test_a_broken_quote_is_an_error_even_when_skipping(tmp_path) -> None:
    write_folder(tmp_path, users_csv='id,city\nu1,"Bern\nu2,Rome\nu3,Oslo\n')
    with pytest.raises(DataError, match="never closed") as caught:
        read_interactions_dir(tmp_path, task="rating", skip_bad_rows=True)
    assert (caught.value.path, caught.value.line) == (str(tmp_path / "users.csv"), 2)
    write_folder(tmp_path, users_csv='id,city\n"u1"x,Bern\nu2,"Rome\nRome",x\n')
    with pytest.raises(DataError, match="expected after") as caught:
        read_interactions_dir(tmp_path, task="rating", skip_bad_rows=True)
    assert caught.value.line == 2


def test_a_carriage_return_inside_an_unquoted_csv_field_is_text(tmp_path) -> None:
    # What csv.writer(lineterminator="\n") and pandas' to_csv write for such a value.
    write_folder(tmp_path, items_csv="id,title\ni1,Mug\rlarge\ni2,Pan\r\n")
    data = read_interactions_dir(tmp_path, task="rating")
    assert data.item_text == {"i1": "title: Mug\rlarge", "i2": "title: Pan"}


def test_a_line_of_spaces_in_a_csv_is_a_bad_row_not_a_blank_one(tmp_path) -> None:
    write_folder(tmp_path, users_csv="id\nu1\n   \n")
    with pytest.raises(DataError, match="empty id") as caught:
        read_interactions_dir(tmp_path, task="rating")
    assert caught.value.line == 3


# -- MovieLens. --------------------------------------------------------------------------------


def write_100k(folder: Path, encoding: str, bom: bool = False) -> Path:
    flags = "|".join(["0"] * 4 + ["1"] + ["0"] * 14)
    files = {
        "u.user": "1|24|M|technician|85711\n",
        "u.item": f"1|Amélie (2001)|01-Jan-2001||http://x|{flags}\n",
        "u1.base": "1\t1\t5\t874965758\n",
        "u1.test": "1\t1\t4\t874965759\n",
    }
    for name, text in files.items():
        data = text.encode(encoding)
        (folder / name).write_bytes((b"\xef\xbb\xbf" if bom else b"") + data)
    return folder


@pytest.mark.parametrize("encoding", ["latin-1", "utf-8"])
@pytest.mark.parametrize("bom", [False, True])
def test_movielens_in_either_encoding_reads_without_mojibake(tmp_path, encoding, bom) -> None:
    # UTF-8 copies read as "AmÃ©lie", and a BOM stuck to the first user ID ("ï»¿1") made
    # every rating of that user an unknown ID.
    data = movielens.read_movielens_100k(write_100k(tmp_path, encoding, bom))
    assert data.item_text["1"] == "Amélie (2001); genres: Children's"
    assert list(data.user_text) == ["1"] and len(data.train) == len(data.test) == 1


def test_movielens_gender_and_occupation_are_checked(tmp_path) -> None:
    write_100k(tmp_path, "latin-1")
    (tmp_path / "u.user").write_text("1|24|male|technician|85711\n")
    with pytest.raises(DataError, match="gender must be one of") as caught:
        movielens.read_movielens_100k(tmp_path)
    assert (caught.value.line, caught.value.field) == (1, "gender")
    (tmp_path / "u.user").write_text("1|24|M||85711\n")
    with pytest.raises(DataError, match="empty occupation"):
        movielens.read_movielens_100k(tmp_path)


def test_an_empty_u_genre_is_an_error(tmp_path) -> None:
    (write_100k(tmp_path, "latin-1") / "u.genre").write_text("\n")
    with pytest.raises(DataError, match="no genres") as caught:
        movielens.read_movielens_100k(tmp_path)
    assert caught.value.path == str(tmp_path / "u.genre")


def tfds_columns(**changes) -> dict[str, np.ndarray]:
    columns = {
        "user_id": np.array([b"1", b"2"], dtype=object),
        "movie_id": np.array([b"10", b"10"], dtype=object),
        "user_rating": np.array([4.0, 2.0]),
        "bucketized_user_age": np.array([25.0, 25.0]),
        "user_gender": np.array([True, False]),
        "user_occupation_text": np.array([b"writer", b"doctor"], dtype=object),
        "movie_title": np.array([b"Heat (1995)", b"Heat (1995)"], dtype=object),
        "movie_genres": np.array([[1, 0], [1, 0]]),
    }
    for key, (row, value) in changes.items():
        columns[key][row] = value
    return columns


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("user_id", b"\xff", "invalid UTF-8"),
        ("user_occupation_text", b"caf\xe9", "invalid UTF-8"),
        ("user_rating", float("nan"), "not a number in"),
        ("user_rating", 0.0, "not a number in"),
        ("movie_id", b" ", "empty movie_id"),
    ],
)
def test_tfds_movielens_values_that_cannot_be_used_name_example_and_feature(key, value, message):
    columns = tfds_columns(**{key: (1, value)})
    with pytest.raises(DataError, match=message) as caught:
        movielens.pair_data_from_tfds_columns(
            columns, ("Drama", "Comedy"), seed=0, test_fraction=0.5
        )
    assert (caught.value.path, caught.value.line, caught.value.field) == (
        f"tfds:{movielens.TFDS_NAME}",
        2,
        key,
    )


def test_tfds_movielens_unknown_age_bucket_is_counted() -> None:
    report = ReadReport()
    data = movielens.pair_data_from_tfds_columns(
        tfds_columns(bucketized_user_age=(1, 7.0)), ("Drama", "Comedy"), seed=0,
        test_fraction=0.5, report=report,
    )  # fmt: skip
    assert data.user_text["2"].startswith("age unknown,")
    assert report.as_dict() == {"users.unknown_age": 1}
    assert report.rows_dict() == {"ratings": 2}


# -- ReadReport. -------------------------------------------------------------------------------


def test_check_share_names_the_role_the_counts_and_the_config_key(caplog) -> None:
    report = ReadReport()
    report.read("behaviors", 10, "dev/behaviors.tsv")
    report.read("news", 5, "dev/news.tsv")
    report.skip("behaviors.bad_row", 2, example="dev/behaviors.tsv:3: blank line")
    report.skip("behaviors.duplicate_id", example="dev/behaviors.tsv:9: duplicate")
    report.add("history.unknown_news", 40)  # defaulted, not skipped: never counts
    report.check_share(0.3)
    with pytest.raises(DataError) as caught:
        report.check_share(0.25)
    message = str(caught.value)
    assert caught.value.path == "dev/behaviors.tsv"
    assert "skipped 3 of 10 behaviors rows (30.0%" in message
    assert "data.max_skipped_share=0.25" in message
    assert "behaviors.bad_row: 2, behaviors.duplicate_id: 1" in message
    assert "first: dev/behaviors.tsv:3: blank line" in message
    with caplog.at_level(logging.WARNING):
        report.log(logging.getLogger("jaxrec.test"))
    assert "behaviors.bad_row: 2 rows skipped, e.g. dev/behaviors.tsv:3" in caplog.text
    assert "history.unknown_news: 40 (rows kept)" in caplog.text


def test_check_share_counts_skips_of_a_role_that_read_nothing() -> None:
    report = ReadReport()
    report.skip("ratings.bad_row")
    with pytest.raises(DataError, match="skipped 1 of 0 ratings rows"):
        report.check_share(0.5)


@pytest.mark.parametrize("share", [-0.1, 1.5, "0.1", True, float("nan")])
def test_check_share_refuses_a_share_that_is_not_a_fraction(share) -> None:
    with pytest.raises(ConfigError, match="data.max_skipped_share"):
        ReadReport().check_share(share)


def test_merge_keeps_rows_files_and_which_reasons_skip() -> None:
    a, b = ReadReport(), ReadReport()
    a.read("news", 3, "train/news.tsv")
    b.read("news", 4, "dev/news.tsv")
    b.skip("news.bad_row", example="dev/news.tsv:2: blank line")
    a.merge(b)
    assert a.rows_dict() == {"news": 7} and a.skipped("news") == 1
    assert a.files == {"news": ["train/news.tsv", "dev/news.tsv"]}
    assert json.dumps(a.as_dict()) == '{"news.bad_row": 1}'
