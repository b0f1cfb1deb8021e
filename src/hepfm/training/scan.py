"""Learning curves (AUC against training size, per mode) and the compute accounting.

``scan_splits`` trains every (pretrained model, mode, training size, seed) of a task, plus the
``bdt`` baseline (:class:`hepfm.analysis.baseline.BDTBaseline`, once per size and seed,
like ``scratch``) and stores each finished run in a :class:`ScanStore`:

- ``runs/<run_id>.json``: the run's resume key (every setting that changes its result) and
  its result row; written last and atomically, so it marks a complete run. ``run_id`` is a
  hash of the key: a run with any other setting (epochs, model, data, ...) is a new run.
- ``scores/<task>/<run_id>.npy``: the run's signal scores on the task's fixed test set, and
  ``scores/<task>/test-<test_id>.npz`` the labels and weights of that test set (stored once),
  so that bootstrap intervals can be recomputed without retraining.
- ``scan.csv``: every row of ``runs/``, reassembled after each run (a view; ``runs/`` is
  the truth). Any number of processes can write into one scan directory at once.

``compute_accounting`` reads the rows and answers: how much training time does fine-tuning
need to match the best from-scratch AUC, and after how many tasks does the one-off
pretraining cost pay for itself? ``label_efficiencies`` answers how many scratch training
events each fine-tuned curve's AUC at each size is worth
(:mod:`hepfm.analysis.label_efficiency`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from hepfm.analysis.baseline import FEATURE_VERSION, BDTBaseline
from hepfm.analysis.label_efficiency import label_efficiency
from hepfm.analysis.metrics import (
    CONFIDENCE,
    binary_metrics,
    bootstrap_auc,
    percentile_interval,
)
from hepfm.analysis.significance import Yields
from hepfm.atomic import atomic_path, write_json, write_text
from hepfm.data.table import EventTable
from hepfm.errors import ArgumentError, InputDataError, UnknownNameError
from hepfm.models.foundation import FoundationModel
from hepfm.training.finetune import (
    MODES,
    FinetuneConfig,
    finetune,
    predict_proba,
    prepare_model,
)
from hepfm.training.scan_trust import (
    SAMPLE,
    has_sample_scores,
    sample_summary,
    significance_summary,
    variation_summary,
    varied_score_path,
)

log = logging.getLogger(__name__)

#: Modes of a scan: the BDT baseline and the fine-tuning modes.
SCAN_MODES: tuple[str, ...] = ("bdt", *MODES)
#: Modes that do not use the pretrained weights: run once per (size, seed), model ``none``.
MODEL_FREE_MODES: tuple[str, ...] = ("bdt", "scratch")
COLUMNS = ("task", "model", "mode", "train_size", "seed", "auc", "accuracy", "rejection_50",
           "rejection_70", "train_seconds", "epochs", "best_epoch", "train_events",
           "val_events", "test_events", "test_id", "model_id", "run_id")
KEY = ("task", "model", "mode", "train_size", "seed")
#: Columns read back as strings whatever they look like (a model labelled ``01`` stays ``01``).
LABEL_COLUMNS = ("task", "model", "mode", "test_id", "model_id", "run_id")
#: Settings of :class:`FinetuneConfig` that do not change a run's result.
_NOT_RESULT = ("mode", "seed", "accelerator", "progress_bar")


def check_modes(modes: Sequence[str]) -> None:
    """An :class:`~hepfm.errors.UnknownNameError` for a mode not in :data:`SCAN_MODES`."""
    for m in modes:
        if m not in SCAN_MODES:
            raise UnknownNameError("scan mode", m, list(SCAN_MODES))


def digest(parts: Iterable[bytes | str]) -> str:
    """A short hash of `parts` (bytes or text), each length-prefixed."""
    h = hashlib.sha256()
    for p in parts:
        b = p.encode() if isinstance(p, str) else p
        h.update(len(b).to_bytes(8, "little"))
        h.update(b)
    return h.hexdigest()[:20]


def table_identity(table: EventTable) -> str:
    """Hash of the events of `table` (objects, labels and process names)."""
    t = table[0:len(table)] if len(table) and table.offsets[0] != 0 else table
    arrays = [t.offsets, t.pt, t.eta, t.phi, t.mass, t.charge, t.btag, t.node_type, t.y,
              t.process]
    if getattr(t, "weight", None) is not None:  # event weights, where the table has them
        arrays.append(t.weight)
    return digest([",".join(t.processes), *(np.ascontiguousarray(a).tobytes() for a in arrays)])


def model_identity(model: FoundationModel, weights: bool = True) -> str:
    """Hash of a model's architecture, normalisation and (with `weights`) every weight."""
    parts: list[bytes | str] = [json.dumps(model.config.to_dict(), sort_keys=True, default=str)]
    if model.stats is not None:
        parts.append(json.dumps(model.stats.to_dict(), sort_keys=True, default=str))
    if weights:
        for name, tensor in sorted(model.state_dict().items()):
            parts += [name, tensor.detach().cpu().contiguous().numpy().tobytes()]
    return digest(parts)


