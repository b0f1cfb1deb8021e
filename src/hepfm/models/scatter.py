"""Scatter and segment reductions along dim 0, with two interchangeable backends.

``"torch"`` (the default) is plain PyTorch: sums and means are one ``Tensor.index_add_``
into zeros (divided by the group sizes from ``bincount`` for the mean), whose backward is a
single ``index_select``; maxima use ``Tensor.scatter_reduce_``. ``"torch_scatter"`` uses the
compiled kernels of the optional `torch_scatter` package. Both give the same results,
including for empty groups, which reduce to 0 for every reduction (sum, mean and max).

``Tensor.scatter_reduce_(..., include_self=False)`` (this module's earlier native path) gives
the same numbers but its backward for sum and mean is about 20x slower on CPU: it made the
default install train about 1.4x slower than with torch-scatter. The ``index_add_`` path is
as fast as torch-scatter forward and backward (``benchmarks/train.py``, results/train.md).

:func:`set_backend` changes the default for every call; each function also takes
``backend=`` to override it per call.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

from hepfm.errors import ArgumentError

try:  # pragma: no cover - depends on the environment
    import torch_scatter as _ts

    HAVE_TORCH_SCATTER = True
except ImportError:  # pragma: no cover
    _ts = None
    HAVE_TORCH_SCATTER = False

Backend = Literal["torch", "torch_scatter"]
_BACKEND: Backend = "torch"


def get_backend() -> Backend:
    """The backend used when a call passes ``backend=None``."""
    return _BACKEND


def set_backend(backend: Backend) -> None:
    """Choose the default backend (``"torch"`` or ``"torch_scatter"``)."""
    global _BACKEND
    _BACKEND = _check(backend)


def _check(backend: str | None) -> Backend:
    backend = backend or _BACKEND
    if backend not in ("torch", "torch_scatter"):
        raise ArgumentError(f"unknown scatter backend '{backend}': use 'torch' or 'torch_scatter'")
    if backend == "torch_scatter" and not HAVE_TORCH_SCATTER:
        raise ImportError(
            "scatter backend 'torch_scatter' needs the torch-scatter package "
            "(pip install --no-build-isolation torch-scatter); use backend='torch'"
        )
    return backend  # type: ignore[return-value]


def _sum(src: Tensor, index: Tensor, dim_size: int) -> Tensor:
    return src.new_zeros((dim_size, *src.shape[1:])).index_add_(0, index, src)


def _per_row(counts: Tensor, src: Tensor) -> Tensor:
    """Group sizes (at least 1) shaped to divide a ``[G, ...]`` reduction of `src`."""
    return counts.clamp(min=1).to(src.dtype).view(-1, *([1] * (src.dim() - 1)))


def _max(src: Tensor, index: Tensor, dim_size: int) -> Tensor:
    out = src.new_zeros((dim_size, *src.shape[1:]))
    expanded = index.view(-1, *([1] * (src.dim() - 1))).expand_as(src)
    return out.scatter_reduce_(0, expanded, src, reduce="amax", include_self=False)


def scatter_sum(src: Tensor, index: Tensor, dim_size: int, backend: Backend | None = None
                ) -> Tensor:
    """Sum the rows of `src` into `dim_size` groups given by `index` (1-d, along dim 0)."""
    if _check(backend) == "torch_scatter":
        return _ts.scatter_sum(src, index, dim=0, dim_size=dim_size)
    return _sum(src, index, dim_size)


def scatter_mean(src: Tensor, index: Tensor, dim_size: int, backend: Backend | None = None
                 ) -> Tensor:
    """Mean of the rows of `src` per group; empty groups give 0."""
    if _check(backend) == "torch_scatter":
        return _ts.scatter_mean(src, index, dim=0, dim_size=dim_size)
    counts = torch.bincount(index, minlength=dim_size)
    return _sum(src, index, dim_size) / _per_row(counts, src)


def scatter_sum_mean(src: Tensor, index: Tensor, dim_size: int,
                     backend: Backend | None = None) -> Tensor:
    """``cat([sum, mean], dim=-1)`` of the rows of `src` per group, from one reduction."""
    total = scatter_sum(src, index, dim_size, backend)
    counts = torch.bincount(index, minlength=dim_size)
    return torch.cat([total, total / _per_row(counts, src)], dim=-1)


def scatter_max(src: Tensor, index: Tensor, dim_size: int, backend: Backend | None = None
                ) -> Tensor:
    """Maximum of the rows of `src` per group; empty groups give 0."""
    if _check(backend) == "torch_scatter":
        return _ts.scatter_max(src, index, dim=0, dim_size=dim_size)[0]
    return _max(src, index, dim_size)


def ptr_to_index(ptr: Tensor) -> Tensor:
    """Group index of every row from CSR offsets ``ptr`` ([G+1] -> [ptr[-1]])."""
    counts = ptr[1:] - ptr[:-1]
    return torch.repeat_interleave(torch.arange(counts.numel(), device=ptr.device), counts,
                                   output_size=int(ptr[-1]) if ptr.numel() else 0)


def segment_sum(src: Tensor, ptr: Tensor, backend: Backend | None = None) -> Tensor:
    """Sum of contiguous row segments given by CSR offsets `ptr`."""
    if _check(backend) == "torch_scatter":
        return _ts.segment_csr(src, ptr, reduce="sum")
    return _sum(src, ptr_to_index(ptr), ptr.numel() - 1)


def segment_mean(src: Tensor, ptr: Tensor, backend: Backend | None = None) -> Tensor:
    """Mean of contiguous row segments; empty segments give 0."""
    if _check(backend) == "torch_scatter":
        return _ts.segment_csr(src, ptr, reduce="mean")
    total = _sum(src, ptr_to_index(ptr), ptr.numel() - 1)
    return total / _per_row(ptr[1:] - ptr[:-1], src)


def segment_max(src: Tensor, ptr: Tensor, backend: Backend | None = None) -> Tensor:
    """Maximum of contiguous row segments; empty segments give 0."""
    if _check(backend) == "torch_scatter":
        return _ts.segment_csr(src, ptr, reduce="max")
    return _max(src, ptr_to_index(ptr), ptr.numel() - 1)


__all__ = [
    "HAVE_TORCH_SCATTER",
    "get_backend",
    "ptr_to_index",
    "scatter_max",
    "scatter_mean",
    "scatter_sum",
    "scatter_sum_mean",
    "segment_max",
    "segment_mean",
    "segment_sum",
    "set_backend",
]
