"""The TFDS MIND builder: built from a manual folder, it stores exactly what read_split reads."""

from __future__ import annotations

from pathlib import Path

import pytest
import tensorflow_datasets as tfds

from jaxrec.data import mind, tfds_mind
from jaxrec.errors import DataError

SAMPLE_DIR = Path(tfds_mind.__file__).parent / "samples" / "mind"

NEWS = [
    "N1\tsports\tfootball\tCafé “quoted” 東京\tAn abstract.\thttps://x/1\t[]\t[]",
    "N2\tfinance\tmarkets\tStocks rise\t\thttps://x/2\t\t",
    "N3\thealth\tvoices\tSleep well\tRest.\thttps://x/3\t[]\t[]",
]
SPLITS = {
    "train": [
        "1\tU1\t11/11/2019 9:05:07 AM\tN1 N2\tN3-1 N2-0",
        "2\tU2\t11/11/2019 12:00:00 AM\t\tN1-0 N3-0 N9-1",  # empty history, unknown N9
        "3\tU1\t11/12/2019 1:30:00 PM\tN1 N2\tN2-0",
    ],
    "dev": ["10\tU3\t11/15/2019 8:00:00 AM\tN3\tN1-1 N2-0"],
    "test": [
        "20\tU4\t11/16/2019 8:00:00 PM\tN1 N8\tN2 N3",  # unknown N8 in the history
        "21\tU5\t11/16/2019 8:01:00 PM\t\tN1",
    ],
}


def write_mind(root: Path, splits: dict[str, list[str]]) -> Path:
    for folder, behaviors in splits.items():
        (root / folder).mkdir(parents=True, exist_ok=True)
        (root / folder / "news.tsv").write_text("".join(r + "\n" for r in NEWS), encoding="utf-8")
        (root / folder / "behaviors.tsv").write_text("".join(r + "\n" for r in behaviors))
    return root


def build(config: str, manual_dir: Path, data_dir: Path) -> tfds.core.DatasetBuilder:
    builder = tfds_mind.Mind(config=config, data_dir=str(data_dir))
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=str(manual_dir))
    )
    return builder


def text(value: bytes) -> str:
    return value.decode("utf-8")


def assert_split_matches(builder: tfds.core.DatasetBuilder, split: str, folder: Path) -> None:
    """Every stored example equals, field by field and in file order, read_split's impression."""
    expected = mind.read_split(folder)
    examples = list(tfds.as_numpy(builder.as_dataset(split=split)))
    assert len(examples) == len(expected.impressions) > 0
    table = tfds_mind.news_table(folder)
    for example, imp in zip(examples, expected.impressions, strict=True):
        assert text(example["impression_id"]) == imp.impression_id
        assert text(example["user_id"]) == imp.user_id
        assert text(example["time"]) == imp.time.isoformat()
        assert [text(x) for x in example["history"]] == list(imp.history)
        assert [text(x) for x in example["candidates"]] == list(imp.candidates)
        want = imp.labels if imp.labels is not None else (-1,) * len(imp.candidates)
        assert example["labels"].dtype.name == "int32"
        assert example["labels"].tolist() == list(want)
        # Every ID an example names resolves in the split's news table.
        assert set(imp.history) | set(imp.candidates) <= table.keys()


def test_build_from_manual_folder_matches_read_split(tmp_path: Path) -> None:
    manual = write_mind(tmp_path / "manual", SPLITS)
    builder = build("large", manual, tmp_path / "tfds")

    assert set(builder.info.splits) == {"train", "validation", "test"}
    assert builder.info.splits["train"].num_examples == 3
    for split, folder in tfds_mind.SPLIT_FOLDERS.items():
        assert_split_matches(builder, split, manual / folder)

    # Spot checks that do not go through read_split, in case it and the builder share a bug.
    first = next(iter(tfds.as_numpy(builder.as_dataset(split="train"))))
    assert text(first["time"]) == "2019-11-11T09:05:07"
    test_labels = [e["labels"].tolist() for e in tfds.as_numpy(builder.as_dataset(split="test"))]
    assert test_labels == [[-1, -1], [-1]]
    table = tfds_mind.news_table(manual / "train")
    assert table["N1"].title == "Café “quoted” 東京"
    assert table["N9"] == mind.News("N9", "", "", "", "")


def test_manual_folder_without_dev_is_refused(tmp_path: Path) -> None:
    manual = write_mind(tmp_path / "manual", {"train": SPLITS["train"]})
    with pytest.raises(DataError, match="lacks dev/") as caught:
        build("small", manual, tmp_path / "tfds")
    assert caught.value.path == str(manual)


