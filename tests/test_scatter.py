"""Both scatter backends agree, including on empty groups and segments."""

from __future__ import annotations

import pytest
import torch

from hepfm.models import scatter

BACKENDS = ["torch"] + (["torch_scatter"] if scatter.HAVE_TORCH_SCATTER else [])


def _data() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    src = torch.randn(20, 3, generator=gen)
    index = torch.tensor([0] * 3 + [2] * 5 + [3] * 12)  # group 1 and 4 are empty
    ptr = torch.tensor([0, 3, 3, 8, 20, 20])
    return src, index, ptr


def _reference(src: torch.Tensor, index: torch.Tensor, n: int, how: str) -> torch.Tensor:
    out = torch.zeros(n, src.shape[1])
    for g in range(n):
        rows = src[index == g]
        if len(rows):
            out[g] = {"sum": rows.sum(0), "mean": rows.mean(0), "max": rows.max(0).values}[how]
    return out


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("how", ["sum", "mean", "max"])
def test_scatter_and_segment_match_reference(backend: str, how: str) -> None:
    src, index, ptr = _data()
    expected = _reference(src, index, 5, how)
    got = getattr(scatter, f"scatter_{how}")(src, index, 5, backend=backend)
    torch.testing.assert_close(got, expected)
    got_seg = getattr(scatter, f"segment_{how}")(src, ptr, backend=backend)
    torch.testing.assert_close(got_seg, expected)


@pytest.mark.skipif(not scatter.HAVE_TORCH_SCATTER, reason="torch-scatter not installed")
@pytest.mark.parametrize("how", ["sum", "mean", "max"])
def test_backends_agree_with_gradients(how: str) -> None:
    src, index, _ = _data()
    results = []
    for backend in ("torch", "torch_scatter"):
        s = src.clone().requires_grad_(True)
        out = getattr(scatter, f"scatter_{how}")(s, index, 6, backend=backend)
        out.pow(2).sum().backward()
        results.append((out.detach(), s.grad))
    torch.testing.assert_close(results[0][0], results[1][0])
    torch.testing.assert_close(results[0][1], results[1][1])


def test_backend_switch() -> None:
    before = scatter.get_backend()
    try:
        scatter.set_backend("torch")
        assert scatter.get_backend() == "torch"
        with pytest.raises(ValueError, match="unknown scatter backend"):
            scatter.set_backend("numpy")  # type: ignore[arg-type]
    finally:
        scatter.set_backend(before)
