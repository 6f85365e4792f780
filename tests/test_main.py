"""The command line: config overrides, and a misspelt key named in the error."""

import os
import subprocess
import sys

from tests.runs import run_main


def _run(*args):
    return run_main(*args, timeout=120)


def test_unknown_override_key_is_named(tmp_path):
    proc = _run(
        "--config=configs/news.py:tiny", f"--workdir={tmp_path}", "--config.train.batchsize=3"
    )
    assert proc.returncode != 0
    assert "--config.train.batchsize" in proc.stderr and "batch_size" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "config.json").exists()  # nothing ran


def test_wrong_type_override_is_named(tmp_path):
    proc = _run(
        "--config=configs/news.py:tiny", f"--workdir={tmp_path}", "--config.train.batch_size=many"
    )
    assert proc.returncode != 0 and "train.batch_size" in proc.stderr


def test_a_missing_data_folder_is_named_before_anything_is_written(tmp_path):
    proc = _run(
        "--config=configs/news.py:tiny",
        f"--workdir={tmp_path / 'wd'}",
        "--config.train.batch_size=16",
        f"--config.data.dir={tmp_path / 'nowhere'}",
    )
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "data.dir" in proc.stderr and str(tmp_path / "nowhere") in proc.stderr
    assert not (tmp_path / "wd").exists()


def test_a_batch_that_does_not_split_over_the_devices_fails_before_any_work(tmp_path):
    env = dict(
        os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=8", JAX_PLATFORMS="cpu"
    )
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "jaxrec.main",
            "--config=configs/news.py:tiny",
            f"--workdir={tmp_path}",
            "--config.train.batch_size=6",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 1
    assert "train.batch_size (6)" in proc.stderr and "8 batch shards" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "cache").exists()  # nothing was read or tokenized