def run_id(key: Mapping[str, Any]) -> str:
    """The name of a run: a hash of its whole key."""
    return digest([json.dumps(key, sort_keys=True, default=str)])


def read_scan_csv(path: str | os.PathLike[str]) -> pd.DataFrame:
    """A ``scan.csv`` with its label columns as strings (``01`` stays ``01``)."""
    return pd.read_csv(path, dtype={c: str for c in LABEL_COLUMNS}, keep_default_na=False,
                       na_values={c: ["", "NaN", "nan"] for c in COLUMNS
                                  if c not in LABEL_COLUMNS})


class NoScanDirectoryError(InputDataError, FileNotFoundError):
    """A directory that holds no stored scan runs (no ``runs/``, no ``scan.csv``)."""


class ScanStore:
    """The files of one scan directory (see the module docstring). Safe for many writers."""

    def __init__(self, directory: str | os.PathLike[str]):
        self.directory = Path(directory)
        self.runs = self.directory / "runs"
        self.scores = self.directory / "scores"
        self.csv = self.directory / "scan.csv"

    def prepare(self) -> ScanStore:
        """Create the folders."""
        self.runs.mkdir(parents=True, exist_ok=True)
        return self

    def _run_file(self, rid: str) -> Path:
        return self.runs / f"{rid}.json"

    def load_run(self, rid: str) -> dict[str, Any] | None:
        """The stored record of run `rid` ({"key", "row", ...}), None if absent or broken."""
        try:
            record = json.loads(self._run_file(rid).read_text())
        except (OSError, ValueError):
            return None
        return record if isinstance(record, dict) and "row" in record else None

    def complete_run(self, rid: str, key: Mapping[str, Any]) -> dict[str, Any] | None:
        """The record of run `rid` if it is stored complete, with exactly this key and its
        scores; else ``None``."""
        record = self.load_run(rid)
        if record is None or record.get("key") != json.loads(json.dumps(key, default=str)):
            return None
        return record if self.score_path(record["row"]["task"], rid).is_file() else None

    def score_path(self, task: str, rid: str) -> Path:
        return self.scores / task / f"{rid}.npy"

    def test_path(self, task: str, test_id: str) -> Path:
        return self.scores / task / f"test-{test_id}.npz"

    def load_test(self, task: str, test_id: str) -> tuple[np.ndarray, np.ndarray] | None:
        """A task's stored test labels and weights (see :meth:`save_test`), or ``None``."""
        path = self.test_path(task, test_id)
        if not path.is_file():
            return None
        with np.load(path, allow_pickle=False) as test:
            return test["y"], test["weight"]

    def load_scores(self, task: str, rids: Sequence[str], label: str | None = None
                    ) -> np.ndarray:
        """The stored test scores of the runs `rids`, a row each: on the nominal test events,
        or with `label` on varied events or another test sample."""
        return np.stack([np.load(self.score_path(task, r) if label is None else
                                 varied_score_path(self.scores, task, r, label),
                                 allow_pickle=False) for r in rids])

    def save_test(self, task: str, test_id: str, y: np.ndarray,
                  weight: np.ndarray | None = None) -> Path:
        """Store a task's test labels and weights once (an existing file is kept)."""
        path = self.test_path(task, test_id)
        if not path.is_file():
            w = np.ones(len(y)) if weight is None else np.asarray(weight, np.float64)
            with atomic_path(path) as tmp, open(tmp, "wb") as fh:
                np.savez(fh, y=np.asarray(y, np.int8), weight=w)
        return path

    def save_run(self, rid: str, key: Mapping[str, Any], row: Mapping[str, Any],
                 scores: np.ndarray, info: Mapping[str, Any] | None = None) -> None:
        """Store a finished run: its scores first, then its record (the completion mark)."""
        with atomic_path(self.score_path(str(row["task"]), rid)) as tmp, open(tmp, "wb") as fh:
            np.save(fh, np.asarray(scores, np.float32))
        record = {"key": key, "row": dict(row), **(info or {})}
        write_json(self._run_file(rid), record, indent=1)

    def _listing(self) -> list[Path]:
        return sorted(self.runs.glob("*.json")) if self.runs.is_dir() else []

    def rows(self, paths: Sequence[Path] | None = None) -> pd.DataFrame:
        """Every stored run as a row of :data:`COLUMNS` (broken records are skipped)."""
        rows = []
        for p in self._listing() if paths is None else paths:
            record = self.load_run(p.stem)
            if record is not None:
                rows.append(record["row"])
        frame = pd.DataFrame(rows, columns=list(COLUMNS))
        for c in LABEL_COLUMNS:
            frame[c] = frame[c].astype(str)
        for c in ("auc", "accuracy", "rejection_50", "rejection_70", "train_seconds"):
            frame[c] = pd.to_numeric(frame[c])
        return frame.sort_values(list(KEY), kind="stable").reset_index(drop=True)

    def assemble(self, attempts: int = 20) -> pd.DataFrame:
        """Rewrite ``scan.csv`` from ``runs/``; again while other writers add runs meanwhile."""
        for _ in range(attempts):
            listing = self._listing()
            frame = self.rows(listing)
            write_text(self.csv, frame.to_csv(index=False))
            if self._listing() == listing:
                break
        return frame


