"""Faults injected on purpose: nothing in a workdir is lost, every recovery runs to the end,
and bad input stops in one line before any model is built."""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from configs import ecommerce
from configs import news as news_config
from jaxrec import checkpointing, export, predict, train, workdirs
from jaxrec.data import mind
from jaxrec.data.news_data import load_split
from jaxrec.data.pair_data import BUNDLED, load_pair_data
from jaxrec.data.text_table import build_text_table
from jaxrec.data.tokenize import TextTokenizer
from jaxrec.errors import CheckpointError, ConfigError, DataError
from tests.conftest import write_tiny_mind
from tests.runs import run_main

ROOT = Path(__file__).resolve().parent.parent


TRAIN = {"num_steps": 4, "eval_every": 2, "save_every": 2, "patience": 0}  # saves 2 and 4


def _config(data_dir, bert_dir, **train):
    c = news_config.get_config("tiny")
    c.data.dir, c.model.init_from = str(data_dir), str(bert_dir)
    c.train.update(TRAIN | train)
    return c


def _train(workdir, data_dir, bert_dir) -> subprocess.CompletedProcess:
    """`_config` run by the command line, on one CPU device."""
    return run_main(
        "--config=configs/news.py:tiny",
        f"--workdir={workdir}",
        f"--config.data.dir={data_dir}",
        f"--config.model.init_from={bert_dir}",
        *(f"--config.train.{k}={v}" for k, v in TRAIN.items()),
        one_device=True,
    )


@pytest.fixture(scope="module")
def finished(tiny_mind_dir, tiny_bert_dir, tmp_path_factory):
    """A finished 4-step run (checkpoints 2 and 4) and its metrics; copy it to change it."""
    workdir = tmp_path_factory.mktemp("finished") / "wd"
    proc = _train(workdir, tiny_mind_dir, tiny_bert_dir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return workdir, json.loads((workdir / "metrics.json").read_text())


@pytest.fixture
def workdir(finished, tmp_path):
    copy = tmp_path / "wd"
    shutil.copytree(finished[0], copy)
    return copy


@pytest.fixture
def no_model(monkeypatch):
    def create_model(*args, **kwargs):
        raise AssertionError("the model was built")

    monkeypatch.setattr(train, "create_model", create_model)


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


# -- The workdir is the run's own. ------------------------------------------------------------


def test_export_never_writes_over_its_workdir(workdir, monkeypatch):
    def restored(*args, **kwargs):
        raise AssertionError("a checkpoint was restored")

    monkeypatch.setattr("jaxrec.trained.load_trained", restored)
    before = _snapshot(workdir)
    for output in (workdir, workdir / "exported", workdir.parent):
        with pytest.raises(ConfigError, match="is the workdir"):
            export.export(workdir, output, overwrite=True)
    assert _snapshot(workdir) == before
    (workdir.parent / "a-file").write_text("mine")
    with pytest.raises(ConfigError, match="a-file is a file"):
        export.export(workdir, workdir.parent / "a-file", overwrite=True)
    with pytest.raises(ConfigError, match="does not exist"):
        export.export(workdir, workdir.parent / "missing" / "out")
    foreign = workdir.parent / "foreign"
    foreign.mkdir()
    (foreign / "config.json").write_text("{}")  # an HF model folder, say: not an export
    (foreign / "model.safetensors").write_text("weights")
    with pytest.raises(ConfigError, match="only an earlier export.*has no export's"):
        export.export(workdir, foreign, overwrite=True)
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="only an earlier export.*holds notes.txt"):
        export.export(workdir, foreign, overwrite=True)
    assert (foreign / "model.safetensors").read_text() == "weights"


def test_a_run_with_another_config_is_refused_and_config_json_kept(
    workdir, tiny_mind_dir, tiny_bert_dir
):
    config = _config(tiny_mind_dir, tiny_bert_dir, batch_size=16)
    config.data.history_len = 5
    before = _snapshot(workdir)
    with pytest.raises(ConfigError, match=r"another config \(data.history_len: 8 there, 5 here; "):
        train.train_and_evaluate(config, workdir)
    assert _snapshot(workdir) == before


def test_only_keys_that_do_not_change_the_run_may_differ():
    saved = {"task": "news", "train": {"num_steps": 4, "lr": 1.0}, "mesh": {"shape": [8, 1, 1]}}
    resumed = {"task": "news", "train": {"num_steps": 9, "lr": 1.0}, "mesh": {"shape": [2, 4, 1]}}
    assert workdirs.differing_keys(saved, resumed) == []
    assert workdirs.differing_keys(saved, resumed | {"task": "pair", "new": 1}) == ["task"]
    other = {"task": "news", "train": {"num_steps": 4, "lr": 2.0}, "mesh": saved["mesh"]}
    assert workdirs.differing_keys(saved, other) == ["train.lr"]


