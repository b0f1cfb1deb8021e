"""`EventTable`: many events as concatenated flat node arrays plus per-event offsets.

This is hepfm's in-memory dataset: no per-event Python objects. Event ``i`` owns nodes
``offsets[i]:offsets[i+1]`` of every node array; its last node is the MET node.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields, replace

import numpy as np

from hepfm.errors import ArgumentError

NODE_ARRAYS: tuple[str, ...] = ("pt", "eta", "phi", "mass", "charge", "btag", "node_type")
EVENT_ARRAYS: tuple[str, ...] = ("y", "process")
#: Fields that :meth:`EventTable.to_arrays` writes only when present (and ``processes``).
_OPTIONAL = ("processes", "y_multi", "entry")


def segment_gather(offsets: np.ndarray, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Node indices of events `idx` (in that order) and the new offsets, without a loop."""
    idx = np.asarray(idx, dtype=np.int64)
    starts = offsets[:-1][idx]
    counts = offsets[1:][idx] - starts
    new_offsets = np.zeros(len(idx) + 1, dtype=np.int64)
    np.cumsum(counts, out=new_offsets[1:])
    total = int(new_offsets[-1])
    nodes = np.arange(total, dtype=np.int64) + np.repeat(starts - new_offsets[:-1], counts)
    return nodes, new_offsets


