"""Normalisation statistics: mean and standard deviation of node, edge and global features.

Computed once on training batches and saved with every model (``to_dict`` gives plain
lists for YAML). One-hot node-type columns keep mean 0 and std 1.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch_geometric.data import Batch

from hepfm.data.features import EDGE_FEATURES, GLOBAL_FEATURES, NODE_FEATURES, ONE_HOT_COLUMNS
from hepfm.data.table import EventTable
from hepfm.errors import ArgumentError

_MIN_STD = 1e-6
#: The six arrays of a FeatureStats, in order.
_ARRAYS = ("node_mean", "node_std", "edge_mean", "edge_std", "global_mean", "global_std")


class _Moments:
    """Running sums in float64 (numerically fine for the feature scales here)."""

    def __init__(self, dim: int):
        self.n = 0
        self.s = np.zeros(dim)
        self.ss = np.zeros(dim)
        self._shift = np.zeros(dim)

    def add(self, a: torch.Tensor | np.ndarray) -> None:
        a = a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)
        if a.shape[0] == 0:
            return
        a = a.astype(np.float64)
        if not self.n:
            self._shift = a.mean(0)
        d = a - self._shift
        self.n += a.shape[0]
        self.s += d.sum(0)
        self.ss += (d * d).sum(0)

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        if self.n == 0:
            return np.zeros_like(self.s), np.ones_like(self.s)
        m = self.s / self.n
        var = np.maximum(self.ss / self.n - m * m, 0.0)
        std = np.sqrt(var)
        return m + self._shift, np.where(std < _MIN_STD, 1.0, std)


@dataclass
class FeatureStats:
    """Per-feature mean and std of node (``x``), edge (``edge_attr``) and global (``u``)
    features, in the column order of ``NODE_FEATURES``, ``EDGE_FEATURES``, ``GLOBAL_FEATURES``.
    """

    node_mean: np.ndarray = field(default_factory=lambda: np.zeros(len(NODE_FEATURES)))
    node_std: np.ndarray = field(default_factory=lambda: np.ones(len(NODE_FEATURES)))
    edge_mean: np.ndarray = field(default_factory=lambda: np.zeros(len(EDGE_FEATURES)))
    edge_std: np.ndarray = field(default_factory=lambda: np.ones(len(EDGE_FEATURES)))
    global_mean: np.ndarray = field(default_factory=lambda: np.zeros(len(GLOBAL_FEATURES)))
    global_std: np.ndarray = field(default_factory=lambda: np.ones(len(GLOBAL_FEATURES)))

    @classmethod
    def compute(cls, batches: Iterable, max_batches: int | None = None) -> FeatureStats:
        """Statistics over `batches` (objects with ``x``, ``edge_attr``, ``u``)."""
        mom = {k: _Moments(len(f)) for k, f in
               (("node", NODE_FEATURES), ("edge", EDGE_FEATURES), ("global", GLOBAL_FEATURES))}
        for i, b in enumerate(batches):
            if max_batches is not None and i >= max_batches:
                break
            mom["node"].add(b.x)
            mom["edge"].add(b.edge_attr)
            mom["global"].add(b.u)
        out = {}
        for k, m in mom.items():
            out[f"{k}_mean"], out[f"{k}_std"] = m.result()
        hot = list(ONE_HOT_COLUMNS)
        out["node_mean"][hot] = 0.0
        out["node_std"][hot] = 1.0
        return cls(**out)

    @classmethod
    def from_table(cls, table: EventTable, batch_size: int = 65536) -> FeatureStats:
        """Statistics over all events of an :class:`EventTable`."""
        from hepfm.data.graphs import build_batch

        return cls.compute(build_batch(table[i:i + batch_size])
                           for i in range(0, len(table), batch_size))

    def to_dict(self) -> dict[str, list]:
        """Plain lists (YAML/JSON), with the feature names."""
        d: dict[str, list] = {
            "node_features": list(NODE_FEATURES),
            "edge_features": list(EDGE_FEATURES),
            "global_features": list(GLOBAL_FEATURES),
        }
        for k in _ARRAYS:
            d[k] = [float(v) for v in getattr(self, k)]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> FeatureStats:
        """Inverse of :meth:`to_dict`; checks that the feature names match this version."""
        for key, names in (("node_features", NODE_FEATURES), ("edge_features", EDGE_FEATURES),
                           ("global_features", GLOBAL_FEATURES)):
            if key in d and tuple(d[key]) != names:
                raise ArgumentError(f"normalisation was computed for {key} {d[key]}, "
                                    f"this hepfm uses {list(names)}")
        return cls(**{k: np.asarray(d[k], dtype=np.float64) for k in _ARRAYS})

    def tensors(self, dtype: torch.dtype = torch.float32) -> dict[str, torch.Tensor]:
        """The six arrays as tensors (e.g. to register as model buffers)."""
        return {k: torch.as_tensor(getattr(self, k), dtype=dtype) for k in _ARRAYS}

    def normalize(self, batch: Batch) -> Batch:
        """A shallow copy of `batch` with normalised ``x``, ``edge_attr`` and ``u``."""
        t = self.tensors()
        out = batch.clone()
        dev = batch.x.device
        out.x = (batch.x - t["node_mean"].to(dev)) / t["node_std"].to(dev)
        out.edge_attr = (batch.edge_attr - t["edge_mean"].to(dev)) / t["edge_std"].to(dev)
        out.u = (batch.u - t["global_mean"].to(dev)) / t["global_std"].to(dev)
        return out
