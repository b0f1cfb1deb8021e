"""Atomic file writes: write to a temporary file beside the target, then rename.

A crash or a kill mid-write leaves the old file (or nothing), never half a file that looks
complete. The temporary lives in the target's own directory (so the rename never becomes a
copy across file systems) and is flushed to disk before the rename. Files get the usual
permissions (0666 less the umask), not mkstemp's 0600. Temporaries left by a SIGKILL are
named ``.<name>.<random>.tmp``; :func:`sweep_temporaries` removes them on the next start.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import math
import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def atomic_path(path: str | os.PathLike[str], overwrite: bool = True) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces `path`, else it is removed.

    With ``overwrite=False`` an existing `path` is never replaced: :class:`FileExistsError`,
    even when another process created it while the temporary was being written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_umask())
        _fsync(tmp)
        if overwrite:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)  # atomic, and fails if `path` exists
            except FileExistsError:
                raise
            except OSError:  # a file system without hard links
                if path.exists():
                    raise FileExistsError(errno.EEXIST, "file exists", str(path)) from None
                os.replace(tmp, path)
            Path(tmp).unlink(missing_ok=True)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _fsync(path: str | os.PathLike[str]) -> None:
    """Flush `path`'s data to disk, so that the rename never publishes an empty file."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some file systems do not support fsync on a read-only descriptor
        pass
    finally:
        os.close(fd)


def is_temporary(path: str | os.PathLike[str]) -> bool:
    """Whether `path` is named like a temporary of :func:`atomic_path`."""
    name = Path(path).name
    return name.startswith(".") and name.endswith(".tmp") and name.count(".") >= 3


def sweep_temporaries(directory: str | os.PathLike[str], min_age_s: float = 0.0) -> list[Path]:
    """Remove the temporaries of :func:`atomic_path` in `directory` (not recursive) that are
    older than `min_age_s` seconds: what a killed writer left. Returns the removed paths."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    now, removed = time.time(), []
    for path in directory.iterdir():
        if not is_temporary(path) or not path.is_file():
            continue
        try:
            if now - path.stat().st_mtime >= min_age_s:
                path.unlink()
                removed.append(path)
        except FileNotFoundError:  # someone else swept it first
            continue
    if removed:
        log.info("removed %d temporary file(s) left by an interrupted write in %s",
                 len(removed), directory)
    return removed


def write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write `text` to `path` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def file_sha256(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def json_safe(value: Any) -> Any:
    """`value` with non-finite floats as strings (``"nan"``, ``"inf"``) and numpy scalars as
    Python numbers, in dicts and lists at any depth: what strict JSON readers accept."""
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if hasattr(value, "item") and getattr(value, "shape", None) == ():
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def write_json(path: str | os.PathLike[str], value: Any, indent: int = 2) -> Path:
    """Write `value` as JSON (:func:`json_safe`) atomically."""
    return write_text(path, json.dumps(json_safe(value), indent=indent, default=str))


def refuse_existing(directory: str | os.PathLike[str], force: bool | None,
                    setting: str = "out", resume: str | None = None, *,
                    option: str | None = None) -> Path:
    """`directory`, unless it exists and holds files: then an :class:`~hepfm.errors.
    OutputExistsError` (nothing a user wrote is replaced silently), unless `force`. The
    message names the argument `setting` that gave `directory` (`option`: its command-line
    option when not ``--setting``), ``force`` (None: the caller has no such argument) and
    `resume`, the argument that continues an existing directory instead, if any."""
    from hepfm.errors import OutputExistsError, naming

    path = Path(directory)
    if not force and path.is_dir() and any(path.iterdir()):
        remedies = ["{force=True} to replace what is there"] if force is not None else []
        if resume:
            remedies.append(f"{{{resume}=True}} to continue it")
        passing = f"pass {' or '.join(remedies)}, or " if remedies else ""
        raise naming(OutputExistsError, f"{{setting}} '{path}' exists and is not empty: "
                     f"{passing}choose another {{setting}}", setting, "force",
                     *([resume] if resume else []),
                     options={setting: option} if option else None)
    return path
