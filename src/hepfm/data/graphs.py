"""Whole chunks of events -> one ``torch_geometric.data.Batch``, with array code only.

Nodes are an event's objects in :class:`EventTable` order (jets by pT, electrons, muons,
photons, then the MET node); edges are all ordered pairs (i != j) within an event, sender
major: for each sender ``s`` in node order, receivers ``r != s`` in node order. The
attributes and features are those of ``docs/contracts.md`` section 2.

Column positions are never written here: each feature is computed under its name and put in
the column that ``hepfm.data.features`` (``NODE_FEATURES``, ``EDGE_FEATURES``,
``GLOBAL_FEATURES``, read at call time) gives that name.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Literal

import numpy as np
import torch
from torch_geometric.data import Batch

from hepfm.data import features
from hepfm.data.edge_kernel import EDGE_COLUMNS, HAVE_NUMBA, complete_graph_edges
from hepfm.data.features import BJET, ELECTRON, JET, MET, MUON, NODE_TYPES
from hepfm.data.table import EventTable, segment_gather
from hepfm.errors import ArgumentError

_TWO_PI = np.float32(2 * np.pi)
_PI = np.float32(np.pi)
_N_TYPES = len(NODE_TYPES)

Backend = Literal["numba", "numpy"]
#: How edges are built when a call passes ``backend=None``: the compiled loop of
#: :mod:`hepfm.data.edge_kernel` when numba is installed, the numpy blocks below otherwise.
#: Both give the same numbers, bit for bit.
BACKEND: Backend = "numba" if HAVE_NUMBA else "numpy"


def _backend(backend: str | None) -> Backend:
    backend = backend or BACKEND
    if backend not in ("numba", "numpy"):
        raise ArgumentError(f"unknown graph backend '{backend}': use 'numba' or 'numpy'")
    if backend == "numba" and not HAVE_NUMBA:
        raise ImportError("graph backend 'numba' needs numba: pip install hepfm[fast]")
    return backend  # type: ignore[return-value]


#: Node features computed per object (``is_<type>`` one-hot columns come from NODE_TYPES).
_NODE_COMPUTED = ("log_pt", "eta", "sin_phi", "cos_phi", "log_e", "charge", "btag")
#: Event features computed per event.
_GLOBAL_COMPUTED = ("log_met", "log_ht", "n_jets", "n_bjets", "n_leptons")


@functools.lru_cache(maxsize=8)
def _columns(kind: str, names: tuple[str, ...], known: tuple[str, ...]) -> dict[str, int]:
    """``{feature: column}`` for the features of `names` (``features.<KIND>_FEATURES``).
    Every name must be one the builder computes (`known`): a renamed or misspelt feature is
    an error, never a silently shifted column."""
    unknown = [n for n in names if n not in known]
    if unknown or len(set(names)) != len(names):
        what = f"unknown {unknown}" if unknown else "repeated names"
        msg = (f"hepfm.data.features.{kind.upper()}_FEATURES: {what}; the graph builder "
               f"computes {list(known)}")
        raise ValueError(msg)  # programming error: the feature tables are hepfm's own code
    return {n: k for k, n in enumerate(names)}


def node_features(table: EventTable) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Raw node features x (float32 [N, len(NODE_FEATURES)]) and the four-vector pieces used
    for edges."""
    a = int(table.offsets[0])
    b = a + table.n_nodes
    pt = table.pt[a:b].astype(np.float32, copy=False)
    eta = table.eta[a:b].astype(np.float32, copy=False)
    phi = table.phi[a:b].astype(np.float32, copy=False)
    m = table.mass[a:b].astype(np.float32, copy=False)
    nt = table.node_type[a:b].astype(np.int64)
    n = len(pt)
    sin, cos = np.sin(phi), np.cos(phi)
    pz = pt * np.sinh(eta)
    e = np.sqrt(pt * pt + pz * pz + m * m)
    names = features.NODE_FEATURES
    cols = _columns("node", names, _NODE_COMPUTED + tuple(f"is_{t}" for t in NODE_TYPES))
    x = np.zeros((n, len(names)), dtype=np.float32)
    values = {"log_pt": np.log1p(pt), "eta": eta, "sin_phi": sin, "cos_phi": cos,
              "log_e": np.log1p(e), "charge": table.charge[a:b], "btag": table.btag[a:b]}
    for name, value in values.items():
        if name in cols:
            x[:, cols[name]] = value
    type_col = np.array([cols.get(f"is_{t}", -1) for t in NODE_TYPES], dtype=np.int64)[nt]
    hot = type_col >= 0
    if hot.all():
        x[np.arange(n), type_col] = 1.0
    else:  # node types without a one-hot column
        x[np.flatnonzero(hot), type_col[hot]] = 1.0
    return x, {"eta": eta, "phi": phi, "px": pt * cos, "py": pt * sin, "pz": pz, "e": e,
               "pt": pt, "type": nt}


_SIGN = np.array([-1, -1, 1, 1], dtype=np.float32)
_EDGE_PROPS = ("eta", "phi", "e", "px", "py", "pz")


