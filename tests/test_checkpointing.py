"""Checkpoints that lose nothing: exact resume after SIGKILL or SIGTERM, damaged checkpoints."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import orbax.checkpoint as ocp
import pytest

from jaxrec import checkpointing
from jaxrec.errors import CheckpointError
from jaxrec.preemption import Preempted

ROOT = Path(__file__).resolve().parent.parent


def _command(workdir, data_dir, bert_dir, steps=20, extra=()):
    return [
        sys.executable,
        "-m",
        "jaxrec.main",
        "--config=configs/news.py:tiny",
        f"--workdir={workdir}",
        f"--config.data.dir={data_dir}",
        f"--config.model.init_from={bert_dir}",
        f"--config.train.num_steps={steps}",
        "--config.train.eval_every=10",
        "--config.train.save_every=5",
        "--config.train.patience=0",
        *extra,
    ]


def _run(workdir, data_dir, bert_dir, **kw):
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    return subprocess.run(
        _command(workdir, data_dir, bert_dir, **kw),
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def _start(workdir, data_dir, bert_dir, extra=()):
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    return subprocess.Popen(
        _command(workdir, data_dir, bert_dir, extra=extra),
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for_checkpoint(workdir, step, proc, timeout=300):
    done = Path(workdir) / "checkpoints" / str(step)
    deadline = time.time() + timeout
    while not done.exists():
        assert proc.poll() is None, proc.stderr.read()[-3000:]
        assert time.time() < deadline, "no checkpoint in time"
        time.sleep(0.05)


def _final_state(workdir):
    mngr = checkpointing.manager(workdir, read_only=True)
    step = mngr.latest_step()
    items = dict(
        params=ocp.args.StandardRestore(),
        opt_state=ocp.args.StandardRestore(),
        progress=ocp.args.JsonRestore(),
    )
    if (Path(mngr.directory) / str(step) / "carry").is_dir():
        items["carry"] = ocp.args.StandardRestore()
    restored = mngr.restore(step, args=ocp.args.Composite(**items))
    return step, restored


def _assert_same_run(a, b):
    (step_a, ra), (step_b, rb) = _final_state(a), _final_state(b)
    assert step_a == step_b == 20
    assert ("carry" in ra) == ("carry" in rb)
    for key in ("params", "opt_state", "carry") if "carry" in ra else ("params", "opt_state"):
        la, lb = jax_leaves(ra[key]), jax_leaves(rb[key])
        assert len(la) == len(lb)
        for x, y in zip(la, lb, strict=True):
            np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    ma = json.loads((Path(a) / "metrics.json").read_text())
    mb = json.loads((Path(b) / "metrics.json").read_text())
    assert ma["dev"] == mb["dev"] and ma["best_step"] == mb["best_step"]


def jax_leaves(tree):
    import jax

    return jax.tree.leaves(tree)


@pytest.fixture(scope="module")
def straight(tiny_mind_dir, tiny_bert_dir, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("straight")
    proc = _run(workdir, tiny_mind_dir, tiny_bert_dir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return workdir


def test_sigkill_then_resume_matches_an_uninterrupted_run(
    straight, tiny_mind_dir, tiny_bert_dir, tmp_path
):
    proc = _start(tmp_path, tiny_mind_dir, tiny_bert_dir)
    _wait_for_checkpoint(tmp_path, 10, proc)
    proc.kill()  # SIGKILL: no chance to save anything more
    proc.wait()
    resumed = _run(tmp_path, tiny_mind_dir, tiny_bert_dir)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming from" in resumed.stderr
    _assert_same_run(straight, tmp_path)


CACHED = ("--config.train.history_cache=3",)


def test_with_the_history_cache_a_resumed_run_matches_too(tiny_mind_dir, tiny_bert_dir, tmp_path):
    """The news-vector cache and its ages are saved with every checkpoint: resuming after
    SIGKILL gives the parameters, optimizer state and cache of an uninterrupted run."""
    straight_dir = tmp_path / "straight"
    proc = _run(straight_dir, tiny_mind_dir, tiny_bert_dir, extra=CACHED)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "news-vector cache of" in proc.stderr
    killed = tmp_path / "killed"
    proc = _start(killed, tiny_mind_dir, tiny_bert_dir, extra=CACHED)
    _wait_for_checkpoint(killed, 10, proc)
    proc.kill()
    proc.wait()
    resumed = _run(killed, tiny_mind_dir, tiny_bert_dir, extra=CACHED)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming from" in resumed.stderr
    _assert_same_run(straight_dir, killed)
    carry = _final_state(killed)[1]["carry"]
    assert (np.asarray(carry["age"]) == 0).any() and np.asarray(carry["vectors"]).any()


def test_sigterm_saves_the_step_and_exits_retryable(
    straight, tiny_mind_dir, tiny_bert_dir, tmp_path
):
    proc = _start(tmp_path, tiny_mind_dir, tiny_bert_dir)
    _wait_for_checkpoint(tmp_path, 5, proc)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=300)
    if proc.returncode == 0:
        pytest.skip("the run finished before the signal arrived")
    assert proc.returncode == Preempted.exit_code, err[-3000:]
    stopped = int(err.split("preempted at step ")[1].split(":")[0])
    assert (tmp_path / "checkpoints" / str(stopped)).is_dir()
    resumed = _run(tmp_path, tiny_mind_dir, tiny_bert_dir)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    _assert_same_run(straight, tmp_path)


def test_a_damaged_latest_checkpoint_falls_back_to_the_previous(straight, tmp_path, caplog):
    workdir = tmp_path / "copy"
    shutil.copytree(straight, workdir)
    mngr = checkpointing.manager(workdir, read_only=True)
    steps = sorted(mngr.all_steps())
    latest, previous = steps[-1], steps[-2]
    # Garble every array file of the latest checkpoint's parameters.
    for f in (workdir / "checkpoints" / str(latest) / "params").rglob("*"):
        if f.is_file() and f.stat().st_size > 100 and "metadata" not in f.name:
            f.write_bytes(b"\0garbled" * 8)
    _, target = _final_state(straight)
    abstract_params, abstract_opt = target["params"], target["opt_state"]
    mngr = checkpointing.manager(workdir, metric="auc")
    with caplog.at_level("WARNING"):
        step, params, _, progress = checkpointing.restore_latest(
            mngr, abstract_params, abstract_opt
        )
    assert step == previous and progress["step"] == previous
    assert f"checkpoints/{latest} is unreadable" in caplog.text


def test_a_checkpoint_that_does_not_fit_names_the_parameter(straight):
    _, target = _final_state(straight)
    params = target["params"]
    params["news_pool"]["proj"]["kernel"] = np.zeros((3, 3), np.float32)
    mngr = checkpointing.manager(straight, read_only=True)
    with pytest.raises(CheckpointError, match=r"news_pool\.proj\.kernel: checkpoint"):
        checkpointing.restore_latest(mngr, params, target["opt_state"])


def test_latest_n_and_the_best_are_kept(straight):
    steps = sorted(checkpointing.manager(straight, read_only=True).all_steps())
    progress = _final_state(straight)[1]["progress"]
    assert steps[-2:] == [15, 20]  # the latest two
    assert progress["best_step"] in steps  # the best kept apart
    assert len(steps) <= 3


def test_divergence_stops_the_run_and_keeps_the_last_good_checkpoint(
    tiny_mind_dir, tiny_bert_dir, tmp_path
):
    from configs import news as news_config
    from jaxrec import train

    config = news_config.get_config("tiny")
    config.data.dir, config.model.init_from = str(tiny_mind_dir), str(tiny_bert_dir)
    # Warm-up from 0: step 1 changes nothing and is saved; step 2's rate of 2.5e29 diverges.
    config.train.update(
        num_steps=10, learning_rate=1e30, warmup_steps=4, save_every=1, log_every=10, grad_clip=1e30
    )
    with pytest.raises(FloatingPointError, match="at step 2"):
        train.train_and_evaluate(config, tmp_path)
    mngr = checkpointing.manager(tmp_path, read_only=True)
    assert mngr.all_steps() == [1]
    params = mngr.restore(1, args=ocp.args.Composite(params=ocp.args.StandardRestore()))
    assert all(np.isfinite(np.asarray(x)).all() for x in jax_leaves(params["params"]))