@dataclass
class EventTable:
    """Events as flat arrays: node arrays of length N, event arrays of length B.

    Node arrays: ``pt``, ``eta``, ``phi``, ``mass`` (float32, GeV), ``charge`` (int8),
    ``btag`` (float32, 0 or 1), ``node_type`` (int8, index into ``NODE_TYPES``).
    Event arrays: ``offsets`` (int64 [B+1]), ``y`` (int64 class label), ``process``
    (int16 index into ``processes``), ``y_multi`` (float32 [B, L] or None without truth),
    ``entry`` (int64 entry number of each event in the file it was read from, or None):
    events dropped while reading leave gaps there.
    """

    offsets: np.ndarray
    pt: np.ndarray
    eta: np.ndarray
    phi: np.ndarray
    mass: np.ndarray
    charge: np.ndarray
    btag: np.ndarray
    node_type: np.ndarray
    y: np.ndarray
    process: np.ndarray
    processes: tuple[str, ...] = ()
    y_multi: np.ndarray | None = None
    entry: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @property
    def n_nodes(self) -> int:
        """Total number of nodes (MET nodes included)."""
        return int(self.offsets[-1] - self.offsets[0])

    @property
    def counts(self) -> np.ndarray:
        """Nodes per event (int64 [B])."""
        return np.diff(self.offsets)

    def __getitem__(self, item: slice) -> EventTable:
        """A contiguous slice of events (views, no copy)."""
        if not isinstance(item, slice):
            raise TypeError("EventTable[...] takes a slice; use .subset(indices) otherwise")
        start, stop, step = item.indices(len(self))
        if step != 1:
            return self.subset(np.arange(start, stop, step))
        stop = max(stop, start)
        a, b = int(self.offsets[start]), int(self.offsets[stop])
        nodes = {k: getattr(self, k)[a:b] for k in NODE_ARRAYS}
        return EventTable(
            offsets=self.offsets[start:stop + 1] - a,
            y=self.y[start:stop], process=self.process[start:stop],
            processes=self.processes,
            y_multi=None if self.y_multi is None else self.y_multi[start:stop],
            entry=None if self.entry is None else self.entry[start:stop],
            **nodes,
        )

    def subset(self, indices: Sequence[int] | np.ndarray) -> EventTable:
        """The events `indices` in that order (a copy); vectorised gather."""
        idx = np.asarray(indices)
        idx = np.flatnonzero(idx) if idx.dtype == bool else idx.astype(np.int64, copy=False)
        nodes, offsets = segment_gather(self.offsets - self.offsets[0], idx)
        return EventTable(
            offsets=offsets,
            y=self.y[idx], process=self.process[idx], processes=self.processes,
            y_multi=None if self.y_multi is None else self.y_multi[idx],
            entry=None if self.entry is None else self.entry[idx],
            **{k: getattr(self, k)[nodes] for k in NODE_ARRAYS},
        )

    def select(self, mask: np.ndarray) -> EventTable:
        """Events where boolean `mask` is true."""
        return self.subset(np.flatnonzero(np.asarray(mask, dtype=bool)))

    def split(
        self, fractions: Sequence[float] = (0.8, 0.1, 0.1), seed: int = 0,
        stratify: bool = True,
    ) -> tuple[EventTable, ...]:
        """Random disjoint parts with the given fractions (summing to at most 1).

        With `stratify`, every process is split with the same fractions.
        """
        fr = np.asarray(fractions, dtype=np.float64)
        if np.any(fr < 0) or fr.sum() > 1 + 1e-9:
            raise ArgumentError(f"split fractions must be >= 0 and sum to <= 1, got {fractions}")
        rng = np.random.default_rng(seed)
        groups = [np.flatnonzero(self.process == p) for p in np.unique(self.process)] \
            if stratify else [np.arange(len(self))]
        parts: list[list[np.ndarray]] = [[] for _ in fr]
        for g in groups:
            g = rng.permutation(g)
            edges = np.floor(np.cumsum(np.concatenate([[0.0], fr])) * len(g) + 1e-9)
            edges = edges.astype(np.int64)
            for k in range(len(fr)):
                parts[k].append(g[edges[k]:edges[k + 1]])
        return tuple(self.subset(np.sort(np.concatenate(p))) for p in parts)

    def with_labels(self, y: np.ndarray) -> EventTable:
        """The same events with class labels `y` (e.g. 0/1 for a task)."""
        y = np.asarray(y, dtype=np.int64)
        if y.shape != (len(self),):
            raise ArgumentError(f"labels must have shape ({len(self)},), got {y.shape}")
        return replace(self, y=y)

    @staticmethod
    def concat(tables: Sequence[EventTable]) -> EventTable:
        """Events of all `tables` one after another; process indices are remapped."""
        tables = [t for t in tables if t is not None]
        if not tables:
            raise ArgumentError("EventTable.concat needs at least one table")
        names: list[str] = []
        for t in tables:
            names += [p for p in t.processes if p not in names]
        procs = []
        for t in tables:
            remap = np.array([names.index(p) for p in t.processes] or [0], dtype=np.int16)
            procs.append(remap[t.process] if len(t.processes) else t.process)
        counts = np.concatenate([t.counts for t in tables])
        offsets = np.zeros(len(counts) + 1, dtype=np.int64)
        np.cumsum(counts, out=offsets[1:])
        y_multi = None
        if all(t.y_multi is not None for t in tables):
            y_multi = np.concatenate([t.y_multi for t in tables])
        entry = None
        if all(t.entry is not None for t in tables):
            entry = np.concatenate([t.entry for t in tables])
        return EventTable(
            offsets=offsets,
            y=np.concatenate([t.y for t in tables]),
            process=np.concatenate(procs).astype(np.int16),
            processes=tuple(names),
            y_multi=y_multi, entry=entry,
            **{k: np.concatenate([_nodes(t, k) for t in tables]) for k in NODE_ARRAYS},
        )

    def process_counts(self) -> dict[str, int]:
        """Number of events per process name."""
        c = np.bincount(self.process, minlength=len(self.processes))
        return {p: int(c[i]) for i, p in enumerate(self.processes)}

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Plain arrays (for ``np.savez``); inverse of :meth:`from_arrays`."""
        t = self[0:len(self)] if self.offsets[0] != 0 else self
        out = {f.name: getattr(t, f.name) for f in fields(t) if f.name not in _OPTIONAL}
        out["processes"] = np.array(t.processes, dtype=str)
        out.update({k: getattr(t, k) for k in ("y_multi", "entry") if getattr(t, k) is not None})
        return out

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> EventTable:
        """Inverse of :meth:`to_arrays`."""
        kw = {f.name: np.asarray(arrays[f.name]) for f in fields(cls) if f.name not in _OPTIONAL}
        kw.update({k: np.asarray(arrays[k]) for k in ("y_multi", "entry") if k in arrays})
        return cls(processes=tuple(str(p) for p in arrays["processes"]), **kw)

    @staticmethod
    def empty(processes: tuple[str, ...] = (), n_labels: int | None = None) -> EventTable:
        """A table with no events."""
        f32 = np.zeros(0, np.float32)
        return EventTable(
            offsets=np.zeros(1, np.int64), pt=f32, eta=f32, phi=f32, mass=f32,
            charge=np.zeros(0, np.int8), btag=f32, node_type=np.zeros(0, np.int8),
            y=np.zeros(0, np.int64), process=np.zeros(0, np.int16), processes=processes,
            y_multi=None if n_labels is None else np.zeros((0, n_labels), np.float32),
        )


def _nodes(t: EventTable, key: str) -> np.ndarray:
    a = int(t.offsets[0])
    return getattr(t, key)[a:a + t.n_nodes]
