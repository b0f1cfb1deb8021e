"""Centered Kernel Alignment (CKA) between representations, on torch tensors.

CKA (Kornblith et al. 2019) compares two sets of features ``X [n, p]`` and ``Y [n, q]`` of the
same ``n`` events through their kernel (Gram) matrices ``K`` and ``L``::

    CKA(K, L) = HSIC(K, L) / sqrt(HSIC(K, K) HSIC(L, L))

* ``linear``: ``K = X X^T``. Computed in feature space (``p x q`` matrices, never ``n x n``),
  streamed over chunks of events: exact, and memory does not grow with ``n``.
* ``rbf``: ``K_ij = exp(-|x_i - x_j|^2 / (2 sigma^2))`` with ``sigma`` a fraction (default 0.5)
  of the median pairwise distance, estimated once per stage on up to 1000 events.

Two HSIC estimators: the biased one, ``tr(K H L H) / (n-1)^2`` (``H`` centres), and the
unbiased one of Song et al. (2012), whose expectation is 0 for independent features.
Minibatch CKA (Nguyen, Raghu & Kornblith 2021) averages the unbiased HSIC over minibatches
of events before taking the ratio, so kernel CKA needs ``batch_size^2`` memory instead of
``n^2``. All sums are done in float64 on the tensors' device (CPU or GPU).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Literal

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from hepfm.errors import ArgumentError

Kernel = Literal["linear", "rbf"]
KERNELS: tuple[str, ...] = ("linear", "rbf")
DEFAULT_RBF_BATCH = 1024
MEDIAN_SAMPLES = 1000
LINEAR_CHUNK = 16384


# --------------------------------------------------------------------------- kernels


def _as_2d(x: Tensor) -> Tensor:
    x = torch.as_tensor(x)
    if x.ndim != 2:
        raise ArgumentError(f"features must be a 2-d tensor [n_events, n_features], got {x.shape}")
    return x


def _as64(x: Tensor, device: torch.device | str | None = None) -> Tensor:
    x = _as_2d(x)
    return x.to(device=device or x.device, dtype=torch.float64)


def linear_kernel(x: Tensor) -> Tensor:
    """Linear Gram matrix ``X X^T`` in float64."""
    x = _as64(x)
    return x @ x.T


def _sq_distances(x: Tensor) -> Tensor:
    """Pairwise squared Euclidean distances ``[n, n]`` via one matrix product."""
    sq = x.square().sum(1)
    d = torch.addmm(sq[:, None] + sq[None, :], x, x.T, alpha=-2.0)
    d.clamp_(min=0.0).fill_diagonal_(0.0)
    return d


def median_distance(x: Tensor, max_samples: int = MEDIAN_SAMPLES, seed: int = 0,
                    device: torch.device | str | None = None) -> float:
    """Median Euclidean distance between distinct events (on a fixed random subsample)."""
    x = _as_2d(x)
    if x.shape[0] > max_samples:
        g = torch.Generator().manual_seed(seed)
        x = x[torch.randperm(x.shape[0], generator=g)[:max_samples].to(x.device)]
    x = _as64(x, device)
    n = x.shape[0]
    if n < 2:
        return 0.0
    iu = torch.triu_indices(n, n, offset=1, device=x.device)
    return float(_sq_distances(x)[iu[0], iu[1]].median().sqrt())


def rbf_kernel(x: Tensor, sigma: float | None = None, fraction: float = 0.5) -> Tensor:
    """RBF Gram matrix; ``sigma`` defaults to ``fraction`` times the median distance."""
    x = _as64(x)
    if sigma is None:
        sigma = fraction * median_distance(x)
    sigma = max(float(sigma), 1e-12)
    return _sq_distances(x).mul_(-0.5 / (sigma * sigma)).exp_()


# --------------------------------------------------------------------------- HSIC


def center_gram(k: Tensor) -> Tensor:
    """``H K H`` with ``H = I - 11^T / n`` (double centring)."""
    k = k.to(torch.float64)
    k = k - k.mean(0, keepdim=True)
    return k - k.mean(1, keepdim=True)


def hsic_biased(k: Tensor, l: Tensor) -> Tensor:  # noqa: E741
    """Biased HSIC ``tr(K H L H) / (n-1)^2`` from two Gram matrices."""
    n = k.shape[0]
    return (center_gram(k) * l.to(torch.float64)).sum() / (n - 1) ** 2


def _hsic_u_terms(k: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Zero-diagonal Gram (flattened), its row sums and its total, for the unbiased HSIC."""
    k = k.to(torch.float64).clone()
    k.fill_diagonal_(0.0)
    rows = k.sum(1)
    return k.reshape(-1), rows, rows.sum()


