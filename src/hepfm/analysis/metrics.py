"""Classification metrics from scores, shared by pretraining and fine-tuning.

Thin wrappers over scikit-learn that return plain floats and pandas objects, plus the
physicist's figure of merit: background rejection ``1 / FPR`` at a fixed signal efficiency
(true positive rate), read off the ROC curve by linear interpolation between its points.
A rejection is ``inf`` when no background passes at that efficiency.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from sklearn import metrics as skm

from hepfm.errors import ArgumentError

DEFAULT_EFFICIENCIES: tuple[float, ...] = (0.5, 0.7)


def _binary_inputs(y_true: ArrayLike, scores: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y_true).ravel()
    s = np.asarray(scores, dtype=np.float64).ravel()
    if y.shape != s.shape:
        raise ArgumentError(f"y_true has {y.size} entries but scores has {s.size}")
    if y.size == 0:
        raise ArgumentError("no events: y_true and scores are empty")
    classes = np.unique(y)
    if not np.isin(classes, (0, 1)).all():
        raise ArgumentError(f"binary labels must be 0 (background) or 1 (signal), got {classes}")
    if classes.size < 2:
        raise ArgumentError("both signal (1) and background (0) events are needed for a ROC curve")
    return y.astype(np.int64), s


def roc_curve_frame(
    y_true: ArrayLike, scores: ArrayLike, sample_weight: ArrayLike | None = None
) -> pd.DataFrame:
    """The full ROC curve (no points dropped) as a DataFrame.

    Columns: ``threshold``, ``fpr``, ``tpr``, ``signal_efficiency`` (= tpr) and
    ``background_rejection`` (= 1 / fpr, ``inf`` where fpr = 0). Rows go from the strictest
    threshold to the loosest, so fpr and tpr never decrease.
    """
    y, s = _binary_inputs(y_true, scores)
    fpr, tpr, thr = skm.roc_curve(y, s, sample_weight=sample_weight, drop_intermediate=False)
    with np.errstate(divide="ignore"):
        rejection = np.where(fpr > 0, 1.0 / np.where(fpr > 0, fpr, 1.0), np.inf)
    return pd.DataFrame(
        {
            "threshold": thr,
            "fpr": fpr,
            "tpr": tpr,
            "signal_efficiency": tpr,
            "background_rejection": rejection,
        }
    )


def _fpr_at_tpr(fpr: np.ndarray, tpr: np.ndarray, efficiency: float) -> float:
    """Smallest false-positive rate reaching ``efficiency`` on the piecewise-linear ROC."""
    if not 0.0 < efficiency <= 1.0:
        raise ArgumentError(f"signal efficiency must be in (0, 1], got {efficiency}")
    i = int(np.searchsorted(tpr, efficiency, side="left"))  # first point with tpr >= eff
    if i >= tpr.size:  # floating-point slack at efficiency 1
        return float(fpr[-1])
    if i == 0 or tpr[i] == efficiency:
        return float(fpr[i])
    t0, t1, f0, f1 = tpr[i - 1], tpr[i], fpr[i - 1], fpr[i]
    return float(f0 + (efficiency - t0) * (f1 - f0) / (t1 - t0))


def _rejection(fpr: float) -> float:
    """``1 / fpr``, ``inf`` when no background passes."""
    return float("inf") if fpr <= 0.0 else 1.0 / fpr


def background_rejection(
    y_true: ArrayLike,
    scores: ArrayLike,
    signal_efficiency: float = 0.5,
    sample_weight: ArrayLike | None = None,
) -> float:
    """Background rejection ``1 / FPR`` at a signal efficiency; ``inf`` if FPR is 0 there."""
    roc = roc_curve_frame(y_true, scores, sample_weight)
    return _rejection(_fpr_at_tpr(roc["fpr"].to_numpy(), roc["tpr"].to_numpy(),
                                  signal_efficiency))


def binary_metrics(
    y_true: ArrayLike,
    scores: ArrayLike,
    threshold: float = 0.5,
    efficiencies: Sequence[float] = DEFAULT_EFFICIENCIES,
    sample_weight: ArrayLike | None = None,
) -> dict[str, float]:
    """AUC, accuracy at ``threshold`` and rejection at each signal efficiency.

    ``scores`` are signal probabilities (use ``threshold=0.0`` for logits). Keys: ``auc``,
    ``accuracy``, ``rejection_50``, ``rejection_70`` (one per efficiency, in percent).
    """
    y, s = _binary_inputs(y_true, scores)
    out = {
        "auc": float(skm.roc_auc_score(y, s, sample_weight=sample_weight)),
        "accuracy": float(
            skm.accuracy_score(y, (s > threshold).astype(np.int64), sample_weight=sample_weight)
        ),
    }
    roc = roc_curve_frame(y, s, sample_weight)
    fpr, tpr = roc["fpr"].to_numpy(), roc["tpr"].to_numpy()
    for eff in efficiencies:
        out[f"rejection_{round(100 * eff)}"] = _rejection(_fpr_at_tpr(fpr, tpr, eff))
    return out


def _multiclass_inputs(y_true: ArrayLike, scores: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y_true).ravel().astype(np.int64)
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim != 2 or s.shape[0] != y.size:
        raise ArgumentError(f"scores must have shape [n_events, n_classes], got {s.shape} "
                            f"for {y.size} labels")
    if y.size and (y.min() < 0 or y.max() >= s.shape[1]):
        raise ArgumentError(f"labels must lie in [0, {s.shape[1]}), got [{y.min()}, {y.max()}]")
    return y, s


def _names(n: int, class_names: Sequence[str] | None) -> list[str]:
    if class_names is None:
        return [str(i) for i in range(n)]
    if len(class_names) != n:
        raise ArgumentError(f"{len(class_names)} class names for {n} classes")
    return list(class_names)


def per_class_accuracy(
    y_true: ArrayLike, scores: ArrayLike, class_names: Sequence[str] | None = None
) -> pd.Series:
    """Fraction of each true class predicted correctly (recall), argmax of ``scores``."""
    y, s = _multiclass_inputs(y_true, scores)
    labels = np.arange(s.shape[1])
    recall = skm.recall_score(y, s.argmax(1), labels=labels, average=None, zero_division=np.nan)
    return pd.Series(recall, index=_names(s.shape[1], class_names), name="accuracy")


def macro_auc(y_true: ArrayLike, scores: ArrayLike) -> float:
    """Macro-averaged one-vs-rest AUC over the classes present in ``y_true``.

    ``scores`` are per-class scores [n_events, n_classes]; rows need not sum to one.
    """
    y, s = _multiclass_inputs(y_true, scores)
    present = np.unique(y)
    if present.size < 2:
        raise ArgumentError("macro AUC needs events of at least two classes")
    aucs = [skm.roc_auc_score(y == c, s[:, c]) for c in present]
    return float(np.mean(aucs))


def multilabel_aucs(y_multi: ArrayLike, scores: ArrayLike, names: Sequence[str]
                    ) -> dict[str, float]:
    """AUC of each label (column) that has both positive and negative events, by name."""
    y, s = np.asarray(y_multi), np.asarray(scores, dtype=np.float64)
    return {name: float(skm.roc_auc_score(y[:, k], s[:, k])) for k, name in enumerate(names)
            if 0 < y[:, k].sum() < len(y)}


def confusion_frame(
    y_true: ArrayLike,
    scores: ArrayLike,
    class_names: Sequence[str] | None = None,
    normalize: bool = True,
) -> pd.DataFrame:
    """Confusion matrix as a DataFrame: rows = true class, columns = predicted class.

    ``normalize=True`` divides each row by its count (rows of absent classes are NaN);
    ``False`` gives event counts.
    """
    y, s = _multiclass_inputs(y_true, scores)
    n = s.shape[1]
    cm = skm.confusion_matrix(y, s.argmax(1), labels=np.arange(n)).astype(np.float64)
    if normalize:
        totals = cm.sum(axis=1, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            cm = np.where(totals > 0, cm / np.where(totals > 0, totals, 1.0), np.nan)
    else:
        cm = cm.astype(np.int64)
    names = _names(n, class_names)
    frame = pd.DataFrame(cm, index=pd.Index(names, name="true"),
                         columns=pd.Index(names, name="predicted"))
    return frame


def multiclass_metrics(
    y_true: ArrayLike, scores: ArrayLike, class_names: Sequence[str] | None = None
) -> dict[str, float]:
    """Overall accuracy, macro one-vs-rest AUC and ``accuracy/<class>`` for each class.

    ``macro_auc`` is NaN when fewer than two classes have events; so is the accuracy of a
    class without events.
    """
    y, s = _multiclass_inputs(y_true, scores)
    auc = macro_auc(y, s) if np.unique(y).size > 1 else float("nan")
    out = {"accuracy": float(skm.accuracy_score(y, s.argmax(1))), "macro_auc": auc}
    for name, acc in per_class_accuracy(y, s, class_names).items():
        out[f"accuracy/{name}"] = float(acc)
    return out


# --- bootstrap over test events ---------------------------------------------------------

#: Confidence level of the bootstrap intervals: the central 68% (16th to 84th percentile).
CONFIDENCE = 0.68


def rank_auc(y_true: ArrayLike, scores: ArrayLike, weights: ArrayLike | None = None
             ) -> np.ndarray:
    """AUC by ranks (the Mann-Whitney statistic, ties count one half), vectorised.

    `scores` is one score vector [n] or one per row [k, n]; `weights` are event weights [n]
    or one weight vector per row [m, n] (e.g. bootstrap counts times event weights). Returns
    a float (1-D inputs) or an array [m, k] (NaN where a row has no signal or no background).
    Equals ``sklearn.metrics.roc_auc_score(y, s, sample_weight=w)``.
    """
    y = np.asarray(y_true).ravel() == 1
    s = np.asarray(scores, dtype=np.float64)
    single = s.ndim == 1 and (weights is None or np.ndim(weights) == 1)
    s = np.atleast_2d(s)
    w = np.ones((1, y.size)) if weights is None else np.atleast_2d(
        np.asarray(weights, dtype=np.float64))
    if s.shape[1] != y.size or w.shape[1] != y.size:
        raise ArgumentError(f"{y.size} labels but scores {s.shape} and weights {w.shape}")
    n_pos = w @ y.astype(np.float64)
    n_neg = w.sum(1) - n_pos
    out = np.empty((w.shape[0], s.shape[0]))
    for k, row in enumerate(s):
        order = np.argsort(row, kind="stable")
        sorted_s, yo = row[order], y[order]
        wo = np.take(w, order, axis=1)
        starts = np.flatnonzero(np.r_[True, sorted_s[1:] != sorted_s[:-1]])  # tie groups
        if len(starts) == y.size:  # no ties: every event is its own group
            q = wo * ~yo
            below = np.cumsum(q, axis=1)
            below -= q
            below *= yo
            out[:, k] = np.einsum("ij,ij->i", wo, below)
            continue
        p = np.add.reduceat(wo * yo, starts, axis=1)
        q = np.add.reduceat(wo * ~yo, starts, axis=1)
        below = np.cumsum(q, axis=1) - q  # background weight strictly below each group
        out[:, k] = (p * (below + 0.5 * q)).sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        out /= (n_pos * n_neg)[:, None]
    out[(n_pos <= 0) | (n_neg <= 0)] = np.nan
    return float(out[0, 0]) if single else out


def bootstrap_counts(n: int, n_boot: int, seed: int = 0) -> np.ndarray:
    """How often each of `n` events is drawn in each of `n_boot` resamples with replacement
    (int32 [n_boot, n], rows summing to n); the same seed gives the same resamples."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(n_boot, n)) + n * np.arange(n_boot)[:, None]
    return np.bincount(idx.ravel(), minlength=n_boot * n).reshape(n_boot, n).astype(np.int32)


