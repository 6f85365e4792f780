"""TensorFlow Datasets builder for MIND: one example per impression, news text kept apart.

Examples hold IDs only (history and candidates as news IDs); the news text, shared by millions
of impressions, lives in the news table that :func:`news_table` returns for a split folder.
Both are read by :func:`jaxrec.data.mind.read_split`, so the builder and the plain reader can
never disagree about the format.

Build from a folder you unzipped yourself (see ``Mind.MANUAL_DOWNLOAD_INSTRUCTIONS``)::

    builder = Mind(config="small", data_dir="~/tensorflow_datasets")
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir="~/mind/MINDsmall")
    )
    train = builder.as_dataset(split="train")

Without a manual folder the builder downloads the zips (``MindConfig.urls``) through TFDS.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow_datasets as tfds

from jaxrec.data import mind
from jaxrec.errors import DataError

log = logging.getLogger(__name__)

HOMEPAGE = "https://msnews.github.io/"
# Where the MIND zips are served now (the original mind201910small.blob.core.windows.net
# host is retired): MINDsmall_*, MINDlarge_* and MINDdemo_* side by side.
DOWNLOAD_URL = "https://recodatasets.z20.web.core.windows.net/newsrec/"

# TFDS split name -> folder name, as the official zips call their parts.
SPLIT_FOLDERS = {"train": "train", "validation": "dev", "test": "test"}
REQUIRED_SPLITS = ("train", "validation")

UNLABELLED = -1  # the label stored for every candidate of the unlabelled test split

_CITATION = """\
@inproceedings{wu2020mind,
  title = {{MIND}: A Large-scale Dataset for News Recommendation},
  author = {Wu, Fangzhao and Qiao, Ying and Chen, Jiun-Hung and Wu, Chuhan and Qi, Tao and
            Lian, Jianxun and Liu, Danyang and Xie, Xing and Gao, Jianfeng and Wu, Winnie and
            Zhou, Ming},
  booktitle = {Proceedings of the 58th Annual Meeting of the Association for Computational
               Linguistics},
  pages = {3597--3606},
  year = {2020},
}
"""


@dataclasses.dataclass(eq=False)
class MindConfig(tfds.core.BuilderConfig):
    """One MIND variant: where its zips live, keyed by TFDS split name."""

    urls: dict[str, str] = dataclasses.field(default_factory=dict)


def _config(name: str, root: str, prefix: str, splits: tuple[str, ...], about: str) -> MindConfig:
    urls = {split: f"{root}{prefix}_{SPLIT_FOLDERS[split]}.zip" for split in splits}
    return MindConfig(name=name, description=about, urls=urls)


class Mind(tfds.core.GeneratorBasedBuilder):
    """MIND impressions (Wu et al., ACL 2020); registered in TFDS as ``mind``."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Impressions with news IDs; news text via news_table()."}
    BUILDER_CONFIGS = [
        _config(
            "small", DOWNLOAD_URL, "MINDsmall", REQUIRED_SPLITS, "MIND-small: 50k users sampled."
        ),
        _config(
            "large",
            DOWNLOAD_URL,
            "MINDlarge",
            (*REQUIRED_SPLITS, "test"),
            "MIND: 1M users; the test split is unlabelled (labels are -1).",
        ),
        _config(
            "demo", DOWNLOAD_URL, "MINDdemo", REQUIRED_SPLITS, "MIND-demo: a sample of MIND-small."
        ),
    ]
    MANUAL_DOWNLOAD_INSTRUCTIONS = f"""\
    Download the MIND zips for the chosen config from {HOMEPAGE} (or {DOWNLOAD_URL}
    MINDsmall_train.zip, MINDsmall_dev.zip; MINDlarge_train.zip, MINDlarge_dev.zip,
    MINDlarge_test.zip) and unzip them so that the manual folder reads:

        <manual_dir>/train/news.tsv  <manual_dir>/train/behaviors.tsv
        <manual_dir>/dev/news.tsv    <manual_dir>/dev/behaviors.tsv
        <manual_dir>/test/...        (optional: MINDlarge only, unlabelled)
    """

    def _info(self) -> tfds.core.DatasetInfo:
        return tfds.core.DatasetInfo(
            builder=self,
            description="Microsoft News impressions: a user's click history and the news "
            "shown to them, with clicks as labels.",
            features=tfds.features.FeaturesDict(
                {
                    "impression_id": tfds.features.Text(),
                    "user_id": tfds.features.Text(),
                    "time": tfds.features.Text(),  # ISO 8601, no time zone
                    "history": tfds.features.Sequence(tfds.features.Text()),
                    "candidates": tfds.features.Sequence(tfds.features.Text()),
                    "labels": tfds.features.Sequence(np.int32),
                }
            ),
            homepage=HOMEPAGE,
            citation=_CITATION,
            # Keep file order so that predictions come back in behaviors.tsv order.
            disable_shuffling=True,
        )

    def split_folders(self, manual_dir: str | os.PathLike[str] | None = None) -> dict[str, Path]:
        """The unzipped folder of each split (TFDS split name -> folder) this config reads.

        A manual folder's own train/, dev/ and test/; without one, the zips at
        `builder_config.urls`, downloaded and extracted once into `data_dir/downloads`
        (TFDS caches them: a second call downloads nothing). jaxrec trains from these
        folders with the same reader (`mind.read_split`) that the examples come from.
        """
        config = tfds.download.DownloadConfig(manual_dir=manual_dir and os.fspath(manual_dir))
        return self._folders(self._make_download_manager(None, config))

    def _split_generators(self, dl_manager: tfds.download.DownloadManager) -> dict[str, Any]:
        folders = self._folders(dl_manager)
        return {split: self._generate_examples(folder) for split, folder in folders.items()}

    def _folders(self, dl_manager: tfds.download.DownloadManager) -> dict[str, Path]:
        manual = _manual_dir(dl_manager)
        return _manual_split_dirs(manual) if manual else self._download(dl_manager)

    def _download(self, dl_manager: tfds.download.DownloadManager) -> dict[str, Path]:
        extracted = dl_manager.download_and_extract(self.builder_config.urls)
        return {split: _split_root(Path(os.fspath(path))) for split, path in extracted.items()}

    def _generate_examples(self, split_dir: Path) -> Iterator[tuple[int, dict[str, Any]]]:
        report = mind.ReadReport()
        split = mind.read_split(split_dir, report=report)
        report.log(log)  # unknown news IDs, stored as empty news in news_table()
        for impression in split.impressions:
            # The line number is unique and, with shuffling off, fixes the stored order.
            yield impression.line, impression_example(impression)