def _hsic_u_combine(
    tr_kl: Tensor, sum_k: Tensor, sum_l: Tensor, rows_kl: Tensor, n: int
) -> Tensor:
    """Song et al. (2012) eq. 5 from its three terms (broadcasts over stage pairs)."""
    if n < 4:
        raise ArgumentError(f"the unbiased HSIC needs at least 4 events, got {n}")
    return (tr_kl + sum_k * sum_l / ((n - 1) * (n - 2)) - 2.0 * rows_kl / (n - 2)) / (n * (n - 3))


def hsic_unbiased(k: Tensor, l: Tensor) -> Tensor:  # noqa: E741
    """Unbiased HSIC (Song et al. 2012) from two Gram matrices."""
    fk, rk, sk = _hsic_u_terms(k)
    fl, rl, sl = _hsic_u_terms(l)
    return _hsic_u_combine(fk @ fl, sk, sl, rk @ rl, k.shape[0])


def _ratio(xy: Tensor, xx: Tensor, yy: Tensor) -> Tensor:
    """``xy / sqrt(xx yy)``, NaN where a side has no variance (or a non-positive estimate)."""
    den = (xx * yy).clamp(min=0).sqrt()
    return torch.where(den > 0, xy / torch.where(den > 0, den, 1.0), torch.nan)


def kernel_cka(k: Tensor, l: Tensor, unbiased: bool = False) -> float:  # noqa: E741
    """CKA from two ``n x n`` Gram matrices of the same events."""
    hsic = hsic_unbiased if unbiased else hsic_biased
    return float(_ratio(hsic(k, l), hsic(k, k), hsic(l, l)))


# --------------------------------------------------------------------------- CKA on features


def _linear_hsic(
    xs: Sequence[Tensor], ys: Sequence[Tensor], unbiased: bool, dev: torch.device,
    chunk: int = LINEAR_CHUNK,
) -> tuple[Tensor, Tensor, Tensor]:
    """Linear HSIC of every pair (A x B) and of every stage with itself, in feature space.

    Two streaming passes over ``chunk`` events (float64 on ``dev``): the means, then the
    centred cross-covariances ``X^T Y``, so memory is ``O(chunk * dims + dims^2)`` whatever
    ``n``. With centred features ``sum(K~) = -sum diag K`` and ``K~ 1 = -diag K``, so the
    unbiased estimator needs only ``||X^T Y||_F^2`` and the diagonals ``|x_i|^2``.
    """
    n, na, nb = int(xs[0].shape[0]), len(xs), len(ys)
    feats = [*xs, *ys]
    f64 = torch.float64
    means = []
    for f in feats:
        total = torch.zeros(f.shape[1], dtype=f64, device=dev)
        for c in range(0, n, chunk):
            total += f[c:c + chunk].to(dev, f64).sum(0)
        means.append(total / n)
    dims_a = [int(x.shape[1]) for x in xs]
    dims_b = [int(y.shape[1]) for y in ys]
    cross = torch.zeros(sum(dims_a), sum(dims_b), dtype=f64, device=dev)
    selfs = [torch.zeros(f.shape[1], f.shape[1], dtype=f64, device=dev) for f in feats]
    d_xy = torch.zeros(na, nb, dtype=f64, device=dev)
    d_self = torch.zeros(len(feats), dtype=f64, device=dev)
    d_sum = torch.zeros(len(feats), dtype=f64, device=dev)
    for c in range(0, n, chunk):
        cs = [f[c:c + chunk].to(dev, f64) - m for f, m in zip(feats, means, strict=True)]
        ds = torch.stack([x.square().sum(1) for x in cs])
        for k, x in enumerate(cs):
            selfs[k].addmm_(x.T, x)
        cross.addmm_(torch.cat(cs[:na], 1).T, torch.cat(cs[na:], 1))
        d_xy += ds[:na] @ ds[na:].T
        d_self += ds.square().sum(1)
        d_sum += ds.sum(1)
    blocks_a = torch.split(cross, dims_a, 0)
    tr_xy = torch.stack([torch.stack([blk.square().sum() for blk in torch.split(row, dims_b, 1)])
                         for row in blocks_a])
    tr_self = torch.stack([m.square().sum() for m in selfs])
    if unbiased:
        xy = _hsic_u_combine(tr_xy - d_xy, -d_sum[:na, None], -d_sum[None, na:], d_xy, n)
        hs = _hsic_u_combine(tr_self - d_self, -d_sum, -d_sum, d_self, n)
    else:
        xy, hs = tr_xy / (n - 1) ** 2, tr_self / (n - 1) ** 2
    return xy, hs[:na], hs[na:]


