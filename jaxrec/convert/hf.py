"""Hugging Face BERT checkpoints <-> jaxrec BERT parameters, through one rule table.

jaxrec's module paths mirror HF's names, so the table only says how the leaf differs:
PyTorch `Linear.weight` [out, in] is Flax `kernel` [in, out]; `Embedding.weight` is
`embedding`; `LayerNorm.weight` is `scale`. Import and export both read this table.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import re
from collections.abc import Mapping
from pathlib import Path

import jax
import numpy as np
from flax import nnx

from jaxrec.errors import CheckpointError, excerpt
from jaxrec.models.bert import BertConfig
from jaxrec.models.lora import LoRAParam
from jaxrec.params import path_name

# (HF leaf pattern, jaxrec leaf pattern, transpose?) — first match wins, in both directions.
RULES: tuple[tuple[str, str, bool], ...] = (
    ("{}.LayerNorm.weight", "{}.LayerNorm.scale", False),
    ("{}_embeddings.weight", "{}_embeddings.embedding", False),
    ("{}.weight", "{}.kernel", True),
    ("{}.bias", "{}.bias", False),
)

# Buffers and pre-training heads that HF checkpoints carry beside the encoder.
IGNORED = (r"embeddings\.position_ids", r"cls\..*", r"classifier\..*", r"qa_outputs\..*")
_ENCODER_PREFIXES = ("bert.",)

log = logging.getLogger(__name__)


def _regex(template: str) -> re.Pattern[str]:
    return re.compile("^" + re.escape(template).replace(r"\{\}", "(.+)") + "$")


_HF_TO_JAX = [(_regex(hf), jx, t) for hf, jx, t in RULES]
_JAX_TO_HF = [(_regex(jx), hf, t) for hf, jx, t in RULES]


def _rename(name: str, table) -> tuple[str, bool]:
    for pattern, template, transpose in table:
        m = pattern.match(name)
        if m:
            return template.format(m.group(1)), transpose
    raise CheckpointError(f"no conversion rule for parameter {name!r}")


def hf_to_jax_name(name: str) -> tuple[str, bool]:
    """HF tensor name -> (jaxrec parameter path, whether the array is transposed)."""
    return _rename(name, _HF_TO_JAX)


def jax_to_hf_name(path: str) -> tuple[str, bool]:
    """jaxrec parameter path -> (HF tensor name, whether the array is transposed)."""
    return _rename(path, _JAX_TO_HF)


def read_config(folder: str | Path) -> BertConfig:
    """Reads `folder/config.json` as a BERT config; errors name the file."""
    path = Path(folder) / "config.json"
    if not Path(folder).is_dir():
        raise CheckpointError(f"{folder}: checkpoint folder does not exist")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CheckpointError(f"{path}: missing (an HF BERT folder needs config.json)") from None
    except (OSError, ValueError, RecursionError) as e:  # ValueError: bad UTF-8 or JSON
        raise CheckpointError(f"{path}: unreadable: {e!r}") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{path}: expected a JSON object")
    _check_config_types(data, path)
    return BertConfig.from_hf_dict(data, source=str(path))


def _check_config_types(data: dict, path: Path) -> None:
    """The fields BertConfig takes, with the types and ranges a model can be built from."""
    for f in dataclasses.fields(BertConfig):
        if f.name not in data or f.name == "pad_token_id":  # unused, and null in some configs
            continue
        value = data[f.name]
        kind = f.type if isinstance(f.type, str) else f.type.__name__
        if kind == "int":
            ok = isinstance(value, int) and not isinstance(value, bool) and value >= 1
            expected = "an integer >= 1"
        elif kind == "float":
            ok = isinstance(value, int | float) and not isinstance(value, bool)
            ok = ok and math.isfinite(value) and value >= 0
            expected = "a finite number >= 0"
        else:
            ok, expected = isinstance(value, str), "a string"
        if not ok:
            raise CheckpointError(f"{path}: {f.name} is {excerpt(value)}, expected {expected}")


def read_tensors(folder: str | Path) -> dict[str, np.ndarray]:
    """All tensors of an HF folder: model.safetensors (single or sharded) or pytorch_model.bin.

    A `.bin` is read with `torch.load(weights_only=True)`, which never runs pickled code.
    """
    folder = Path(folder)
    single, index = folder / "model.safetensors", folder / "model.safetensors.index.json"
    if single.exists():
        return _read_safetensors([single])
    if index.exists():
        return _read_safetensors([folder / s for s in _shard_names(index)])
    bin_path = folder / "pytorch_model.bin"
    if bin_path.exists():
        return _read_torch_bin(bin_path)
    raise CheckpointError(
        f"{folder}: no weights found (expected model.safetensors or pytorch_model.bin)"
    )


def _shard_names(index: Path) -> list[str]:
    """The shard files a model.safetensors.index.json lists: plain names in its folder."""
    try:
        weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
    except (OSError, ValueError, KeyError, TypeError, RecursionError) as e:
        raise CheckpointError(f"{index}: unreadable shard index: {e!r}") from None
    if not isinstance(weight_map, dict) or not all(isinstance(v, str) for v in weight_map.values()):
        raise CheckpointError(f"{index}: weight_map must map tensor names to shard file names")
    shards = sorted(set(weight_map.values()))
    for name in shards:
        if Path(name).name != name or name in ("", ".", ".."):
            message = f"shard {excerpt(name)} is not a file name in its folder"
            raise CheckpointError(f"{index}: {message}")
    return shards


def _read_safetensors(paths: list[Path]) -> dict[str, np.ndarray]:
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    tensors: dict[str, np.ndarray] = {}
    for path in paths:
        try:
            tensors.update(load_file(str(path)))
        except (OSError, SafetensorError, TypeError, ValueError) as e:
            # TypeError: a dtype numpy cannot hold.
            raise CheckpointError(f"{path}: unreadable safetensors file: {e}") from None
    return tensors


def _read_torch_bin(path: Path) -> dict[str, np.ndarray]:
    try:
        import torch
    except ImportError:
        raise CheckpointError(
            f"{path}: reading pytorch_model.bin needs torch (pip install 'jaxrec[torch]')"
        ) from None
    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for corrupt or unsafe files
        raise CheckpointError(f"{path}: cannot be loaded with weights_only=True: {e}") from None
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: expected a dict of tensors, found {type(state).__name__}")
    tensors = {}
    for name, value in state.items():
        if not (isinstance(name, str) and isinstance(value, torch.Tensor)):
            raise CheckpointError(f"{path}: entry {excerpt(name)} is not a named tensor")
        try:
            tensors[name] = (value.float() if value.is_floating_point() else value).numpy()
        except (RuntimeError, TypeError) as e:  # sparse, quantized or meta tensors
            raise CheckpointError(f"{path}: tensor {name!r} cannot be read: {e}") from None
    return tensors


def strip_heads(tensors: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Drops the `bert.` prefix of BertFor* checkpoints and the known non-encoder tensors."""
    prefixed = any(k.startswith(_ENCODER_PREFIXES) for k in tensors)
    out, dropped = {}, []
    for name, value in tensors.items():
        for prefix in _ENCODER_PREFIXES:
            if name.startswith(prefix):
                name = name[len(prefix) :]
                break
        else:
            if prefixed and not name.startswith(("embeddings.", "encoder.", "pooler.")):
                dropped.append(name)
                continue
        if any(re.fullmatch(p, name) for p in IGNORED):
            dropped.append(name)
            continue
        out[name] = value
    if dropped:
        log.info("ignoring %d non-encoder tensors, e.g. %s", len(dropped), dropped[:3])
    return out


