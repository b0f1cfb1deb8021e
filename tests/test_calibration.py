"""Brier score, reliability curve and temperature scaling against hand computations."""

from __future__ import annotations

import numpy as np
import pytest

from hepfm.analysis.calibration import (
    binary_nll,
    brier_score,
    calibration_metrics,
    fit_temperature,
    reliability_curve,
)
from hepfm.analysis.plots import plot_reliability


def test_brier_and_reliability_by_hand(tmp_path):
    y = np.array([1, 0, 1, 0])
    p = np.array([0.9, 0.2, 0.45, 0.05])
    assert brier_score(y, p) == pytest.approx((0.01 + 0.04 + 0.3025 + 0.0025) / 4)
    assert brier_score(y, p, [1, 1, 0, 0]) == pytest.approx(0.025)
    curve = reliability_curve(y, p, bins=2)  # [0, 0.5): 0.2, 0.45, 0.05; [0.5, 1]: 0.9
    assert curve["events"].tolist() == [3, 1]
    assert curve["mean_predicted"].tolist() == pytest.approx([0.7 / 3, 0.9])
    assert curve["fraction_signal"].tolist() == pytest.approx([1 / 3, 1.0])
    # ten bins: every event alone in its bin, |label - p| each
    assert calibration_metrics(y, p)["ece"] == pytest.approx((0.1 + 0.2 + 0.55 + 0.05) / 4)
    assert plot_reliability(curve, tmp_path / "r.png").stat().st_size > 0


def test_temperature_scaling_lowers_the_nll_of_over_confident_scores():
    rng = np.random.default_rng(0)
    true_logit = rng.normal(0, 2, 20_000)
    y = (rng.random(true_logit.size) < 1 / (1 + np.exp(-true_logit))).astype(int)
    over = 3.0 * true_logit  # over-confident: three times the calibrated logit
    t = fit_temperature(y, over)
    assert t == pytest.approx(3.0, rel=0.1)
    assert binary_nll(y, over / t) < binary_nll(y, over) - 0.05
    proba = 1 / (1 + np.exp(-over))
    assert brier_score(y, 1 / (1 + np.exp(-over / t))) < brier_score(y, proba)
    # calibrated scores keep T near 1
    assert fit_temperature(y, true_logit) == pytest.approx(1.0, rel=0.1)