def test_a_config_json_that_is_not_a_runs_is_never_overwritten(
    tiny_mind_dir, tiny_bert_dir, tmp_path
):
    (tmp_path / "config.json").write_text('{"hidden_size": 32}')  # say, a model folder
    with pytest.raises(ConfigError, match="not a jaxrec training config"):
        train.train_and_evaluate(_config(tiny_mind_dir, tiny_bert_dir), tmp_path)
    assert (tmp_path / "config.json").read_text() == '{"hidden_size": 32}'


def test_a_workdir_that_cannot_be_written_is_named(tiny_mind_dir, tiny_bert_dir, tmp_path):
    config = _config(tiny_mind_dir, tiny_bert_dir)
    (tmp_path / "file").write_text("")
    with pytest.raises(ConfigError, match="file is a file, not a folder"):
        train.train_and_evaluate(config, tmp_path / "file")
    with pytest.raises(ConfigError, match="cannot be created: .*file is a file"):
        train.train_and_evaluate(config, tmp_path / "file" / "sub" / "wd")
    if os.geteuid() != 0:  # root writes anywhere
        (tmp_path / "ro").mkdir(mode=0o555)
        with pytest.raises(ConfigError, match="ro is not writable"):
            train.train_and_evaluate(config, tmp_path / "ro" / "wd")