def _scan_dir(out: str | Path) -> Path:
    out = Path(out)
    return out.parent if out.suffix == ".csv" else out


#: One part of a split: a table, or events with ``.table`` and ``.weight`` (event weights).
Part = Any


def _table_and_weight(part: Part) -> tuple[EventTable, np.ndarray | None]:
    if isinstance(part, EventTable):
        return part, getattr(part, "weight", None)
    return part.table, part.weight


def scan_splits(name: str, split: Callable[[int, int], tuple[Part, Part, Part]],
                data_key: Mapping[str, Any], models: Mapping[str, FoundationModel],
                sizes: Sequence[int], modes: Sequence[str], seeds: int | Sequence[int],
                out: str | Path, config: FinetuneConfig | None = None,
                progress: bool = True, bdt: BDTBaseline | None = None,
                info: Mapping[str, Any] | None = None,
                variations: Mapping[str, Callable[[int, int], tuple[Part, Part, Part]]]
                | None = None, test_samples: Mapping[str, Part] | None = None
                ) -> pd.DataFrame:
    """Train each model of `models` ({label: model}) in each mode, size and seed on one
    task's events: ``split(size, seed)`` gives the training, validation and test parts
    (tables, or events with weights: then training uses the weights rescaled per class and
    the test metrics the raw weights). `data_key` identifies the events and their splitting
    in every run's key; `info` is stored with every run. `variations` ({label: split of the
    varied events}) score every trained model on the varied test events too
    (:mod:`hepfm.training.scan_trust`); a stored run without the scores of a requested
    variation is trained again. `test_samples` ({name: test part}) are other test samples of
    the task (other events: another parton shower, say) that every trained model is scored
    on too (:func:`~hepfm.training.scan_trust.sample_summary`).

    `out` is the scan directory (or its ``scan.csv``). ``scratch`` and ``bdt`` run once per
    (size, seed), whatever the number of models (model label ``none``); ``bdt`` uses the
    hyper-parameters of `bdt` (default :class:`BDTBaseline`) with the run seed as random
    state. Runs stored with the same key are not run again. Returns the rows of these runs
    (``scan.csv`` holds every run of the directory)."""
    check_modes(modes)
    if not models and any(m not in MODEL_FREE_MODES for m in modes):
        raise ArgumentError("a scan in modes other than bdt and scratch needs a pretrained "
                            "model")
    seed_list = list(range(seeds)) if isinstance(seeds, int) else list(seeds)
    store = ScanStore(_scan_dir(out)).prepare()
    base = config or FinetuneConfig()
    bdt = bdt or BDTBaseline()
    common = {"task": name, **data_key}
    train_settings = {k: v for k, v in asdict(base).items() if k not in _NOT_RESULT}
    ids: dict[str, tuple[str, str]] = {}  # label -> (weights id, architecture id)
    for label, model in models.items():
        ids[label] = (model_identity(model), model_identity(model, weights=False))
    first = next(iter(models), None)
    samples = {label: _stored_test(store, name, part)
               for label, part in (test_samples or {}).items()}
    sample_ids = {label: test_id for label, (_, test_id) in samples.items()}

    def key_of(label: str, mode: str, size: int, seed: int) -> dict[str, Any]:
        key: dict[str, Any] = {**common, "model": label, "mode": mode, "train_size": size,
                               "seed": seed}
        if mode == "bdt":
            key["bdt"] = {**bdt.get_params(), "random_state": seed,
                          "features": FEATURE_VERSION}
        elif mode == "scratch":
            key["model_id"] = ids[first][1] if first is not None else None
            key["train"] = train_settings
        else:
            key["model_id"] = ids[label][0]
            key["train"] = train_settings
        return key

    todo, planned = [], set()
    for size in sizes:
        for seed in seed_list:
            for mode in modes:
                for label in (["none"] if mode in MODEL_FREE_MODES else list(models)):
                    key = key_of(label, mode, size, seed)
                    rid = run_id(key)
                    planned.add(rid)
                    record = store.complete_run(rid, key)
                    if record is None or any(
                            not varied_score_path(store.scores, name, rid, v).is_file()
                            for v in variations or {}) or not has_sample_scores(
                                record, store.scores, name, rid, sample_ids):
                        todo.append((size, seed, mode, label, key, rid))
    if todo:
        _train_runs(name, split, todo, models, first, base, bdt, store,
                    {**(info or {}), "test_samples": sample_ids}, progress, variations or {},
                    {label: table for label, (table, _) in samples.items()})
    frame = store.assemble()
    return frame[frame["run_id"].isin(planned)].reset_index(drop=True)


