"""Bad configuration values fail before anything is read or compiled, naming the key; the
command line reports bad input in one line, with a traceback only when asked."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from configs import ecommerce, movielens, news
from jaxrec import cli
from jaxrec.config_checks import check_config
from jaxrec.errors import ConfigError, DataError

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = {
    "news": lambda: news.get_config("tiny"),
    "movielens": lambda: movielens.get_config("tiny"),
    "ecommerce": lambda: ecommerce.get_config("tiny"),
    "multilabel": lambda: ecommerce.get_config("multilabel"),
}
NOWHERE = "/nonexistent/jaxrec-data"


def with_value(config, key: str, value):
    section, _, name = key.rpartition(".")
    node = config
    for part in filter(None, section.split(".")):
        node = node[part]
    with node.ignore_type():  # as a JSON config or a wrong override would hold it
        node[name] = value
    return config


COMMON = [
    ("seed", "zero"),
    ("train.batch_size", 0),
    ("train.batch_size", -8),
    ("train.batch_size", 2.5),
    ("train.batch_size", True),
    ("train.micro_batches", 0),
    ("train.num_steps", 0),
    ("train.learning_rate", -1e-4),
    ("train.learning_rate", float("nan")),
    ("train.learning_rate", "fast"),
    ("train.warmup_steps", -1),
    ("train.schedule", "exponential"),
    ("train.weight_decay", -0.1),
    ("train.b1", 1.0),
    ("train.b2", -0.1),
    ("train.eps", 0.0),
    ("train.grad_clip", 0.0),
    ("train.log_every", 0),
    ("train.eval_every", 0),
    ("train.save_every", 0),
    ("train.eval_batch_size", 0),
    ("train.keep_checkpoints", 0),
    ("train.patience", -1),
    ("train.early_stopping_metric", ""),
    ("train.early_stopping_metric", "accuracy"),
    ("model.init_from", NOWHERE),
    ("model.init_from", ""),
    ("model.dtype", "float64"),
    ("model.trainable_layers", -2),
    ("model.dropout", 1.0),
    ("model.dropout", -0.1),
    ("mesh.shape", (2, 2)),
    ("mesh.shape", (-1, -1, 1)),
    ("mesh.shape", (0, 1, 1)),
    ("mesh.shape", (1, 1, 1.5)),
    ("mesh.shape", "8"),
    ("mesh.rules", (("batch", "rows"),)),
    ("mesh.rules", (("batch",),)),
    ("mesh.max_replicated_share", 2.0),
    ("data.skip_bad_rows", "yes"),
    ("data.max_skipped_share", 1.5),
    ("data.max_skipped_share", -0.1),
    ("task", "ranking"),
]
NEWS = [
    ("model.pooling", "mean"),
    ("model.user_encoder", "gru"),
    ("model.attention_hidden", 0),
    ("model.user_heads", 0),
    ("model.cache_frozen_layers", 1),
    ("data.npratio", 0),
    ("data.npratio", -4),
    ("data.history_len", 0),
    ("data.title_len", 1),
    ("data.news_bucket", 0),
    ("data.news_fields", ("body",)),
    ("data.news_fields", ("category",)),
    ("data.news_fields", "title"),
    ("data.unknown_news", "skip"),
    ("data.dir", NOWHERE),
    ("data.dir", ""),
    ("train.early_stopping_metric", "rmse"),
]
PAIR = [
    ("model.architecture", "siamese"),
    ("model.head", "cosine"),
    ("model.pooling", "attention"),
    ("model.id_dim", 0),
    ("model.mlp_hidden", 0),
    ("model.lora_rank", -1),
    ("model.use_ids", "no"),
    ("model.use_text", 1),
    ("model.id_l2", -0.1),
    ("model.id_bias_l2", float("nan")),
    ("model.head_dropout", 1.0),
    ("train.phases", ({"trainable_layers": 0, "num_epochs": 1},)),
    ("data.format", "parquet"),
    ("data.task", "click"),  # MovieLens has ratings only
    ("data.path", NOWHERE),
    ("data.split", "u9"),
    ("data.unknown_ids", "ignore"),
    ("data.user_len", 1),
    ("data.item_len", 0),
    ("data.text_bucket", 0),
    ("train.early_stopping_metric", "auc"),  # a click metric for a rating task
]
INTERACTIONS = [
    ("data.rating_range", (5.0, 1.0)),
    ("data.rating_range", (1.0,)),
    ("data.rating_range", (1.0, float("inf"))),
    ("data.user_columns", "name"),
    ("data.item_columns", (1, 2)),
]
CASES = (
    [("news", key, value) for key, value in COMMON + NEWS]
    + [("movielens", key, value) for key, value in COMMON + PAIR]
    + [("ecommerce", key, value) for key, value in INTERACTIONS]
)


@pytest.mark.parametrize(("name", "key", "value"), CASES, ids=lambda v: repr(v)[:30])
def test_a_bad_value_is_a_config_error_naming_its_key(name, key, value) -> None:
    config = with_value(CONFIGS[name](), key, value)
    with pytest.raises(ConfigError) as caught:
        check_config(config)
    assert str(caught.value).startswith(key), str(caught.value)


@pytest.mark.parametrize(
    ("name", "changes", "key"),
    [
        ("movielens", {"model.head": "dot", "model.architecture": "cross"}, "model.head"),
        ("multilabel", {"model.head": "dot"}, "model.head"),
        ("movielens", {"model.lora_rank": 4, "model.lora_alpha": 0.0}, "model.lora_alpha"),
        ("movielens", {"model.lora_rank": 4, "model.lora_targets": ("qkv",)}, "model.lora_targets"),
        ("movielens", {"model.lora_rank": 4, "train.phases": movielens.get_config().train.phases},
         "train.phases"),  # LoRA trains in one phase
        ("movielens", {"model.use_text": False, "model.use_ids": False}, "model.use_text"),
        ("movielens", {"data.format": "movielens1m"}, "data.path"),
        ("movielens", {"data.format": "movielens_tfds", "data.test_fraction": 1.0},
         "data.test_fraction"),
        ("news", {"train.batch_size": 10, "train.micro_batches": 4}, "train.batch_size"),
        ("news", {"data.news_fields": ("title", "abstract"), "data.title_len": 2},
         "data.title_len"),
    ],
)  # fmt: skip
def test_values_that_cannot_work_together(name, changes, key) -> None:
    config = CONFIGS[name]()
    for k, v in changes.items():
        with_value(config, k, v)
    with pytest.raises(ConfigError, match=rf"^{key} "):
        check_config(config)


def test_a_data_folder_without_its_splits_is_named(tmp_path) -> None:
    (tmp_path / "train").mkdir()
    config = with_value(news.get_config("tiny"), "data.dir", str(tmp_path))
    with pytest.raises(ConfigError, match=rf"data.dir: folder {tmp_path / 'dev'} does not exist"):
        check_config(config)


def test_a_missing_key_is_named() -> None:
    config = news.get_config("tiny")
    del config.train["num_steps"]
    with pytest.raises(ConfigError, match="config has no key train.num_steps"):
        check_config(config)


@pytest.mark.parametrize(
    ("module", "arg"),
    [(news, a) for a in (None, "tiny", "mind")]
    + [(movielens, a) for a in (None, "tiny", "lora")]
    + [(ecommerce, a) for a in (None, "tiny", "rating", "click", "multilabel")],
)
def test_every_shipped_config_passes(module, arg) -> None:
    check_config(module.get_config(arg))


def test_a_json_round_trip_of_a_config_passes() -> None:
    """What a workdir's config.json holds (tuples become lists) is checked the same way."""
    import json

    import ml_collections

    for name in ("news", "movielens", "ecommerce"):
        config = CONFIGS[name]()
        check_config(ml_collections.ConfigDict(json.loads(config.to_json_best_effort())))


