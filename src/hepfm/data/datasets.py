"""Datasets: an in-memory `EventTable` loaded from many files (with a disk cache), an
iterable of ready batches over it, and a streaming dataset over file lists that shards files
(or entry ranges) across DataLoader workers and distributed ranks.

Both datasets yield ready ``Batch`` objects: use ``DataLoader(ds, batch_size=None)``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch.utils.data import IterableDataset, get_worker_info
from torch_geometric.data import Batch

from hepfm.atomic import atomic_path
from hepfm.data.branches import DELPHES, BranchMap
from hepfm.data.features import DEFAULT_SELECTION, FEATURE_VERSION, Selection
from hepfm.data.graphs import build_batch
from hepfm.data.labels import MULTILABELS
from hepfm.data.reading import DEFAULT_STEP_SIZE, OnInvalid, iterate_tables, open_file
from hepfm.data.table import EventTable
from hepfm.data.variations import Variation
from hepfm.errors import ArgumentError, InputDataError
from hepfm.processes import PROCESSES

log = logging.getLogger(__name__)

PathLike = str | os.PathLike
Source = PathLike | Sequence[PathLike] | Mapping[str, PathLike | Sequence[PathLike]]
LabelOf = Mapping[str, int] | Callable[[str], int] | None
Sampling = Literal["uniform", "balanced", "weighted"]


# ----------------------------------------------------------------------------- sources
def process_of_file(path: PathLike) -> str:
    """The process a sample file holds: ``<process>.root`` or ``<process>_<k>.root``."""
    return re.sub(r"_\d+$", "", Path(path).stem)


def resolve_sources(source: Source, processes: Sequence[str] | str | None = None
                    ) -> dict[str, list[str]]:
    """Process name -> its files, from a directory (``<process>.root``, ``<process>_<k>.root``),
    a file, a list of files (process from the file name) or a mapping process -> file(s)."""
    if isinstance(processes, str):
        from hepfm.processes import resolve_processes

        processes = resolve_processes(processes)
    out: dict[str, list[str]] = {}
    if isinstance(source, (str, os.PathLike)):
        source = os.path.expanduser(source)
    if isinstance(source, Mapping):
        for p, fs in source.items():
            out[str(p)] = [os.fspath(fs)] if isinstance(fs, (str, os.PathLike)) \
                else [os.fspath(f) for f in fs]
    elif isinstance(source, (str, os.PathLike)) and os.path.isdir(source):
        d = Path(source)
        found: dict[str, list[str]] = {}
        for f in sorted(d.glob("*.root"), key=lambda q: _natural_key(q.name)):
            found.setdefault(process_of_file(f), []).append(str(f))
        if processes is None:
            known = [p for p in PROCESSES if p in found]
            out = {p: found[p] for p in known + sorted(set(found) - set(known))}
        else:
            missing = [p for p in processes if p not in found]
            if missing:
                raise InputDataError(
                    f"no file for process(es) {', '.join(missing)} in '{d}' (expected "
                    f"'<process>.root' or '<process>_<k>.root'). Files there: "
                    f"{', '.join(sorted(q.name for q in d.glob('*.root'))) or 'none'}")
            out = {p: found[p] for p in processes}
        if not out:
            raise InputDataError(f"no .root files in directory '{d}'")
    else:
        files = [source] if isinstance(source, (str, os.PathLike)) else list(source)
        for f in files:
            out.setdefault(process_of_file(f), []).append(os.fspath(f))
    if processes is not None:
        unknown = [p for p in processes if p not in out]
        if unknown:
            raise InputDataError(f"no input files for process(es) {', '.join(unknown)}; "
                                 f"have {', '.join(out)}")
        out = {p: out[p] for p in processes}
    return out


def _natural_key(name: str) -> tuple:
    return tuple(int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name))


def label_for(process: str, position: int, label_of: LabelOf = None) -> int:
    """Class label of `process`: `label_of` (mapping or callable) if given, else the catalog
    ``label_id``, else the process's position in the list."""
    if label_of is None:
        return PROCESSES[process].label_id if process in PROCESSES else position
    if isinstance(label_of, Mapping):
        return int(label_of[process])
    return int(label_of(process))


# ----------------------------------------------------------------------------- loading
def _cache_key(sources: dict[str, list[str]], labels: list[int], **config: Any) -> str:
    files = []
    for p, fs in sources.items():
        for f in fs:
            try:
                st = os.stat(f)
                files.append([p, os.path.abspath(f), st.st_size, st.st_mtime_ns])
            except OSError:
                files.append([p, os.path.abspath(f), -1, -1])
    blob = json.dumps({"files": files, "labels": labels, "feature_version": FEATURE_VERSION,
                       "multilabels": list(MULTILABELS), **config}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


def save_table(table: EventTable, path: PathLike) -> None:
    """Write `table` to an ``.npz`` file atomically (temporary file, then rename)."""
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, **table.to_arrays())


