"""Lightning checkpoints that are whole or absent, never unpickle code, and survive SIGTERM.

- :class:`SafeCheckpointIO` (a Lightning ``CheckpointIO`` plugin) writes each checkpoint to
  a temporary file in its own directory, flushes it and renames it (never a copy across file
  systems, never a truncated file under the final name), and loads with
  ``torch.load(weights_only=True)``: a checkpoint holding other Python objects is refused
  with a :class:`~hepfm.errors.CheckpointError` naming the file, without running anything.
- :func:`resume_checkpoint` picks the newest checkpoint of a run that loads safely.
- :class:`CheckpointOnSigterm` saves ``last.ckpt`` when Lightning stops training on SIGTERM
  (a SLURM time limit, ``scancel``), so ``--resume`` continues from that step.
"""

from __future__ import annotations

import os
import pickle
import re
import warnings
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.plugins.io import TorchCheckpointIO
from lightning.pytorch.utilities.exceptions import SIGTERMException

from hepfm.atomic import atomic_path
from hepfm.errors import CheckpointError, HepfmError

LAST = "last.ckpt"


def load_checkpoint(path: str | os.PathLike[str], map_location: Any = "cpu") -> dict[str, Any]:
    """A Lightning checkpoint as a dict, loaded with ``weights_only=True``.

    Raises :class:`CheckpointError` naming `path` when the file is missing, truncated or
    corrupt, is no Lightning checkpoint, or holds Python objects that only unpickling (running
    code from the file) could rebuild.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        found = re.search(r"GLOBAL (\S+)", str(err))
        what = f" ({found.group(1)})" if found else ""
        raise CheckpointError(
            f"{path}: refused: it holds a Python object{what} that only unpickling, i.e. "
            "running code from the file, could rebuild; hepfm loads plain tensors and "
            "numbers only. Delete the file if you did not make it") from None
    except Exception as err:  # truncated zip, bad magic number, I/O errors
        raise CheckpointError(f"{path}: unreadable checkpoint (truncated or corrupt?): "
                              f"{type(err).__name__}: {err}") from None
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt:
        raise CheckpointError(f"{path}: not a Lightning checkpoint (no 'state_dict')")
    return ckpt


class SafeCheckpointIO(TorchCheckpointIO):
    """``TorchCheckpointIO`` with atomic same-directory saves and ``weights_only`` loads."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: str | os.PathLike[str],
                        storage_options: Any | None = None) -> None:
        if storage_options is not None:
            raise TypeError("SafeCheckpointIO takes no storage_options")
        with atomic_path(path) as tmp:
            torch.save(checkpoint, tmp)

    def load_checkpoint(self, path: str | os.PathLike[str], map_location: Any | None = None,
                        weights_only: bool | None = None) -> dict[str, Any]:
        return load_checkpoint(path, map_location=map_location or "cpu")


def _candidates(ckpt_dir: Path) -> list[Path]:
    """Checkpoints of a run, newest first (``last.ckpt`` first among equals)."""
    found = [p for p in ckpt_dir.glob("*.ckpt") if p.is_file()]
    return sorted(found, key=lambda p: (p.stat().st_mtime_ns, p.name == LAST), reverse=True)


def resume_checkpoint(ckpt_dir: str | os.PathLike[str]) -> Path:
    """The newest checkpoint in `ckpt_dir` that loads safely (normally ``last.ckpt``).

    A refused or damaged newer checkpoint is skipped with a warning naming it and the
    reason; when none loads, the :class:`CheckpointError` lists every file and reason.
    """
    ckpt_dir = Path(ckpt_dir)
    problems: list[str] = []
    for path in _candidates(ckpt_dir) if ckpt_dir.is_dir() else []:
        try:
            load_checkpoint(path)
        except CheckpointError as err:
            problems.append(str(err))
            continue
        if problems:
            warnings.warn(f"resuming from {path} instead: " + " | ".join(problems),
                          UserWarning, stacklevel=2)
        return path
    if problems:
        raise CheckpointError("cannot resume: no checkpoint loads safely: "
                              + " | ".join(problems))
    raise HepfmError(f"cannot resume: no checkpoint in {ckpt_dir}")


class CheckpointOnSigterm(Callback):
    """Save a checkpoint to `path` when Lightning stops training on SIGTERM.

    Lightning turns SIGTERM into ``SIGTERMException`` at the next batch boundary (on every
    rank); this hook runs then, so the checkpoint is a consistent, mid-epoch one.
    """

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)
        self.saved = False

    def on_exception(self, trainer: Any, pl_module: Any, exception: BaseException) -> None:
        if isinstance(exception, SIGTERMException):
            trainer.save_checkpoint(self.path, weights_only=False)
            self.saved = True


__all__ = ["CheckpointOnSigterm", "SafeCheckpointIO", "load_checkpoint", "resume_checkpoint"]