def _test_id(test: EventTable, weight: np.ndarray | None) -> str:
    return table_identity(test) if weight is None else digest(
        [table_identity(test), np.ascontiguousarray(weight, np.float64).tobytes()])


def _stored_test(store: ScanStore, name: str, part: Part) -> tuple[EventTable, str]:
    """The table of a test part, with its labels and weights stored under its test id."""
    table, weight = _table_and_weight(part)
    test_id = _test_id(table, weight)
    store.save_test(name, test_id, table.y, weight)
    return table, test_id


def _train_runs(name: str, split: Callable[[int, int], tuple[Part, Part, Part]], todo: list,
                models: Mapping[str, FoundationModel], first: str | None,
                base: FinetuneConfig, bdt: BDTBaseline, store: ScanStore,
                info: Mapping[str, Any] | None, progress: bool,
                variations: Mapping[str, Callable[[int, int], tuple[Part, Part, Part]]],
                test_samples: Mapping[str, EventTable]) -> None:
    from hepfm.taskdata import class_balanced

    splits_of: dict[tuple[int, int], Any] = {}
    for size, seed, mode, label, key, rid in tqdm(todo, desc=f"scan {name}",
                                                  disable=not progress):
        if (size, seed) not in splits_of:
            splits_of.clear()
            splits_of[(size, seed)] = [_table_and_weight(p) for p in split(size, seed)]
            varied_tests = {label: _table_and_weight(vs(size, seed)[2])[0]
                            for label, vs in variations.items()}
            varied_tests.update({SAMPLE + label: t for label, t in test_samples.items()})
        (train, w_train), (val, w_val), (test, w_test) = splits_of[(size, seed)]
        w_train, w_val = class_balanced(w_train, train.y), class_balanced(w_val, val.y)
        test_id = _test_id(test, w_test)
        store.save_test(name, test_id, test.y, w_test)
        if mode == "bdt":
            est = replace_params(bdt, random_state=seed).fit(train, val, w_train, w_val)
            scores = est.signal_score(test)
            varied = {v: est.signal_score(t) for v, t in varied_tests.items()}
            seconds, epochs, best, model_id = est.fit_seconds_, est.n_iter_, est.n_iter_, ""
        else:
            source = models[label] if label != "none" else models[first]  # type: ignore[index]
            cfg = replace(base, mode=mode, seed=seed)
            model = prepare_model(source, "task", mode, seed=seed)
            res = finetune(model, train, val, "task", cfg, sample_weight=w_train,
                           val_sample_weight=w_val)
            scores = predict_proba(res.model, test, "task")
            varied = {v: predict_proba(res.model, t, "task") for v, t in varied_tests.items()}
            seconds, epochs, best = res.train_seconds, res.epochs_run, res.best_epoch
            model_id = key["model_id"]
        scores = np.asarray(scores, np.float32)
        metrics = binary_metrics(test.y, scores, sample_weight=w_test)
        row = {"task": name, "model": label, "mode": mode, "train_size": size,
               "seed": seed, **{k: metrics[k] for k in COLUMNS[5:9]},
               "train_seconds": seconds, "epochs": epochs, "best_epoch": best,
               "train_events": len(train), "val_events": len(val),
               "test_events": len(test), "test_id": test_id, "model_id": model_id,
               "run_id": rid}
        for label, s in varied.items():  # before the run's record, which marks it complete
            with atomic_path(varied_score_path(store.scores, name, rid, label)) as tmp, \
                    open(tmp, "wb") as fh:
                np.save(fh, np.asarray(s, np.float32))
        store.save_run(rid, key, row, scores, info)
        store.assemble()