@functools.lru_cache(maxsize=64)
def _pair_tables(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """For events of n nodes: local senders and receivers of the n(n-1) ordered pairs
    (sender-major), the unordered pairs i < j, and ``perm`` that puts the features of
    [i->j pairs, then j->i pairs] into sender-major edge order."""
    loc = np.arange(n, dtype=np.int64)
    s = np.repeat(loc, n - 1)
    r = np.tile(loc[:-1], n)
    iu, ju = np.triu_indices(n, 1)
    half = len(iu)
    perm = np.empty(n * (n - 1), dtype=np.int64)
    perm[iu * (n - 1) + ju - 1] = np.arange(half)  # edge i->j sits at i(n-1) + j - 1
    perm[ju * (n - 1) + iu] = half + np.arange(half)  # edge j->i at j(n-1) + i
    return s, r + (r >= s), iu, ju, perm


def _edges_size_sorted(p: dict[str, np.ndarray], counts: np.ndarray, offsets: np.ndarray
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Edge index, features and edge offsets for events sorted by node count.

    Every group of m equal-size events is one block in a [pair, m] layout (events innermost,
    so numpy's inner loops are long). Features are computed for the unordered pairs i < j
    only and mirrored: delta eta and delta phi change sign (with -pi kept in [-pi, pi)),
    delta R and the pair mass are symmetric; the result is bit for bit the same as computing
    every ordered pair.
    """
    eptr = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts * (counts - 1), out=eptr[1:])
    n_edges = int(eptr[-1])
    attr = np.empty((n_edges, len(EDGE_COLUMNS)), dtype=np.float32)
    ei = np.empty((2, n_edges), dtype=np.int64)
    sizes, first = np.unique(counts, return_index=True)
    ends = np.append(first[1:], len(counts))
    props = np.stack([p[k] for k in _EDGE_PROPS])  # [6, N]
    for n, a, b in zip(sizes.tolist(), first.tolist(), ends.tolist(), strict=True):
        if n < 2:
            continue
        m = b - a
        na, nb, ea, eb = offsets[a], offsets[b], eptr[a], eptr[b]
        loc_s, loc_r, iu, ju, perm = _pair_tables(n)
        h = len(iu)
        q = np.ascontiguousarray(props[:, na:nb].reshape(6, m, n).transpose(0, 2, 1))
        qi = np.take(q, iu, axis=1)  # [6, h, m]: eta, phi, e, px, py, pz of node i
        qj = np.take(q, ju, axis=1)
        g = np.empty((4, 2 * h, m), dtype=np.float32)  # [feature, (i->j, j->i), m]
        deta = np.subtract(qi[0], qj[0], out=g[0, :h])
        dphi = np.subtract(qi[1], qj[1], out=g[1, :h])
        corr = np.subtract(np.less(dphi, -_PI), np.greater_equal(dphi, _PI), dtype=np.float32)
        corr *= _TWO_PI
        dphi += corr  # wrapped into [-pi, pi)
        dr = np.multiply(deta, deta, out=g[2, :h])
        dr += np.square(dphi, out=g[3, h:])
        np.sqrt(dr, out=dr)
        four = qi[2:]  # (e, px, py, pz) sums, in place in the fresh copy qi
        four += qj[2:]
        four *= four
        m2 = four[0]
        m2 -= four[1]
        m2 -= four[2]
        m2 -= four[3]
        np.maximum(m2, 0, out=m2)
        np.sqrt(m2, out=m2)
        np.log1p(m2, out=g[3, :h])
        np.negative(g[:2, :h], out=g[:2, h:])
        back = g[1, h:]
        np.copyto(back, -_PI, where=np.equal(back, _PI))  # -(-pi) wraps to -pi
        g[2:, h:] = g[2:, :h]
        out = attr[ea:eb].reshape(m, n * (n - 1), len(EDGE_COLUMNS))
        out[:] = np.take(g, perm, axis=1).transpose(2, 1, 0)
        first_node = (na + n * np.arange(m, dtype=np.int64))[:, None]
        np.add(first_node, loc_s, out=ei[0, ea:eb].reshape(m, n * (n - 1)))
        np.add(first_node, loc_r, out=ei[1, ea:eb].reshape(m, n * (n - 1)))
    return ei, attr, eptr


def edges(p: dict[str, np.ndarray], offsets: np.ndarray, backend: Backend | None = None
          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Edge index (int64 [2, E]), edge features (float32 [E, len(EDGE_FEATURES)]) and edge
    offsets [B+1] of all ordered pairs within each event, in event order, sender-major."""
    names = features.EDGE_FEATURES
    _columns("edge", names, EDGE_COLUMNS)
    ei, attr, eptr = _edges_computed(p, offsets, _backend(backend))
    if names != EDGE_COLUMNS:  # the builders compute EDGE_COLUMNS; reorder or drop by name
        attr = np.ascontiguousarray(attr[:, [EDGE_COLUMNS.index(n) for n in names]])
    return ei, attr, eptr


def _edges_computed(p: dict[str, np.ndarray], offsets: np.ndarray, backend: Backend
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`edges` with the features in :data:`EDGE_COLUMNS` order."""
    if backend == "numba":
        return complete_graph_edges(p, offsets)
    counts = np.diff(offsets)
    if len(counts) < 2 or np.all(counts[1:] >= counts[:-1]):
        return _edges_size_sorted(p, counts, offsets)
    order = np.argsort(counts, kind="stable")
    nodes, offsets_s = segment_gather(offsets, order)
    ps = {k: p[k][nodes] for k in _EDGE_PROPS}
    ei_s, attr_s, eptr_s = _edges_size_sorted(ps, counts[order], offsets_s)
    inv = np.empty_like(order)
    inv[order] = np.arange(len(order))
    eidx, eptr = segment_gather(eptr_s, inv)
    return nodes[ei_s[:, eidx]], attr_s[eidx], eptr


def global_features(p: dict[str, np.ndarray], offsets: np.ndarray) -> np.ndarray:
    """Event features u (float32 [B, len(GLOBAL_FEATURES)]): log(1+MET), log(1+HT), n_jets,
    n_bjets, n_leptons. HT sums the pT of jets and b-jets; n_jets counts both; leptons are
    electrons and muons."""
    names = features.GLOBAL_FEATURES
    cols = _columns("global", names, _GLOBAL_COMPUTED)
    nb = len(offsets) - 1
    counts = np.diff(offsets)
    ev = np.repeat(np.arange(nb, dtype=np.int64), counts)
    t = p["type"]
    tc = np.bincount(ev * _N_TYPES + t, minlength=nb * _N_TYPES).reshape(nb, _N_TYPES)
    isjet = t <= BJET
    ht = np.bincount(ev[isjet], weights=p["pt"][isjet], minlength=nb)
    ismet = t == MET
    values = {"log_met": np.log1p(np.bincount(ev[ismet], weights=p["pt"][ismet], minlength=nb)),
              "log_ht": np.log1p(ht), "n_jets": tc[:, JET] + tc[:, BJET],
              "n_bjets": tc[:, BJET], "n_leptons": tc[:, ELECTRON] + tc[:, MUON]}
    u = np.empty((nb, len(names)), dtype=np.float32)
    for name, col in cols.items():
        u[:, col] = values[name]
    return u


@functools.cache
def _batch_type() -> type:
    """The ``DataBatch`` class that ``Batch(**attributes)`` instantiates."""
    return type(Batch())


def build_batch(table: EventTable, indices: Sequence[int] | np.ndarray | None = None,
                keep_order: bool = True, backend: Backend | None = None) -> Batch:
    """One ``Batch`` for all events of `table` (or events `indices` of it, in that order).

    Attributes: ``x``, ``edge_index``, ``edge_attr``, ``u``, ``batch``, ``ptr``,
    ``node_type``, ``y`` and ``y_multi`` when the table has truth labels. With
    ``keep_order=False`` the builder may reorder the events (the numpy backend sorts them by
    node count, which is faster for it; fine for training batches, whose order does not
    matter). `backend` (``"numba"`` or ``"numpy"``, default :data:`BACKEND`) chooses how
    edges are computed; the batch is the same either way, up to event order.
    """
    backend = _backend(backend)
    if not keep_order and backend == "numpy":
        idx = np.arange(len(table)) if indices is None else np.asarray(indices)
        c = table.counts[idx]
        indices = idx[np.argsort(c, kind="stable")]
    if indices is not None:
        table = table.subset(indices)
    offsets = table.offsets - table.offsets[0]
    counts = np.diff(offsets)
    nb = len(counts)
    x, p = node_features(table)
    edge_index, edge_attr, eptr = edges(p, offsets, backend)
    u = global_features(p, offsets)
    ptr = torch.from_numpy(offsets)
    data = {
        "x": torch.from_numpy(x),
        "edge_index": torch.from_numpy(edge_index),
        "edge_attr": torch.from_numpy(edge_attr),
        "u": torch.from_numpy(u),
        "batch": torch.from_numpy(np.repeat(np.arange(nb, dtype=np.int64), counts)),
        "ptr": ptr,
        "node_type": torch.from_numpy(p["type"]),
        "y": torch.from_numpy(np.ascontiguousarray(table.y, dtype=np.int64)),
    }
    if table.y_multi is not None:
        data["y_multi"] = torch.from_numpy(np.ascontiguousarray(table.y_multi, np.float32))
    # PyG's ``Batch(**data)`` looks up the class and inspects ``Data.__init__`` on every
    # call; instantiating the class it returns directly is the same object, made faster.
    batch = type.__call__(_batch_type(), **data)
    graph_slice = torch.arange(nb + 1)
    eslice = torch.from_numpy(eptr)
    batch._num_graphs = nb
    batch._slice_dict = {
        "x": ptr, "node_type": ptr, "edge_index": eslice, "edge_attr": eslice,
        "u": graph_slice, "y": graph_slice, **({"y_multi": graph_slice} if
                                                "y_multi" in data else {}),
    }
    zeros = torch.zeros(nb, dtype=torch.long)
    batch._inc_dict = {k: zeros for k in batch._slice_dict}
    batch._inc_dict["edge_index"] = ptr[:-1]
    return batch
