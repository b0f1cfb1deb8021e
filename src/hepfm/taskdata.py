"""Events of a downstream task: where they come from, their labels, honest repeatable splits.

Task samples are made as ``hepfm finetune`` makes them (:func:`hepfm.samples.
ensure_task_samples`: the task seed stream, never pretraining events), and
:func:`load_task_events` can check that a model was not pretrained on them.

The test set of a task is fixed: a stratified ``test_fraction`` of the task's events drawn
with :data:`TEST_SEED`, whatever the training size or training seed, so every run of a
learning-curve scan is scored on the same events. Training and validation events are then
drawn, class-balanced, from the remaining pool with the run's own seed: ``train_size``
events to train on and ``val_fraction * train_size`` (at least ``min_val``) to stop on.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from hepfm.data import load_events
from hepfm.data.datasets import resolve_sources
from hepfm.data.table import EventTable
from hepfm.data.variations import Variation
from hepfm.errors import InputDataError
from hepfm.provenance import check_disjoint, describe_files, pretraining_events
from hepfm.samples import ensure_task_samples
from hepfm.tasks import Task

#: Events per process that task samples are made with (and that task runs read).
DEFAULT_EVENTS_PER_PROCESS = 2500

#: Seed of the held-out test split of every task (never the training seed).
TEST_SEED = 2412_10665


@dataclass
class TaskSplits:
    """Train, validation and (fixed) test events of one task, labels 0/1."""

    train: EventTable
    val: EventTable
    test: EventTable


def load_task_events(task: Task,
                     data: str | os.PathLike[str] | Mapping[str, Any] | None = None,
                     events_per_process: int | None = None,
                     cache_dir: str | os.PathLike[str] | None = None, *,
                     generate: bool = False, pretrained: Any = None,
                     variation: Variation | None = None) -> EventTable:
    """All events of the task's processes, label 1 for signal and 0 for background.

    `data` is a task sample directory, or ``{process: files}``. Left at None it is
    ``<data dir>/tasks`` (``$HEPFM_DATA`` or ``~/.cache/hepfm/data``), and missing samples
    are generated there (`events_per_process` each, default
    :data:`DEFAULT_EVENTS_PER_PROCESS`) as ``hepfm finetune`` does; for a directory given
    here that happens only with `generate`, else the error names the command to run.
    With `pretrained` (a :class:`~hepfm.FoundationModel`), events it was pretrained on are
    refused (:class:`~hepfm.provenance.DataLeakError`), as ``hepfm finetune`` refuses them.
    A `variation` (:mod:`hepfm.data.variations`) shifts the events as they are read; the
    task's event selection (``min_leptons``) stays that of the nominal events, so that the
    varied table holds the same events in the same order (its splits are the same events).
    """
    if not isinstance(data, Mapping):
        data = ensure_task_samples(task.processes, data,
                                   events_per_process or DEFAULT_EVENTS_PER_PROCESS, generate)
    if pretrained is not None:
        check_task_events(task, data, events_per_process, {"the pretrained model": pretrained})
    table = load_events(data, list(task.processes), events_per_process,
                        label_of=task.label_of, cache_dir=cache_dir, variation=variation)
    if task.min_leptons:
        nominal = table if variation is None else load_events(
            data, list(task.processes), events_per_process, label_of=task.label_of,
            cache_dir=cache_dir)
        table = table.subset(np.flatnonzero(lepton_counts(nominal) >= task.min_leptons))
    for cls, procs in ((1, task.signal), (0, task.background)):
        if not np.any(table.y == cls):
            kind = "signal" if cls else "background"
            raise InputDataError(f"task '{task.name}' has no {kind} events "
                                 f"(processes {', '.join(procs)}) in '{data}'")
    return table


def check_task_events(task: Task, data: str | os.PathLike[str] | Mapping[str, Any],
                      events_per_process: int | None, models: Mapping[str, Any],
                      allow_overlap: bool = False) -> list[str]:
    """Refuse (or, with `allow_overlap`, list) task events that any of `models` (name ->
    model) was pretrained on; the task's files are described once for all of them."""
    sources = resolve_sources(data, list(task.processes))
    records = describe_files(sources, events_per_process)
    lines: list[str] = []
    for name, model in models.items():
        seen = pretraining_events(getattr(model, "run_config", None))
        lines += check_disjoint(seen, records, name, allow_overlap)
    return lines


def lepton_counts(table: EventTable) -> np.ndarray:
    """Electrons plus muons of every event."""
    from hepfm.data.features import NODE_TYPES

    lepton = np.isin(table.node_type, [NODE_TYPES.index("electron"), NODE_TYPES.index("muon")])
    event = np.repeat(np.arange(len(table)), table.counts)
    return np.bincount(event[lepton], minlength=len(table))


def _class_indices(y: np.ndarray, rng: np.random.Generator) -> list[np.ndarray]:
    return [rng.permutation(np.flatnonzero(y == c)) for c in (0, 1)]


def split_task(table: EventTable, train_size: int | None, seed: int = 0,
               test_fraction: float = 0.25, val_fraction: float = 0.25,
               min_val: int = 200) -> TaskSplits:
    """Fixed test set, then a balanced training set of `train_size` events (all if None)."""
    train, val, test = split_indices(table.y, train_size, seed, test_fraction, val_fraction,
                                     min_val)
    return TaskSplits(table.subset(train), table.subset(val), table.subset(test))


def split_indices(y: np.ndarray, train_size: int | None, seed: int = 0,
                  test_fraction: float = 0.25, val_fraction: float = 0.25,
                  min_val: int = 200) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sorted event indices of :func:`split_task`'s train, validation and test sets.

    ``test_fraction=0`` gives no test events (the test set comes from elsewhere).
    """
    if not 0 <= test_fraction < 1:
        raise ValueError(f"test_fraction must be in [0, 1), got {test_fraction}")
    test_idx, pool = [], []
    for idx in _class_indices(y, np.random.default_rng(TEST_SEED)):
        n_test = round(test_fraction * len(idx))
        test_idx.append(idx[:n_test])
        pool.append(idx[n_test:])
    rng = np.random.default_rng([seed, 1])
    pool = [rng.permutation(p) for p in pool]
    available = sum(len(p) for p in pool)
    if train_size is None:  # all events: a validation share (at least min_val, at most half)
        n_val = max(min(min_val, available // 2),
                    round(val_fraction / (1 + val_fraction) * available))
        train_size = available - n_val
    else:
        n_val = max(min_val, round(val_fraction * train_size))
    if train_size < 2 or train_size + n_val > available:
        where = "outside the fixed test set" if test_fraction else "for training"
        raise InputDataError(
            f"train size {train_size} (+ {n_val} validation) needs more events than the "
            f"{available} {where}; generate more events or ask for fewer")
    train = _balanced_take(pool, train_size)
    rest = [p[len(t):] for p, t in zip(pool, train, strict=True)]
    val = _balanced_take(rest, n_val)
    a, b, c = (np.sort(np.concatenate(parts)) for parts in (train, val, test_idx))
    return a, b, c


def _balanced_take(pool: list[np.ndarray], n: int) -> list[np.ndarray]:
    """Take `n` events, half per class when possible, the shortfall from the other class."""
    half = [n // 2, n - n // 2]
    short = [max(0, h - len(p)) for h, p in zip(half, pool, strict=True)]
    take = [min(len(pool[0]), half[0] + short[1]), min(len(pool[1]), half[1] + short[0])]
    return [p[:k] for p, k in zip(pool, take, strict=True)]