def user_cache_dir() -> Path:
    """Where event caches go when the sample directory is read-only:
    ``$XDG_CACHE_HOME/hepfm/events`` (default ``~/.cache/hepfm/events``)."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "hepfm" / "events"


def _cache_paths(path: Path) -> list[Path]:
    """`path`, then the same file name in :func:`user_cache_dir` (for read-only samples)."""
    fallback = user_cache_dir() / path.name
    return [path] if fallback == path else [path, fallback]


def _write_cache(table: EventTable, path: Path) -> None:
    """Cache `table` at `path`; where that cannot be written (a read-only sample directory,
    usual for shared areas), in :func:`user_cache_dir` with a warning; never fatal."""
    reasons = []
    for target in _cache_paths(path):
        try:
            save_table(table, target)
        except OSError as err:
            reasons.append(f"'{target.parent}' ({err.strerror or err})")
            continue
        if reasons:
            log.warning("cannot write the event cache in %s; cached in '%s' instead",
                        reasons[0], target.parent)
        return
    log.warning("event cache not written: cannot write in %s", " or ".join(reasons))


def load_table(path: PathLike) -> EventTable:
    """Read a table written by :func:`save_table`."""
    with np.load(path, allow_pickle=False) as z:
        return EventTable.from_arrays({k: z[k] for k in z.files})


def load_events(
    source: Source,
    processes: Sequence[str] | str | None = None,
    events_per_process: int | None = None,
    branch_map: BranchMap = DELPHES,
    selection: Selection = DEFAULT_SELECTION,
    label_of: LabelOf = None,
    *,
    on_invalid: OnInvalid = "error",
    step_size: int = DEFAULT_STEP_SIZE,
    cache_dir: PathLike | None = None,
    entry_ranges: Mapping[str, tuple[int, int]] | None = None,
    variation: Variation | None = None,
) -> EventTable:
    """Read all (or the first `events_per_process`) events of each process into memory.

    `source`: a directory of ``<process>.root`` files, a file, a list of files or a mapping
    process -> file(s). `label_of` gives the class label ``y`` (default: catalog
    ``label_id``). `entry_ranges` (file -> (start, stop)) reads only those entries of each
    file. With `cache_dir`, the table is cached as ``.npz`` keyed by the files (paths, sizes,
    mtimes) and the configuration, so a second call starts instantly; when `cache_dir` is
    read-only, the cache goes to :func:`user_cache_dir` (with a warning). `variation`
    (:mod:`hepfm.data.variations`) shifts the events as they are read.
    """
    sources = resolve_sources(source, processes)
    names = tuple(sources)
    labels = [label_for(p, i, label_of) for i, p in enumerate(names)]
    cache_path = None
    if cache_dir is not None:
        key = _cache_key(sources, labels, events_per_process=events_per_process,
                         branch_map=branch_map.to_dict(),
                         selection=selection.to_dict(), on_invalid=on_invalid,
                         entry_ranges=None if entry_ranges is None else dict(entry_ranges),
                         **({} if variation is None else {"variation": variation.to_dict()}))
        cache_path = Path(cache_dir) / f"events-{key}.npz"
        for path in _cache_paths(cache_path):
            if path.exists():
                try:
                    log.info("loading cached events from %s", path)
                    return load_table(path)
                except Exception as e:  # a damaged cache is rebuilt, never trusted
                    log.warning("ignoring unreadable cache %s (%s)", path, e)
    tables = []
    for i, files in enumerate(sources.values()):
        tables.extend(iterate_tables(
            files, branch_map, selection, step_size=step_size, max_events=events_per_process,
            entry_ranges=None if entry_ranges is None else [entry_ranges[f] for f in files],
            label=labels[i], process=i, processes=names, on_invalid=on_invalid,
            variation=variation))
    table = EventTable.concat(tables) if tables else EventTable.empty(names)
    table.processes = names
    if cache_path is not None:
        _write_cache(table, cache_path)
    return table


# ----------------------------------------------------------------------------- sharding
def _rank_world() -> tuple[int, int]:
    """Distributed rank and world size: ``torch.distributed`` when initialised, else the
    ``RANK`` / ``WORLD_SIZE`` environment variables, else 0 / 1."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


def _worker() -> tuple[int, int]:
    """(DataLoader worker id, number of workers) of this process; (0, 1) without workers."""
    wi = get_worker_info()
    return (wi.id, wi.num_workers) if wi is not None else (0, 1)