def replace_params(estimator: BDTBaseline, **params: Any) -> BDTBaseline:
    """An unfitted copy of `estimator` with some parameters changed (sklearn's clone)."""
    from sklearn.base import clone

    return clone(estimator).set_params(**params)


def curve_label(frame: pd.DataFrame) -> pd.Series:
    """``scratch``, ``bdt`` or ``<mode> (<model>)``: one learning curve each."""
    tuned = ~frame["mode"].isin(MODEL_FREE_MODES)
    many = frame.loc[tuned, "model"].nunique() > 1
    return frame.apply(lambda r: r["mode"] if r["mode"] in MODEL_FREE_MODES or not many
                       else f"{r['mode']} ({r['model']})", axis=1)


def bootstrap_runs(frame: pd.DataFrame, store: ScanStore, n_boot: int = 1000, seed: int = 0
                   ) -> pd.DataFrame:
    """AUC of every run with stored scores on `n_boot` resamples of its task's test events.

    One column per ``run_id``, one row per resample. Runs scored on the same test set share
    the same resamples (row b is the same resample for all of them), so differences between
    their columns are paired bootstrap differences.
    """
    columns: dict[str, np.ndarray] = {}
    for (task, test_id), group in frame.groupby(["task", "test_id"]):
        test = store.load_test(str(task), str(test_id))
        ids = [r for r in group["run_id"] if store.score_path(str(task), r).is_file()]
        if not ids or test is None:
            continue
        y, w = test
        scores = store.load_scores(str(task), ids)
        aucs = bootstrap_auc(y, scores, w, n_boot=n_boot, seed=seed)
        columns.update(zip(ids, aucs.T, strict=True))
    return pd.DataFrame(columns, index=pd.RangeIndex(n_boot, name="resample"))


def _interval_columns(values: np.ndarray | None, prefix: str, confidence: float
                      ) -> dict[str, float]:
    tag = f"{round(100 * confidence)}"
    if values is None:
        return {f"{prefix}_lo{tag}": np.nan, f"{prefix}_hi{tag}": np.nan,
                f"{prefix}_test_std": np.nan}
    lo, hi = percentile_interval(values, confidence)
    return {f"{prefix}_lo{tag}": float(lo), f"{prefix}_hi{tag}": float(hi),
            f"{prefix}_test_std": float(np.nanstd(values, ddof=1))}


def _boot_mean(boot: pd.DataFrame | None, ids: Sequence[str]) -> np.ndarray | None:
    """Per resample, the mean over runs `ids` (None unless every run was bootstrapped)."""
    if boot is None or not len(ids) or not all(r in boot.columns for r in ids):
        return None
    return boot[list(ids)].to_numpy().mean(axis=1)


