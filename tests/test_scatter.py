"""Both scatter backends agree with hand computations, with the earlier native path
(``scatter_reduce_``) and with each other, including on empty groups; gradients pass
``gradcheck``; the native path is the default."""

from __future__ import annotations

import itertools

import pytest
import torch

from hepfm.models import FoundationModel, ModelConfig, scatter
from tests.synthetic_graphs import make_batch

BACKENDS = ["torch"] + (["torch_scatter"] if scatter.HAVE_TORCH_SCATTER else [])
HOW = ["sum", "mean", "max"]


def _data(dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    src = torch.randn(20, 3, generator=gen, dtype=dtype)
    index = torch.tensor([0] * 3 + [2] * 5 + [3] * 12)  # group 1 and 4 are empty
    ptr = torch.tensor([0, 3, 3, 8, 20, 20])
    return src, index, ptr


def _reference(src: torch.Tensor, index: torch.Tensor, n: int, how: str) -> torch.Tensor:
    out = torch.zeros(n, src.shape[1], dtype=src.dtype)
    for g in range(n):
        rows = src[index == g]
        if len(rows):
            out[g] = {"sum": rows.sum(0), "mean": rows.mean(0), "max": rows.max(0).values}[how]
    return out


def _earlier(src: torch.Tensor, index: torch.Tensor, n: int, how: str) -> torch.Tensor:
    """The native path before the index_add_ rewrite: scatter_reduce_ without self."""
    out = src.new_zeros((n, *src.shape[1:]))
    reduce = {"sum": "sum", "mean": "mean", "max": "amax"}[how]
    expanded = index.view(-1, 1).expand_as(src)
    return out.scatter_reduce_(0, expanded, src, reduce=reduce, include_self=False)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("how", HOW)
def test_scatter_and_segment_match_reference(backend: str, how: str) -> None:
    src, index, ptr = _data()
    expected = _reference(src, index, 5, how)
    got = getattr(scatter, f"scatter_{how}")(src, index, 5, backend=backend)
    torch.testing.assert_close(got, expected)
    got_seg = getattr(scatter, f"segment_{how}")(src, ptr, backend=backend)
    torch.testing.assert_close(got_seg, expected)


@pytest.mark.parametrize("backend", BACKENDS)
def test_sum_mean_is_both_reductions(backend: str) -> None:
    src, index, _ = _data()
    got = scatter.scatter_sum_mean(src, index, 6, backend=backend)
    expected = torch.cat([_reference(src, index, 6, "sum"), _reference(src, index, 6, "mean")],
                         dim=-1)
    torch.testing.assert_close(got, expected)


def _graph_inputs() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Edge states of a real batch of complete event graphs, with their receivers."""
    batch = make_batch(40, seed=3)
    gen = torch.Generator().manual_seed(1)
    e = torch.randn(batch.edge_index.shape[1], 8, generator=gen)
    return e, batch.edge_index[1], batch.batch, batch.ptr


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("how", HOW)
def test_same_values_and_gradients_as_earlier_native_path(backend: str, how: str) -> None:
    e, receiver, _, _ = _graph_inputs()
    n = int(receiver.max()) + 3  # two receivers without edges
    grad_out = torch.randn(n, e.shape[1], generator=torch.Generator().manual_seed(2))
    results = []
    for fn in (lambda s: getattr(scatter, f"scatter_{how}")(s, receiver, n, backend=backend),
               lambda s: _earlier(s, receiver, n, how)):
        s = e.clone().requires_grad_(True)
        out = fn(s)
        out.backward(grad_out)
        results.append((out.detach(), s.grad))
    torch.testing.assert_close(results[0][0], results[1][0])
    torch.testing.assert_close(results[0][1], results[1][1])


@pytest.mark.parametrize("backend", BACKENDS)
def test_pooling_over_event_ranges(backend: str) -> None:
    """Node pooling by ``batch`` and by ``ptr`` give the per-event means."""
    e, _, batch, ptr = _graph_inputs()
    x = e[: len(batch)]
    by_index = scatter.scatter_mean(x, batch, len(ptr) - 1, backend=backend)
    by_ptr = scatter.segment_mean(x, ptr, backend=backend)
    expected = torch.stack([x[a:b].mean(0) for a, b in itertools.pairwise(ptr)])
    torch.testing.assert_close(by_index, expected)
    torch.testing.assert_close(by_ptr, expected)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("how", HOW)
def test_gradcheck(backend: str, how: str) -> None:
    src, index, ptr = _data(torch.float64)
    src = src[:, :2].clone().requires_grad_(True)  # distinct values: max is differentiable
    assert torch.autograd.gradcheck(
        lambda s: getattr(scatter, f"scatter_{how}")(s, index, 6, backend=backend), (src,))
    assert torch.autograd.gradcheck(
        lambda s: getattr(scatter, f"segment_{how}")(s, ptr, backend=backend), (src,))
    if how == "sum":
        assert torch.autograd.gradcheck(
            lambda s: scatter.scatter_sum_mean(s, index, 6, backend=backend), (src,))


@pytest.mark.skipif(not scatter.HAVE_TORCH_SCATTER, reason="torch-scatter not installed")
@pytest.mark.parametrize("how", HOW)
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


@pytest.mark.parametrize("backend", BACKENDS)
def test_model_same_outputs_and_gradients_as_earlier_native_path(
        backend: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The whole network (dropout on, so the train-mode path) gives the same logits and
    parameter gradients with either backend as with the earlier scatter_reduce_ path."""
    batch = make_batch(24, seed=5)
    torch.manual_seed(0)
    model = FoundationModel(ModelConfig(hidden=16, blocks=2, head_hidden=8, dropout=0.1))

    def run() -> tuple[torch.Tensor, list[torch.Tensor]]:
        torch.manual_seed(1)  # the same dropout masks on every run
        model.zero_grad(set_to_none=True)
        out = model(batch)["multiclass"]
        out.square().sum().backward()
        return out.detach(), [p.grad.clone() for p in model.parameters() if p.grad is not None]

    prev = scatter.get_backend()
    scatter.set_backend(backend)
    try:
        new, new_grads = run()
    finally:
        scatter.set_backend(prev)
    monkeypatch.setattr(scatter, "scatter_sum", lambda s, i, n, backend=None:
                        _earlier(s, i, n, "sum"))
    monkeypatch.setattr(scatter, "scatter_mean", lambda s, i, n, backend=None:
                        _earlier(s, i, n, "mean"))
    old, old_grads = run()
    torch.testing.assert_close(new, old)
    assert len(new_grads) == len(old_grads) > 10
    for a, b in zip(new_grads, old_grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_native_path_is_default_and_uses_index_add() -> None:
    """The default does not depend on torch-scatter being installed, and sums and means
    go through index_add_ (whose backward is one index_select), not scatter_reduce_."""
    assert scatter.get_backend() == "torch"
    src = _data()[0].requires_grad_(True)
    index = _data()[1]
    assert type(scatter.scatter_sum(src, index, 5).grad_fn).__name__ == "IndexAddBackward0"
    mean = scatter.scatter_mean(src, index, 5)
    assert type(mean.grad_fn.next_functions[0][0]).__name__ == "IndexAddBackward0"


def test_ptr_to_index() -> None:
    assert scatter.ptr_to_index(torch.tensor([0, 2, 2, 3])).tolist() == [0, 0, 2]
    assert scatter.ptr_to_index(torch.tensor([0])).tolist() == []


def test_backend_switch() -> None:
    before = scatter.get_backend()
    try:
        scatter.set_backend("torch")
        assert scatter.get_backend() == "torch"
        with pytest.raises(ValueError, match="unknown scatter backend"):
            scatter.set_backend("numpy")  # type: ignore[arg-type]
    finally:
        scatter.set_backend(before)