def bootstrap_auc(y_true: ArrayLike, scores: ArrayLike, sample_weight: ArrayLike | None = None,
                  n_boot: int = 1000, seed: int = 0, chunk: int = 2_000_000) -> np.ndarray:
    """AUC of every score vector on `n_boot` resamples of the test events: [n_boot, k].

    All score vectors (rows of `scores` [k, n], or one vector [n] giving [n_boot, 1]) are
    evaluated on the same resamples, so differences between them are paired. Resamples are
    drawn in blocks of about `chunk` entries (memory), always the same for one seed.
    """
    y = np.asarray(y_true).ravel()
    s = np.atleast_2d(np.asarray(scores, dtype=np.float64))
    w = np.ones(y.size) if sample_weight is None else np.asarray(sample_weight, np.float64)
    counts = bootstrap_counts(y.size, n_boot, seed)
    step = max(1, chunk // max(1, y.size))
    return np.concatenate([rank_auc(y, s, counts[i:i + step] * w)
                           for i in range(0, n_boot, step)])


def bootstrap_multiclass(y_true: ArrayLike, scores: ArrayLike, n_boot: int = 1000,
                         seed: int = 0, chunk: int = 2_000_000) -> dict[str, np.ndarray]:
    """Accuracy and macro one-vs-rest AUC (as :func:`multiclass_metrics`) on `n_boot`
    resamples of the test events: ``{"accuracy": [n_boot], "macro_auc": [n_boot]}``."""
    y, s = _multiclass_inputs(y_true, scores)
    counts = bootstrap_counts(y.size, n_boot, seed)
    correct = (s.argmax(1) == y).astype(np.float64)
    present = np.unique(y)
    step = max(1, chunk // max(1, y.size))
    aucs = np.concatenate([
        np.stack([rank_auc(y == c, s[:, c], counts[i:i + step])[:, 0] for c in present], 1)
        for i in range(0, n_boot, step)])
    with np.errstate(invalid="ignore"):  # a resample without one class: NaN for it
        macro = np.nanmean(aucs, axis=1)
    return {"accuracy": counts @ correct / y.size, "macro_auc": macro}


def percentile_interval(values: ArrayLike, confidence: float = CONFIDENCE,
                        axis: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Central percentile interval of bootstrap `values` along `axis` (NaNs ignored)."""
    if not 0 < confidence < 1:
        raise ArgumentError(f"confidence must be in (0, 1), got {confidence}")
    tail = 50 * (1 - confidence)
    lo, hi = np.nanpercentile(np.asarray(values, np.float64), [tail, 100 - tail], axis=axis)
    return lo, hi
