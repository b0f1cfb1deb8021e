"""Properties of CKA that must hold (and can fail), and representation extraction."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from hepfm.analysis.cka import (
    center_gram,
    cka_diagonal,
    cka_matrix,
    hsic_biased,
    hsic_unbiased,
    kernel_cka,
    linear_cka,
    linear_kernel,
    median_distance,
    minibatch_cka,
    rbf_cka,
    rbf_kernel,
)
from hepfm.analysis.representations import extract_representations
from hepfm.errors import HepfmError


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _pair(n: int = 400, p: int = 12, q: int = 8, noise: float = 1.0, seed: int = 0):
    """Related features: y is a random linear map of x plus noise."""
    g = _gen(seed)
    x = torch.randn(n, p, generator=g, dtype=torch.float64)
    y = x @ torch.randn(p, q, generator=g, dtype=torch.float64)
    y = y + noise * torch.randn(n, q, generator=g, dtype=torch.float64)
    return x, y


def _orthogonal(d: int, seed: int = 1) -> torch.Tensor:
    q, _ = torch.linalg.qr(torch.randn(d, d, generator=_gen(seed), dtype=torch.float64))
    return q


def _direct_linear_cka(x: np.ndarray, y: np.ndarray) -> float:
    """||Y^T X||_F^2 / (||X^T X||_F ||Y^T Y||_F) on centred features, written out."""
    x = x - x.mean(axis=0)
    y = y - y.mean(axis=0)
    num = np.linalg.norm(y.T @ x, "fro") ** 2
    return float(num / (np.linalg.norm(x.T @ x, "fro") * np.linalg.norm(y.T @ y, "fro")))


CKAS = {
    "linear": lambda x, y: linear_cka(x, y),
    "linear_unbiased": lambda x, y: linear_cka(x, y, unbiased=True),
    "rbf": lambda x, y: rbf_cka(x, y),
    "rbf_unbiased": lambda x, y: rbf_cka(x, y, unbiased=True),
}


@pytest.mark.parametrize("name", list(CKAS))
def test_self_similarity_is_one(name: str) -> None:
    x, _ = _pair()
    assert CKAS[name](x, x) == pytest.approx(1.0, abs=1e-10)


@pytest.mark.parametrize("name", list(CKAS))
def test_symmetric(name: str) -> None:
    x, y = _pair()
    assert CKAS[name](x, y) == pytest.approx(CKAS[name](y, x), abs=1e-12)


@pytest.mark.parametrize("name", list(CKAS))
@pytest.mark.parametrize("side", ["x", "y"])
def test_invariant_to_orthogonal_transform_and_isotropic_scaling(name: str, side: str) -> None:
    x, y = _pair()
    ref = CKAS[name](x, y)
    assert 0.2 < ref < 0.99  # a non-trivial value, so invariance is a real check
    if side == "x":
        moved = CKAS[name](7.5 * x @ _orthogonal(x.shape[1]), y)
    else:
        moved = CKAS[name](x, 0.03 * y @ _orthogonal(y.shape[1]))
    assert moved == pytest.approx(ref, abs=1e-9)


def test_invariant_to_translation() -> None:
    x, y = _pair()
    assert linear_cka(x + 5.0, y - 3.0) == pytest.approx(linear_cka(x, y), abs=1e-10)
    assert linear_cka(x + 5.0, y, unbiased=True) == pytest.approx(
        linear_cka(x, y, unbiased=True), abs=1e-10)


def test_linear_cka_not_invariant_to_general_invertible_map() -> None:
    # y depends on the first feature of x only; stretching another direction of x by an
    # invertible (non-orthogonal, anisotropic) map changes what linear CKA sees.
    g = _gen(3)
    x = torch.randn(500, 4, generator=g, dtype=torch.float64)
    y = x[:, :1] + 0.1 * torch.randn(500, 1, generator=g, dtype=torch.float64)
    a = torch.diag(torch.tensor([1.0, 10.0, 1.0, 1.0], dtype=torch.float64))
    a[0, 1] = 0.5  # also shear, still invertible
    assert abs(float(torch.linalg.det(a))) > 1.0
    before, after = linear_cka(x, y), linear_cka(x @ a, y)
    assert before > 0.4
    assert after < 0.5 * before


@pytest.mark.parametrize("name", ["linear", "rbf"])
def test_biased_cka_in_unit_interval(name: str) -> None:
    for seed in range(4):
        x, y = _pair(n=150, noise=0.3 + seed, seed=seed)
        v = CKAS[name](x, y)
        assert 0.0 <= v <= 1.0 + 1e-12


def test_unbiased_cka_bounded_above_by_one() -> None:
    for seed in range(4):
        x, y = _pair(n=150, noise=0.3 + seed, seed=seed)
        assert linear_cka(x, y, unbiased=True) <= 1.0 + 1e-12
        assert rbf_cka(x, y, unbiased=True) <= 1.0 + 1e-12


def test_independent_features_near_zero_with_unbiased_estimator() -> None:
    g = _gen(5)
    x = torch.randn(10000, 16, generator=g, dtype=torch.float64)
    y = torch.randn(10000, 16, generator=g, dtype=torch.float64)
    assert abs(linear_cka(x, y, unbiased=True)) < 0.005
    # the biased estimator is visibly biased upwards in the same setting with fewer events
    xs, ys = x[:200], y[:200]
    assert linear_cka(xs, ys) > 0.05
    assert abs(linear_cka(xs, ys, unbiased=True)) < 0.02
    assert abs(minibatch_cka(x[:2000], y[:2000], "rbf", batch_size=500)) < 0.01


def test_linear_cka_matches_direct_formula() -> None:
    x, y = _pair(n=300, p=10, q=6)
    x = x + 2.0  # not centred on input
    assert linear_cka(x, y) == pytest.approx(_direct_linear_cka(x.numpy(), y.numpy()),
                                             rel=1e-12)
    # and the Gram-matrix route (Kornblith et al. 2019, biased HSIC) agrees as well
    assert kernel_cka(linear_kernel(x), linear_kernel(y)) == pytest.approx(
        _direct_linear_cka(x.numpy(), y.numpy()), rel=1e-10)


def test_unbiased_hsic_matches_song_et_al_definition() -> None:
    # eq. 5 of Song et al. (2012) written out with explicit loops over tiny n
    x, y = _pair(n=9, p=3, q=2)
    k, l = linear_kernel(x).numpy(), rbf_kernel(y, sigma=1.3).numpy()  # noqa: E741
    n = k.shape[0]
    kt, lt = k.copy(), l.copy()
    np.fill_diagonal(kt, 0.0)
    np.fill_diagonal(lt, 0.0)
    one = np.ones(n)
    expect = (np.trace(kt @ lt) + (one @ kt @ one) * (one @ lt @ one) / ((n - 1) * (n - 2))
              - 2.0 / (n - 2) * one @ kt @ lt @ one) / (n * (n - 3))
    assert float(hsic_unbiased(torch.from_numpy(k), torch.from_numpy(l))) == pytest.approx(
        expect, rel=1e-10)
    h = np.eye(n) - 1.0 / n
    assert float(hsic_biased(torch.from_numpy(k), torch.from_numpy(l))) == pytest.approx(
        np.trace(k @ h @ l @ h) / (n - 1) ** 2, rel=1e-10)
    assert float(center_gram(torch.from_numpy(k)).sum()) == pytest.approx(0.0, abs=1e-9)


def test_feature_space_unbiased_linear_matches_gram_route() -> None:
    x, y = _pair(n=120)
    assert linear_cka(x, y, unbiased=True) == pytest.approx(
        kernel_cka(linear_kernel(x), linear_kernel(y), unbiased=True), rel=1e-10)


@pytest.mark.parametrize("kernel", ["linear", "rbf"])
def test_minibatch_agrees_with_full_batch(kernel: str) -> None:
    x, y = _pair(n=1200, noise=1.5)
    full = (linear_cka(x, y, unbiased=True) if kernel == "linear"
            else rbf_cka(x, y, unbiased=True))
    # one batch holding every event is exactly the full unbiased estimate ...
    assert minibatch_cka(x, y, kernel, batch_size=1200) == pytest.approx(full, abs=1e-10)
    # ... and 6 minibatches estimate the same quantity
    assert minibatch_cka(x, y, kernel, batch_size=200) == pytest.approx(full, abs=0.01)


def test_rbf_cka_sanity() -> None:
    x, y = _pair(n=300)
    # a nonlinear but invertible elementwise transform keeps RBF CKA high ...
    related = rbf_cka(x, torch.tanh(x) + x)
    unrelated = rbf_cka(x, torch.randn(300, 12, generator=_gen(9), dtype=torch.float64))
    assert related > 0.7 > 0.3 > unrelated
    # ... a wide bandwidth approaches linear CKA (exp(-d^2/2s^2) ~ 1 - d^2/2s^2)
    k = rbf_kernel(x, sigma=1e3 * median_distance(x))
    l = rbf_kernel(y, sigma=1e3 * median_distance(y))  # noqa: E741
    assert kernel_cka(k, l) == pytest.approx(linear_cka(x, y), abs=1e-4)
    # the kernel itself: ones on the diagonal, bandwidth from the median distance
    kk = rbf_kernel(x, fraction=0.5)
    assert torch.allclose(torch.diagonal(kk), torch.ones(300, dtype=torch.float64))
    assert median_distance(x) == pytest.approx(float(torch.pdist(x).median()), rel=1e-9)


def test_cka_matrix_layout_and_values() -> None:
    x, y = _pair(n=600)
    z = torch.randn(600, 5, generator=_gen(11))
    reps_a = {"encoder": x.float(), "block_1": y.float()}
    reps_b = {"encoder": x.float(), "block_1": y.float(), "readout": z}
    m = cka_matrix(reps_a, reps_b)
    assert list(m.index) == ["encoder", "block_1"]
    assert list(m.columns) == ["encoder", "block_1", "readout"]
    assert m.at["encoder", "encoder"] == pytest.approx(1.0, abs=1e-9)
    assert m.at["encoder", "block_1"] == pytest.approx(linear_cka(x, y, unbiased=True),
                                                       abs=1e-6)
    assert m.at["encoder", "block_1"] == pytest.approx(m.at["block_1", "encoder"], abs=1e-9)
    biased = cka_matrix(reps_a, reps_b, unbiased=False)
    assert biased.at["block_1", "encoder"] == pytest.approx(linear_cka(x, y), abs=1e-6)
    mb = cka_matrix(reps_a, reps_b, kernel="rbf", batch_size=200)
    assert mb.shape == (2, 3)
    assert mb.at["block_1", "block_1"] == pytest.approx(1.0, abs=1e-9)
    assert list(cka_diagonal(m).index) == ["encoder", "block_1"]


@pytest.mark.parametrize("unbiased", [False, True])
def test_linear_streaming_over_chunks_is_exact(unbiased: bool) -> None:
    from hepfm.analysis.cka import _linear_hsic

    x, y = _pair(n=500)
    z = y[:, :3] + 100.0  # a large offset: centring must use the global mean
    one = _linear_hsic([x, y], [y, z], unbiased, torch.device("cpu"), chunk=10_000)
    many = _linear_hsic([x, y], [y, z], unbiased, torch.device("cpu"), chunk=37)
    for a, b in zip(one, many, strict=True):
        assert torch.allclose(a, b, rtol=1e-10, atol=0.0)


def test_cka_matrix_rejects_bad_input() -> None:
    x, _ = _pair(n=50)
    with pytest.raises(ValueError, match="same events"):
        cka_matrix({"a": x}, {"b": x[:40]})
    with pytest.raises(ValueError, match="kernel"):
        cka_matrix({"a": x}, {"b": x}, kernel="cosine")  # type: ignore[arg-type]
    constant = cka_matrix({"a": x}, {"b": torch.ones(50, 3)})
    assert math.isnan(constant.iat[0, 0])


class _FakeModel(torch.nn.Module):
    """Stands in for FoundationModel: two stages from a linear layer and dropout."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(3, 4)
        self.drop = torch.nn.Dropout(0.5)

    def representations(self, batch: torch.Tensor) -> dict[str, torch.Tensor]:
        h = self.lin(batch)
        return {"encoder": batch, "block_1": self.drop(h)}


