"""Vectorised AUC and the test-set bootstrap: against scikit-learn, DeLong's variance,
1/sqrt(n) scaling, and exact zeros for paired self-differences."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from hepfm.analysis.metrics import (
    bootstrap_auc,
    bootstrap_counts,
    percentile_interval,
    rank_auc,
)
from hepfm.training.scan import differences, summarise


def _sample(n: int, seed: int, ties: bool = False) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    s = rng.normal(0.8 * y, 1.0)
    return y, (np.round(s, 1) if ties else s)


@pytest.mark.parametrize("ties", [False, True])
def test_rank_auc_equals_sklearn_with_ties_and_weights(ties):
    y, s = _sample(500, 1, ties)
    w = np.random.default_rng(2).uniform(0.1, 3.0, y.size)
    assert rank_auc(y, s) == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    assert rank_auc(y, s, w) == pytest.approx(roc_auc_score(y, s, sample_weight=w), abs=1e-12)
    # every resample equals sklearn on the explicitly resampled events
    counts = bootstrap_counts(y.size, 5, seed=3)
    many = rank_auc(y, np.stack([s, -s]), counts * w)
    for b in range(5):
        idx = np.repeat(np.arange(y.size), counts[b])
        assert many[b, 0] == pytest.approx(
            roc_auc_score(y[idx], s[idx], sample_weight=w[idx]), abs=1e-12)
        assert many[b, 1] == pytest.approx(1 - many[b, 0], abs=1e-12)


def test_rank_auc_by_hand():
    # signal 0.8, 0.5; background 0.5, 0.2: pairs (0.8>0.5, 0.8>0.2, 0.5=0.5, 0.5>0.2) -> 3.5/4
    assert rank_auc([1, 1, 0, 0], [0.8, 0.5, 0.5, 0.2]) == 0.875
    assert np.isnan(rank_auc([1, 1], [0.1, 0.2]))


def _delong_std(y: np.ndarray, s: np.ndarray) -> float:
    pos, neg = s[y == 1], s[y == 0]
    h = (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])
    return float(np.sqrt(h.mean(1).var(ddof=1) / pos.size + h.mean(0).var(ddof=1) / neg.size))


def test_bootstrap_matches_delong_covers_the_estimate_and_shrinks_as_one_over_sqrt_n():
    y, s = _sample(1000, 4)
    auc = rank_auc(y, s)
    boot = bootstrap_auc(y, s, n_boot=2000, seed=0)[:, 0]
    lo, hi = percentile_interval(boot)
    assert lo < auc < hi
    assert boot.std() == pytest.approx(_delong_std(y, s), rel=0.1)
    assert (hi - lo) / 2 == pytest.approx(boot.std(), rel=0.15)  # 68%: about +-1 sigma
    # the same events four times: the same AUC, an interval half as wide
    y4, s4 = np.tile(y, 4), np.tile(s, 4)
    assert rank_auc(y4, s4) == pytest.approx(auc, abs=1e-12)
    lo4, hi4 = percentile_interval(bootstrap_auc(y4, s4, n_boot=2000, seed=1)[:, 0])
    assert (hi4 - lo4) / (hi - lo) == pytest.approx(0.5, rel=0.12)


def test_bootstrap_is_seeded_and_chunking_does_not_change_it():
    y, s = _sample(300, 5)
    a = bootstrap_auc(y, s, n_boot=100, seed=7)
    assert np.array_equal(a, bootstrap_auc(y, s, n_boot=100, seed=7))
    assert np.allclose(a, bootstrap_auc(y, s, n_boot=100, seed=7, chunk=1000), atol=1e-14)
    assert not np.array_equal(a, bootstrap_auc(y, s, n_boot=100, seed=8))


def _frame(aucs: dict[str, list[float]]) -> pd.DataFrame:
    rows = []
    for mode, values in aucs.items():
        for seed, auc in enumerate(values):
            rows.append({"task": "t", "model": "m" if mode == "full" else "none",
                         "mode": mode, "train_size": 100, "seed": seed, "auc": auc,
                         "train_seconds": 1.0, "best_epoch": 1, "test_id": "x",
                         "run_id": f"{mode}{seed}"})
    return pd.DataFrame(rows)


def test_paired_difference_of_a_model_with_itself_is_exactly_zero():
    y, s = _sample(400, 6)
    other = s + np.random.default_rng(9).normal(0, 1, s.size)
    boot = bootstrap_auc(y, np.stack([s, s, other]), n_boot=500, seed=0)
    assert np.array_equal(boot[:, 0], boot[:, 1])
    frame = _frame({"scratch": [rank_auc(y, s)], "full": [rank_auc(y, s)],
                    "bdt": [rank_auc(y, other)]})
    boot = pd.DataFrame({"scratch0": boot[:, 0], "full0": boot[:, 1], "bdt0": boot[:, 2]})
    diff = differences(frame, boot).set_index(["curve", "reference"])
    same = diff.loc[("full", "scratch")]
    assert same["diff_mean"] == 0 and same["diff_lo68"] == 0 and same["diff_hi68"] == 0
    assert same["frac_not_above_0"] == 1.0
    # pairing removes the common test-set fluctuation: narrower than the unpaired spread
    vs_bdt = diff.loc[("full", "bdt")]
    assert vs_bdt["diff_test_std"] < np.hypot(boot["full0"].std(), boot["bdt0"].std())
    assert set(diff.index) == {("full", "bdt"), ("scratch", "bdt"), ("full", "scratch")}


def test_summary_by_hand():
    frame = _frame({"scratch": [0.70, 0.74], "full": [0.80, 0.78]})
    # two resamples: full runs at 0.8/0.7 and 0.9/0.6; scratch at 0.7/0.7 and 0.6/0.8
    boot = pd.DataFrame({"full0": [0.8, 0.9], "full1": [0.7, 0.6],
                         "scratch0": [0.7, 0.6], "scratch1": [0.7, 0.8]})
    s = summarise(frame, boot).set_index("curve")
    assert s.loc["full", "auc_mean"] == pytest.approx(0.79)
    assert s.loc["full", "auc_std"] == pytest.approx(np.std([0.80, 0.78], ddof=1))
    # bootstrap mean over seeds: 0.75 and 0.75 -> interval [0.75, 0.75]
    assert s.loc["full", "auc_lo68"] == pytest.approx(0.75)
    d = differences(frame, boot).set_index("curve").loc["full"]
    assert d["diff_mean"] == pytest.approx(0.07)  # (0.10 + 0.04) / 2
    # per resample: (0.75 - 0.70), (0.75 - 0.70) -> 0.05 both
    assert d["diff_lo68"] == pytest.approx(0.05) and d["diff_hi68"] == pytest.approx(0.05)


def test_bootstrap_multiclass_equals_resampling_by_hand():
    """Accuracy and macro AUC of every resample equal sklearn's on the resampled events."""
    from sklearn.metrics import roc_auc_score

    from hepfm.analysis.metrics import bootstrap_counts, bootstrap_multiclass

    rng = np.random.default_rng(3)
    y = rng.integers(0, 3, 60)
    scores = rng.normal(size=(60, 3)) + 1.5 * np.eye(3)[y]
    boot = bootstrap_multiclass(y, scores, n_boot=25, seed=7, chunk=100)  # several chunks
    for k, counts in enumerate(bootstrap_counts(60, 25, seed=7)):
        idx = np.repeat(np.arange(60), counts)
        yy, ss = y[idx], scores[idx]
        assert boot["accuracy"][k] == pytest.approx(np.mean(ss.argmax(1) == yy))
        expected = np.mean([roc_auc_score(yy == c, ss[:, c]) for c in np.unique(yy)])
        assert boot["macro_auc"][k] == pytest.approx(expected)
