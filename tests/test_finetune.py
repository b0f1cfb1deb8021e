"""Fine-tuning modes, task splits and the estimator API on small synthetic events."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hepfm.data.normalization import FeatureStats
from hepfm.data.table import EventTable
from hepfm.errors import InputDataError, UnknownNameError
from hepfm.models.foundation import FoundationModel, ModelConfig
from hepfm.taskdata import split_task
from hepfm.training.finetune import FinetuneConfig, FineTuner, finetune, prepare_model

TINY = ModelConfig(hidden=16, blocks=1, head_hidden=16, dropout=0.0)


def synthetic_table(n: int = 1200, seed: int = 0) -> EventTable:
    """Signal events (y=1) have harder jets than background events (y=0)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    n_obj = rng.integers(0, 5, n)
    counts = n_obj + 1
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    total = int(offsets[-1])
    ev = np.repeat(np.arange(n), counts)
    is_met = np.zeros(total, bool)
    is_met[offsets[1:] - 1] = True
    pt = rng.exponential(40.0, total) * (1 + 1.5 * y[ev]) + 25.0
    node_type = np.where(is_met, 5, rng.integers(0, 5, total)).astype(np.int8)
    return EventTable(
        offsets=offsets, pt=pt.astype(np.float32),
        eta=np.where(is_met, 0, rng.normal(0, 1.2, total)).astype(np.float32),
        phi=rng.uniform(-np.pi, np.pi, total).astype(np.float32),
        mass=np.where(is_met, 0, 5.0).astype(np.float32),
        charge=np.zeros(total, np.int8), btag=(node_type == 1).astype(np.float32),
        node_type=node_type, y=y.astype(np.int64), process=y.astype(np.int16),
        processes=("bkg", "sig"))


@pytest.fixture(scope="module")
def splits():
    return split_task(synthetic_table(), train_size=400, seed=0)


@pytest.fixture(scope="module")
def pretrained():
    torch.manual_seed(0)
    return FoundationModel(TINY, stats=FeatureStats.from_table(synthetic_table()))


def _backbone(model: FoundationModel) -> list[torch.Tensor]:
    return [p.detach().clone() for p in model.backbone_parameters()]


def test_split_fixed_test_set_and_sizes():
    table = synthetic_table()
    a = split_task(table, train_size=300, seed=1)
    b = split_task(table, train_size=600, seed=2)
    assert np.array_equal(a.test.pt, b.test.pt) and len(a.test) == len(b.test)
    assert len(a.train) == 300 and len(b.train) == 600
    assert len(a.val) == max(200, 75)
    assert abs(int(a.train.y.sum()) - 150) <= 1  # balanced
    with pytest.raises(InputDataError, match="needs more events"):
        split_task(table, train_size=5000)


@pytest.mark.parametrize("mode", ["frozen", "linear"])
def test_frozen_modes_leave_backbone_bit_identical(mode, splits, pretrained):
    model = prepare_model(pretrained, "task", mode)
    before = _backbone(model)
    head_before = [p.detach().clone() for p in model.head_parameters("task")]
    res = finetune(model, splits.train, splits.val, config=FinetuneConfig(mode=mode, epochs=2))
    for a, b in zip(before, _backbone(res.model), strict=True):
        assert torch.equal(a, b)
    assert any(not torch.equal(a, b) for a, b in
               zip(head_before, res.model.head_parameters("task"), strict=True))
    if mode == "linear":
        assert isinstance(res.model.heads["task"].body, torch.nn.Identity)


def test_full_mode_changes_backbone_and_learns(splits, pretrained):
    before = _backbone(pretrained)
    tuner = FineTuner(pretrained, mode="full", epochs=6, lr=5e-3, batch_size=32)
    tuner.fit(splits.train, splits.val)
    assert any(not torch.equal(a, b) for a, b in
               zip(before, _backbone(tuner.model_), strict=True))
    # the pretrained model itself is left as it was
    assert all(torch.equal(a, b) for a, b in zip(before, _backbone(pretrained), strict=True))
    proba = tuner.predict_proba(splits.test)
    assert proba.shape == (len(splits.test), 2) and np.all((proba >= 0) & (proba <= 1))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    assert np.array_equal(tuner.predict(splits.test), proba.argmax(axis=1))
    metrics = tuner.evaluate(splits.test)
    assert metrics["auc"] > 0.7
    assert {"accuracy", "rejection_50", "rejection_70"} <= set(metrics)
    assert tuner.score(splits.test) == pytest.approx(metrics["accuracy"])
    assert 1 <= tuner.result_.best_epoch <= tuner.result_.epochs_run + 1
    assert tuner.result_.train_seconds > 0
    assert not hasattr(tuner, "model")  # scikit-learn's names only: model_, result_


def test_scratch_does_not_load_pretrained_weights(pretrained):
    scratch = prepare_model(pretrained, "task", "scratch", seed=3)
    full = prepare_model(pretrained, "task", "full", seed=3)
    pre = dict(pretrained.backbone.named_parameters())
    assert all(torch.equal(p, pre[k]) for k, p in full.backbone.named_parameters())
    assert not all(torch.equal(p, pre[k]) for k, p in scratch.backbone.named_parameters())
    # the input normalisation is shared, so only the weights differ
    for k, v in pretrained.backbone.normalizer.state_dict().items():
        assert torch.equal(v, scratch.backbone.normalizer.state_dict()[k])


def test_new_head_has_requested_size(pretrained):
    model = prepare_model(pretrained, "three_way", "full", n_outputs=3)
    from tests.synthetic_graphs import make_batch

    out = model(make_batch(5))
    assert out["three_way"].shape == (5, 3)
    assert "task" not in pretrained.heads  # the pretrained model is left untouched


def test_unknown_mode():
    with pytest.raises(UnknownNameError, match="fine-tuning mode"):
        FinetuneConfig(mode="partial")
