"""Figures for runs and analyses: ROC, confusion matrix, learning curve, CKA.

Every function draws on a standalone matplotlib ``Figure`` (Agg canvas, no pyplot state, safe
in scripts, notebooks and worker processes), writes a PNG atomically (temporary file in the
same directory, then ``os.replace``) and returns the path.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from hepfm.atomic import atomic_path
from hepfm.errors import ArgumentError

DPI = 150


def _figure(width: float = 6.0, height: float = 4.5) -> Figure:
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig: Figure, path: str | os.PathLike[str]) -> Path:
    """Write ``fig`` as PNG to ``path`` atomically; create the parent directory."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=DPI)
    return Path(path)


def _finish(fig: Figure, ax: Axes, path: str | os.PathLike[str], title: str | None) -> Path:
    """Grid, legend and title of a line plot, then write it."""
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(frameon=False)
    if title:
        ax.set_title(title)
    return save_figure(fig, path)


def plot_roc(
    curves: Mapping[str, pd.DataFrame] | pd.DataFrame,
    path: str | os.PathLike[str],
    title: str | None = None,
) -> Path:
    """Background rejection (log) against signal efficiency, one line per labelled curve.

    ``curves`` are frames from :func:`hepfm.analysis.metrics.roc_curve_frame` (a single frame
    or ``{label: frame}``). A dotted line marks a random classifier (rejection = 1 / eff).
    """
    if isinstance(curves, pd.DataFrame):
        curves = {"": curves}
    fig = _figure()
    ax = fig.add_subplot()
    top = 1.0
    for label, roc in curves.items():
        keep = (roc["fpr"] > 0) & (roc["tpr"] > 0)
        eff, rej = roc["tpr"][keep], roc["background_rejection"][keep]
        if len(rej):
            top = max(top, float(rej.max()))
        ax.plot(eff, rej, label=label or None, lw=1.8)
    e = np.linspace(0.01, 1.0, 200)
    ax.plot(e, 1.0 / e, ls=":", color="grey", label="random")
    ax.set_yscale("log")
    ax.set_xlim(0.0, 1.0)
    ax.set_ylim(1.0, top * 2.0)
    ax.set_xlabel("signal efficiency")
    ax.set_ylabel("background rejection 1 / $\\varepsilon_B$")
    return _finish(fig, ax, path, title)


def plot_confusion(
    matrix: pd.DataFrame, path: str | os.PathLike[str], title: str | None = None
) -> Path:
    """Heatmap of a confusion matrix frame (rows true, columns predicted), values written in.

    Fractions (normalised rows) are shown with two decimals, counts as integers.
    """
    values = matrix.to_numpy(dtype=np.float64)
    normalised = not all(np.issubdtype(t, np.integer) for t in matrix.dtypes)
    n_rows, n_cols = values.shape
    size = max(4.5, 0.55 * max(n_rows, n_cols) + 2.0)
    fig = _figure(size + 1.0, size)
    ax = fig.add_subplot()
    im = ax.imshow(values, cmap="Blues", vmin=0.0, vmax=1.0 if normalised else None)
    fig.colorbar(im, ax=ax, shrink=0.8, label="fraction of true class" if normalised
                 else "events")
    ax.set_xticks(range(n_cols), [str(c) for c in matrix.columns], rotation=45, ha="right")
    ax.set_yticks(range(n_rows), [str(r) for r in matrix.index])
    ax.set_xlabel(str(matrix.columns.name or "predicted"))
    ax.set_ylabel(str(matrix.index.name or "true"))
    hi = np.nanmax(values, initial=0.0)
    for i in range(n_rows):
        for j in range(n_cols):
            v = values[i, j]
            if np.isnan(v):
                continue
            text = f"{v:.2f}" if normalised else f"{int(v)}"
            ax.text(j, i, text, ha="center", va="center", fontsize=7,
                    color="white" if v > 0.6 * hi else "black")
    if title:
        ax.set_title(title)
    return save_figure(fig, path)


def plot_learning_curve(
    results: pd.DataFrame,
    path: str | os.PathLike[str],
    metric: str = "auc",
    mode_col: str = "mode",
    size_col: str = "train_size",
    title: str | None = None,
) -> Path:
    """Metric against training size (log x), one line per mode with a mean +- std band.

    ``results`` has one row per run: ``mode`` (e.g. scratch / finetune / frozen),
    ``train_size``, the metric, and any other columns (seeds are averaged over).
    """
    missing = {metric, mode_col, size_col} - set(results.columns)
    if missing:
        raise ArgumentError(f"learning-curve table lacks columns {sorted(missing)}")
    fig = _figure()
    ax = fig.add_subplot()
    # the same order (so the same colour) for a curve in every plot: scratch, bdt, the rest
    first = {"scratch": 0, "bdt": 1}
    order = sorted(results[mode_col].unique(), key=lambda m: (first.get(m, 2), str(m)))
    for mode in order:
        group = results[results[mode_col] == mode]
        stats = group.groupby(size_col)[metric].agg(["mean", "std", "count"]).sort_index()
        std = stats["std"].fillna(0.0)
        x = stats.index.to_numpy(dtype=np.float64)
        (line,) = ax.plot(x, stats["mean"], marker="o", ms=4, label=str(mode))
        ax.fill_between(x, stats["mean"] - std, stats["mean"] + std,
                        color=line.get_color(), alpha=0.2, lw=0)
    ax.set_xscale("log")
    ax.set_xlabel("training events")
    ax.set_ylabel(metric.upper() if metric == "auc" else metric)
    return _finish(fig, ax, path, title)


