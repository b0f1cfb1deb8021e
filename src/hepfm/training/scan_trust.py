"""Significance and systematic shifts of a scan's runs, from their stored test scores.

A scan stores every run's signal scores on its task's test events (``scores/<task>/
<run_id>.npy``) and, for each systematic variation it was asked for, the scores of the same
trained model on the varied test events (``scores/<task>/<run_id>@<variation>.npy``; the same
events in the same order, see :mod:`hepfm.data.variations`). From these alone:

- :func:`significance_summary`: per task, curve and training size, the mean over seeds of
  ``z_asimov``, ``z_binned`` and ``sic`` (:mod:`hepfm.analysis.significance`) and the
  test-bootstrap interval of that mean (columns added to ``summary.csv``);
- :func:`variation_summary`: per task, curve, size and variation, the mean shift (varied
  minus nominal) of AUC and of each significance, with paired bootstrap intervals (the same
  resampled events for nominal and varied scores): ``variations.csv``;
- :func:`sample_summary`: the same shifts on another test sample of the task (other events,
  for example generated with another parton shower: ``scores/<task>/<run_id>@sample=<label>
  .npy``, its labels in ``test-<test_id>.npz``, the run record naming that test id), with
  intervals from resampling both test samples: ``test_samples.csv``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hepfm.analysis.metrics import CONFIDENCE, bootstrap_auc, percentile_interval, rank_auc
from hepfm.analysis.significance import (
    METRICS,
    Yields,
    bootstrap_significance,
    significance_metrics,
)

#: Separator between a run id and a variation label in a score file's name.
SEP = "@"

#: Prefix of the label of another test sample (``sample:<name>``) among a run's score files.
SAMPLE = "sample:"


def varied_score_path(scores_dir: Path, task: str, rid: str, label: str) -> Path:
    """Where the scores of run `rid` on test events with variation `label` are stored."""
    return scores_dir / task / f"{rid}{SEP}{label.replace(':', '=')}.npy"


def stored_variations(scores_dir: Path, task: str, rid: str) -> list[str]:
    """Labels of the variations run `rid` was scored on (not its other test samples)."""
    labels = (p.stem.split(SEP, 1)[1].replace("=", ":")
              for p in (scores_dir / task).glob(f"{rid}{SEP}*.npy"))
    return sorted(label for label in labels if not label.startswith(SAMPLE))


def has_sample_scores(record: Mapping[str, Any], scores: Path, task: str, rid: str,
                      samples: Mapping[str, str]) -> bool:
    """Whether run `rid` (its stored `record`) has its scores in the directory `scores` on
    each test sample of `samples` ({name: test id}), scored on exactly those events."""
    known = record.get("test_samples") or {}
    return all(known.get(name) == test_id and varied_score_path(
        scores, task, rid, SAMPLE + name).is_file() for name, test_id in samples.items())


def _yields(yields: Yields, y: np.ndarray, w: np.ndarray) -> Yields:
    return Yields(*yields.totals(y, w)) if yields.weighted else yields


def _interval(values: np.ndarray | None, prefix: str) -> dict[str, float]:
    tag = round(100 * CONFIDENCE)
    if values is None:
        return {f"{prefix}_lo{tag}": np.nan, f"{prefix}_hi{tag}": np.nan}
    lo, hi = percentile_interval(values)
    return {f"{prefix}_lo{tag}": float(lo), f"{prefix}_hi{tag}": float(hi)}


def significance_summary(frame: pd.DataFrame, store: Any, yields: Yields | None = None,
                         n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Columns ``z_asimov_mean``, ``z_asimov_lo68``, ``z_asimov_hi68`` (and the same for
    ``z_binned`` and ``sic``) per task, curve and training size, from the stored scores of
    the runs of `frame` (scan rows with a ``curve`` column:
    :func:`~hepfm.training.scan.curve_label`)."""
    yields = yields or Yields()
    f = frame
    rows = []
    for (task, curve, size), g in f.groupby(["task", "curve", "train_size"], sort=True):
        row: dict[str, Any] = {"task": task, "curve": curve, "train_size": size}
        ids = [r for r in g["run_id"] if store.score_path(str(task), r).is_file()]
        test = store.load_test(str(task), str(g["test_id"].iloc[0])) \
            if g["test_id"].nunique() == 1 else None
        if not ids or test is None:
            rows.append(row)
            continue
        y, w = test
        weighted = None if np.all(w == 1) else w
        ys = _yields(yields, y, w)
        scores = store.load_scores(str(task), ids)
        values = [significance_metrics(y, s, weighted, ys, n_boot=0) for s in scores]
        boot = bootstrap_significance(y, scores, weighted, ys, n_boot, seed) if n_boot \
            else None
        for m in METRICS:
            row[f"{m}_mean"] = float(np.nanmean([v[m] for v in values]))
            row.update(_interval(None if boot is None else boot[m].mean(1), m))
        rows.append(row)
    return pd.DataFrame(rows)


