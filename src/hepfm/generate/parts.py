"""A sample as part files: the layout of chunks into parts, shards, and what may be reused.

A sample is (process, seed, settings, chunk range ``[first_chunk, first_chunk + n_chunks)``).
Its chunks are grouped into parts of ``part_chunks`` chunks on a grid starting at
``first_chunk``; a sample of one part is written as ``<process>.root``, a larger one as
``<process>_<a>.root`` where ``a`` is the first chunk of the part (names the reader already
combines, :func:`hepfm.data.datasets.process_of_file`). Every part is made by exactly one work
unit and renamed into place atomically, so several runs (hosts, array tasks, ranks) can work on
one directory without locks: if two make the same part, its content is the same and the last
rename wins.

Existing files are never replaced unless they are hepfm parts with the same settings that turn
out damaged: a file without hepfm metadata, written with other settings, or not part of this
sample is a :class:`SampleConflictError` (``force`` replaces or removes it).
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import uproot

from hepfm.errors import HepfmError, naming
from hepfm.generate.writer import METADATA_KEY, TREE, temp_glob, verify_events

log = logging.getLogger("hepfm.generate")

#: Chunks per part file by default (10,000 events at the default 500-event chunks).
PART_CHUNKS = 20
#: Temporaries not modified for this long belong to dead runs and are deleted (a live writer
#: touches its temporary at every chunk).
STALE_TEMP_SECONDS = 6 * 3600
#: Metadata keys that describe a part's place in its sample or its content, not its settings.
PLACEMENT_KEYS = ("first_chunk", "n_chunks", "n_events", "n_events_written", "events_sha256",
                  "sample")


class SampleConflictError(HepfmError, FileExistsError):
    """A file in the output directory that hepfm must not overwrite without ``force``."""


@dataclass(frozen=True)
class Part:
    """Chunks ``[first_chunk, first_chunk + n_chunks)`` of one process's sample, in one file."""

    process: str
    index: int
    first_chunk: int
    n_chunks: int
    n_events: int
    path: Path


@dataclass(frozen=True)
class SamplePlan:
    """The parts of one process's sample in `out`."""

    process: str
    events: int
    chunk_size: int
    first_chunk: int
    part_chunks: int
    parts: tuple[Part, ...]

    @property
    def n_chunks(self) -> int:
        return math.ceil(self.events / self.chunk_size)

    def record(self) -> dict[str, int]:
        """The ``sample`` entry of each part's metadata: which sample the part belongs to."""
        return {"n_events": self.events, "first_chunk": self.first_chunk,
                "n_chunks": self.n_chunks, "part_chunks": self.part_chunks,
                "n_parts": len(self.parts)}


def plan_sample(process: str, events: int, out: Path, chunk_size: int, first_chunk: int = 0,
                part_chunks: int = PART_CHUNKS) -> SamplePlan:
    """Split `events` events (chunks of `chunk_size` from `first_chunk`) into part files."""
    n_chunks = math.ceil(events / chunk_size)
    n_parts = math.ceil(n_chunks / part_chunks)
    parts = []
    for i in range(n_parts):
        a = first_chunk + i * part_chunks
        k = min(part_chunks, n_chunks - i * part_chunks)
        n = min(k * chunk_size, events - i * part_chunks * chunk_size)
        name = f"{process}.root" if n_parts == 1 else f"{process}_{a}.root"
        parts.append(Part(process, i, a, k, n, out / name))
    return SamplePlan(process, events, chunk_size, first_chunk, part_chunks, tuple(parts))


def parse_shard(spec: str | tuple[int, int] | None) -> tuple[int, int] | None:
    """``"K/N"`` (K from 0 to N-1, as ``$SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT`` with
    ``--array=0-<N-1>``) as ``(K, N)``; None for no sharding."""
    if spec is None:
        return None
    try:
        k, n = (int(x) for x in spec.split("/")) if isinstance(spec, str) else spec
    except ValueError:
        raise naming(HepfmError, f"{{shard}} must look like K/N (e.g. 3/10), got '{spec}'",
                     "shard") from None
    if n < 1 or not 0 <= k < n:
        raise naming(HepfmError, f"{{shard}} K/N needs 0 <= K < N, got '{spec}' (for a SLURM "
                     "array use --array=0-<N-1> and {shard=$SLURM_ARRAY_TASK_ID/"
                     "$SLURM_ARRAY_TASK_COUNT})", "shard")
    return k, n