def plot_learning_summary(
    summary: pd.DataFrame,
    path: str | os.PathLike[str],
    title: str | None = None,
    confidence: int = 68,
) -> Path:
    """Mean AUC over seeds against training size (log x), one line per ``curve``: a shaded
    band for the test-set bootstrap interval (``auc_lo68``/``auc_hi68``) and error bars
    for the seed standard deviation (``auc_std``).

    ``summary`` is the table of :func:`hepfm.training.scan.summarise` for one task.
    """
    lo, hi = f"auc_lo{confidence}", f"auc_hi{confidence}"
    missing = {"curve", "train_size", "auc_mean", "auc_std"} - set(summary.columns)
    if missing:
        raise ArgumentError(f"learning-curve summary lacks columns {sorted(missing)}")
    fig = _figure()
    ax = fig.add_subplot()
    first = {"scratch": 0, "bdt": 1}
    for curve in sorted(summary["curve"].unique(), key=lambda c: (first.get(c, 2), str(c))):
        g = summary[summary["curve"] == curve].sort_values("train_size")
        x = g["train_size"].to_numpy(dtype=np.float64)
        line = ax.errorbar(x, g["auc_mean"], yerr=g["auc_std"].fillna(0.0), marker="o", ms=4,
                           capsize=3, label=str(curve), ls="--" if curve == "bdt" else "-")
        if lo in g and g[lo].notna().all():
            ax.fill_between(x, g[lo], g[hi], color=line.lines[0].get_color(), alpha=0.2, lw=0)
    ax.set_xscale("log")
    ax.set_xlabel("training events")
    ax.set_ylabel("AUC (mean over seeds)")
    ax.text(0.99, 0.01, f"bars: seed std; bands: {confidence}% test bootstrap",
            transform=ax.transAxes, ha="right", va="bottom", fontsize=7, color="grey")
    return _finish(fig, ax, path, title)


def plot_cka_heatmap(
    matrix: pd.DataFrame,
    path: str | os.PathLike[str],
    title: str | None = None,
    label_a: str | None = None,
    label_b: str | None = None,
) -> Path:
    """CKA matrix heatmap (rows: stages of A, columns: stages of B), values written in."""
    values = matrix.to_numpy(dtype=np.float64)
    n_rows, n_cols = values.shape
    fig = _figure(0.6 * n_cols + 3.5, 0.5 * n_rows + 2.5)
    ax = fig.add_subplot()
    im = ax.imshow(values, cmap="magma", vmin=0.0, vmax=1.0, origin="lower")
    fig.colorbar(im, ax=ax, shrink=0.8, label="CKA")
    ax.set_xticks(range(n_cols), [str(c) for c in matrix.columns], rotation=45, ha="right")
    ax.set_yticks(range(n_rows), [str(r) for r in matrix.index])
    ax.set_xlabel(label_b or str(matrix.columns.name or "B"))
    ax.set_ylabel(label_a or str(matrix.index.name or "A"))
    for i in range(n_rows):
        for j in range(n_cols):
            v = values[i, j]
            if not np.isnan(v):
                ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7,
                        color="black" if v > 0.6 else "white")
    if title:
        ax.set_title(title)
    return save_figure(fig, path)


def plot_cka_diagonal(
    values: pd.DataFrame | pd.Series,
    path: str | os.PathLike[str],
    spread: pd.DataFrame | pd.Series | None = None,
    title: str | None = None,
) -> Path:
    """Same-stage CKA along the network: one line per column, optional +- ``spread`` band.

    ``values``: index = stage names (in network order), columns = comparisons (e.g.
    ``scratch vs scratch``). ``spread`` has the same shape (e.g. the std over pairs).
    """
    if isinstance(values, pd.Series):
        values = values.to_frame(values.name or "CKA")
    if isinstance(spread, pd.Series):
        spread = spread.to_frame(values.columns[0])
    fig = _figure(max(5.0, 0.7 * len(values) + 2.0), 4.0)
    ax = fig.add_subplot()
    x = np.arange(len(values))
    for col in values.columns:
        y = values[col].to_numpy(dtype=np.float64)
        (line,) = ax.plot(x, y, marker="o", label=str(col))
        if spread is not None and col in spread.columns:
            s = spread[col].reindex(values.index).fillna(0.0).to_numpy(dtype=np.float64)
            ax.fill_between(x, y - s, y + s, color=line.get_color(), alpha=0.2, lw=0)
    ax.set_xticks(x, [str(s) for s in values.index], rotation=45, ha="right")
    ax.set_ylim(0.0, 1.05)
    ax.set_ylabel("CKA (same stage)")
    ax.grid(True, alpha=0.3)
    if len(values.columns) > 1 or str(values.columns[0]) != "CKA":
        ax.legend(frameon=False)
    if title:
        ax.set_title(title)
    return save_figure(fig, path)


def plot_reliability(curves: Mapping[str, pd.DataFrame] | pd.DataFrame,
                     path: str | os.PathLike[str], title: str | None = None) -> Path:
    """Observed signal fraction against mean predicted probability per bin (frames of
    :func:`hepfm.analysis.calibration.reliability_curve`); the diagonal is calibrated."""
    if isinstance(curves, pd.DataFrame):
        curves = {"": curves}
    fig = _figure()
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1], ls=":", color="grey", label="calibrated")
    for label, curve in curves.items():
        ax.plot(curve["mean_predicted"], curve["fraction_signal"], marker="o", lw=1.5,
                label=label or None)
    ax.set_xlim(0.0, 1.0)
    ax.set_ylim(0.0, 1.0)
    ax.set_xlabel("mean predicted signal probability")
    ax.set_ylabel("fraction of signal events")
    return _finish(fig, ax, path, title)