def summarise(frame: pd.DataFrame, boot: pd.DataFrame | None = None,
              confidence: float = CONFIDENCE) -> pd.DataFrame:
    """Per task, curve and size: mean AUC over seeds (``auc_mean``), its seed spread
    (``auc_std``), and with `boot` (:func:`bootstrap_runs`) the test-set bootstrap
    interval of that mean (``auc_lo68``/``auc_hi68``: central 68% percentile interval) and
    the bootstrap standard deviation (``auc_test_std``); mean train time and epochs."""
    f = frame.assign(curve=curve_label(frame))
    rows = []
    for (task, curve, size), g in f.groupby(["task", "curve", "train_size"], sort=True):
        same_test = g["test_id"].nunique() == 1 if "test_id" in g else False
        values = _boot_mean(boot, list(g["run_id"])) if same_test else None
        rows.append({"task": task, "curve": curve, "train_size": size,
                     "auc_mean": g["auc"].mean(), "auc_std": g["auc"].std(),
                     "seeds": int(g["seed"].count()),
                     **_interval_columns(values, "auc", confidence),
                     "seconds_mean": g["train_seconds"].mean(),
                     "epochs_mean": g["best_epoch"].mean()})
    return pd.DataFrame(rows)


def differences(frame: pd.DataFrame, boot: pd.DataFrame | None = None,
                references: Sequence[str] = MODEL_FREE_MODES,
                confidence: float = CONFIDENCE) -> pd.DataFrame:
    """Every curve minus each reference curve, per task and size: with the default
    references, every curve minus ``bdt`` and every curve but ``bdt`` minus ``scratch``.

    Runs are paired by seed (the same training events): ``diff_mean`` is the mean over the
    seeds both curves have of the per-seed AUC difference, ``diff_std`` its seed spread, and
    ``diff_lo68``/``diff_hi68`` the paired test-set bootstrap interval (the same resampled
    test events for both curves in every resample); ``frac_not_above_0`` is the fraction of
    resamples in which the difference is <= 0.
    """
    f = frame.assign(curve=curve_label(frame))
    rows = []
    for (task, size), g in f.groupby(["task", "train_size"], sort=True):
        by_curve = {c: d.set_index("seed") for c, d in g.groupby("curve")}
        for i, ref in enumerate(references):
            if ref not in by_curve:
                continue
            r = by_curve[ref]
            for curve, c in by_curve.items():
                if curve == ref or curve in references[:i]:  # each pair once
                    continue
                seeds = sorted(set(c.index) & set(r.index))
                if not seeds:
                    continue
                per_seed = c.loc[seeds, "auc"].to_numpy() - r.loc[seeds, "auc"].to_numpy()
                same = len(set(c.loc[seeds, "test_id"]) | set(r.loc[seeds, "test_id"])) == 1
                a = _boot_mean(boot, list(c.loc[seeds, "run_id"])) if same else None
                b = _boot_mean(boot, list(r.loc[seeds, "run_id"])) if same else None
                values = None if a is None or b is None else a - b
                cols = _interval_columns(values, "diff", confidence)
                rows.append({"task": task, "curve": curve, "reference": ref,
                             "train_size": size, "seeds": len(seeds),
                             "diff_mean": float(per_seed.mean()),
                             "diff_std": float(per_seed.std(ddof=1)) if len(seeds) > 1
                             else np.nan,
                             **cols, "frac_not_above_0": np.nan if values is None
                             else float(np.mean(values <= 0))})
    tag = round(100 * confidence)
    return pd.DataFrame(rows, columns=["task", "curve", "reference", "train_size", "seeds",
                                       "diff_mean", "diff_std", f"diff_lo{tag}",
                                       f"diff_hi{tag}", "diff_test_std", "frac_not_above_0"])


