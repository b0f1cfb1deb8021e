"""What a classifier buys in significance: Asimov significance, binned significance, SIC.

A classifier's scores on labelled test events become the expected signal and background
counts of an analysis through :class:`Yields`: the expected numbers of signal events ``S``
and background events ``B`` before any cut on the score (defaults
:data:`DEFAULT_SIGNAL_YIELD` and :data:`DEFAULT_BACKGROUND_YIELD`; or luminosity times
cross-sections; or the sums of the test events' own weights). The test events only give
efficiencies: a cut keeping signal efficiency ``eps_S`` and background efficiency
``eps_B`` expects ``s = S eps_S`` and ``b = B eps_B`` events.

- ``z_asimov``: the best Asimov significance ``Z = sqrt(2 ((s + b) ln(1 + s/b) - s))``
  (Cowan et al., arXiv:1007.1727) over cuts ``score >= c``, ``z_asimov_cut`` the cut.
- ``z_binned``: the significance of the whole score histogram: per-bin Asimov
  significances summed in quadrature, with bins of equal test background count.
- ``sic``: the maximum significance improvement ``eps_S / sqrt(eps_B)`` over cuts.

Cuts (and bins) must keep at least ``min_background`` test background events (counted,
not weighted; default :data:`MIN_BACKGROUND_EVENTS`), so that the best cut is not a
fluctuation of a few events. With a sample weight per event, the efficiencies are weighted.
Intervals come from resampling the test events (the same resamples as
:func:`~hepfm.analysis.metrics.bootstrap_auc` for one seed: differences between score
vectors on the same events are paired).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from hepfm.analysis.metrics import CONFIDENCE, bootstrap_counts, percentile_interval
from hepfm.errors import ArgumentError, naming

#: Expected signal events before the score cut (default; S/sqrt(B) = 1 without a classifier).
DEFAULT_SIGNAL_YIELD = 100.0
#: Expected background events before the score cut (default).
DEFAULT_BACKGROUND_YIELD = 10_000.0
#: Test background events (a count, not a weight) that every cut and bin must keep.
MIN_BACKGROUND_EVENTS = 10
#: Bins of the score histogram of ``z_binned`` (fewer when the background is small).
DEFAULT_BINS = 10
#: Names of the significance metrics (each with ``_lo68``/``_hi68`` intervals).
METRICS = ("z_asimov", "z_binned", "sic")


@dataclass(frozen=True)
class Yields:
    """Expected signal and background events before the score cut; both None: the sums of
    the test events' weights (:meth:`from_weights`)."""

    signal: float | None = DEFAULT_SIGNAL_YIELD
    background: float | None = DEFAULT_BACKGROUND_YIELD

    def __post_init__(self) -> None:
        if (self.signal is None) != (self.background is None):
            raise ArgumentError("give both the signal and the background yield, or neither "
                                "(then the sample weights give them)")
        for what, v in (("signal yield", self.signal), ("background yield", self.background)):
            if v is not None and not (np.isfinite(v) and v > 0):
                raise ArgumentError(f"the {what} must be a positive number, got {v}")

    @classmethod
    def from_cross_sections(cls, luminosity: float, signal_xsec: float,
                            background_xsec: float) -> Yields:
        """``luminosity`` (fb^-1) times the cross-sections (fb) of the selected events."""
        return cls(luminosity * signal_xsec, luminosity * background_xsec)

    @classmethod
    def from_weights(cls) -> Yields:
        """The sums of the test events' sample weights, per class."""
        return cls(None, None)

    @property
    def weighted(self) -> bool:
        return self.signal is None

    def totals(self, y: np.ndarray, weight: np.ndarray) -> tuple[float, float]:
        """``(S, B)`` for test labels `y` and weights `weight`."""
        if self.signal is None or self.background is None:
            return float(weight[y == 1].sum()), float(weight[y == 0].sum())
        return self.signal, self.background

    def to_dict(self) -> dict[str, float | str]:
        return {"signal_yield": "sum of weights" if self.signal is None else self.signal,
                "background_yield": "sum of weights" if self.background is None
                else self.background}