def shard_info() -> tuple[int, int]:
    """(shard id, number of shards) for this process: distributed rank x DataLoader worker
    (rank and world size as in :func:`_rank_world`)."""
    (rank, world), (wid, nw) = _rank_world(), _worker()
    return rank * nw + wid, world * nw


class _EpochDataset(IterableDataset):
    """The epoch counter of hepfm's datasets: :meth:`set_epoch` fixes it (needed with
    DataLoader workers, which iterate copies); otherwise every new iteration advances it."""

    epoch = 0
    _explicit_epoch = False

    def set_epoch(self, epoch: int) -> None:
        """Use the order of `epoch` from now on."""
        self.epoch = int(epoch)
        self._explicit_epoch = True

    def _next_epoch(self) -> int:
        """The epoch of the iteration starting now."""
        epoch = self.epoch
        if not self._explicit_epoch and get_worker_info() is None:
            self.epoch += 1
        return epoch


class EventBatches(_EpochDataset):
    """Ready batches over an in-memory :class:`EventTable`, reshuffled every epoch.

    The epoch's event order depends only on (`seed`, epoch), so all ranks agree; each rank
    takes an equal share of events and each DataLoader worker every n-th batch of it.
    `sampling`: ``uniform`` (each event once per epoch), ``balanced`` (the same number of
    events per process, `events_per_process` or the smallest process), ``weighted`` (draw
    `len(table)` events with replacement with probability proportional to `weights`, one per
    event or a mapping process -> weight). Call :meth:`set_epoch` with DataLoader workers;
    without workers the epoch also advances at every new iteration.
    """

    def __init__(self, table: EventTable, batch_size: int = 1024, shuffle: bool = True,
                 seed: int = 0, drop_last: bool = False, sampling: Sampling = "uniform",
                 weights: np.ndarray | Mapping[str, float] | None = None,
                 events_per_process: int | None = None, shard: bool = True):
        if batch_size < 1:
            raise ArgumentError(f"batch_size must be >= 1, got {batch_size}")
        self.table, self.batch_size, self.shuffle, self.seed = table, batch_size, shuffle, seed
        self.drop_last, self.sampling, self.shard = drop_last, sampling, shard
        self.events_per_process = events_per_process
        if sampling == "weighted":
            if weights is None:
                raise ArgumentError("sampling='weighted' needs weights")
            if isinstance(weights, Mapping):
                pw = np.array([float(weights.get(p, 0.0)) for p in table.processes])
                weights = pw[table.process]
            weights = np.asarray(weights, dtype=np.float64)
            if weights.shape != (len(table),) or np.any(weights < 0) or weights.sum() <= 0:
                raise ArgumentError("weights must be >= 0, not all 0, one per event")
        elif sampling not in ("uniform", "balanced"):
            raise ArgumentError(f"unknown sampling '{sampling}': uniform, balanced or weighted")
        self.weights = weights

    def epoch_indices(self, epoch: int | None = None) -> np.ndarray:
        """Event indices of one whole epoch (all ranks together), in order."""
        epoch = self.epoch if epoch is None else epoch
        rng = np.random.default_rng([self.seed, epoch])
        n = len(self.table)
        if self.sampling == "balanced":
            groups = [np.flatnonzero(self.table.process == p)
                      for p in range(len(self.table.processes))]
            groups = [g for g in groups if len(g)]
            k = self.events_per_process or min(len(g) for g in groups)
            idx = np.concatenate([rng.choice(g, size=k, replace=k > len(g)) for g in groups])
        elif self.sampling == "weighted":
            idx = rng.choice(n, size=n, replace=True, p=self.weights / self.weights.sum())
        else:
            idx = np.arange(n)
        return rng.permutation(idx) if self.shuffle else idx

    def _my_batches(self, epoch: int | None = None) -> list[np.ndarray]:
        idx = self.epoch_indices(epoch)
        wid, nw = _worker()
        if self.shard:
            rank, world = _rank_world()
            per = len(idx) // world if world > 1 else len(idx)
            idx = idx[rank::world][:per]
        else:
            wid, nw = 0, 1
        bs = self.batch_size
        n_b = len(idx) // bs if self.drop_last else -(-len(idx) // bs)
        return [idx[i * bs:(i + 1) * bs] for i in range(wid, n_b, nw)]

    def __iter__(self) -> Iterator[Batch]:
        for b in self._my_batches(self._next_epoch()):
            yield build_batch(self.table, b, keep_order=not self.shuffle)

    def __len__(self) -> int:
        n = len(self.epoch_indices()) if self.sampling == "balanced" else len(self.table)
        if self.shard:
            _, world = _rank_world()
            n //= world
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)