def variation_summary(frame: pd.DataFrame, store: Any, yields: Yields | None = None,
                      n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Per task, curve, size and variation: the mean over seeds of the AUC and significance
    shifts (varied minus nominal, ``auc_shift_mean`` ...) with paired 68% bootstrap
    intervals of that mean (``auc_shift_lo68`` ...); empty without varied scores. `frame`
    as for :func:`significance_summary`."""
    yields = yields or Yields()
    f = frame
    rows = []
    for (task, curve, size), g in f.groupby(["task", "curve", "train_size"], sort=True):
        if g["test_id"].nunique() != 1:
            continue
        test = store.load_test(str(task), str(g["test_id"].iloc[0]))
        if test is None:
            continue
        y, w = test
        weighted = None if np.all(w == 1) else w
        ys = _yields(yields, y, w)
        labels = sorted(set.intersection(*[set(stored_variations(store.scores, str(task), r))
                                           for r in g["run_id"]]))
        if not labels:
            continue
        nominal = store.load_scores(str(task), g["run_id"])  # once for every variation
        k = len(nominal)
        for label in labels:
            varied = store.load_scores(str(task), g["run_id"], label)
            row: dict[str, Any] = {"task": task, "curve": curve, "train_size": size,
                                   "variation": label, "seeds": k}
            both = np.concatenate([nominal, varied])
            auc = np.asarray(rank_auc(y, both, weighted)).ravel()
            row["auc_shift_mean"] = float(np.mean(auc[k:] - auc[:k]))
            sig = [significance_metrics(y, s, weighted, ys, n_boot=0) for s in both]
            for m in METRICS:
                row[f"{m}_shift_mean"] = float(np.nanmean(
                    [sig[k + i][m] - sig[i][m] for i in range(k)]))
            if n_boot:
                a = bootstrap_auc(y, both, weighted, n_boot=n_boot, seed=seed)
                row.update(_interval(a[:, k:].mean(1) - a[:, :k].mean(1), "auc_shift"))
                b = bootstrap_significance(y, both, weighted, ys, n_boot, seed)
                for m in METRICS:
                    row.update(_interval(b[m][:, k:].mean(1) - b[m][:, :k].mean(1),
                                         f"{m}_shift"))
            rows.append(row)
    return pd.DataFrame(rows)


def sample_summary(frame: pd.DataFrame, store: Any, yields: Yields | None = None,
                   n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Per task, curve, size and other test sample (:func:`has_sample_scores`): the mean
    over seeds of the AUC on the nominal test events (``auc_nominal_mean``) and on the
    sample (``auc_sample_mean``), and of the shifts (sample minus nominal) of the AUC and of
    each significance, with 68% intervals from resampling both test samples (independently
    of each other; every curve of a task sees the same resamples, so differences between
    curves are paired). Empty without scores on other samples. `frame` as for
    :func:`significance_summary`."""
    yields = yields or Yields()
    rows = []
    for (task, curve, size), g in frame.groupby(["task", "curve", "train_size"], sort=True):
        task = str(task)
        if g["test_id"].nunique() != 1:
            continue
        nominal_test = store.load_test(task, str(g["test_id"].iloc[0]))
        records = [store.load_run(r) or {} for r in g["run_id"]]
        tests = [r.get("test_samples") or {} for r in records]
        if nominal_test is None or not tests:
            continue
        names = sorted(set.intersection(*[set(t) for t in tests]))
        if not names:
            continue
        nominal = store.load_scores(task, g["run_id"])  # once for every other sample
        for name in names:
            ids = {t[name] for t in tests}
            sample_test = store.load_test(task, ids.pop()) if len(ids) == 1 else None
            if sample_test is None:
                continue
            other = store.load_scores(task, g["run_id"], SAMPLE + name)
            row: dict[str, Any] = {"task": task, "curve": curve, "train_size": size,
                                   "sample": name, "seeds": len(nominal)}
            row.update(_sample_shifts(nominal_test, nominal, sample_test, other, yields,
                                      n_boot, seed))
            rows.append(row)
    return pd.DataFrame(rows)


def _sample_shifts(nominal_test: tuple[np.ndarray, np.ndarray], nominal: np.ndarray,
                   sample_test: tuple[np.ndarray, np.ndarray], other: np.ndarray,
                   yields: Yields, n_boot: int, seed: int) -> dict[str, float]:
    """Mean AUC and significance shifts (other minus nominal scores [k, n]) with intervals."""
    out: dict[str, float] = {}
    per_sample = []
    for (y, w), scores in ((nominal_test, nominal), (sample_test, other)):
        weighted = None if np.all(w == 1) else w
        ys = _yields(yields, y, w)
        auc = np.asarray(rank_auc(y, scores, weighted)).ravel()
        sig = [significance_metrics(y, s, weighted, ys, n_boot=0) for s in scores]
        boot = None
        if n_boot:
            boot = {"auc": bootstrap_auc(y, scores, weighted, n_boot=n_boot, seed=seed),
                    **bootstrap_significance(y, scores, weighted, ys, n_boot, seed)}
        per_sample.append((auc, sig, boot))
        seed += 1  # the two samples are resampled independently
    (auc0, sig0, boot0), (auc1, sig1, boot1) = per_sample
    out["auc_nominal_mean"] = float(np.mean(auc0))
    out["auc_sample_mean"] = float(np.mean(auc1))
    out["auc_shift_mean"] = float(np.mean(auc1 - auc0))
    for m in METRICS:
        out[f"{m}_shift_mean"] = float(np.nanmean(
            [b[m] - a[m] for a, b in zip(sig0, sig1, strict=True)]))
    for m in ("auc", *METRICS):
        shift = None if boot0 is None or boot1 is None else \
            boot1[m].mean(1) - boot0[m].mean(1)
        out.update(_interval(shift, f"{m}_shift"))
    return out
