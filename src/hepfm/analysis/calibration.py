"""Are the scores probabilities? Brier score, reliability curve, temperature scaling.

A fine-tuned classifier's signal probability is used as a probability in reweighting and in
likelihood fits; these functions check it on labelled events and correct it with one
number. Temperature scaling (Guo et al., arXiv:1706.04599) divides the logit by a
temperature ``T`` fitted by minimising the negative log-likelihood of validation events:
``T > 1`` softens over-confident scores, ``T < 1`` sharpens timid ones. It never changes
the order of the events, so AUC, ROC and significance are unchanged.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy.optimize import minimize_scalar

#: Bins of the reliability curve (equal width in the predicted probability).
DEFAULT_BINS = 10


def _weights(n: int, sample_weight: ArrayLike | None) -> np.ndarray:
    return np.ones(n) if sample_weight is None else np.asarray(sample_weight, np.float64)


def brier_score(y_true: ArrayLike, proba: ArrayLike, sample_weight: ArrayLike | None = None
                ) -> float:
    """Mean squared difference between the signal probability and the 0/1 label."""
    y = np.asarray(y_true, np.float64).ravel()
    p = np.asarray(proba, np.float64).ravel()
    w = _weights(y.size, sample_weight)
    return float(np.sum(w * (p - y) ** 2) / np.sum(w))


def reliability_curve(y_true: ArrayLike, proba: ArrayLike, bins: int = DEFAULT_BINS,
                      sample_weight: ArrayLike | None = None) -> pd.DataFrame:
    """Per bin of predicted probability: ``lo``, ``hi``, ``events``, ``mean_predicted`` and
    ``fraction_signal`` (observed); empty bins are left out. A calibrated classifier has
    ``fraction_signal == mean_predicted`` within the statistics of each bin."""
    y = np.asarray(y_true, np.float64).ravel()
    p = np.asarray(proba, np.float64).ravel()
    w = _weights(y.size, sample_weight)
    edges = np.linspace(0.0, 1.0, bins + 1)
    k = np.clip(np.searchsorted(edges, p, side="right") - 1, 0, bins - 1)
    total = np.bincount(k, w, bins)
    keep = np.bincount(k, minlength=bins) > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        frame = pd.DataFrame({"lo": edges[:-1], "hi": edges[1:],
                              "events": np.bincount(k, minlength=bins),
                              "mean_predicted": np.bincount(k, w * p, bins) / total,
                              "fraction_signal": np.bincount(k, w * y, bins) / total})
    return frame[keep].reset_index(drop=True)


def binary_nll(y_true: ArrayLike, logits: ArrayLike, sample_weight: ArrayLike | None = None
               ) -> float:
    """Mean negative log-likelihood of 0/1 labels under ``sigmoid(logits)`` (stable)."""
    y = np.asarray(y_true, np.float64).ravel()
    z = np.asarray(logits, np.float64).ravel()
    w = _weights(y.size, sample_weight)
    per_event = np.logaddexp(0.0, z) - y * z  # -[y log s + (1 - y) log(1 - s)]
    return float(np.sum(w * per_event) / np.sum(w))


def fit_temperature(y_true: ArrayLike, logits: ArrayLike,
                    sample_weight: ArrayLike | None = None) -> float:
    """The temperature ``T`` (in [0.05, 20]) minimising :func:`binary_nll` of ``logits / T``."""
    res = minimize_scalar(lambda log_t: binary_nll(y_true, np.asarray(logits) / np.exp(log_t),
                                                   sample_weight),
                          bounds=(np.log(0.05), np.log(20.0)), method="bounded")
    return float(np.exp(res.x))


def calibration_metrics(y_true: ArrayLike, proba: ArrayLike,
                        sample_weight: ArrayLike | None = None) -> dict[str, float]:
    """``brier`` and the expected calibration error ``ece`` (the event-weighted mean of
    ``|fraction_signal - mean_predicted|`` over the bins of :func:`reliability_curve`)."""
    curve = reliability_curve(y_true, proba, sample_weight=sample_weight)
    gap = np.abs(curve["fraction_signal"] - curve["mean_predicted"])
    return {"brier": brier_score(y_true, proba, sample_weight),
            "ece": float(np.sum(gap * curve["events"]) / curve["events"].sum())}
