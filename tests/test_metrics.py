"""Metrics against hand computations on tiny arrays; plots write non-empty PNGs."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hepfm.analysis import plots
from hepfm.analysis.metrics import (
    background_rejection,
    binary_metrics,
    confusion_frame,
    macro_auc,
    multiclass_metrics,
    per_class_accuracy,
    roc_curve_frame,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_perfect_separation() -> None:
    y = [0, 0, 0, 1, 1, 1]
    s = [0.1, 0.2, 0.3, 0.7, 0.8, 0.9]
    m = binary_metrics(y, s)
    assert m["auc"] == 1.0
    assert m["accuracy"] == 1.0
    assert m["rejection_50"] == math.inf and m["rejection_70"] == math.inf
    roc = roc_curve_frame(y, s)
    assert np.isinf(roc["background_rejection"].iloc[0])
    assert roc["background_rejection"].iloc[-1] == 1.0


def test_hand_built_roc_with_interpolation() -> None:
    # signal scores 0.8, 0.5; background 0.5, 0.2. ROC points (fpr, tpr):
    # (0, 0), (0, 0.5), (0.5, 1), (1, 1). At 70 % efficiency the segment from (0, 0.5) to
    # (0.5, 1) gives fpr = 0.2 -> rejection 5; at 50 % fpr = 0 -> rejection inf.
    y = [1, 1, 0, 0]
    s = [0.8, 0.5, 0.5, 0.2]
    assert background_rejection(y, s, 0.7) == pytest.approx(5.0)
    assert background_rejection(y, s, 0.5) == math.inf
    assert background_rejection(y, s, 1.0) == pytest.approx(2.0)
    m = binary_metrics(y, s)
    # AUC: pairs (s, b) = (.8>.5) 1, (.8>.2) 1, (.5=.5) 0.5, (.5>.2) 1 -> 3.5 / 4
    assert m["auc"] == pytest.approx(0.875)
    # accuracy at 0.5 (strictly above is signal): 0.8 ok, 0.5 wrong, 0.5 ok, 0.2 ok
    assert m["accuracy"] == pytest.approx(0.75)
    assert m["rejection_70"] == pytest.approx(5.0)


def test_rejection_on_staircase() -> None:
    # ordering s s b s b b: tpr hits 2/3 at fpr 0, then 1 at fpr 1/3
    y = [1, 1, 0, 1, 0, 0]
    s = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4]
    assert background_rejection(y, s, 0.5) == math.inf
    assert background_rejection(y, s, 2 / 3) == math.inf
    assert background_rejection(y, s, 0.7) == pytest.approx(3.0)
    assert binary_metrics(y, s, efficiencies=(0.9,))["rejection_90"] == pytest.approx(3.0)


def test_binary_input_errors() -> None:
    with pytest.raises(ValueError, match="both signal"):
        binary_metrics([1, 1], [0.2, 0.3])
    with pytest.raises(ValueError, match="0 \\(background\\) or 1"):
        binary_metrics([0, 2], [0.2, 0.3])
    with pytest.raises(ValueError, match="entries"):
        binary_metrics([0, 1, 1], [0.2, 0.3])
    with pytest.raises(ValueError, match="efficiency"):
        background_rejection([0, 1], [0.2, 0.3], 0.0)


def _three_class() -> tuple[np.ndarray, np.ndarray]:
    y = np.array([0, 0, 1, 1, 2, 2])
    scores = np.array([
        [0.8, 0.1, 0.1],  # 0 -> 0
        [0.3, 0.6, 0.1],  # 0 -> 1
        [0.1, 0.7, 0.2],  # 1 -> 1
        [0.2, 0.5, 0.3],  # 1 -> 1
        [0.1, 0.2, 0.7],  # 2 -> 2
        [0.5, 0.2, 0.3],  # 2 -> 0
    ])
    return y, scores


def test_multiclass_metrics_by_hand() -> None:
    y, s = _three_class()
    acc = per_class_accuracy(y, s, ["tt", "ttH", "WW"])
    assert acc.to_dict() == {"tt": 0.5, "ttH": 1.0, "WW": 0.5}
    # one-vs-rest AUCs: class 0 scores pos {.8,.3} vs neg {.1,.2,.1,.5}: 7/8;
    # class 1 pos {.7,.5} vs neg {.1,.6,.2,.2}: 7/8; class 2 pos {.7,.3} vs neg {.1,.1,.2,.3}:
    # 4 + 3.5 = 7.5/8
    assert macro_auc(y, s) == pytest.approx((7 / 8 + 7 / 8 + 7.5 / 8) / 3)
    m = multiclass_metrics(y, s, ["tt", "ttH", "WW"])
    assert m["accuracy"] == pytest.approx(4 / 6)
    assert m["accuracy/ttH"] == 1.0
    one_class = multiclass_metrics(y[:2], s[:2])
    assert one_class["accuracy"] == 0.5 and math.isnan(one_class["macro_auc"])
    assert math.isnan(one_class["accuracy/2"])
    with pytest.raises(ValueError, match="two classes"):
        macro_auc(y[:2], s[:2])


def test_confusion_frames() -> None:
    y, s = _three_class()
    counts = confusion_frame(y, s, ["tt", "ttH", "WW"], normalize=False)
    assert counts.loc["tt"].tolist() == [1, 1, 0]
    assert counts.loc["WW"].tolist() == [1, 0, 1]
    assert counts.to_numpy().sum() == 6
    frac = confusion_frame(y, s, ["tt", "ttH", "WW"])
    assert np.allclose(frac.sum(axis=1), 1.0)
    assert frac.at["ttH", "ttH"] == 1.0
    # a class with no events gives a NaN row, not a division error
    empty = confusion_frame(np.array([0, 1]), np.eye(3)[:2])
    assert empty.loc["2"].isna().all()


def _is_png(path: Path) -> bool:
    return path.exists() and path.stat().st_size > 1000 and path.read_bytes()[:8] == PNG_MAGIC


def test_plots_write_pngs(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 400)
    roc_a = roc_curve_frame(y, y + rng.normal(0, 0.6, 400))
    roc_b = roc_curve_frame(y, y + rng.normal(0, 1.2, 400))
    assert _is_png(plots.plot_roc({"finetuned": roc_a, "scratch": roc_b},
                                  tmp_path / "roc.png", title="ttH vs tt"))
    assert _is_png(plots.plot_roc(roc_a, tmp_path / "roc1.png"))

    ys, s = _three_class()
    assert _is_png(plots.plot_confusion(confusion_frame(ys, s, ["tt", "ttH", "WW"]),
                                        tmp_path / "cm.png"))
    assert _is_png(plots.plot_confusion(confusion_frame(ys, s, normalize=False),
                                        tmp_path / "sub" / "cm_counts.png"))

    rows = [{"mode": mode, "train_size": n, "seed": seed, "auc": 0.6 + 0.05 * k + 0.01 * seed}
            for mode in ("scratch", "finetune") for k, n in enumerate((1000, 10000, 100000))
            for seed in range(3)]
    assert _is_png(plots.plot_learning_curve(pd.DataFrame(rows), tmp_path / "lc.png"))
    with pytest.raises(ValueError, match="columns"):
        plots.plot_learning_curve(pd.DataFrame(rows).drop(columns="auc"), tmp_path / "x.png")

    stages = ["encoder", "block_1", "block_2", "readout"]
    m = pd.DataFrame(rng.uniform(size=(4, 4)), index=stages, columns=stages)
    assert _is_png(plots.plot_cka_heatmap(m, tmp_path / "cka.png", label_a="A", label_b="B"))
    diag = pd.DataFrame({"scratch vs scratch": [0.9, 0.8, 0.7, 0.6],
                         "finetune vs scratch": [0.95, 0.7, 0.5, 0.4]}, index=stages)
    assert _is_png(plots.plot_cka_diagonal(diag, tmp_path / "diag.png", spread=0.05 * diag))
    assert _is_png(plots.plot_cka_diagonal(diag.iloc[:, 0], tmp_path / "diag1.png"))
    # atomic writes leave no temporary files behind
    assert not [p for p in tmp_path.rglob("*") if p.name.startswith(".")]
