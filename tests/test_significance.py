"""Asimov, binned significance and SIC against hand computations."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hepfm.analysis.metrics import bootstrap_counts
from hepfm.analysis.significance import (
    Yields,
    asimov_significance,
    bootstrap_significance,
    significance_metrics,
    significance_report,
)
from hepfm.errors import ArgumentError


def z(s: float, b: float) -> float:
    return math.sqrt(2 * ((s + b) * math.log(1 + s / b) - s))


def test_asimov_formula_and_its_small_signal_limit():
    assert asimov_significance(10, 20) == pytest.approx(z(10, 20))
    assert asimov_significance(1e-3, 1e4) == pytest.approx(1e-3 / 100, rel=1e-3)  # s/sqrt(b)
    assert asimov_significance(0, 5) == 0
    assert np.isnan(asimov_significance(1, 0))


# three events per class; scores put one signal and one background in each third
Y = np.array([1, 0, 1, 0, 1, 0])
SCORES = np.array([0.9, 0.8, 0.3, 0.2, 0.1, 0.05])


def test_best_cut_binned_and_sic_by_hand():
    m = significance_metrics(Y, SCORES, yields=Yields(10, 100), min_background=1, n_boot=0)
    # cuts (eff_S, eff_B): (1/3,1/3) (2/3,1/3) (2/3,2/3) (1,2/3) (1,1): best s=10, b=66.7
    candidates = [(1 / 3, 1 / 3), (2 / 3, 1 / 3), (2 / 3, 2 / 3), (1, 2 / 3), (1, 1)]
    best = max(z(10 * es, 100 * eb) for es, eb in candidates)
    assert best == pytest.approx(z(10, 100 * 2 / 3))
    assert m["z_asimov"] == pytest.approx(best)
    assert m["z_asimov_cut"] == pytest.approx(0.1)
    assert m["sic"] == pytest.approx(max(es / math.sqrt(eb) for es, eb in candidates))
    assert m["sic"] == pytest.approx(math.sqrt(1.5))
    # three bins of one background event each, each with a third of S and of B
    assert m["z_binned"] == pytest.approx(math.sqrt(3) * z(10 / 3, 100 / 3))


def test_minimum_background_count_excludes_noisy_cuts():
    y, s = np.array([1, 1, 0, 0, 0]), np.array([0.9, 0.8, 0.7, 0.6, 0.5])
    one = significance_metrics(y, s, min_background=1, n_boot=0)
    two = significance_metrics(y, s, min_background=2, n_boot=0)
    assert one["sic"] == pytest.approx(1 / math.sqrt(1 / 3))
    assert two["sic"] == pytest.approx(1 / math.sqrt(2 / 3))
    assert one["z_asimov"] == pytest.approx(z(100, 10_000 / 3))  # the default yields
    assert np.isnan(significance_metrics(y, s, min_background=4, n_boot=0)["z_asimov"])


def test_weighted_efficiencies_and_yields_from_weights():
    y, s, w = np.array([1, 1, 0, 0]), np.array([0.9, 0.5, 0.8, 0.1]), np.array([3, 1, 1, 1.])
    m = significance_metrics(y, s, w, Yields.from_weights(), min_background=1, n_boot=0)
    # S = 4, B = 2; cuts (s, b): (3, 1) after 0.8, (4, 1) after 0.5, (4, 2) after 0.1
    assert m["z_asimov"] == pytest.approx(z(4, 1))
    assert m["sic"] == pytest.approx(1 / math.sqrt(0.5))
    same = significance_metrics(y, s, w, Yields(4, 2), min_background=1, n_boot=0)
    assert same["z_asimov"] == pytest.approx(m["z_asimov"])


def test_cross_sections_give_yields():
    assert Yields.from_cross_sections(140, 0.5, 20) == Yields(70, 2800)
    with pytest.raises(ArgumentError, match="both"):
        Yields(10, None)
    with pytest.raises(ArgumentError, match="positive"):
        Yields(-1, 10)


def test_bootstrap_intervals_bracket_and_pair_with_auc():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 3000)
    scores = np.stack([rng.normal(y * k, 1) for k in (1.0, 1.5)])
    boot = bootstrap_significance(y, scores, n_boot=200, seed=3)
    assert boot["z_asimov"].shape == (200, 2)
    # the better classifier is better in (nearly) every paired resample
    assert np.mean(boot["sic"][:, 1] > boot["sic"][:, 0]) > 0.95
    m = significance_metrics(y, scores[0], n_boot=200, seed=3)
    for name in ("z_asimov", "z_binned", "sic"):
        assert m[f"{name}_lo68"] <= m[name] <= m[f"{name}_hi68"]
    # resample 0 is the test set drawn with bootstrap_counts (as bootstrap_auc draws it)
    counts = bootstrap_counts(y.size, 200, seed=3)[0]
    again = significance_metrics(np.repeat(y, counts), np.repeat(scores[0], counts), n_boot=0)
    for name in ("z_asimov", "sic"):
        assert boot[name][0, 0] == pytest.approx(again[name])


def test_permuting_events_changes_nothing():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 500)
    s = rng.normal(y, 1)
    p = rng.permutation(500)
    a = significance_metrics(y, s, n_boot=0)
    b = significance_metrics(y[p], s[p], n_boot=0)
    assert a == pytest.approx(b)


def test_report_weighted_and_unweighted():
    y, s, w = np.array([1, 1, 0, 0]), np.array([0.9, 0.5, 0.8, 0.1]), np.array([3, 1, 1, 1.])
    r = significance_report(y, s, w, Yields.from_weights(), n_boot=0, min_background=1)
    assert (r["signal_yield"], r["background_yield"]) == (4, 2)
    assert r["z_asimov"] == pytest.approx(z(4, 1))
    # unweighted efficiencies, same yields: cuts (2, 1) (4, 1) (4, 2) -> best (4, 1), and
    # the same min count; SIC: eff_S / sqrt(eff_B) = 1 / sqrt(1/2)
    assert r["z_asimov_unweighted"] == pytest.approx(z(4, 1))
    with pytest.raises(ArgumentError, match="weights"):
        significance_report(y, s, None, Yields.from_weights(), n_boot=0)
    plain = significance_report(y, s, n_boot=0)
    assert plain["signal_yield"] == 100.0 and "z_asimov_unweighted" not in plain


def test_yields_from_options():
    from hepfm.analysis.significance import yields_from_options

    assert yields_from_options() is None
    assert yields_from_options("50,2000") == Yields(50, 2000)
    assert yields_from_options("weights").weighted
    assert yields_from_options(luminosity=140, xsec="0.5,20") == Yields(70, 2800)
    for kw, match in (({"yields": "50"}, "two numbers"), ({"luminosity": 1.0}, "together"),
                      ({"yields": "1,2", "xsec": "1,2"}, "not both")):
        with pytest.raises(ArgumentError, match=match):
            yields_from_options(**kw)
