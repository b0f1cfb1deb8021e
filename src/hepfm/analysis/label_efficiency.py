"""Label efficiency as a number: how many scratch training events a fine-tuned AUC is worth.

The scratch learning curve (AUC against training size) is made monotone (isotonic
regression: noise may make a larger sample score lower, labels never hurt on average) and
read as piecewise linear in log(size). :func:`matching_size` inverts it at an AUC: the
smallest training size at which the curve reaches it, ``inf`` above the curve's largest size
and ``0`` below its smallest. :func:`label_efficiency` adds the interval: the same inversion on
every test-set bootstrap resample of the fine-tuned AUC and of the scratch curve (paired:
the same resampled test events for both), and its central percentile interval.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from sklearn.isotonic import isotonic_regression

from hepfm.analysis.metrics import CONFIDENCE
from hepfm.errors import ArgumentError


def matching_size(sizes: ArrayLike, aucs: ArrayLike, target: float) -> float:
    """The training size at which the monotone, log-linear curve `aucs` (at `sizes`)
    reaches `target`: ``math.inf`` when the curve never does, ``0.0`` when it starts above,
    NaN when an input is NaN."""
    x = np.asarray(sizes, dtype=np.float64)
    y = np.asarray(aucs, dtype=np.float64)
    if x.ndim != 1 or x.shape != y.shape or not len(x):
        raise ArgumentError(f"sizes {x.shape} and aucs {y.shape}: one AUC per size expected")
    if np.any(np.diff(x) <= 0) or x[0] <= 0:
        raise ArgumentError(f"sizes must be positive and increasing, got {x.tolist()}")
    if np.isnan(y).any() or math.isnan(target):
        return math.nan
    curve = isotonic_regression(y, increasing=True)
    reached = np.flatnonzero(curve >= target)
    if not len(reached):
        return math.inf
    j = int(reached[0])
    if j == 0:
        return float(x[0]) if target == curve[0] else 0.0
    lo, hi = np.log(x[j - 1]), np.log(x[j])
    frac = (target - curve[j - 1]) / (curve[j] - curve[j - 1])
    return float(np.exp(lo + frac * (hi - lo)))


@dataclass(frozen=True)
class LabelEfficiency:
    """Scratch training events matched (``size``) with its interval (``lo``, ``hi``; NaN
    without resamples); ``inf`` is more than ``largest``, ``0`` fewer than ``smallest``."""

    size: float
    lo: float
    hi: float
    smallest: int
    largest: int

    def _words(self, value: float) -> str:
        if math.isnan(value):
            return "?"
        if value == math.inf:
            return f"more than {self.largest:,}"
        if value < self.smallest:
            return f"fewer than {self.smallest:,}"
        return f"{value:,.0f}"

    def describe(self) -> str:
        """``"4,300 [2,900, 6,100]"``, ``"more than 10,000"``, ``"fewer than 300"``..."""
        interval = ("" if math.isnan(self.lo) or math.isnan(self.hi)
                    else f" [{self._words(self.lo)}, {self._words(self.hi)}]")
        return self._words(self.size) + interval


def label_efficiency(sizes: ArrayLike, curve: ArrayLike, target: float,
                     curve_boot: ArrayLike | None = None,
                     target_boot: ArrayLike | None = None,
                     confidence: float = CONFIDENCE) -> LabelEfficiency:
    """How many scratch training events (curve `curve` at `sizes`) the AUC `target` matches.

    With `curve_boot` ([resamples, sizes]) and `target_boot` ([resamples]), AUCs on the
    same bootstrap resamples of the test events, the interval is the central `confidence`
    percentile interval of the per-resample matches (bounds are resampled values, never
    interpolated, so that ``inf`` and ``0`` stay what they are).
    """
    x = np.asarray(sizes, dtype=np.float64)
    size = matching_size(x, curve, target)
    lo = hi = math.nan
    if curve_boot is not None and target_boot is not None:
        cb = np.asarray(curve_boot, dtype=np.float64)
        tb = np.asarray(target_boot, dtype=np.float64)
        if cb.ndim != 2 or cb.shape != (len(tb), len(x)):
            raise ArgumentError(f"curve_boot {cb.shape}: expected [resamples={len(tb)}, "
                                f"sizes={len(x)}]")
        matched = np.array([matching_size(x, c, float(t)) for c, t in zip(cb, tb, strict=True)])
        matched = matched[~np.isnan(matched)]
        if len(matched):
            tail = 50 * (1 - confidence)
            lo = float(np.percentile(matched, tail, method="lower"))
            hi = float(np.percentile(matched, 100 - tail, method="higher"))
    return LabelEfficiency(size, lo, hi, int(x[0]), int(x[-1]))
