"""A workdir belongs to one run: checked before anything is written to it, locked while it runs.

Before a run writes anything, its workdir must be a folder it can write (or one it can create),
and a workdir that already holds checkpoints must hold them for the same run: a config that
differs in any key outside `RESUMABLE` is refused, naming the keys, and `config.json` is left
as it was. Then process 0 takes the workdir's lock (`jaxrec.lock`, an flock that the kernel
releases when the process ends, however it ends) and only then writes `config.json`. A second
run on a locked workdir stops at once, naming the process and host that hold it; a lock left by
a killed run is free again and is taken over. In a multi-process run process 0 tells the
others whether it got the workdir, so that all of them stop together when it did not.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import ml_collections
import numpy as np

from jaxrec.errors import CheckpointError, ConfigError, excerpt

log = logging.getLogger(__name__)

CONFIG_FILE = "config.json"
LOCK_FILE = "jaxrec.lock"
CHECKPOINTS = "checkpoints"
# What a training run writes into its workdir; other tools must not overwrite these.
OWNED = (CONFIG_FILE, LOCK_FILE, "metrics.json", CHECKPOINTS, "encoder", "cache", "tensorboard")
# Keys a resumed run may change: how long and how often it runs, where it keeps its token
# cache, on which devices and with how much memory; not what it computes.
RESUMABLE = (
    "train.num_steps",
    "train.log_every",
    "train.eval_every",
    "train.save_every",
    "train.patience",
    "train.keep_checkpoints",
    "train.eval_batch_size",
    "train.micro_batches",
    "data.cache_dir",
    "model.remat",
    "mesh.",
)
_MESSAGE_BYTES = 1024  # an error message sent from process 0 to the others


def check_path(workdir: str | Path) -> Path:
    """`workdir` if a run can write it: an existing writable folder, or one it can create.

    Raises ConfigError naming the path otherwise; writes nothing.
    """
    path = Path(workdir)
    if path.exists():
        if not path.is_dir():
            raise ConfigError(f"workdir {path} is a file, not a folder")
        if not os.access(path, os.W_OK | os.X_OK):
            raise ConfigError(f"workdir {path} is not writable")
        return path
    ancestor = next(p for p in path.absolute().parents if p.exists())
    if not ancestor.is_dir():
        raise ConfigError(f"workdir {path} cannot be created: {ancestor} is a file")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise ConfigError(f"workdir {path} cannot be created: {ancestor} is not writable")
    return path


def read_config(workdir: str | Path) -> ml_collections.ConfigDict:
    """The config a trained workdir was run with (its config.json), for prediction and export."""
    path = Path(workdir) / CONFIG_FILE
    if not path.exists():
        raise CheckpointError(f"{path}: not a training workdir (no {CONFIG_FILE})")
    saved = _saved_config(path, CheckpointError)
    return ml_collections.ConfigDict(saved)


def _saved_config(path: Path, error: type[Exception]) -> dict[str, Any]:
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:  # unreadable, not UTF-8, not JSON
        raise error(f"{path}: not a readable training config ({e})") from None
    if not isinstance(saved, dict) or not isinstance(saved.get("task"), str):
        raise error(f"{path}: not a jaxrec training config (no task)")
    return saved


def has_checkpoints(workdir: Path) -> bool:
    folder = workdir / CHECKPOINTS
    return folder.is_dir() and any(p.name.isdigit() for p in folder.iterdir())


def differing_keys(saved: dict[str, Any], config: dict[str, Any]) -> list[str]:
    """Dotted keys whose values differ, outside `RESUMABLE`.

    A key that only one side has is left out: another jaxrec version added or dropped it.
    """
    old, new = _flatten(saved), _flatten(config)
    keys = [k for k in old.keys() & new.keys() if old[k] != new[k] and not k.startswith(RESUMABLE)]
    return sorted(keys, key=lambda k: (k != "task", k))  # another task says the most


def _flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def check_resume(workdir: Path, config: ml_collections.ConfigDict) -> None:
    """Raises ConfigError when `workdir` holds another run than `config` would continue.

    A config.json that is not a jaxrec config is never overwritten. One that is may be
    replaced freely while the workdir holds no checkpoint; after that, only in `RESUMABLE`.
    """
    path = workdir / CONFIG_FILE
    if not path.exists():
        return
    saved = _saved_config(path, ConfigError)
    if not has_checkpoints(workdir):
        return
    new = json.loads(config.to_json_best_effort())
    keys = differing_keys(saved, new)
    if keys:
        old, now = _flatten(saved), _flatten(new)
        shown = "; ".join(
            f"{k}: {excerpt(old[k], 40)} there, {excerpt(now[k], 40)} here" for k in keys[:5]
        )
        more = f" and {len(keys) - 5} more" if len(keys) > 5 else ""
        raise ConfigError(
            f"workdir {workdir} holds checkpoints of a run with another config ({shown}{more}); "
            "rerun with its config or use a new workdir"
        )


def write_config(workdir: Path, config: ml_collections.ConfigDict) -> None:
    """Writes config.json whole or not at all."""
    path = workdir / CONFIG_FILE
    tmp = path.with_name(f"{CONFIG_FILE}.tmp{os.getpid()}")
    tmp.write_text(config.to_json_best_effort(indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)


class Lock:
    """An exclusive flock on `workdir/jaxrec.lock` that records the holder's pid and host.

    The kernel releases an flock when its process ends, even by SIGKILL: the record a killed run
    leaves behind is then stale, and the next run takes the lock over (and says so).
    """

    def __init__(self, workdir: str | Path) -> None:
        self.workdir = Path(workdir)
        self.path = self.workdir / LOCK_FILE
        self._handle = None

    def acquire(self) -> None:
        handle = open(self.path, "a+", encoding="utf-8")  # noqa: SIM115 (held until release)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = _holder(handle.read())
            handle.close()
            raise ConfigError(f"workdir {self.workdir} is in use by {holder}") from None
        except OSError as e:  # a filesystem without locks (some FUSE mounts)
            handle.close()
            log.warning("cannot lock %s (%s): nothing stops a second run", self.path, e.strerror)
            return
        handle.seek(0)
        previous = handle.read().strip()
        if previous:
            log.warning("taking over the lock of %s, which no longer runs", _holder(previous))
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname()}) + "\n")
        handle.flush()
        self._handle = handle

    def release(self) -> None:
        """Frees the lock; an emptied record tells the next run that this one ended cleanly."""
        if self._handle is None:
            return
        with contextlib.suppress(OSError):
            self._handle.truncate(0)
        self._handle.close()  # closing releases the flock
        self._handle = None


def _holder(record: str) -> str:
    try:
        holder = json.loads(record)
        return f"process {int(holder['pid'])} on {holder['host']}"
    except (ValueError, TypeError, KeyError):
        return "another process"


@contextlib.contextmanager
def claim(config: ml_collections.ConfigDict, workdir: str | Path) -> Iterator[Path]:
    """The workdir, checked, locked and holding `config` as config.json, for one run.

    Process 0 checks, locks and writes; in a multi-process run it then tells the others,
    so every process raises the same ConfigError when it failed. The lock is freed on exit.
    """
    import jax

    path = Path(workdir)
    lock = Lock(path)
    error: Exception | None = None
    if jax.process_index() == 0:
        try:
            _claim(config, path, lock)
        except Exception as e:  # the others must hear of any failure, or they would wait
            error = e
    message = _from_process_zero("" if error is None else str(error) or repr(error))
    if error is not None:
        raise error
    if message:
        raise ConfigError(message)
    try:
        yield path
    finally:
        lock.release()


def _claim(config: ml_collections.ConfigDict, workdir: Path, lock: Lock) -> None:
    check_path(workdir)
    check_resume(workdir, config)  # before anything is written, even the lock
    try:
        workdir.mkdir(parents=True, exist_ok=True)
        lock.acquire()
    except OSError as e:
        raise ConfigError(f"workdir {workdir}: {e.strerror or e}") from None
    try:
        check_resume(workdir, config)  # again: another run may have written it meanwhile
        write_config(workdir, config)
    except OSError as e:
        lock.release()
        raise ConfigError(f"workdir {workdir}: cannot write {CONFIG_FILE}: {e.strerror}") from None
    except BaseException:
        lock.release()
        raise


def _from_process_zero(message: str) -> str:
    """Process 0's `message` on every process (the message itself with one process)."""
    import jax

    if jax.process_count() == 1:
        return message
    from jax.experimental import multihost_utils

    raw = message.encode()[:_MESSAGE_BYTES]
    buffer = np.zeros(_MESSAGE_BYTES, np.uint8)
    buffer[: len(raw)] = np.frombuffer(raw, np.uint8)
    shared = np.asarray(multihost_utils.broadcast_one_to_all(buffer))
    return bytes(shared).rstrip(b"\0").decode(errors="replace")


def check_not_owned(workdir: str | Path, output: str | Path, flag: str = "--output") -> None:
    """Raises ConfigError when `output` is a file or folder a training run keeps in `workdir`."""
    out, root = Path(output).resolve(), Path(workdir).resolve()
    for name in OWNED:
        owned = root / name
        if out == owned or owned in out.parents:
            raise ConfigError(f"{flag} {output} would overwrite {owned}, which the run owns")
