"""What a physicist checks of a fine-tuned classifier before trusting it.

:func:`assess` scores a fine-tuned binary head on its test events: the task metrics with
significance (:func:`~hepfm.training.finetune.task_metrics`), the calibration (Brier score,
expected calibration error, reliability curve), optionally after temperature scaling fitted
on the validation events (the temperature is folded into the head's last layer, so the
saved model gives calibrated scores), and the shift of AUC and significance on each
systematically varied copy of the test events (:mod:`hepfm.data.variations`) with paired
test-bootstrap intervals (the same resampled events, nominal and varied).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from hepfm.analysis.calibration import (
    binary_nll,
    calibration_metrics,
    fit_temperature,
    reliability_curve,
)
from hepfm.analysis.metrics import CONFIDENCE, bootstrap_auc, percentile_interval, rank_auc
from hepfm.analysis.significance import (
    METRICS,
    Yields,
    bootstrap_significance,
    significance_metrics,
)
from hepfm.atomic import write_text
from hepfm.data.table import EventTable
from hepfm.errors import ArgumentError
from hepfm.models.foundation import FoundationModel
from hepfm.training.evaluate import predict
from hepfm.training.finetune import class_probabilities, task_metrics


def apply_temperature(model: FoundationModel, head: str, temperature: float) -> None:
    """Divide the logits of `head` by `temperature`, in place (its last layer's weights)."""
    out = model.heads[head].out
    with torch.no_grad():
        out.weight /= temperature
        out.bias /= temperature


def calibrate(model: FoundationModel, head: str, val: EventTable,
              val_weight: np.ndarray | None = None) -> dict[str, float]:
    """Fit a temperature on the validation events (one-logit head) and apply it; returns
    ``temperature`` and the validation NLL before and after."""
    logits = predict(model, val)[head]
    if logits.shape[-1] != 1:
        raise ArgumentError(f"temperature scaling needs a one-logit head; '{head}' has "
                            f"{logits.shape[-1]}")
    z = logits[:, 0].astype(np.float64)
    t = fit_temperature(val.y, z, val_weight)
    apply_temperature(model, head, t)
    return {"temperature": t, "val_nll_uncalibrated": binary_nll(val.y, z, val_weight),
            "val_nll": binary_nll(val.y, z / t, val_weight)}


def _paired(values: np.ndarray, prefix: str) -> dict[str, float]:
    tag = round(100 * CONFIDENCE)
    lo, hi = percentile_interval(values)
    return {f"{prefix}_lo{tag}": float(lo), f"{prefix}_hi{tag}": float(hi)}


def variation_shifts(y: np.ndarray, nominal: np.ndarray, varied: Mapping[str, np.ndarray],
                     sample_weight: np.ndarray | None = None, yields: Yields | None = None,
                     n_boot: int = 1000, seed: int = 0) -> dict[str, dict[str, float]]:
    """Per variation: AUC and significance on the varied events and their shifts from the
    `nominal` scores (varied minus nominal; the same events in the same order), with paired
    68% test-bootstrap intervals (``auc_shift_lo68`` ...)."""
    yields = yields or Yields()
    if sample_weight is not None and yields.weighted:
        yields = Yields(*yields.totals(np.asarray(y), np.asarray(sample_weight, np.float64)))
    base = significance_metrics(y, nominal, sample_weight, yields, n_boot=0)
    out: dict[str, dict[str, float]] = {}
    for name, scores in varied.items():
        both = np.stack([nominal, scores])
        row: dict[str, float] = {"auc": float(rank_auc(y, scores, sample_weight))}
        row["auc_shift"] = row["auc"] - float(rank_auc(y, nominal, sample_weight))
        sig = significance_metrics(y, scores, sample_weight, yields, n_boot=0)
        for m in METRICS:
            row[m] = sig[m]
            row[f"{m}_shift"] = sig[m] - base[m]
        if n_boot:
            auc = bootstrap_auc(y, both, sample_weight, n_boot=n_boot, seed=seed)
            row.update(_paired(auc[:, 1] - auc[:, 0], "auc_shift"))
            boot = bootstrap_significance(y, both, sample_weight, yields, n_boot, seed)
            for m in METRICS:
                row.update(_paired(boot[m][:, 1] - boot[m][:, 0], f"{m}_shift"))
        out[name] = row
    return out


@dataclass
class Assessment:
    """The test metrics (``metrics``, with ``variations`` when any), the ROC and the
    reliability curve of a fine-tuned binary head."""

    metrics: dict[str, Any]
    roc: pd.DataFrame | None
    reliability: pd.DataFrame | None = None
    calibration: dict[str, float] = field(default_factory=dict)

    def write(self, out_dir: str | os.PathLike[str], title: str = "") -> None:
        """``reliability.csv`` and ``reliability.png`` in `out_dir` (binary heads)."""
        from hepfm.analysis.plots import plot_reliability

        if self.reliability is None:
            return
        out_dir = Path(out_dir)
        write_text(out_dir / "reliability.csv", self.reliability.to_csv(index=False))
        label = f"Brier {self.metrics['brier']:.4f}" + (
            f", T = {self.calibration['temperature']:.3g}" if self.calibration else "")
        plot_reliability({label: self.reliability}, out_dir / "reliability.png", title=title)


def assess(model: FoundationModel, head: str, test: EventTable, *,
           val: EventTable | None = None, test_weight: np.ndarray | None = None,
           val_weight: np.ndarray | None = None, yields: Yields | None = None,
           calibrate_on_val: bool = False, varied: Mapping[str, EventTable] | None = None,
           n_boot: int = 1000) -> Assessment:
    """Score `model`'s `head` on `test` (see the module docstring). `varied` maps variation
    labels to the varied copies of `test`; `calibrate_on_val` fits the temperature on `val`
    first (and changes `model`)."""
    cal: dict[str, float] = {}
    if calibrate_on_val:
        if val is None:
            raise ArgumentError("calibration needs the validation events")
        cal = calibrate(model, head, val, val_weight)
    proba = class_probabilities(model, test, head)
    metrics, roc = task_metrics(model, test, head, sample_weight=test_weight, n_boot=n_boot,
                                yields=yields, proba=proba)
    metrics = {**metrics, **cal}
    if proba.shape[1] != 2:
        return Assessment(metrics, roc, None, cal)
    p = proba[:, 1]
    metrics.update(calibration_metrics(test.y, p, test_weight))
    if varied:
        scores = {name: class_probabilities(model, t, head)[:, 1] for name, t in varied.items()}
        metrics["variations"] = variation_shifts(test.y, p, scores, test_weight, yields,
                                                 n_boot)
    return Assessment(metrics, roc, reliability_curve(test.y, p, sample_weight=test_weight),
                      cal)