def asimov_significance(s: ArrayLike, b: ArrayLike) -> np.ndarray:
    """``sqrt(2 ((s + b) ln(1 + s/b) - s))`` elementwise: NaN where ``b <= 0``, 0 at s = 0."""
    s = np.asarray(s, np.float64)
    b = np.asarray(b, np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        q = 2.0 * ((s + b) * np.log1p(s / b) - s)
    return np.where(b > 0, np.sqrt(np.maximum(q, 0.0)), np.nan)


def _inputs(y_true: ArrayLike, scores: ArrayLike, sample_weight: ArrayLike | None
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    y = np.asarray(y_true).ravel()
    s = np.atleast_2d(np.asarray(scores, np.float64))
    if s.shape[1] != y.size:
        raise ArgumentError(f"{y.size} labels but scores of shape {s.shape}")
    if not np.isin(np.unique(y), (0, 1)).all() or np.unique(y).size < 2:
        raise ArgumentError("significance needs labels 0 (background) and 1 (signal), both")
    w = np.ones(y.size) if sample_weight is None else np.asarray(sample_weight, np.float64)
    if w.shape != y.shape:
        raise ArgumentError(f"sample_weight has shape {w.shape}, expected {y.shape}")
    return (y == 1), s, w


def bin_edges(background_scores: np.ndarray, bins: int = DEFAULT_BINS,
              min_background: int = MIN_BACKGROUND_EVENTS) -> np.ndarray:
    """Inner bin edges with equal numbers of background events per bin (at most
    ``n_background // min_background`` bins); tied quantiles merge bins."""
    n_bins = max(1, min(bins, len(background_scores) // max(1, min_background)))
    q = np.quantile(background_scores, np.linspace(0, 1, n_bins + 1)[1:-1])
    return np.unique(q)


def _significances(sig: np.ndarray, s: np.ndarray, w: np.ndarray, counts: np.ndarray,
                   totals: tuple[float, float], edges: np.ndarray, min_background: int
                   ) -> dict[str, np.ndarray]:
    """Every metric of one score vector `s` for each row of resample `counts` [m, n]."""
    S, B = totals
    order = np.argsort(-s, kind="stable")  # highest score first: a cut keeps a prefix
    so = s[order]
    ends = np.flatnonzero(np.r_[so[1:] != so[:-1], True])  # last event of each tie group
    c = counts[:, order].astype(np.float64)
    ws, wb, nb = c * (w * sig)[order], c * (w * ~sig)[order], c * (~sig)[order]
    tot_s, tot_b = ws.sum(1, keepdims=True), wb.sum(1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        eff_s = np.cumsum(ws, 1)[:, ends] / tot_s
        eff_b = np.cumsum(wb, 1)[:, ends] / tot_b
        ok = (np.cumsum(nb, 1)[:, ends] >= min_background) & (eff_b > 0)
        z = np.where(ok, asimov_significance(S * eff_s, B * eff_b), -np.inf)
        sic = np.where(ok, eff_s / np.sqrt(eff_b), -np.inf)
    best = z.argmax(1)
    rows = np.arange(len(c))
    z_best, sic_best = z[rows, best], sic.max(1)
    cut = so[ends][best]
    # binned: events' bins from the fixed edges, per-bin signal and background shares
    k = np.searchsorted(edges, s, side="right")
    onehot = np.zeros((s.size, len(edges) + 1))
    onehot[np.arange(s.size), k] = 1.0
    c = c[:, np.argsort(order)]  # back to event order
    sb, bb = (c * (w * sig)) @ onehot, (c * (w * ~sig)) @ onehot
    with np.errstate(divide="ignore", invalid="ignore"):
        zb = asimov_significance(S * sb / sb.sum(1, keepdims=True),
                                 B * bb / bb.sum(1, keepdims=True))
    z_binned = np.sqrt(np.nansum(np.square(zb), 1))
    nan = ~np.isfinite(z_best)
    return {"z_asimov": np.where(nan, np.nan, z_best),
            "z_asimov_cut": np.where(nan, np.nan, cut),
            "z_binned": z_binned,
            "sic": np.where(np.isfinite(sic_best), sic_best, np.nan)}


def bootstrap_significance(y_true: ArrayLike, scores: ArrayLike,
                           sample_weight: ArrayLike | None = None, yields: Yields = Yields(),
                           n_boot: int = 1000, seed: int = 0, bins: int = DEFAULT_BINS,
                           min_background: int = MIN_BACKGROUND_EVENTS,
                           chunk: int = 2_000_000) -> dict[str, np.ndarray]:
    """Each metric of :data:`METRICS` for every score vector (rows of `scores` [k, n], or
    one vector) on `n_boot` resamples of the test events: ``{name: [n_boot, k]}``.

    The resamples are those of :func:`~hepfm.analysis.metrics.bootstrap_auc` with the same
    `seed`; the yields and the bin edges stay those of the full test set."""
    sig, s, w = _inputs(y_true, scores, sample_weight)
    totals = yields.totals(sig.astype(np.int64), w)
    counts = bootstrap_counts(sig.size, n_boot, seed)
    step = max(1, chunk // max(1, sig.size))
    out: dict[str, list[np.ndarray]] = {m: [] for m in METRICS}
    for row in s:
        edges = bin_edges(row[~sig], bins, min_background)
        parts = [_significances(sig, row, w, counts[i:i + step], totals, edges,
                                min_background) for i in range(0, n_boot, step)]
        for m in METRICS:
            out[m].append(np.concatenate([p[m] for p in parts]))
    return {m: np.stack(v, axis=1) for m, v in out.items()}


def significance_metrics(y_true: ArrayLike, scores: ArrayLike,
                         sample_weight: ArrayLike | None = None, yields: Yields = Yields(),
                         *, bins: int = DEFAULT_BINS,
                         min_background: int = MIN_BACKGROUND_EVENTS, n_boot: int = 1000,
                         seed: int = 0, suffix: str = "") -> dict[str, float]:
    """``z_asimov``, ``z_asimov_cut``, ``z_binned`` and ``sic`` of one score vector on the
    test events (weighted by `sample_weight` when given), each with its 68% test-bootstrap
    interval (``z_asimov_lo68``, ``z_asimov_hi68`` ...; none when `n_boot` is 0). `suffix`
    is appended to every name (e.g. ``_unweighted``)."""
    sig, s, w = _inputs(y_true, scores, sample_weight)
    if s.shape[0] != 1:
        raise ArgumentError("significance_metrics takes one score vector")
    totals = yields.totals(sig.astype(np.int64), w)
    edges = bin_edges(s[0][~sig], bins, min_background)
    nominal = _significances(sig, s[0], w, np.ones((1, sig.size), np.int32), totals, edges,
                             min_background)
    out = {f"{m}{suffix}": float(v[0]) for m, v in nominal.items()}
    if n_boot:
        tag = round(100 * CONFIDENCE)
        boot = bootstrap_significance(sig.astype(np.int64), s[0], w, yields, n_boot, seed,
                                      bins, min_background)
        for m in METRICS:
            lo, hi = percentile_interval(boot[m][:, 0])
            out[f"{m}{suffix}_lo{tag}"], out[f"{m}{suffix}_hi{tag}"] = float(lo), float(hi)
    return out


def significance_report(y_true: ArrayLike, scores: ArrayLike,
                        sample_weight: ArrayLike | None = None, yields: Yields | None = None,
                        n_boot: int = 1000, seed: int = 0,
                        min_background: int = MIN_BACKGROUND_EVENTS) -> dict[str, float | str]:
    """The significance metrics of a fine-tuning result: with `sample_weight`, weighted
    (plain names) and unweighted (``..._unweighted``, the same yields) with intervals, else
    unweighted; and the yields used (``signal_yield``, ``background_yield``)."""
    yields = yields or Yields()
    y = np.asarray(y_true).ravel()
    kw = {"n_boot": n_boot, "seed": seed, "min_background": min_background}
    if sample_weight is None:
        if yields.weighted:
            raise ArgumentError("the yields come from the sample weights, but the test "
                                "events carry none: give the signal and background yields")
        out: dict[str, float | str] = {**significance_metrics(y, scores, None, yields, **kw)}
        return {**out, **yields.to_dict()}
    w = np.asarray(sample_weight, np.float64)
    S, B = yields.totals((y == 1).astype(np.int64), w)
    fixed = Yields(S, B)
    out = {**significance_metrics(y, scores, w, fixed, **kw),
           **significance_metrics(y, scores, None, fixed, suffix="_unweighted", **kw)}
    return {**out, "signal_yield": S, "background_yield": B}


def yields_from_options(yields: str | None = None, luminosity: float | None = None,
                        xsec: str | None = None) -> Yields | None:
    """The yields of `yields` ``"S,B"`` (or ``"weights"``), or of `luminosity` (fb^-1) with
    `xsec` ``"SIG,BKG"`` (fb), as the ``hepfm`` options ``--yields``, ``--luminosity`` and
    ``--xsec`` give them; None when none is given (the defaults)."""
    settings = ("yields", "luminosity", "xsec")
    if yields is not None and (luminosity is not None or xsec is not None):
        raise naming(ArgumentError, "{yields}: give the yields, or {luminosity} with {xsec}, "
                     "not both", *settings)
    if yields is not None:
        if yields.strip() == "weights":
            return Yields.from_weights()
        return Yields(*_pair(yields, "yields"))
    if (luminosity is None) != (xsec is None):
        raise naming(ArgumentError, "{luminosity} and {xsec=SIG,BKG} go together", *settings)
    if luminosity is None or xsec is None:
        return None
    return Yields.from_cross_sections(luminosity, *_pair(xsec, "xsec"))


def _pair(text: str, setting: str) -> tuple[float, float]:
    parts = text.split(",")
    try:
        a, b = (float(p) for p in parts)
    except ValueError:
        raise naming(ArgumentError, f"{{setting}}: expected two numbers SIGNAL,BACKGROUND, "
                     f"got '{text}'", setting) from None
    return a, b