def linear_cka(x: Tensor, y: Tensor, unbiased: bool = False) -> float:
    """Linear CKA between features ``x [n, p]`` and ``y [n, q]`` (feature-space formula).

    The biased form is ``||Y^T X||_F^2 / (||X^T X||_F ||Y^T Y||_F)`` on centred features.
    """
    x, y = _check_pair(x, y)
    xy, xx, yy = _linear_hsic([x], [y], unbiased, x.device)
    return float(_ratio(xy[0, 0], xx[0], yy[0]))


def rbf_cka(
    x: Tensor, y: Tensor, fraction: float = 0.5, unbiased: bool = False
) -> float:
    """RBF-kernel CKA on the full ``n x n`` Gram matrices (use :func:`minibatch_cka` for big n)."""
    x, y = _check_pair(x, y)
    return kernel_cka(rbf_kernel(x, fraction=fraction), rbf_kernel(y, fraction=fraction),
                      unbiased)


def minibatch_cka(
    x: Tensor,
    y: Tensor,
    kernel: Kernel = "linear",
    batch_size: int = DEFAULT_RBF_BATCH,
    fraction: float = 0.5,
    seed: int = 0,
) -> float:
    """Minibatch CKA (Nguyen et al. 2021): unbiased HSIC averaged over random minibatches."""
    m = cka_matrix({"x": x}, {"y": y}, kernel=kernel, batch_size=batch_size,
                   fraction=fraction, seed=seed)
    return float(m.iloc[0, 0])


