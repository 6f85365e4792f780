"""Two processes of 4 CPU devices each, as the hosts of a pod: same run as one process of 8,
exact resume after SIGKILL, and no hang when a peer dies."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from configs import news as news_config
from jaxrec import train
from tests.runs import assert_same_results

ROOT = Path(__file__).resolve().parent.parent
STEPS = 20


def _overrides(data_dir, bert_dir):
    return [
        f"--config.data.dir={data_dir}",
        f"--config.model.init_from={bert_dir}",
        "--config.model.trainable_layers=-1",
        f"--config.train.num_steps={STEPS}",
        "--config.train.eval_every=10",
        "--config.train.save_every=5",
        "--config.train.patience=0",
    ]


def _env():
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    return env | {"PROCESSES": "2", "FAKE_DEVICES": "4", "PYTHON": sys.executable}


def _launch(workdir, data_dir, bert_dir):
    return subprocess.Popen(
        ["launch/local.sh", "configs/news.py:tiny", str(workdir), *_overrides(data_dir, bert_dir)],
        cwd=ROOT,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group, so the test can kill every process
    )


def _wait_for(path, proc, timeout=400):
    deadline = time.time() + timeout
    while not path.exists():
        assert proc.poll() is None, proc.stdout.read()[-3000:]
        assert time.time() < deadline, f"{path} did not appear in time"
        time.sleep(0.05)


@pytest.fixture(scope="module")
def one_process_run(tiny_mind_dir, tiny_bert_dir, tmp_path_factory):
    """The reference: the same run in this process, on its 8 devices."""
    c = news_config.get_config("tiny")
    c.data.dir, c.model.init_from = str(tiny_mind_dir), str(tiny_bert_dir)
    c.model.trainable_layers = -1
    c.train.update(num_steps=STEPS, eval_every=10, save_every=5, patience=0)
    workdir = tmp_path_factory.mktemp("one") / "wd"
    train.train_and_evaluate(c, workdir)
    return workdir


def test_two_processes_resume_after_sigkill_and_match_one_process(
    one_process_run, tiny_mind_dir, tiny_bert_dir, tmp_path
):
    workdir = tmp_path / "wd"
    proc = _launch(workdir, tiny_mind_dir, tiny_bert_dir)
    _wait_for(workdir / "checkpoints" / "10", proc)
    os.killpg(proc.pid, signal.SIGKILL)  # both trainers and the launcher, mid-run
    proc.wait(timeout=60)
    progress = json.loads((workdir / "checkpoints" / "10" / "progress" / "metadata").read_text())
    assert progress["step"] == 10

    rerun = _launch(workdir, tiny_mind_dir, tiny_bert_dir)
    out, _ = rerun.communicate(timeout=600)
    assert rerun.returncode == 0, out[-3000:]
    assert "resuming from" in (workdir / "logs" / "process_0.log").read_text()
    results = json.loads((workdir / "metrics.json").read_text())
    assert results["last_step"] == STEPS
    assert results["dev"]["num_impressions"] == 48  # every dev impression, exactly once
    assert_same_results(workdir, one_process_run)


def test_when_one_process_dies_the_other_stops_instead_of_hanging(
    tiny_mind_dir, tiny_bert_dir, tmp_path
):
    """Started without the launcher (which would kill the survivor itself)."""
    with socket.socket() as s:
        s.bind(("", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in _env().items() if k not in ("PROCESSES", "FAKE_DEVICES")}
    env |= {"XLA_FLAGS": "--xla_force_host_platform_device_count=4", "JAX_PLATFORMS": "cpu"}
    workdir = tmp_path / "wd"
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "jaxrec.main",
                "--config=configs/news.py:tiny",
                f"--workdir={workdir}",
                f"--coordinator_address=localhost:{port}",
                "--num_processes=2",
                f"--process_id={i}",
                "--heartbeat_timeout=10",
                *_overrides(tiny_mind_dir, tiny_bert_dir),
                "--config.train.num_steps=100000",
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for i in range(2)
    ]
    _wait_for(workdir / "checkpoints" / "5", procs[0])
    procs[1].kill()
    tick = time.time()
    try:
        procs[0].wait(timeout=120)
    finally:
        if procs[0].poll() is None:
            procs[0].kill()
    assert procs[0].returncode != 0
    assert time.time() - tick < 120