class StreamingEvents(_EpochDataset):
    """Ready batches streamed from files, never holding the whole dataset in memory.

    Work is split into shards (distributed ranks x DataLoader workers): whole files when
    there are at least as many files as shards, else contiguous entry ranges of every file,
    so no event is read twice in an epoch. Each shard reads its files chunk by chunk in
    turn (mixing processes) into a shuffle buffer of `buffer_events` events and yields
    batches of `batch_size`. The file order and shuffling depend on (`seed`, epoch).
    Whole-file shards can differ in size; ``split_files=True`` gives every shard an equal
    entry range of every file (equal shares to within one event per file), which DDP
    training prefers.
    """

    def __init__(self, source: Source, processes: Sequence[str] | str | None = None,
                 batch_size: int = 1024, branch_map: BranchMap = DELPHES,
                 selection: Selection = DEFAULT_SELECTION, label_of: LabelOf = None, *,
                 shuffle: bool = True, seed: int = 0, step_size: int = 10_000,
                 buffer_events: int = 100_000, drop_last: bool = False,
                 on_invalid: OnInvalid = "error", split_files: bool | None = None):
        self.sources = resolve_sources(source, processes)
        self.names = tuple(self.sources)
        self.labels = [label_for(p, i, label_of) for i, p in enumerate(self.names)]
        self.files = [(f, i) for i, p in enumerate(self.names) for f in self.sources[p]]
        self.batch_size, self.branch_map, self.selection = batch_size, branch_map, selection
        self.shuffle, self.seed, self.step_size = shuffle, seed, step_size
        self.buffer_events, self.drop_last, self.on_invalid = buffer_events, drop_last, on_invalid
        self.split_files = split_files
        self._entries: dict[str, int] = {}

    def _entry_range(self, path: str) -> tuple[int, int]:
        """The entries of `path` read in an epoch (all of them)."""
        if path not in self._entries:
            self._entries[path] = open_file(path, self.branch_map, allow_empty=True).num_entries
        return 0, self._entries[path]

    def work_units(self, shard: int, n_shards: int, epoch: int | None = None
                   ) -> list[tuple[str, int, int, int]]:
        """(file, entry start, entry stop, process index) read by `shard` of `n_shards`."""
        epoch = self.epoch if epoch is None else epoch
        rng = np.random.default_rng([self.seed, epoch])
        order = rng.permutation(len(self.files)) if self.shuffle else np.arange(len(self.files))
        files = [self.files[i] for i in order]
        split = self.split_files if self.split_files is not None else len(files) < n_shards
        if not split:
            return [(f, *self._entry_range(f), p) for f, p in files[shard::n_shards]]
        units = []
        for f, p in files:
            start, stop = self._entry_range(f)
            edges = np.linspace(start, stop, n_shards + 1).round().astype(np.int64)
            if edges[shard + 1] > edges[shard]:
                units.append((f, int(edges[shard]), int(edges[shard + 1]), p))
        return units

    def _tables(self, units: list[tuple[str, int, int, int]]) -> Iterator[EventTable]:
        its = [iterate_tables(f, self.branch_map, self.selection, step_size=self.step_size,
                              entry_ranges=[(a, b)], label=self.labels[p], process=p,
                              processes=self.names, on_invalid=self.on_invalid)
               for f, a, b, p in units]
        while its:  # round robin over the shard's files: chunks of all processes mix
            alive = []
            for it in its:
                t = next(it, None)
                if t is not None:
                    yield t
                    alive.append(it)
            its = alive

    def __iter__(self) -> Iterator[Batch]:
        shard, n_shards = shard_info()
        epoch = self._next_epoch()
        units = self.work_units(shard, n_shards, epoch)
        rng = np.random.default_rng([self.seed, epoch, shard])
        buf: list[EventTable] = []
        n_buf = 0
        bs = self.batch_size
        for t in self._tables(units):
            buf.append(t)
            n_buf += len(t)
            if n_buf >= self.buffer_events:
                table = EventTable.concat(buf)
                n_full = len(table) // bs * bs
                idx = rng.permutation(len(table)) if self.shuffle else np.arange(len(table))
                for i in range(0, n_full, bs):
                    yield build_batch(table, idx[i:i + bs], keep_order=not self.shuffle)
                rest = table.subset(idx[n_full:]) if n_full < len(table) else None
                buf = [rest] if rest is not None else []
                n_buf = len(rest) if rest is not None else 0
        if n_buf:
            table = EventTable.concat(buf)
            idx = rng.permutation(len(table)) if self.shuffle else np.arange(len(table))
            for i in range(0, len(table), bs):
                if self.drop_last and i + bs > len(table):
                    break
                yield build_batch(table, idx[i:i + bs], keep_order=not self.shuffle)


__all__ = ["EventBatches", "StreamingEvents", "label_for", "load_events", "load_table",
           "resolve_sources", "save_table", "shard_info"]