# -- The command line. -------------------------------------------------------------------------


def test_bad_input_is_one_line_with_control_characters_escaped(capsys) -> None:
    def body() -> str:
        raise DataError("cannot parse time '1\r2\n3\x1b[2J'", path="b.tsv", line=4, field="time")

    with pytest.raises(SystemExit) as caught:
        cli.run(["prog"], body)
    assert caught.value.code == "error: b.tsv:4: cannot parse time '1\\r2\\n3\\x1b[2J' (field time)"
    assert capsys.readouterr().err == ""


def test_verbose_adds_the_traceback(capsys) -> None:
    def body() -> str:
        raise ConfigError("train.num_steps is 0; expected an integer >= 1")

    with pytest.raises(SystemExit) as caught:
        cli.run(["prog"], body, verbose=True)
    assert caught.value.code == "error: train.num_steps is 0; expected an integer >= 1"
    err = capsys.readouterr().err
    assert "Traceback" in err and "in body" in err


def test_define_flags_twice_defines_verbose_once() -> None:
    from absl import flags

    cli.define_flags()
    cli.define_flags()
    assert "verbose" in flags.FLAGS


def _main(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    return subprocess.run(
        [sys.executable, "-m", "jaxrec.main", "--config=configs/news.py:tiny", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=300,
    )


def test_the_command_line_refuses_a_missing_data_folder_before_any_work(tmp_path) -> None:
    workdir = tmp_path / "run"
    proc = _main(f"--workdir={workdir}", f"--config.data.dir={tmp_path / 'nowhere'}")
    assert proc.returncode == 1
    assert f"error: data.dir: folder {tmp_path / 'nowhere'} does not exist" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not workdir.exists()  # nothing written, so nothing read or compiled


def test_the_command_line_names_a_bad_value_and_shows_a_traceback_when_verbose(tmp_path) -> None:
    workdir = tmp_path / "run"
    proc = _main(f"--workdir={workdir}", "--config.model.pooling=mean")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last == "error: model.pooling is 'mean'; expected one of ('attention', 'cls')"
    proc = _main(f"--workdir={workdir}", "--config.model.pooling=mean", "--verbose")
    assert proc.returncode == 1 and "Traceback" in proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == last
    assert not workdir.exists()


def test_a_token_length_without_room_for_the_special_tokens_is_refused(minilm_dir) -> None:
    from jaxrec.data.tokenize import TextTokenizer

    tokenizer = TextTokenizer(minilm_dir)
    assert tokenizer(["a b c"], 2)["input_ids"].shape == (1, 2)
    with pytest.raises(ConfigError, match="token length 1 is too short: need at least 2"):
        tokenizer(["a b c"], 1)
    with pytest.raises(ConfigError, match="token length 2 is too short: need at least 3"):
        tokenizer(["a b c"], 2, pairs=["d"])


@pytest.mark.parametrize(
    ("name", "key", "value"),
    [
        ("news", "model.trainable_layers", 7),  # MiniLM has 6 layers
        ("news", "data.title_len", 513),  # and 512 positions
        ("movielens", "data.item_len", 600),
    ],
)
def test_values_beyond_the_pretrained_encoder_are_named(name, key, value) -> None:
    with pytest.raises(ConfigError, match=rf"^{key} is {value}"):
        check_config(with_value(CONFIGS[name](), key, value))


def test_a_cross_encoder_pair_must_fit_the_encoder_positions() -> None:
    config = with_value(movielens.get_config("tiny"), "model.architecture", "cross")
    with_value(config, "model.head", "mlp")
    with_value(config, "data.user_len", 300)
    with_value(config, "data.item_len", 300)
    with pytest.raises(ConfigError, match=r"^data.user_len is 300; expected data.user_len \+"):
        check_config(config)
    with_value(config, "data.item_len", 213)
    check_config(config)