def shard_parts(plans: list[SamplePlan], shard: tuple[int, int] | None) -> list[Part]:
    """The parts this shard makes: every N-th part of all samples, counted across processes."""
    parts = [p for plan in plans for p in plan.parts]
    if shard is None:
        return parts
    k, n = shard
    return parts[k::n]


# ----------------------------------------------------------------------------- existing files
Verdict = Literal["absent", "reuse", "remake", "conflict"]


def read_any_metadata(path: Path) -> tuple[dict[str, Any] | None, str]:
    """The hepfm metadata of `path` and, if there is none or the file is damaged, why."""
    import json

    try:
        with uproot.open(path) as f:
            if METADATA_KEY not in f:
                return None, "has no hepfm metadata (hepfm did not write it)"
            meta = json.loads(str(f[METADATA_KEY]))
            if not isinstance(meta, dict):
                return None, "has unreadable hepfm metadata"
            if f.file.fEND != path.stat().st_size:
                return meta, "is truncated or has trailing bytes"
            if TREE not in f or f[TREE].num_entries != meta.get("n_events_written", -1):
                return meta, "holds fewer events than its metadata says"
            return meta, ""
    except Exception as err:  # not ROOT, truncated before the metadata, unreadable
        return None, f"cannot be read as a ROOT file ({type(err).__name__})"


def settings_diff(found: dict[str, Any], expected: dict[str, Any]) -> list[str]:
    """The settings (not placement keys) in which `found` differs from `expected`."""
    return [k for k in expected if k not in PLACEMENT_KEYS and found.get(k) != expected[k]]


def placement_diff(found: dict[str, Any], expected: dict[str, Any]) -> list[str]:
    """Which of first_chunk, n_chunks, n_events differ (the file holds other chunks)."""
    return [k for k in ("first_chunk", "n_chunks", "n_events")
            if k in expected and found.get(k) != expected[k]]


def _describe(found: dict[str, Any], expected: dict[str, Any], keys: list[str]) -> str:
    return ", ".join(f"{k} {_short(found.get(k))} instead of {_short(expected[k])}"
                     for k in keys[:3]) + (f" (+{len(keys) - 3} more)" if len(keys) > 3 else "")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def judge(path: Path, expected: dict[str, Any], verify: bool = True) -> tuple[Verdict, str]:
    """What to do with the file at a part's name: absent, reuse, remake (ours, same settings,
    damaged) or conflict (not ours, other settings or other chunks), with the reason."""
    if not path.exists():
        return "absent", ""
    meta, problem = read_any_metadata(path)
    if meta is None:
        return "conflict", problem
    diff = settings_diff(meta, expected)
    if diff:
        return "conflict", f"was written with other settings: {_describe(meta, expected, diff)}"
    diff = placement_diff(meta, expected)
    if diff:
        return "conflict", (f"holds other chunks of this sample: "
                            f"{_describe(meta, expected, diff)}")
    if problem:
        return "remake", problem
    if verify and not verify_events(path, meta):
        return "remake", _checksum_problem(meta)
    return "reuse", ""


def _checksum_problem(meta: dict[str, Any]) -> str:
    return ("does not match its events_sha256 checksum" if meta.get("events_sha256")
            else "records no events_sha256 checksum")


def conflict_error(path: Path, reason: str, more: int = 0) -> SampleConflictError:
    """The one-line error for a file hepfm will not overwrite."""
    extra = f" (and {more} more file(s))" if more else ""
    return naming(SampleConflictError, f"'{path}' {reason}{extra}; hepfm will not overwrite "
                  "or mix it: use {force=True} to replace it, or another {out_dir}", "force",
                  "out_dir", options={"out_dir": "--out"})


def sweep_stale_temps(path: Path, max_age: float = STALE_TEMP_SECONDS) -> None:
    """Delete temporaries of `path` not modified for `max_age` seconds (left by dead runs on
    any host; live writers touch theirs at every chunk, so they are never swept)."""
    now = time.time()
    for tmp in path.parent.glob(temp_glob(path)):
        try:
            if now - tmp.stat().st_mtime > max_age:
                tmp.unlink()
                log.info("removed a temporary file of a dead run: %s", tmp)
        except FileNotFoundError:
            pass


def foreign_files(plan: SamplePlan) -> list[Path]:
    """Files of `plan`'s process in its directory that are not parts of the sample (the reader
    would mix them in)."""
    from hepfm.data.datasets import process_of_file

    if not plan.parts:
        return []
    out = plan.parts[0].path.parent
    names = {p.path.name for p in plan.parts}
    return sorted(f for f in out.glob("*.root")
                  if process_of_file(f) == plan.process and f.name not in names)