def impression_example(impression: mind.Impression) -> dict[str, Any]:
    """The TFDS example for one impression (labels are -1 where the split has none)."""
    labels = impression.labels
    if labels is None:
        labels = (UNLABELLED,) * len(impression.candidates)
    return {
        "impression_id": impression.impression_id,
        "user_id": impression.user_id,
        "time": impression.time.isoformat(),
        "history": list(impression.history),
        "candidates": list(impression.candidates),
        "labels": np.asarray(labels, dtype=np.int32),
    }


def news_table(split_dir: str | os.PathLike[str], **read_options: Any) -> dict[str, mind.News]:
    """The news table matching the examples built from ``split_dir``.

    Goes through :func:`mind.read_split` (``read_options`` are its keywords) rather than
    reading news.tsv alone, so that every ID an example names is in the table, unknown ones
    as empty news.
    """
    return mind.read_split(split_dir, **read_options).news


def _manual_dir(dl_manager: tfds.download.DownloadManager) -> Path | None:
    try:
        return Path(os.fspath(dl_manager.manual_dir))
    except AssertionError:  # TFDS's way of saying no manual folder was given, or it is empty
        return None


def _manual_split_dirs(manual: Path) -> dict[str, Path]:
    folders = {
        split: manual / folder
        for split, folder in SPLIT_FOLDERS.items()
        if (manual / folder).is_dir()
    }
    missing = [SPLIT_FOLDERS[s] for s in REQUIRED_SPLITS if s not in folders]
    if missing:
        raise DataError(
            f"manual MIND folder lacks {', '.join(missing)}/; expected train/, dev/ and an "
            "optional test/, each holding news.tsv and behaviors.tsv",
            path=str(manual),
        )
    return folders


def _split_root(extracted: Path) -> Path:
    """The folder holding news.tsv in an extracted zip: its top, or its only subfolder."""
    if (extracted / mind.NEWS_FILE).is_file():
        return extracted
    candidates = [d for d in extracted.iterdir() if (d / mind.NEWS_FILE).is_file()]
    if len(candidates) != 1:
        raise DataError(f"no single folder with {mind.NEWS_FILE} in the zip", path=str(extracted))
    return candidates[0]