def label_efficiencies(frame: pd.DataFrame, boot: pd.DataFrame | None = None,
                       confidence: float = CONFIDENCE) -> pd.DataFrame:
    """Per task, fine-tuned curve and size: the scratch training events its mean AUC matches
    on the scratch learning curve (:func:`~hepfm.analysis.label_efficiency.label_efficiency`),
    with the interval from the paired test-set bootstrap resamples in `boot` (when every run
    involved has them, on one test set) and a sentence saying it."""
    tag = round(100 * confidence)
    columns = ["task", "curve", "train_size", "auc_mean", "scratch_equivalent",
               f"scratch_equivalent_lo{tag}", f"scratch_equivalent_hi{tag}", "statement"]
    f = frame.assign(curve=curve_label(frame))
    rows = []
    for task, t in f.groupby("task", sort=True):
        scratch = t[t["curve"] == "scratch"]
        if scratch.empty:
            continue
        by_size = {int(n): g for n, g in scratch.groupby("train_size", sort=True)}
        sizes = list(by_size)
        curve = [g["auc"].mean() for g in by_size.values()]
        for (name, size), g in t[~t["curve"].isin(MODEL_FREE_MODES)].groupby(
                ["curve", "train_size"], sort=True):
            runs = [g, *by_size.values()]
            same = "test_id" in t and len(set().union(*(set(r["test_id"]) for r in runs))) == 1
            boots = [_boot_mean(boot, list(r["run_id"])) if same else None for r in runs]
            ok = all(b is not None for b in boots)
            eff = label_efficiency(sizes, curve, float(g["auc"].mean()),
                                   np.stack(boots[1:], axis=1) if ok else None,
                                   boots[0] if ok else None, confidence)
            rows.append({"task": task, "curve": name, "train_size": int(size),
                         "auc_mean": float(g["auc"].mean()), "scratch_equivalent": eff.size,
                         f"scratch_equivalent_lo{tag}": eff.lo,
                         f"scratch_equivalent_hi{tag}": eff.hi,
                         "statement": f"{task}: {name} at {int(size):,} training events "
                                      f"matches scratch at {eff.describe()}"
                                      + (f" ({tag}% interval)" if eff.lo == eff.lo else "")})
    return pd.DataFrame(rows, columns=columns)


def compute_accounting(frame: pd.DataFrame, pretrain_seconds: float | Mapping[str, float]
                       ) -> tuple[pd.DataFrame, dict[str, int | None]]:
    """Training time for scratch to reach its best mean AUC and for each fine-tuned curve
    to match it, per task and summed; and, per curve, the number of tasks after which the
    one-off pretraining time (one number, or one per model label) is paid back by the time
    saved (None: never). The BDT is no fine-tuned curve and is left out."""
    s = summarise(frame)
    model_of = dict(zip(curve_label(frame), frame["model"], strict=True))
    rows = []
    for (task, curve), tuned in s[~s["curve"].isin(MODEL_FREE_MODES)].groupby(["task", "curve"]):
        scratch = s[(s["task"] == task) & (s["curve"] == "scratch")]
        if scratch.empty:
            continue
        best = scratch.loc[scratch["auc_mean"].idxmax()]
        reach = tuned.sort_values("train_size")
        reach = reach[reach["auc_mean"] >= best["auc_mean"]]
        hit = reach.iloc[0] if len(reach) else None
        rows.append({
            "task": task, "curve": curve, "scratch_best_auc": best["auc_mean"],
            "scratch_size": int(best["train_size"]), "scratch_seconds": best["seconds_mean"],
            "finetune_size": None if hit is None else int(hit["train_size"]),
            "finetune_auc": None if hit is None else hit["auc_mean"],
            "finetune_seconds": None if hit is None else hit["seconds_mean"],
            "saved_seconds": None if hit is None else best["seconds_mean"] - hit["seconds_mean"],
        })
    table = pd.DataFrame(rows)
    breakeven: dict[str, int | None] = {}
    if table.empty:
        return table, breakeven
    totals = []
    for curve, t in table.groupby("curve", sort=False):
        saved = t["saved_seconds"].dropna()
        per_task = saved.mean() if len(saved) else float("nan")
        cost = pretrain_seconds if not isinstance(pretrain_seconds, Mapping) \
            else pretrain_seconds.get(model_of[curve], float("nan"))
        breakeven[curve] = math.ceil(cost / per_task) if per_task > 0 and cost == cost else None
        reached = t[t["finetune_size"].notna()]  # sums over the tasks where it caught up
        totals.append({"task": f"total ({len(reached)}/{len(t)} tasks reached)",
                       "curve": curve, "pretrain_seconds": cost, **{
                           k: reached[k].sum() for k in ("scratch_seconds", "finetune_seconds",
                                                         "saved_seconds")}})
    table = pd.concat([table, pd.DataFrame(totals)], ignore_index=True)
    return table, breakeven


def load_scan(directory: str | os.PathLike[str]) -> pd.DataFrame:
    """Every run stored in a scan directory (its ``runs/``)."""
    store = ScanStore(directory)
    if store.runs.is_dir():
        return store.rows()
    raise NoScanDirectoryError(f"'{directory}' is no scan directory (no runs/)")


