"""Export a trained workdir to PyTorch: an HF BERT folder plus jaxrec's heads beside it.

  python -m jaxrec.export --workdir=DIR --output=OUT [--step=best|latest|N]
                          [--dtype=float32|bfloat16] [--overwrite]

OUT holds `config.json`, `model.safetensors` and the tokenizer files, so that
`transformers.BertModel.from_pretrained(OUT)` loads the fine-tuned encoder, plus
`jaxrec_heads.safetensors` and `jaxrec_heads.json`, which `jaxrec.torch_serving` reads to
rebuild the whole recommender in PyTorch. Only safetensors and JSON are written, never pickles.

OUT is checked before any checkpoint is read: its parent folder must exist, it must not be a
file, and it must be neither the workdir, nor inside it, nor hold it. A folder that is not empty
is replaced only with --overwrite, and only if it holds an earlier export and nothing else
(`jaxrec_heads.json` marks one). The new folder is written beside OUT and renamed into place,
so a failed export leaves the earlier one whole.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import ml_dtypes  # noqa: E402
import numpy as np  # noqa: E402
from absl import app, flags  # noqa: E402

from jaxrec import cli  # noqa: E402
from jaxrec.errors import ConfigError  # noqa: E402

FLAGS = flags.FLAGS
log = logging.getLogger(__name__)


def define_flags() -> None:
    """Defined only when run as a program, so importing this module defines no flags."""
    cli.define_flags()
    flags.DEFINE_string("workdir", None, "A training workdir.")
    flags.DEFINE_string("output", None, "Folder to write (must be new or empty, or --overwrite).")
    flags.DEFINE_string("step", "best", "best, latest, or a checkpoint step.")
    flags.DEFINE_enum("dtype", "float32", ["float32", "bfloat16"], "Dtype of the tensors.")
    flags.DEFINE_bool("overwrite", False, "Replace the contents of a non-empty output folder.")
    flags.mark_flags_as_required(["workdir", "output"])


HEADS_WEIGHTS = "jaxrec_heads.safetensors"
HEADS_CONFIG = "jaxrec_heads.json"
_DTYPES = {"float32": np.float32, "bfloat16": ml_dtypes.bfloat16}


def parse_step(step: str | int | None) -> int | str | None:
    """'best' -> None (the best checkpoint), 'latest', or an integer step."""
    if step in (None, "best"):
        return None
    if step == "latest":
        return "latest"
    try:
        return int(step)
    except ValueError:
        raise ConfigError(f"--step must be best, latest or an integer, not {step!r}") from None


def export(workdir, output, *, step="best", dtype: str = "float32", overwrite: bool = False) -> int:
    """Writes the export folder; returns the checkpoint step it came from."""
    from flax import nnx
    from safetensors.numpy import save_file

    from jaxrec import pretrained
    from jaxrec.convert import hf
    from jaxrec.models.lora import merge_lora
    from jaxrec.params import path_name
    from jaxrec.trained import load_trained

    output = Path(output)
    check_output(workdir, output, overwrite=overwrite, tokenizer_files=pretrained.TOKENIZER_FILES)
    trained = load_trained(workdir, parse_step(step))
    model = trained.model
    merged = merge_lora(model.bert)  # LoRA adapters folded into plain dense weights
    cast = _DTYPES[dtype]
    encoder = {k: v.astype(cast) for k, v in hf.export_tensors(model.bert).items()}
    heads = {
        path_name(path): np.asarray(var[...]).astype(cast)
        for path, var in nnx.to_flat_state(nnx.state(model, nnx.Param))
        if path[0] != "bert"
    }
    encoder_dir = Path(workdir) / pretrained.ENCODER_DIR
    description = {
        "task": trained.config.task,
        "format_version": 1,
        "checkpoint_step": trained.step,
        "dtype": dtype,
        "merged_lora_layers": merged,
        **trained.task.export_fields(),
        "heads": {k: list(v.shape) for k, v in heads.items()},
    }
    files = {
        "config.json": hf.read_config(encoder_dir).to_hf_dict() | {"torch_dtype": dtype},
        HEADS_CONFIG: description,
    }
    staging = output.resolve().with_name(f".{output.resolve().name}.tmp{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        for name, content in files.items():
            (staging / name).write_text(json.dumps(content, indent=2) + "\n")
        save_file(encoder, str(staging / "model.safetensors"), metadata={"format": "pt"})
        save_file(heads, str(staging / HEADS_WEIGHTS), metadata={"format": "pt"})
        for name in pretrained.TOKENIZER_FILES:
            if (encoder_dir / name).exists():
                shutil.copy(encoder_dir / name, staging / name)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    _replace(output.resolve(), staging)
    log.info("exported step %d of %s to %s (%s)", trained.step, workdir, output, dtype)
    return trained.step


def check_output(
    workdir, output: Path, *, overwrite: bool, tokenizer_files: tuple[str, ...]
) -> None:
    """Raises ConfigError, naming the path, unless export may write the folder `output`."""
    out, root = output.resolve(), Path(workdir).resolve()
    if out == root or out in root.parents or root in out.parents:
        raise ConfigError(
            f"--output {output} is the workdir {workdir}, inside it or holds it: export "
            "writes a folder of its own"
        )
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--output {output} is a file; export writes a folder")
    if not out.parent.is_dir():
        raise ConfigError(f"--output {output}: folder {output.parent} does not exist")
    if not out.exists() or not any(out.iterdir()):
        return
    if not overwrite:
        raise ConfigError(f"{output} exists and is not empty (pass --overwrite to replace it)")
    ours = {"config.json", "model.safetensors", HEADS_WEIGHTS, HEADS_CONFIG, *tokenizer_files}
    foreign = sorted(p.name for p in out.iterdir() if p.name not in ours or not p.is_file())
    if foreign or not _is_export(out):
        what = f"holds {', '.join(foreign[:5])}" if foreign else f"has no export's {HEADS_CONFIG}"
        raise ConfigError(
            f"--overwrite replaces only an earlier export, and {output} {what}; "
            "choose another --output"
        )


def _is_export(folder: Path) -> bool:
    try:
        description = json.loads((folder / HEADS_CONFIG).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(description, dict) and "format_version" in description


def _replace(final: Path, new: Path) -> None:
    """Puts the folder `new` at `final`; an earlier export there is removed only afterwards."""
    old = final.with_name(f".{final.name}.old{os.getpid()}")
    if final.exists():
        final.rename(old)
    new.rename(final)
    shutil.rmtree(old, ignore_errors=True)


def main(argv: list[str]) -> None:
    def body() -> str:
        step = export(
            FLAGS.workdir,
            FLAGS.output,
            step=FLAGS.step,
            dtype=FLAGS.dtype,
            overwrite=FLAGS.overwrite,
        )
        return f"exported checkpoint step {step} -> {FLAGS.output}"

    cli.run(argv, body)


if __name__ == "__main__":
    define_flags()
    app.run(main)
