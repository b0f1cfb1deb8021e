"""Label efficiency: the scratch training size a fine-tuned AUC matches, against hand
computations on small learning curves."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from hepfm.analysis.label_efficiency import LabelEfficiency, label_efficiency, matching_size
from hepfm.training.scan import label_efficiencies

SIZES = [100, 1000, 10000]
CURVE = [0.70, 0.80, 0.85]


def test_interpolates_linearly_in_log_size():
    # halfway from 0.70 to 0.80: halfway from log 100 to log 1000 -> 10^2.5
    assert matching_size(SIZES, CURVE, 0.75) == pytest.approx(10 ** 2.5)
    # 0.82 is 2/5 of the way from 0.80 to 0.85: 10^(3 + 0.4)
    assert matching_size(SIZES, CURVE, 0.82) == pytest.approx(10 ** 3.4)
    assert matching_size(SIZES, CURVE, 0.80) == pytest.approx(1000)
    assert matching_size(SIZES, CURVE, 0.70) == pytest.approx(100)


def test_beyond_the_curve_and_bad_input():
    assert matching_size(SIZES, CURVE, 0.86) == math.inf  # more than the largest size
    assert matching_size(SIZES, CURVE, 0.65) == 0.0  # less than the smallest
    assert math.isnan(matching_size(SIZES, [0.7, np.nan, 0.8], 0.75))
    with pytest.raises(ValueError, match="increasing"):
        matching_size([1000, 100], [0.7, 0.8], 0.75)
    with pytest.raises(ValueError, match="one AUC per size"):
        matching_size(SIZES, [0.7, 0.8], 0.75)


def test_a_noisy_dip_is_pooled_into_a_monotone_curve():
    # 0.80 at 1000 and 0.78 at 3000 pool to 0.79 at both (isotonic regression)
    sizes, curve = [100, 1000, 3000, 10000], [0.70, 0.80, 0.78, 0.85]
    assert matching_size(sizes, curve, 0.79) == pytest.approx(1000)  # the first size reaching
    # from 0.79 at 3000 to 0.85 at 10000, halfway: sqrt(3000 * 10000)
    assert matching_size(sizes, curve, 0.82) == pytest.approx(math.sqrt(3e7))
    # 0.745 on the segment 0.70 (100) -> 0.79 (1000): fraction 0.5
    assert matching_size(sizes, curve, 0.745) == pytest.approx(10 ** 2.5)


def test_interval_from_paired_resamples():
    # four resamples of the scratch curve and the fine-tuned AUC
    curve_boot = np.array([CURVE, CURVE, [0.68, 0.78, 0.83], [0.72, 0.82, 0.87]])
    target_boot = np.array([0.75, 0.82, 0.80, 0.90])
    eff = label_efficiency(SIZES, CURVE, 0.80, curve_boot, target_boot, confidence=0.5)
    # per resample: 10^2.5, 10^3.4, 10^3.4 (0.80 on 0.78 -> 0.83), inf (above 0.87)
    assert eff.size == pytest.approx(1000)
    # central 50%: the 25th percentile rounded down (position 0.75 of 0..3 -> the smallest),
    # the 75th rounded up (position 2.25 -> the largest), never interpolated
    assert eff.lo == pytest.approx(10 ** 2.5) and eff.hi == math.inf
    assert eff.describe() == "1,000 [316, more than 10,000]"
    assert LabelEfficiency(0.0, math.nan, math.nan, 100, 10000).describe() == "fewer than 100"
    none = label_efficiency(SIZES, CURVE, 0.80)
    assert math.isnan(none.lo) and none.describe() == "1,000"


def _rows(task: str, mode: str, size: int, aucs: list[float]) -> list[dict]:
    model = "none" if mode == "scratch" else "pretrained"
    return [{"task": task, "model": model, "mode": mode, "train_size": size, "seed": s,
             "auc": a, "test_id": "t", "run_id": f"{mode}{size}-{s}"}
            for s, a in enumerate(aucs)]


def test_scan_summary_states_the_matched_size():
    frame = pd.DataFrame(
        _rows("ttH_vs_tt", "scratch", 100, [0.69, 0.71]) + _rows("ttH_vs_tt", "scratch", 1000,
                                                                  [0.80, 0.80])
        + _rows("ttH_vs_tt", "full", 100, [0.74, 0.76]) + _rows("ttH_vs_tt", "full", 1000,
                                                                [0.86, 0.86]))
    # two resamples; the runs' AUCs in each (means over the two seeds: scratch 0.70/0.80 and
    # 0.70/0.80 in both, full 0.75 then 0.78 at 100)
    boot = pd.DataFrame({"scratch100-0": [0.69, 0.69], "scratch100-1": [0.71, 0.71],
                         "scratch1000-0": [0.80, 0.80], "scratch1000-1": [0.80, 0.80],
                         "full100-0": [0.75, 0.78], "full100-1": [0.75, 0.78],
                         "full1000-0": [0.86, 0.86], "full1000-1": [0.86, 0.86]})
    eff = label_efficiencies(frame, boot, confidence=0.5).set_index("train_size")
    assert eff.loc[100, "scratch_equivalent"] == pytest.approx(10 ** 2.5)
    assert eff.loc[100, "scratch_equivalent_lo50"] == pytest.approx(10 ** 2.5)
    assert eff.loc[100, "scratch_equivalent_hi50"] == pytest.approx(10 ** 2.8)
    assert eff.loc[1000, "scratch_equivalent"] == math.inf
    assert eff.loc[100, "statement"] == ("ttH_vs_tt: full at 100 training events matches "
                                         "scratch at 316 [316, 631] (50% interval)")
    assert "matches scratch at more than 1,000" in eff.loc[1000, "statement"]
    # without resamples: no interval
    plain = label_efficiencies(frame).set_index("train_size")
    assert math.isnan(plain.loc[100, "scratch_equivalent_lo68"])
    assert plain.loc[100, "statement"].endswith("scratch at 316")