class FakeDownloadManager:
    """Stands in for TFDS's: no manual folder, and "downloads" that are already extracted."""

    def __init__(self, extracted: dict[str, Path]) -> None:
        self.extracted = extracted
        self.requested: dict[str, str] | None = None

    @property
    def manual_dir(self) -> Path:
        raise AssertionError("Manual directory not enabled.")

    def download_and_extract(self, urls: dict[str, str]) -> dict[str, Path]:
        self.requested = urls
        return self.extracted


def test_without_manual_folder_uses_the_downloads(tmp_path: Path) -> None:
    # One zip extracts its files at the top, the other into a folder of its own.
    write_mind(tmp_path / "train_zip", {".": SPLITS["train"]})
    write_mind(tmp_path / "dev_zip", {"MINDsmall_dev": SPLITS["dev"]})
    dl = FakeDownloadManager({"train": tmp_path / "train_zip", "validation": tmp_path / "dev_zip"})
    builder = tfds_mind.Mind(config="small", data_dir=str(tmp_path / "tfds"))

    generators = builder._split_generators(dl)

    assert dl.requested == builder.builder_config.urls
    ids = {split: [ex["impression_id"] for _, ex in gen] for split, gen in generators.items()}
    assert ids == {"train": ["1", "2", "3"], "validation": ["10"]}


def test_configs_know_where_mind_is_served() -> None:
    host = "https://recodatasets.z20.web.core.windows.net/newsrec/"
    configs = {c.name: c for c in tfds_mind.Mind.BUILDER_CONFIGS}
    assert configs["small"].urls == {
        "train": f"{host}MINDsmall_train.zip",
        "validation": f"{host}MINDsmall_dev.zip",
    }
    assert configs["large"].urls == {
        "train": f"{host}MINDlarge_train.zip",
        "validation": f"{host}MINDlarge_dev.zip",
        "test": f"{host}MINDlarge_test.zip",
    }
    assert configs["demo"].urls["train"] == f"{host}MINDdemo_train.zip"


def test_a_news_config_reads_mind_through_the_builder(tmp_path: Path, monkeypatch) -> None:
    """data.source="tfds": the builder supplies the split folders, from a manual folder or
    from its downloads (faked here: no network), and training reads the same impressions."""
    from configs import news as news_config
    from jaxrec.data.news_data import split_folder

    manual = write_mind(tmp_path / "manual", SPLITS)
    c = news_config.get_config("mind")
    c.data.tfds_config, c.data.tfds_data_dir = "large", str(tmp_path / "tfds")
    c.data.dir = str(manual)  # the manual-folder route, for machines without a network
    for name in ("train", "dev", "test"):
        assert split_folder(c.data, name) == manual / name
        want = mind.read_split(manual / name).impressions
        assert mind.read_split(split_folder(c.data, name)).impressions == want

    c.data.dir = ""  # no manual folder: the builder downloads (its download manager, faked)
    write_mind(tmp_path / "dev_zip", {"MINDlarge_dev": SPLITS["dev"]})
    fake = FakeDownloadManager({"validation": tmp_path / "dev_zip"})
    monkeypatch.setattr(tfds_mind.Mind, "_make_download_manager", lambda self, *a: fake)
    assert split_folder(c.data, "dev") == tmp_path / "dev_zip" / "MINDlarge_dev"
    assert fake.requested["validation"].endswith("/newsrec/MINDlarge_dev.zip")
    with pytest.raises(DataError, match="no train split"):
        split_folder(c.data, "train")


def test_build_bundled_sample(tmp_path: Path) -> None:
    builder = build("small", SAMPLE_DIR, tmp_path / "tfds")
    for split in ("train", "validation"):
        assert_split_matches(builder, split, SAMPLE_DIR / tfds_mind.SPLIT_FOLDERS[split])


def test_the_mind_config_needs_no_folder_and_names_a_wrong_source() -> None:
    from configs import news as news_config
    from jaxrec.config_checks import check_config
    from jaxrec.errors import ConfigError

    c = news_config.get_config("mind")
    check_config(c)  # data.source="tfds" with no data.dir: the builder downloads MIND
    c.data.tfds_config = "huge"
    with pytest.raises(ConfigError, match="data.tfds_config"):
        check_config(c)
    c.data.source = "web"
    with pytest.raises(ConfigError, match="data.source"):
        check_config(c)
