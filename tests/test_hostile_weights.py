"""Weights and checkpoints from a path with unexpected content: nothing is executed, and the
error names the file (or a damaged checkpoint is skipped, named in a warning)."""

from __future__ import annotations

import ast
import json
import os
import pickle
import re
import shutil
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from flax import nnx
from safetensors.numpy import save_file

from jaxrec import checkpointing, pretrained
from jaxrec.convert import hf
from jaxrec.data.tokenize import TextTokenizer
from jaxrec.errors import CheckpointError
from jaxrec.models.bert import BertConfig, BertModel

ROOT = Path(__file__).resolve().parents[1]
TINY = BertConfig(
    vocab_size=40,
    hidden_size=8,
    num_hidden_layers=1,
    num_attention_heads=2,
    intermediate_size=16,
    max_position_embeddings=12,
)


@pytest.fixture(scope="module")
def tensors() -> dict[str, np.ndarray]:
    return hf.export_tensors(BertModel(TINY, rngs=nnx.Rngs(0)))


def folder_with(path: Path, tensors=None, config=None) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.json").write_text(json.dumps(config or TINY.to_hf_dict()))
    if tensors is not None:
        save_file(tensors, str(path / "model.safetensors"))
    return path


class Marker:
    """Unpickling it would run a shell command that creates a file."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return os.system, (f"touch {self.path}",)


@pytest.mark.parametrize("container", ["zip", "raw pickle"])
def test_a_pickle_that_runs_code_is_refused_and_never_run(tmp_path, container) -> None:
    folder = folder_with(tmp_path / "evil")
    marker = tmp_path / "pwned"
    payload = {"embeddings.word_embeddings.weight": Marker(marker)}
    if container == "zip":
        torch.save(payload, folder / "pytorch_model.bin")
    else:
        (folder / "pytorch_model.bin").write_bytes(pickle.dumps(payload, protocol=2))
    with pytest.raises(CheckpointError, match=r"evil/pytorch_model\.bin: .*weights_only"):
        pretrained.load_bert(str(folder))
    assert not marker.exists()


@pytest.mark.parametrize(
    "state",
    [[torch.zeros(2)], {"a": 3}, {"a": [torch.zeros(2)]}, {1: torch.zeros(2)}],
    ids=["a list", "a number", "a list of tensors", "a number as name"],
)
def test_a_bin_that_is_no_dict_of_named_tensors_is_refused(tmp_path, state) -> None:
    folder = folder_with(tmp_path / "odd")
    torch.save(state, folder / "pytorch_model.bin")
    with pytest.raises(CheckpointError, match=r"odd/pytorch_model\.bin: "):
        hf.read_tensors(folder)


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty", "a folder"])
def test_a_damaged_safetensors_file_is_named(tmp_path, tensors, damage) -> None:
    folder = folder_with(tmp_path / "ckpt", tensors)
    path = folder / "model.safetensors"
    data = path.read_bytes()
    if damage == "a folder":
        path.unlink()
        path.mkdir()
    else:
        path.write_bytes(
            {"truncated": data[: len(data) // 2], "garbage": os.urandom(300)}.get(damage, b"")
        )
    with pytest.raises(CheckpointError, match=r"ckpt/model\.safetensors: unreadable"):
        pretrained.load_bert(str(folder))


def test_bfloat16_safetensors_read(tmp_path, tensors) -> None:
    folder = tmp_path / "bf16"
    folder.mkdir()
    torch_tensors = {k: torch.from_numpy(v).to(torch.bfloat16) for k, v in tensors.items()}
    from safetensors.torch import save_file as save_torch

    save_torch(torch_tensors, str(folder / "model.safetensors"))
    got = hf.read_tensors(folder)
    assert str(got["pooler.dense.weight"].dtype) == "bfloat16"


@pytest.mark.parametrize(
    ("index", "message"),
    [
        ("[1, 2]", "unreadable shard index"),
        ('{"weight_map": ["a"]}', "weight_map must map"),
        ('{"weight_map": {"a": 3}}', "weight_map must map"),
        ('{"weight_map": {"a": "../outside.safetensors"}}', "not a file name in its folder"),
        ('{"weight_map": {"a": "/etc/passwd"}}', "not a file name in its folder"),
    ],
)
def test_a_bad_shard_index_is_named(tmp_path, index, message) -> None:
    folder = folder_with(tmp_path / "sharded")
    (folder / "model.safetensors.index.json").write_text(index)
    with pytest.raises(CheckpointError, match=rf"model\.safetensors\.index\.json: .*{message}"):
        hf.read_tensors(folder)


BAD_CONFIGS = {
    "not JSON": "{not json",
    "a list": "[1, 2]",
    "bad UTF-8": b'{"model_type": "bert\xff"}',
    "a huge integer": '{"vocab_size": ' + "9" * 5000 + "}",
    "deep nesting": "[" * 100_000 + "]" * 100_000,
    "a text size": json.dumps({**TINY.to_hf_dict(), "hidden_size": "big"}),
    "zero heads": json.dumps({**TINY.to_hf_dict(), "num_attention_heads": 0}),
    "a list activation": json.dumps({**TINY.to_hf_dict(), "hidden_act": ["gelu"]}),
    "a boolean size": json.dumps({**TINY.to_hf_dict(), "num_hidden_layers": True}),
}


@pytest.mark.parametrize("name", BAD_CONFIGS)
def test_a_garbage_config_json_is_named(tmp_path, tensors, name) -> None:
    folder = folder_with(tmp_path / "ckpt", tensors)
    content = BAD_CONFIGS[name]
    path = folder / "config.json"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(CheckpointError, match=r"ckpt/config\.json: "):
        pretrained.load_bert(str(folder))


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("tokenizer.json", b"{not json"),
        ("tokenizer.json", b'{"model": {"type": "Nope"}}'),
        ("tokenizer.json", os.urandom(64)),
        ("vocab.txt", b"\xff\xfe\x00garbage"),
        ("tokenizer_config.json", b"[1, 2]"),
        ("tokenizer_config.json", b"{broken"),
    ],
)
def test_a_garbage_tokenizer_file_is_named(tmp_path, minilm_dir, name, content) -> None:
    if name == "tokenizer_config.json":
        shutil.copy(minilm_dir / "vocab.txt", tmp_path / "vocab.txt")
    (tmp_path / name).write_bytes(content)
    with pytest.raises(CheckpointError, match=rf"{re.escape(name)}: "):
        TextTokenizer(tmp_path)


def test_no_code_path_unpickles_or_trusts_remote_code() -> None:
    """Every torch.load passes weights_only=True; nothing calls pickle or trusts remote code."""
    for path in (ROOT / "jaxrec").rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        for node in ast.walk(ast.parse(text)):
            if not isinstance(node, ast.Call):
                continue
            name = ast.unparse(node.func)
            keywords = {k.arg: ast.unparse(k.value) for k in node.keywords}
            where = f"{path}:{node.lineno}"
            assert not name.startswith(("pickle.", "cPickle.", "dill.")), where
            if name == "torch.load":
                assert keywords.get("weights_only") == "True", where
            assert keywords.get("trust_remote_code") != "True", where
            assert keywords.get("allow_pickle") != "True", where


# -- Orbax checkpoints in a workdir. ----------------------------------------------------------


class Tiny(nnx.Module):
    def __init__(self, width: int = 4) -> None:
        self.dense = nnx.Param(jnp.ones((3, width)))
        self.bias = nnx.Param(jnp.zeros((width,)))


def save_steps(workdir: Path, steps=(1, 2)) -> None:
    params = nnx.state(Tiny(), nnx.Param)
    mngr = checkpointing.manager(workdir, metric="auc")
    for step in steps:
        checkpointing.save(
            mngr,
            step,
            params=params,
            opt_state={"mu": jnp.full(3, float(step))},
            progress={"step": step, "best_step": step},
            metrics={"auc": 0.5},
        )
    mngr.wait_until_finished()
    mngr.close()


def abstract() -> tuple[nnx.State, dict]:
    return nnx.state(nnx.eval_shape(Tiny), nnx.Param), jax.eval_shape(lambda: {"mu": jnp.zeros(3)})


def garble(folder: Path, part: str = "") -> None:
    for path in (folder / part).rglob("*"):
        if path.is_file():
            path.write_bytes(b"\0garbled")


@pytest.mark.parametrize("part", ["params", "progress", ""])
def test_a_damaged_latest_checkpoint_falls_back_with_a_warning(tmp_path, caplog, part) -> None:
    # Once the damaged step had been tried, Orbax's metadata of the next one spelled
    # parameters "dense.value", and every intact checkpoint was refused as not fitting.
    save_steps(tmp_path)
    garble(tmp_path / "checkpoints" / "2", part)
    with caplog.at_level("WARNING"):
        restored = checkpointing.restore_latest(
            checkpointing.manager(tmp_path, metric="auc"), *abstract()
        )
    step, params, opt_state, progress = restored
    assert step == 1 and progress["step"] == 1 and float(opt_state["mu"][0]) == 1.0
    np.testing.assert_array_equal(params["dense"][...], np.ones((3, 4)))
    assert "checkpoints/2 is unreadable" in caplog.text or "checkpoints/2 has no" in caplog.text


def test_no_readable_checkpoint_is_an_error_naming_the_folder(tmp_path) -> None:
    save_steps(tmp_path)
    for step in ("1", "2"):
        garble(tmp_path / "checkpoints" / step)
    with pytest.raises(CheckpointError, match=r"checkpoints: no readable checkpoint among steps"):
        checkpointing.restore_latest(checkpointing.manager(tmp_path, metric="auc"), *abstract())


def test_junk_beside_the_checkpoints_is_ignored(tmp_path) -> None:
    save_steps(tmp_path, steps=(3,))
    (tmp_path / "checkpoints" / "notes.txt").write_text("hello")
    (tmp_path / "checkpoints" / "backup").mkdir()
    step, *_ = checkpointing.restore_latest(
        checkpointing.manager(tmp_path, metric="auc"), *abstract()
    )
    assert step == 3


def test_a_file_where_the_checkpoints_folder_belongs_is_named(tmp_path) -> None:
    (tmp_path / "checkpoints").write_text("junk")
    with pytest.raises(CheckpointError, match=r"checkpoints: expected a folder"):
        checkpointing.manager(tmp_path)
    with pytest.raises(CheckpointError, match=r"checkpoints: expected a folder"):
        checkpointing.restore_params(tmp_path, abstract()[0])


@pytest.mark.parametrize("step", [None, "latest", 2])
def test_prediction_from_a_damaged_checkpoint_names_it(tmp_path, step) -> None:
    save_steps(tmp_path)
    garble(tmp_path / "checkpoints" / "2")
    with pytest.raises(CheckpointError, match=r"checkpoints/2: unreadable"):
        checkpointing.restore_params(tmp_path, abstract()[0], step)
    params, got = checkpointing.restore_params(tmp_path, abstract()[0], 1)
    assert got == 1 and params["bias"][...].shape == (4,)
