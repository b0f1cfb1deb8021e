"""The edges of complete event graphs in one compiled loop (numba, optional).

``pip install hepfm[fast]`` installs numba; without it :mod:`hepfm.data.graphs` computes the
same edges with numpy blocks of equal-size events (``backend="numpy"``), slower. The loop
visits every unordered pair ``s < r`` of an event once and writes both ordered edges: delta
eta and delta phi change sign (``-pi`` stays in ``[-pi, pi)``), delta R and the pair mass do
not. ``log(1 + m)`` is then taken by numpy over the whole column (vectorised, and bit for bit
the numpy path's result, as is everything else).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

try:  # pragma: no cover - depends on the environment
    import numba

    HAVE_NUMBA = True
except ImportError:  # pragma: no cover
    numba = None
    HAVE_NUMBA = False

#: The edge features the builders compute, in the column order they compute them;
#: :mod:`hepfm.data.graphs` puts them in the order of ``features.EDGE_FEATURES``.
EDGE_COLUMNS: tuple[str, ...] = ("delta_eta", "delta_phi", "delta_r", "log_mass")

_PI = np.float32(np.pi)
_TWO_PI = np.float32(2 * np.pi)
_ZERO = np.float32(0)


def _fill_edges(offsets: np.ndarray, eptr: np.ndarray, eta: np.ndarray, phi: np.ndarray,
                e: np.ndarray, px: np.ndarray, py: np.ndarray, pz: np.ndarray,
                edge_index: np.ndarray, edge_attr: np.ndarray) -> None:
    """Sender-major edges of every event; column 3 gets the pair mass (not yet its log)."""
    for ev in range(len(offsets) - 1):
        first = offsets[ev]
        n = offsets[ev + 1] - first
        base = eptr[ev]
        for s in range(n):
            i = first + s
            for r in range(s + 1, n):
                j = first + r
                deta = eta[i] - eta[j]
                dphi = phi[i] - phi[j]
                if dphi >= _PI:
                    dphi -= _TWO_PI
                elif dphi < -_PI:
                    dphi += _TWO_PI
                dr = np.sqrt(deta * deta + dphi * dphi)
                es, xs, ys, zs = e[i] + e[j], px[i] + px[j], py[i] + py[j], pz[i] + pz[j]
                mass = np.sqrt(max(es * es - xs * xs - ys * ys - zs * zs, _ZERO))
                back = -dphi if dphi != -_PI else dphi
                a = base + s * (n - 1) + r - 1  # edge i -> j
                b = base + r * (n - 1) + s  # edge j -> i
                edge_index[0, a], edge_index[1, a] = i, j
                edge_index[0, b], edge_index[1, b] = j, i
                edge_attr[a, 0], edge_attr[a, 1] = deta, dphi
                edge_attr[b, 0], edge_attr[b, 1] = -deta, back
                edge_attr[a, 2] = edge_attr[b, 2] = dr
                edge_attr[a, 3] = edge_attr[b, 3] = mass


def _jit(fn: Callable) -> Callable:
    """Compile with an on-disk cache (about 1.5 s saved per new process), or without one
    where numba finds no writable cache directory (e.g. a read-only container)."""
    try:
        return numba.njit(cache=True, nogil=True)(fn)
    except RuntimeError:  # pragma: no cover - depends on the file system
        return numba.njit(nogil=True)(fn)


_compiled = _jit(_fill_edges) if HAVE_NUMBA else None


def complete_graph_edges(p: dict[str, np.ndarray], offsets: np.ndarray
                         ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Edge index (int64 [2, E]), features (float32 [E, 4], :data:`EDGE_COLUMNS`) and edge
    offsets [B+1] of all ordered pairs in each event, for events in any order. `p` holds
    float32 node arrays ``eta``, ``phi``, ``e``, ``px``, ``py``, ``pz`` (as from
    ``graphs.node_features``)."""
    if _compiled is None:
        raise ImportError("the compiled edge loop needs numba: pip install hepfm[fast]")
    offsets = np.ascontiguousarray(offsets, dtype=np.int64)
    counts = np.diff(offsets)
    eptr = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts * (counts - 1), out=eptr[1:])
    n_edges = int(eptr[-1])
    edge_index = np.empty((2, n_edges), dtype=np.int64)
    edge_attr = np.empty((n_edges, len(EDGE_COLUMNS)), dtype=np.float32)
    _compiled(offsets, eptr, *(np.ascontiguousarray(p[k], dtype=np.float32)
                               for k in ("eta", "phi", "e", "px", "py", "pz")),
              edge_index, edge_attr)
    np.log1p(edge_attr[:, 3], out=edge_attr[:, 3])
    return edge_index, edge_attr, eptr
