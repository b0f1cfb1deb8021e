"""FineTuner follows scikit-learn's estimator contract (sklearn.base, check_is_fitted)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from hepfm.data.normalization import FeatureStats
from hepfm.data.table import EventTable
from hepfm.errors import UnknownNameError
from hepfm.models.foundation import FoundationModel
from hepfm.training.finetune import FineTuner
from tests.test_finetune import TINY, synthetic_table

FAST = {"epochs": 2, "batch_size": 64, "patience": 2}


@pytest.fixture(scope="module")
def table() -> EventTable:
    return synthetic_table(500, seed=3)


@pytest.fixture(scope="module")
def pretrained(table) -> FoundationModel:
    torch.manual_seed(0)
    return FoundationModel(TINY, stats=FeatureStats.from_table(table))


def _weights(model: FoundationModel) -> list[torch.Tensor]:
    return [p.detach().clone() for p in model.parameters()]


def test_constructor_only_stores_and_clone_works(pretrained):
    torch.manual_seed(123)
    state = torch.random.get_rng_state()
    tuner = FineTuner(pretrained, mode="frozen", lr=1e-3, seed=7)
    # no work, no global reseeding, no copy: the parameters are the objects given
    assert torch.equal(torch.random.get_rng_state(), state)
    assert tuner.pretrained is pretrained
    params = tuner.get_params()
    assert params["mode"] == "frozen" and params["lr"] == 1e-3 and params["seed"] == 7
    twin = clone(tuner)
    assert twin.get_params()["mode"] == "frozen" and twin.get_params()["seed"] == 7
    assert isinstance(twin.pretrained, FoundationModel)
    assert tuner.set_params(mode="linear") is tuner and tuner.mode == "linear"
    # a bad mode is reported by fit (scikit-learn validates there), before any training
    with pytest.raises(UnknownNameError, match="fine-tuning mode"):
        FineTuner(pretrained, mode="partial").fit(synthetic_table(20))


def test_unfitted_estimator_says_so(pretrained, table):
    tuner = FineTuner(pretrained)
    for call in (tuner.predict_proba, tuner.predict, tuner.score, tuner.evaluate):
        with pytest.raises(NotFittedError, match="not fitted yet"):
            call(table)


def test_second_fit_starts_from_the_pretrained_weights(pretrained, table):
    before = _weights(pretrained)
    tuner = FineTuner(pretrained, mode="full", lr=5e-3, **FAST).fit(table)
    first = tuner.model_
    once = _weights(first)
    tuner.fit(table)
    assert tuner.model_ is not first
    # same seed, same start: the refit reproduces the first fit instead of continuing it
    for a, b in zip(once, _weights(tuner.model_), strict=True):
        torch.testing.assert_close(a, b)
    for a, b in zip(before, _weights(pretrained), strict=True):
        assert torch.equal(a, b)
    # one metric naming scheme with pretraining: val/loss, val/auc
    assert {"epoch", "val/loss", "val/auc"} <= set(tuner.result_.history[-1])


def test_multiclass_head_end_to_end(pretrained):
    table = synthetic_table(600, seed=5)
    rng = np.random.default_rng(0)
    table.y = np.where(table.y == 1, 1 + rng.integers(0, 2, len(table)), 0).astype(np.int64)
    tuner = FineTuner(pretrained, mode="linear", **FAST).fit(table)
    assert tuner.model_.heads["task"].n_outputs == 3
    assert np.array_equal(tuner.classes_, [0, 1, 2])
    proba = tuner.predict_proba(table)
    assert proba.shape == (len(table), 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
    assert set(np.unique(tuner.predict(table))) <= {0, 1, 2}
    metrics = tuner.evaluate(table)
    assert {"accuracy", "macro_auc", "accuracy/2"} <= set(metrics)
    assert tuner.score(table) == pytest.approx(metrics["accuracy"])


def test_labels_must_be_contiguous_classes(pretrained):
    table = synthetic_table(100)
    table.y = np.where(table.y == 1, 2, 0).astype(np.int64)
    with pytest.raises(ValueError, match=r"labels 0\.\.K-1.*\[0, 2\]"):
        FineTuner(pretrained).fit(table)
    table.y = np.zeros(len(table), np.int64)
    with pytest.raises(ValueError, match="K >= 2"):
        FineTuner(pretrained).fit(table)