def load_into(model: nnx.Module, tensors: Mapping[str, np.ndarray], source: str) -> None:
    """Copies HF tensors into `model`'s parameters, in place.

    Every parameter must be present, every tensor used, every shape right; otherwise one
    CheckpointError lists all the offending names.
    """
    # LoRA adapters start fresh: they are not part of any pretrained checkpoint.
    state = nnx.state(model, nnx.All(nnx.Param, nnx.Not(LoRAParam)))
    flat = {path_name(path): var for path, var in nnx.to_flat_state(state)}
    expected = {}
    for path in flat:
        hf_name, transpose = jax_to_hf_name(path)
        expected[hf_name] = (path, transpose)
    tensors = strip_heads(tensors)
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    mismatched = []
    for hf_name in sorted(set(expected) & set(tensors)):
        path, transpose = expected[hf_name]
        value = np.asarray(tensors[hf_name])
        value = value.T if transpose else value
        target = flat[path]
        if value.shape != target.shape:
            shape = tuple(value.T.shape if transpose else value.shape)
            want = tuple(target.shape[::-1] if transpose else target.shape)
            mismatched.append(f"{hf_name}: checkpoint {shape}, model {want}")
            continue
        target[...] = _placed(value.astype(target.dtype), target[...])
    problems = []
    if missing:
        problems.append(f"missing tensors {missing}")
    if unexpected:
        problems.append(f"unexpected tensors {unexpected}")
    if mismatched:
        problems.append("shape mismatch: " + "; ".join(mismatched))
    if problems:
        raise CheckpointError(
            f"{source}: checkpoint does not fit the model: " + "; ".join(problems)
        )


def _placed(value: np.ndarray, like) -> jax.Array:
    """`value` placed as `like` is: each device receives only its own part, so a sharded
    parameter is never whole on one device."""
    return jax.make_array_from_callback(value.shape, like.sharding, lambda index: value[index])


def export_tensors(model: nnx.Module) -> dict[str, np.ndarray]:
    """The model's parameters under HF names and layouts (what `BertModel` loads)."""
    state = nnx.state(model, nnx.Param)
    out = {}
    for path, var in nnx.to_flat_state(state):
        hf_name, transpose = jax_to_hf_name(path_name(path))
        value = np.asarray(var[...])
        out[hf_name] = np.array(value.T if transpose else value, order="C")
    return out