def test_extract_representations_concatenates_in_eval_mode() -> None:
    model = _FakeModel().train()
    batches = [torch.randn(5, 3, generator=_gen(i)) for i in range(3)]
    reps = extract_representations(model, batches)
    assert list(reps) == ["encoder", "block_1"]
    assert reps["encoder"].shape == (15, 3) and reps["block_1"].shape == (15, 4)
    assert torch.equal(reps["encoder"], torch.cat(batches))
    # dropout off (eval mode), no gradients, training mode restored
    assert torch.allclose(reps["block_1"], model.lin(torch.cat(batches)).detach())
    assert not reps["block_1"].requires_grad
    assert model.training
    cut = extract_representations(model, iter(batches), max_events=7)
    assert cut["encoder"].shape == (7, 3)
    assert torch.equal(cut["encoder"], torch.cat(batches)[:7])


def test_extract_representations_errors() -> None:
    with pytest.raises(HepfmError, match="no events"):
        extract_representations(_FakeModel(), [])

    class Bad(_FakeModel):
        def representations(self, batch: torch.Tensor) -> dict[str, torch.Tensor]:
            return {"nodes": batch[None]}

    with pytest.raises(HepfmError, match=r"\[B, D\]"):
        extract_representations(Bad(), [torch.randn(2, 3)])