def _check_pair(x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
    x, y = _as64(x), _as64(y, device=torch.as_tensor(x).device)
    if x.shape[0] != y.shape[0]:
        raise ArgumentError(f"CKA compares the same events: {x.shape[0]} rows vs {y.shape[0]}")
    return x, y


def _gram(x: Tensor, kernel: str, sigma: float) -> Tensor:
    return linear_kernel(x) if kernel == "linear" else rbf_kernel(x, sigma=sigma)


def cka_matrix(
    reps_a: Mapping[str, Tensor],
    reps_b: Mapping[str, Tensor],
    kernel: Kernel = "linear",
    batch_size: int | None = None,
    fraction: float = 0.5,
    unbiased: bool = True,
    device: torch.device | str | None = None,
    seed: int = 0,
) -> pd.DataFrame:
    """CKA between every stage of A (rows) and every stage of B (columns).

    ``reps_a``/``reps_b`` map stage name to ``[n_events, dim]`` features of the same events in
    the same order. ``batch_size=None`` means: linear kernel on all events at once (exact,
    feature space); RBF kernel in minibatches of 1024. With a ``batch_size``, events are
    shuffled (``seed``) and split into near-equal minibatches; the unbiased HSIC terms are
    averaged over them (minibatch CKA, always unbiased). ``unbiased`` picks the estimator of
    the linear full-set computation. Work happens on ``device`` (default: that of the first
    tensor) in float64. A stage without variance gives NaN.
    """
    if kernel not in KERNELS:
        raise ArgumentError(f"unknown CKA kernel '{kernel}', expected one of {KERNELS}")
    if not reps_a or not reps_b:
        raise ArgumentError("cka_matrix needs at least one stage on each side")
    names_a, names_b = list(reps_a), list(reps_b)
    dev = torch.device(device) if device is not None else torch.as_tensor(
        next(iter(reps_a.values()))).device
    n = {int(torch.as_tensor(t).shape[0]) for t in (*reps_a.values(), *reps_b.values())}
    if len(n) != 1:
        raise ArgumentError(f"every stage must hold the same events; got row counts {sorted(n)}")
    n_events = n.pop()
    if batch_size is None and kernel == "rbf":
        batch_size = DEFAULT_RBF_BATCH

    if batch_size is None:
        if n_events < (4 if unbiased else 2):
            raise ArgumentError(f"too few events for CKA: {n_events}")
        xy, xx, yy = _linear_hsic([_as_2d(reps_a[k]) for k in names_a],
                                  [_as_2d(reps_b[k]) for k in names_b], unbiased, dev)
    else:
        xy, xx, yy = _minibatch_hsic(reps_a, reps_b, names_a, names_b, kernel, batch_size,
                                     fraction, dev, n_events, seed)
    values = _ratio(xy, xx[:, None], yy[None, :]).cpu().numpy()
    return pd.DataFrame(values, index=pd.Index(names_a, name="a"),
                        columns=pd.Index(names_b, name="b"))


def _minibatch_hsic(
    reps_a: Mapping[str, Tensor],
    reps_b: Mapping[str, Tensor],
    names_a: list[str],
    names_b: list[str],
    kernel: str,
    batch_size: int,
    fraction: float,
    dev: torch.device,
    n_events: int,
    seed: int,
) -> tuple[Tensor, Tensor, Tensor]:
    """Unbiased HSIC terms ``(A x B, A, B)`` averaged over minibatches."""
    n_batches = max(1, math.ceil(n_events / batch_size))
    if n_events // n_batches < 4:
        raise ArgumentError(f"minibatches need at least 4 events: {n_events} events, "
                            f"batch_size {batch_size}")
    def bandwidths(reps: Mapping[str, Tensor], names: list[str]) -> dict[str, float]:
        if kernel != "rbf":
            return dict.fromkeys(names, 0.0)
        return {k: fraction * median_distance(reps[k], seed=seed, device=dev) for k in names}

    sig_a, sig_b = bandwidths(reps_a, names_a), bandwidths(reps_b, names_b)
    perm = torch.randperm(n_events, generator=torch.Generator().manual_seed(seed))
    xy = torch.zeros(len(names_a), len(names_b), dtype=torch.float64, device=dev)
    xx = torch.zeros(len(names_a), dtype=torch.float64, device=dev)
    yy = torch.zeros(len(names_b), dtype=torch.float64, device=dev)
    for idx in torch.tensor_split(perm, n_batches):
        m = idx.numel()
        ta = [_hsic_u_terms(_gram(_as64(reps_a[k][idx], dev), kernel, sig_a[k]))
              for k in names_a]
        tb = [_hsic_u_terms(_gram(_as64(reps_b[k][idx], dev), kernel, sig_b[k]))
              for k in names_b]
        fa, ra, sa = (torch.stack(t) for t in zip(*ta, strict=True))
        fb, rb, sb = (torch.stack(t) for t in zip(*tb, strict=True))
        xy += _hsic_u_combine(fa @ fb.T, sa[:, None], sb[None, :], ra @ rb.T, m)
        xx += _hsic_u_combine((fa * fa).sum(1), sa, sa, (ra * ra).sum(1), m)
        yy += _hsic_u_combine((fb * fb).sum(1), sb, sb, (rb * rb).sum(1), m)
    return xy / n_batches, xx / n_batches, yy / n_batches


def cka_diagonal(matrix: pd.DataFrame) -> pd.Series:
    """Same-stage CKA: the entries whose row and column name agree, in row order."""
    common = [s for s in matrix.index if s in matrix.columns]
    return pd.Series([float(matrix.at[s, s]) for s in common],
                     index=pd.Index(common, name="stage"), name="cka", dtype=np.float64)