def _hold_lock(workdir: Path) -> subprocess.Popen:
    """Another process that holds the workdir's lock until it is killed."""
    code = (
        "import sys, time\nfrom jaxrec import workdirs\n"
        "lock = workdirs.Lock(sys.argv[1])\nlock.acquire()\nprint('held', flush=True)\n"
        "time.sleep(600)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(workdir)], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_second_run_on_a_locked_workdir_stops_at_once(workdir, tiny_mind_dir, tiny_bert_dir):
    config = _config(tiny_mind_dir, tiny_bert_dir)
    holder = _hold_lock(workdir)
    try:
        before = _snapshot(workdir)
        expected = f"workdir {workdir} is in use by process {holder.pid} on {socket.gethostname()}"
        with pytest.raises(ConfigError, match=re.escape(expected)):
            train.train_and_evaluate(config, workdir)
        assert _snapshot(workdir) == before
    finally:
        holder.kill()
        holder.wait()


def test_every_process_of_a_multi_process_run_stops_on_a_locked_workdir(
    tmp_path, tiny_mind_dir, tiny_bert_dir
):
    workdir = tmp_path / "wd"
    workdir.mkdir()
    holder = _hold_lock(workdir)
    env = os.environ | {"XLA_FLAGS": "--xla_force_host_platform_device_count=4"}
    with socket.socket() as s:
        s.bind(("", 0))
        port = s.getsockname()[1]
    args = [
        sys.executable, "-m", "jaxrec.main", "--config=configs/news.py:tiny",
        f"--workdir={workdir}", f"--config.data.dir={tiny_mind_dir}",
        f"--config.model.init_from={tiny_bert_dir}", f"--coordinator_address=localhost:{port}",
        "--num_processes=2",
    ]  # fmt: skip
    try:
        procs = [
            subprocess.Popen(
                [*args, f"--process_id={i}"], cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True
            )
            for i in (0, 1)
        ]
        errors = [p.communicate(timeout=300)[1] for p in procs]
    finally:
        holder.kill()
        holder.wait()
    line = f"error: workdir {workdir} is in use by process {holder.pid} on {socket.gethostname()}"
    for proc, err in zip(procs, errors, strict=True):  # process 1 heard it from process 0
        assert proc.returncode == 1 and line in err.splitlines(), err[-2000:]
    assert [p.name for p in workdir.iterdir()] == ["jaxrec.lock"]


def test_the_lock_of_a_killed_run_is_taken_over(
    workdir, tiny_mind_dir, tiny_bert_dir, caplog, no_model
):
    holder = _hold_lock(workdir)
    holder.send_signal(signal.SIGKILL)  # no chance to release anything
    holder.wait()
    with caplog.at_level("WARNING"), pytest.raises(AssertionError, match="the model was built"):
        train.train_and_evaluate(_config(tiny_mind_dir, tiny_bert_dir), workdir)
    assert f"taking over the lock of process {holder.pid}" in caplog.text
    assert (workdir / workdirs.LOCK_FILE).read_text() == ""  # released when the run ended


# -- Every recovery finishes. -----------------------------------------------------------------


def test_a_damaged_latest_checkpoint_is_set_aside_and_the_run_finishes(
    workdir, finished, tiny_mind_dir, tiny_bert_dir
):
    for f in (workdir / "checkpoints" / "4" / "params").rglob("*"):
        if f.is_file() and f.stat().st_size > 100 and "metadata" not in f.name:
            f.write_bytes(b"\0garbled" * 8)
    proc = _train(workdir, tiny_mind_dir, tiny_bert_dir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "moved the unreadable checkpoint" in proc.stderr
    assert (workdir / "checkpoints" / "4.damaged" / "params").is_dir()  # kept for inspection
    mngr = checkpointing.manager(workdir, read_only=True)
    assert sorted(mngr.all_steps()) == [2, 4]
    results = json.loads((workdir / "metrics.json").read_text())
    assert results["last_step"] == 4
    for key, value in finished[1]["dev"].items():  # steps 3 and 4 again, as the first time
        assert results["dev"][key] == pytest.approx(value, abs=1e-4), key


def test_a_damaged_token_cache_is_rebuilt(tiny_bert_dir, tmp_path, caplog):
    tok = TextTokenizer(tiny_bert_dir, 30522)
    texts = {f"N{i}": f"story number {i} about the market" for i in range(40)}
    fresh = build_text_table(texts, tok, 16, tmp_path)
    (path,) = tmp_path.glob("text-*.npz")
    for damage in (lambda b: b[: len(b) // 2], lambda b: b[:300] + b"\xff" * 8 + b[308:]):
        path.write_bytes(damage(path.read_bytes()))
        with caplog.at_level("WARNING"):
            again = build_text_table(texts, tok, 16, tmp_path)
        assert "is damaged" in caplog.text and "rebuilding it" in caplog.text
        for key, value in fresh.tokens.items():
            np.testing.assert_array_equal(again.tokens[key], value)
        caplog.clear()
    with caplog.at_level("WARNING"):
        build_text_table(texts, tok, 16, tmp_path)
    assert "is damaged" not in caplog.text  # the rebuilt cache reads


def test_inference_restores_params_quietly(finished, caplog):
    from jaxrec.trained import load_trained

    with caplog.at_level("INFO", logger="absl"):
        step = load_trained(finished[0]).step
    assert step == finished[1]["best_step"]
    assert "could not be restored" not in caplog.text
    assert "read only" not in caplog.text


# -- Bad data stops before any model is built. ------------------------------------------------


def _rows(path: Path) -> list[str]:
    return path.read_text().splitlines(keepends=True)


def _keep_news(path: Path, n: int) -> None:
    path.write_text("".join(_rows(path)[:n]))


def _no_click(path: Path) -> None:
    rows = _rows(path)
    cols = rows[2].rstrip("\n").split("\t")
    cols[4] = cols[4].replace("-1", "-0")
    rows[2] = "\t".join(cols) + "\n"
    path.write_text("".join(rows))


MIND_EDGES = {
    "empty train": ("train/behaviors.tsv", lambda p: p.write_text(""), r"no impressions"),
    "empty dev": ("dev/behaviors.tsv", lambda p: p.write_text(""), r"no impressions"),
    "empty news": ("train/news.tsv", lambda p: p.write_text(""), r"train/news.tsv: no news"),
    "no click": ("dev/behaviors.tsv", _no_click, r"behaviors.tsv:3: .* no clicked candidate"),
    "one batch": (
        "train/behaviors.tsv",
        lambda p: p.write_text("".join(_rows(p)[:5])),
        r"fewer than one batch \(train.batch_size=8\)",
    ),
    "unknown news": (
        "train/news.tsv",
        lambda p: _keep_news(p, 3),
        r"news.tsv: 9\d\.\d% of the history slots .* data.max_unknown_news_share=0.05",
    ),
}


@pytest.mark.parametrize("edge", MIND_EDGES)
def test_bad_news_data_stops_before_the_model(edge, tiny_bert_dir, tmp_path, no_model):
    data = write_tiny_mind(tmp_path / "mind")
    name, damage, message = MIND_EDGES[edge]
    damage(data / name)
    with pytest.raises(DataError, match=message) as caught:
        train.train_and_evaluate(_config(data, tiny_bert_dir), tmp_path / "wd")
    assert str(data / name.split("/")[0]) in str(caught.value)


def test_impressions_without_a_click_follow_the_skip_policy(tiny_bert_dir, tmp_path):
    data = write_tiny_mind(tmp_path / "mind")
    _no_click(data / "dev" / "behaviors.tsv")
    (data / "dev" / "news.tsv").write_text("".join(_rows(data / "dev" / "news.tsv")[1:]))
    config = _config(data, tiny_bert_dir)
    config.data.skip_bad_rows = True
    report = mind.ReadReport()
    tok = TextTokenizer(tiny_bert_dir, 30522)
    dev = load_split(config.data, "dev", tok, cache_dir=tmp_path / "c", report=report)
    assert report.as_dict()["behaviors.no_click"] == 1
    assert len(dev.split.impressions) == len(dev.log) == 47
    assert 0 < dev.unknown_share["candidates"] < 0.05  # one news row gone: a few empty texts


def _shop(tmp_path: Path) -> Path:
    folder = tmp_path / "shop"
    shutil.copytree(BUNDLED["interactions"], folder)
    return folder


def test_bad_pair_data_stops_before_the_model(tiny_bert_dir, tmp_path, no_model):
    folder = _shop(tmp_path)
    config = ecommerce.get_config("tiny")
    config.data.path, config.model.init_from = str(folder), str(tiny_bert_dir)
    test = folder / "test.csv"
    test.write_text(_rows(test)[0])  # the header alone
    with pytest.raises(DataError, match=re.escape(f"{test}: no test interactions")):
        train.train_and_evaluate(config, tmp_path / "wd")
    test.write_text("")
    with pytest.raises(DataError, match="test.csv"):
        train.train_and_evaluate(config, tmp_path / "wd")
    shutil.copy(BUNDLED["interactions"] / "test.csv", test)
    (folder / "train.csv").write_text("".join(_rows(folder / "train.csv")[:4]))
    with pytest.raises(DataError, match="train.csv: no dev interactions.*dev_fraction=0.1"):
        train.train_and_evaluate(config, tmp_path / "wd")  # 10% of 3 rows: none to validate on
    (folder / "train.csv").write_text("".join(_rows(BUNDLED["interactions"] / "train.csv")[:13]))
    with pytest.raises(DataError, match="train.csv: 11 training pairs, fewer than one batch"):
        train.train_and_evaluate(config, tmp_path / "wd")  # 12 rows: 1 for dev, 11 to train


def test_an_empty_movielens_test_file_is_named(tmp_path):
    folder = tmp_path / "ml"
    shutil.copytree(BUNDLED["movielens100k"], folder)
    (folder / "u1.test").write_text("")
    cfg = ecommerce.get_config("tiny").data
    cfg.update(format="movielens100k", path=str(folder), task="rating")
    with pytest.raises(DataError, match="u1.test: no test interactions"):
        load_pair_data(cfg)


# -- Every failure is one line, checked before the work. --------------------------------------


def test_predict_checks_its_request_before_restoring(workdir, tmp_path, monkeypatch):
    def restored(*args, **kwargs):
        raise AssertionError("a checkpoint was restored")

    monkeypatch.setattr("jaxrec.trained.load_trained", restored)
    with pytest.raises(ConfigError, match="folder .*missing does not exist"):
        predict.predict(workdir, "dev", tmp_path / "missing" / "pred.txt")
    with pytest.raises(ConfigError, match="is a folder"):
        predict.predict(workdir, "dev", tmp_path)
    with pytest.raises(ConfigError, match="which the run owns"):
        predict.predict(workdir, "dev", workdir / "config.json")
    pair = tmp_path / "pair"
    pair.mkdir()
    (pair / "config.json").write_text('{"task": "pair"}')
    with pytest.raises(ConfigError, match="--split=dev: a pair workdir predicts its config's"):
        predict.predict(pair, "dev", tmp_path / "pred.txt")
    with pytest.raises(ConfigError, match="--data_dir is for news workdirs"):
        predict.predict(pair, None, tmp_path / "pred.txt", data_dir=tmp_path)
    with pytest.raises(ConfigError, match="--zip: only news predictions"):
        predict.predict(pair, None, tmp_path / "pred.txt", zip_for_leaderboard=True)
    with pytest.raises(CheckpointError, match="not a training workdir"):
        predict.predict(tmp_path / "nothing", None, tmp_path / "pred.txt")


def _main(*args):
    return run_main(*args, timeout=120)


@pytest.mark.parametrize(
    "args,message",
    [
        (
            ["--config=configs/news.py:tiny", "--config.train.batch_size=abc"],
            "flag --config.train.batch_size=abc: invalid literal for int()",
        ),
        (["--config=configs/nope.py"], "config error: --config: [Errno 2] No such file"),
        (["--config=configs/news.py:huge"], "configs/news.py takes '', 'tiny' or 'mind'"),
    ],
)
def test_a_bad_command_line_is_one_line(args, message, tmp_path):
    proc = _main(*args, f"--workdir={tmp_path / 'wd'}")
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip().splitlines()[-1]]
    assert message in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "wd").exists()


def test_verbose_keeps_the_traceback(tmp_path):
    proc = _main("--config=configs/nope.py", f"--workdir={tmp_path}", "--verbose")
    assert proc.returncode == 1 and "Traceback" in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("config error: --config:")
