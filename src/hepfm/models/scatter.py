"""Scatter and segment reductions with two interchangeable backends.

``"torch_scatter"`` uses the compiled `torch_scatter` kernels when that package is installed;
``"torch"`` uses ``Tensor.scatter_reduce_`` from PyTorch itself. Both give the same results,
including for empty segments, which reduce to 0 for every reduction (sum, mean and max).
The default backend is ``torch_scatter`` when importable; :func:`set_backend` changes it and
every function takes ``backend=`` to override it per call.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

try:  # pragma: no cover - depends on the environment
    import torch_scatter as _ts

    HAVE_TORCH_SCATTER = True
except ImportError:  # pragma: no cover
    _ts = None
    HAVE_TORCH_SCATTER = False

Backend = Literal["torch", "torch_scatter"]
_BACKEND: Backend = "torch_scatter" if HAVE_TORCH_SCATTER else "torch"


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
        raise ValueError(f"unknown scatter backend '{backend}': use 'torch' or 'torch_scatter'")
    if backend == "torch_scatter" and not HAVE_TORCH_SCATTER:
        raise ImportError(
            "scatter backend 'torch_scatter' needs the torch-scatter package "
            "(pip install --no-build-isolation torch-scatter); use backend='torch'"
        )
    return backend  # type: ignore[return-value]


def _expand(index: Tensor, src: Tensor) -> Tensor:
    """Broadcast a 1-d index over the trailing dimensions of `src` (reduction over dim 0)."""
    return index.view(-1, *([1] * (src.dim() - 1))).expand_as(src)


def _torch_reduce(src: Tensor, index: Tensor, dim_size: int, reduce: str) -> Tensor:
    out = src.new_zeros((dim_size, *src.shape[1:]))
    return out.scatter_reduce_(0, _expand(index, src), src, reduce=reduce, include_self=False)


def scatter_sum(src: Tensor, index: Tensor, dim_size: int, backend: Backend | None = None
                ) -> Tensor:
    """Sum the rows of `src` into `dim_size` groups given by `index` (1-d, along dim 0)."""
    if _check(backend) == "torch_scatter":
        return _ts.scatter_sum(src, index, dim=0, dim_size=dim_size)
    return _torch_reduce(src, index, dim_size, "sum")


def scatter_mean(src: Tensor, index: Tensor, dim_size: int, backend: Backend | None = None
                 ) -> Tensor:
    """Mean of the rows of `src` per group; empty groups give 0."""
    if _check(backend) == "torch_scatter":
        return _ts.scatter_mean(src, index, dim=0, dim_size=dim_size)
    return _torch_reduce(src, index, dim_size, "mean")


def scatter_max(src: Tensor, index: Tensor, dim_size: int, backend: Backend | None = None
                ) -> Tensor:
    """Maximum of the rows of `src` per group; empty groups give 0."""
    if _check(backend) == "torch_scatter":
        return _ts.scatter_max(src, index, dim=0, dim_size=dim_size)[0]
    return _torch_reduce(src, index, dim_size, "amax")


def ptr_to_index(ptr: Tensor) -> Tensor:
    """Group index of every row from CSR offsets ``ptr`` ([G+1] -> [ptr[-1]])."""
    counts = ptr[1:] - ptr[:-1]
    return torch.repeat_interleave(torch.arange(counts.numel(), device=ptr.device), counts)


def segment_sum(src: Tensor, ptr: Tensor, backend: Backend | None = None) -> Tensor:
    """Sum of contiguous row segments given by CSR offsets `ptr`."""
    if _check(backend) == "torch_scatter":
        return _ts.segment_csr(src, ptr, reduce="sum")
    return _torch_reduce(src, ptr_to_index(ptr), ptr.numel() - 1, "sum")


def segment_mean(src: Tensor, ptr: Tensor, backend: Backend | None = None) -> Tensor:
    """Mean of contiguous row segments; empty segments give 0."""
    if _check(backend) == "torch_scatter":
        return _ts.segment_csr(src, ptr, reduce="mean")
    return _torch_reduce(src, ptr_to_index(ptr), ptr.numel() - 1, "mean")


def segment_max(src: Tensor, ptr: Tensor, backend: Backend | None = None) -> Tensor:
    """Maximum of contiguous row segments; empty segments give 0."""
    if _check(backend) == "torch_scatter":
        return _ts.segment_csr(src, ptr, reduce="max")
    return _torch_reduce(src, ptr_to_index(ptr), ptr.numel() - 1, "amax")


__all__ = [
    "HAVE_TORCH_SCATTER",
    "get_backend",
    "ptr_to_index",
    "scatter_max",
    "scatter_mean",
    "scatter_sum",
    "segment_max",
    "segment_mean",
    "segment_sum",
    "set_backend",
]