def _check_unique(frame: pd.DataFrame) -> None:
    dup = frame[frame.duplicated(list(KEY), keep=False)]
    if len(dup):
        first = dup.iloc[0]
        ids = dup[(dup[list(KEY)] == first[list(KEY)]).all(axis=1)]["run_id"].tolist()
        raise InputDataError(
            f"the scan directory holds {len(dup)} runs that differ only in their settings, "
            f"e.g. {dict(first[list(KEY)])} in runs {', '.join(map(str, ids))} (another epoch "
            "count, model or data?): keep one set of runs per directory (move the others' "
            "runs/<run_id>.json to another directory)")


def summarise_scan(directory: str | os.PathLike[str], frame: pd.DataFrame | None = None,
                   pretrain_seconds: float | Mapping[str, float] | None = None,
                   n_boot: int = 1000, seed: int = 0,
                   fallback: pd.DataFrame | None = None, yields: Yields | None = None) -> Path:
    """Write ``summary.csv``, ``differences.csv``, ``label_efficiency.csv`` and ``.txt``,
    ``learning_curve_<task>.png``, ``compute.csv`` and ``compute.txt`` of a scan directory
    from its stored runs and test scores alone (or from the rows `frame`), with `n_boot`
    seeded bootstrap resamples of the test events for every interval. ``summary.csv``
    carries the significance columns of
    :func:`~hepfm.training.scan_trust.significance_summary` for `yields`, and
    ``variations.csv`` the systematic shifts when runs were scored on variations,
    ``test_samples.csv`` the shifts on other test samples.

    `pretrain_seconds` defaults to the per-model times in ``pretrain_seconds.json``. With
    `fallback` rows, a directory that mixes runs of different settings is summarised from
    those rows (with a warning) instead of raising.
    """
    from hepfm.analysis.plots import plot_learning_summary

    directory = Path(directory)
    frame = load_scan(directory) if frame is None else frame
    if frame.empty:
        raise InputDataError(f"no finished runs in '{directory}'")
    try:
        _check_unique(frame)
    except ValueError as err:
        if fallback is None:
            raise
        log.warning("%s; summarising the runs of this scan only", err)
        frame = fallback
    boot = bootstrap_runs(frame, ScanStore(directory), n_boot, seed) if n_boot else None
    summary = summarise(frame, boot)
    store = ScanStore(directory)
    curves = frame.assign(curve=curve_label(frame))
    sig = significance_summary(curves, store, yields, n_boot, seed)
    if len(sig):
        summary = summary.merge(sig, on=["task", "curve", "train_size"], how="left")
    write_text(directory / "summary.csv", summary.to_csv(index=False))
    shifts = variation_summary(curves, store, yields, n_boot, seed)
    if len(shifts):
        write_text(directory / "variations.csv", shifts.to_csv(index=False))
    others = sample_summary(curves, store, yields, n_boot, seed)
    if len(others):
        write_text(directory / "test_samples.csv", others.to_csv(index=False))
    write_text(directory / "differences.csv", differences(frame, boot).to_csv(index=False))
    efficiency = label_efficiencies(frame, boot)
    write_text(directory / "label_efficiency.csv", efficiency.to_csv(index=False))
    write_text(directory / "label_efficiency.txt",
               "".join(f"{line}\n" for line in efficiency["statement"]))
    for name, t in summary.groupby("task"):
        plot_learning_summary(t, directory / f"learning_curve_{name}.png", title=str(name))
    if pretrain_seconds is None:
        path = directory / "pretrain_seconds.json"
        pretrain_seconds = json.loads(path.read_text()) if path.is_file() else float("nan")
    costs = pretrain_seconds
    table, breakeven = compute_accounting(frame, costs)
    write_text(directory / "compute.csv", table.to_csv(index=False))
    lines = [f"pretraining wall time of {label}: {s:.0f} s" for label, s in
             (costs.items() if isinstance(costs, Mapping) else [("the model", costs)])]
    for curve, n in breakeven.items():
        lines.append(f"{curve}: pretraining pays for itself after {n} task(s)" if n else
                     f"{curve}: reaches the best scratch AUC no faster: no break-even")
    write_text(directory / "compute.txt", "\n".join(lines) + "\n")
    return directory
