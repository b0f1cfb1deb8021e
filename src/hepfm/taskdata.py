"""A downstream task's events: where they come from, their labels, honest repeatable splits.

A task is signal sources against background sources (ROOT files; or mixed files labelled per
event by a branch), with an optional explicit test set, optional event weights, and a branch
map: a :class:`TaskData`. A built-in task (:data:`hepfm.tasks.TASKS`) is a named instance:
:meth:`TaskData.from_task` names the files of its processes in a task sample directory (made
as ``hepfm finetune`` makes them, :func:`hepfm.samples.ensure_task_samples`: the task seed
stream, never pretraining events). Both are read by the same code, split by the same
function and checked against a model's pretraining events by the same check.

The test set of a task is fixed: a stratified ``test_fraction`` of the task's events drawn
with :data:`TEST_SEED`, whatever the training size or training seed, so every run of a
learning-curve scan is scored on the same events (or the explicit test set, when given).
Training and validation events are then drawn, class-balanced, from the remaining pool with
the run's own seed: ``train_size`` events to train on and ``val_fraction * train_size`` (at
least ``min_val``) to stop on.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Generic, TypeVar

import numpy as np

from hepfm.data.branches import BRANCH_MAPS, BranchMap
from hepfm.data.datasets import process_of_file, resolve_sources
from hepfm.data.labelled import LabelledEvents, expand_files, load_branch_map, read_labelled
from hepfm.data.reading import OnInvalid, check_on_invalid
from hepfm.data.table import EventTable
from hepfm.data.variations import Variation
from hepfm.errors import ArgumentError, HepfmError, InputDataError, naming
from hepfm.processes import PROCESSES
from hepfm.provenance import check_disjoint, describe_file, pretraining_events
from hepfm.samples import ensure_task_samples
from hepfm.tasks import Task, get_task, make_task, task_names

log = logging.getLogger(__name__)

#: Events per process that missing task samples are generated with.
DEFAULT_EVENTS_PER_PROCESS = 2500

#: Seed of the held-out test split of every task (never the training seed).
TEST_SEED = 2412_10665

#: Split settings of :func:`split_task` (a scan's runs record them).
SPLIT = {"test_seed": TEST_SEED, "test_fraction": 0.25, "val_fraction": 0.25, "min_val": 200}


@dataclass(frozen=True)
class TaskSamples:
    """The task sample directory of a task of processes, made when first needed."""

    task: Task
    data: str | os.PathLike[str] | None
    events: int
    generate: bool

    def sources(self) -> dict[str, list[str]]:
        """Process -> its files (missing samples generated, or the error naming the command
        that makes them: see :func:`hepfm.samples.ensure_task_samples`)."""
        path = ensure_task_samples(self.task.processes, self.data, self.events, self.generate)
        return resolve_sources(path, list(self.task.processes))


@dataclass
class TaskData:
    """Which files make a binary task's events, and how to read them.

    Training: `signal` and `background` files, or `mixed` files labelled by `label_branch`
    (1 signal, 0 background); likewise the optional explicit test set (`test_signal` +
    `test_background`, or `test_mixed`); without one, a fixed fraction of the events is held
    out. Files ``<name>.root`` and ``<name>_<k>.root`` are one process: at most
    `events_per_process` events are read from each (all when None). `min_leptons` keeps
    events with at least that many electrons + muons (those of the nominal events, so that a
    `variation`, :mod:`hepfm.data.variations`, shifts the same events in the same order).
    """

    name: str = "custom"
    signal: list[str] = field(default_factory=list)
    background: list[str] = field(default_factory=list)
    mixed: list[str] = field(default_factory=list)
    test_signal: list[str] = field(default_factory=list)
    test_background: list[str] = field(default_factory=list)
    test_mixed: list[str] = field(default_factory=list)
    label_branch: str | None = None
    weight_branch: str | None = None
    branch_map: BranchMap = field(default_factory=lambda: BRANCH_MAPS["delphes"])
    events_per_process: int | None = None
    min_leptons: int = 0
    samples: TaskSamples | None = None
    #: a systematic variation applied as the events are read (None: nominal)
    variation: Variation | None = None
    #: events with bad values: "error" (stop, naming file, branch and entry) or "drop"
    on_invalid: OnInvalid = "error"

    @classmethod
    def from_task(cls, task: Task | str,
                  data: str | os.PathLike[str] | Mapping[str, Any] | None = None,
                  events_per_process: int | None = None, generate: bool = False,
                  sample_events: int | None = None) -> TaskData:
        """A task of processes (a :class:`~hepfm.tasks.Task` or a built-in task's name) as
        the files of its processes in `data`: a task sample directory, or
        ``{process: files}``. Left at None it is ``<data dir>/tasks`` (``$HEPFM_DATA`` or
        ``~/.cache/hepfm/data``), and missing samples are generated there
        (`sample_events` each, default `events_per_process` or
        :data:`DEFAULT_EVENTS_PER_PROCESS`); for a directory given here that happens only
        with `generate`, else the error names the command to run. That happens when the
        events are first needed (:meth:`resolved`, :meth:`load`)."""
        task = get_task(task) if isinstance(task, str) else task
        made = cls(task.name, events_per_process=events_per_process,
                   min_leptons=task.min_leptons)
        if not isinstance(data, Mapping):
            return replace(made, samples=TaskSamples(task, data, sample_events or
                                                     events_per_process or
                                                     DEFAULT_EVENTS_PER_PROCESS, generate))
        return made._with_sources(task, resolve_sources(data, list(task.processes)))

    def _with_sources(self, task: Task, sources: Mapping[str, list[str]]) -> TaskData:
        return replace(self, signal=[f for p in task.signal for f in sources[p]],
                       background=[f for p in task.background for f in sources[p]],
                       samples=None)

    def resolved(self) -> TaskData:
        """This task with its files named (task samples made first, when missing)."""
        if self.samples is None:
            return self
        return self._with_sources(self.samples.task, self.samples.sources())

    @property
    def has_test(self) -> bool:
        """Whether the test events are files of their own."""
        return bool(self.test_signal or self.test_mixed)

    def load(self) -> tuple[LabelledEvents, LabelledEvents | None]:
        """Training events and the explicit test events (None without a test set). A test
        file with the content of a training file is an error; signal and background files
        sharing a file or its content a warning."""
        if self.samples is not None:
            return self.resolved().load()
        train = self._read(self.signal, self.background, self.mixed)
        if not self.has_test:
            return train, None
        test = self._read(self.test_signal, self.test_background, self.test_mixed)
        if shared := same_content([train], [test]):
            path, train_path = shared[0]
            raise InputDataError(f"test file '{path}' has the same content as training "
                                 f"file '{train_path}': test events must never be trained on")
        return train, test

    def _read(self, sig: list[str], bkg: list[str], mix: list[str]) -> LabelledEvents:
        ev = self._read_all(sig, bkg, mix)
        if self.min_leptons:
            nominal = ev if self.variation is None else replace(
                self, variation=None)._read_all(sig, bkg, mix, warn=False)
            ev = ev.subset(np.flatnonzero(lepton_counts(nominal.table) >= self.min_leptons))
        for cls_, kind in ((1, "signal"), (0, "background")):
            if not np.any(ev.y == cls_):
                raise InputDataError(f"task '{self.name}' has no {kind} events in "
                                     f"{', '.join(sig + bkg + mix)}")
        return ev

    def _read_all(self, sig: list[str], bkg: list[str], mix: list[str], warn: bool = True
                  ) -> LabelledEvents:
        """Every event of the files (no event selection), in order."""
        n_sig = len(_by_process(sig))
        groups = [(f, 1) for f in _by_process(sig)] + [(f, 0) for f in _by_process(bkg)] + [
            (f, None) for f in _by_process(mix)]
        parts = [read_labelled(files, self.branch_map, label=label,
                               label_branch=self.label_branch if label is None else None,
                               weight_branch=self.weight_branch,
                               max_events=self.events_per_process,
                               process=process_of_file(files[0]), variation=self.variation,
                               on_invalid=self.on_invalid)
                 for files, label in groups]
        if warn and not mix:
            _warn_shared(parts[:n_sig], parts[n_sig:])
        return LabelledEvents.concat(parts)


def _by_process(files: Sequence[str]) -> list[list[str]]:
    """`files` grouped into processes (``<name>.root``, ``<name>_<k>.root``), in order."""
    groups: dict[str, list[str]] = {}
    for f in files:
        groups.setdefault(process_of_file(f), []).append(f)
    return list(groups.values())


def same_content(first: Sequence[LabelledEvents], second: Sequence[LabelledEvents]
                 ) -> list[tuple[str, str]]:
    """(file of `second`, file of `first`) for every file of `second` with the bytes of a
    file of `first` (the same file, or a copy), in order."""
    seen = {f.sha256: f.path for ev in first for f in ev.files}
    return [(f.path, seen[f.sha256]) for ev in second for f in ev.files if f.sha256 in seen]


def _warn_shared(signal: Sequence[LabelledEvents], background: Sequence[LabelledEvents]
                 ) -> None:
    """Warn when a signal and a background file are the same file or have the same bytes."""
    for path, signal_path in same_content(signal, background):
        same = os.path.realpath(path) == os.path.realpath(signal_path)
        log.warning("signal file '%s' and background file '%s' %s: their events are "
                    "labelled both ways", signal_path, path,
                    "are the same file" if same else "have the same content")


def task_data(task: str | None = None, signal: str | Sequence[str] | None = None,
              background: str | Sequence[str] | None = None, *,
              mixed: str | Sequence[str] | None = None,
              test_signal: str | Sequence[str] | None = None,
              test_background: str | Sequence[str] | None = None,
              test_mixed: str | Sequence[str] | None = None,
              label_branch: str | None = None, weight_branch: str | None = None,
              branch_map: str | BranchMap | None = None, btag: str | None = None,
              data: str | os.PathLike[str] | None = None,
              events_per_process: int | None = None, generate: bool = False,
              sample_events: int | None = None, on_invalid: OnInvalid = "error") -> TaskData:
    """The :class:`TaskData` that ``hepfm finetune``/``scan`` options name: a built-in task
    (`task` alone), a task of process names (`signal` and `background` names, in the
    samples of `data`), or files (paths, globs, directories; `task` then names it).
    `btag` is the b-tag working point of the branch map; `on_invalid` what happens to
    events with bad values (``"error"`` or ``"drop"``)."""
    check_on_invalid(on_invalid)
    return replace(_task_data(task, signal, background, mixed, test_signal, test_background,
                              test_mixed, label_branch, weight_branch, branch_map, btag, data,
                              events_per_process, generate, sample_events),
                   on_invalid=on_invalid)


#: The arguments of :func:`task_data` that name the user's own events (not a built-in task).
OWN_EVENTS = ("signal", "background", "mixed", "test_signal", "test_background", "test_mixed")


def task_data_list(task: str | None = None, **sources: Any) -> list[TaskData]:
    """The :class:`TaskData` of every task that ``hepfm scan`` options name: with any of
    :data:`OWN_EVENTS` among `sources`, the one task :func:`task_data` makes of them (named
    `task`); else every built-in task of `task`, ``NAME,NAME`` or ``all``
    (:func:`hepfm.tasks.task_names`). `sources` are the other arguments of :func:`task_data`,
    used for every task."""
    own = any(sources.get(name) for name in OWN_EVENTS)
    names = [task] if own or not task else task_names(task)
    return [task_data(name, **sources) for name in names]


def _task_data(task: str | None, signal: Any, background: Any, mixed: Any, test_signal: Any,
               test_background: Any, test_mixed: Any, label_branch: str | None,
               weight_branch: str | None, branch_map: str | BranchMap | None,
               btag: str | None, data: Any, events_per_process: int | None, generate: bool,
               sample_events: int | None) -> TaskData:
    from hepfm.data.labelled import split_list

    items = split_list(signal) + split_list(background)
    files = [mixed, test_signal, test_background, test_mixed]
    if items and all(i in PROCESSES and not os.path.exists(i) for i in items) and not any(
            files):
        if not (signal and background):
            raise naming(ArgumentError, "give both {signal} and {background}", "signal",
                         "background")
        _no_btag(btag)
        made = make_task(task or "custom", split_list(signal), split_list(background))
        return replace(TaskData.from_task(made, data, events_per_process, generate,
                                          sample_events), branch_map=load_branch_map(
                                              branch_map, btag))
    if not items and not any(files):
        if not task:
            raise naming(ArgumentError, "give {task} (a built-in task, see 'hepfm tasks'), "
                         "or {signal} and {background} (process names or files), or {mixed}",
                         "task", "signal", "background", "mixed")
        _no_btag(btag)
        return replace(TaskData.from_task(task, data, events_per_process, generate,
                                          sample_events),
                       branch_map=load_branch_map(branch_map, btag))
    named = [i for i in items if i in PROCESSES and not os.path.exists(i)]
    if named and len(named) < len(items):
        raise naming(ArgumentError, f"{{signal}}/{{background}} mix process names "
                     f"({', '.join(named)}) and files: give either", "signal", "background")

    def pair(sig: Any, bkg: Any, mix: Any, prefix: str
             ) -> tuple[list[str], list[str], list[str]]:
        names = [prefix + n for n in ("signal", "background", "mixed")]

        def error(template: str) -> HepfmError:  # {signal}: test_signal for the test set
            for n in names:
                template = template.replace("{" + n.removeprefix(prefix) + "}", "{" + n + "}")
            return naming(ArgumentError, template, *names, "label_branch")

        if mix and (sig or bkg):
            raise error("give {mixed} (labelled by {label_branch}) or {signal} and "
                        "{background}, not both")
        if mix:
            if not label_branch:
                raise error("{mixed} needs {label_branch} (the branch of 0/1 per event)")
            return [], [], expand_files(mix, names[2])
        if bool(sig) != bool(bkg):
            raise error("give both {signal} and {background}")
        if not sig:
            return [], [], []
        return expand_files(sig, names[0]), expand_files(bkg, names[1]), []

    s, b, m = pair(signal, background, mixed, "")
    if not (s or m):
        raise naming(ArgumentError, "give {signal} and {background} files, or {mixed}",
                     "signal", "background", "mixed")
    ts, tb, tm = pair(test_signal, test_background, test_mixed, "test_")
    return TaskData(task or "custom", s, b, m, ts, tb, tm, label_branch, weight_branch,
                    load_branch_map(branch_map, btag), events_per_process)


def _no_btag(btag: str | None) -> None:
    if btag is not None:
        raise naming(ArgumentError, "{btag} applies to your own files (with {branch_map}); "
                     "the built-in samples have one b-tag flag", "btag", "branch_map")


def load_task_events(task: Task | str,
                     data: str | os.PathLike[str] | Mapping[str, Any] | None = None,
                     events_per_process: int | None = None, *, generate: bool = False,
                     pretrained: Any = None, allow_overlap: bool = False,
                     variation: Variation | None = None) -> EventTable:
    """All events of a task of processes (:meth:`TaskData.from_task`), label 1 for signal
    and 0 for background, as one table (for :class:`hepfm.FineTuner` and
    :func:`split_task`). With `pretrained` (a :class:`~hepfm.FoundationModel`), events it
    was pretrained on are refused (:class:`~hepfm.provenance.DataLeakError`), as
    ``hepfm finetune`` refuses them; with `allow_overlap` as well, they are kept with a
    warning. A `variation` (:mod:`hepfm.data.variations`) shifts the events as they are read
    (the same events, in the same order)."""
    events, _ = replace(TaskData.from_task(task, data, events_per_process, generate),
                        variation=variation).load()
    if pretrained is not None:
        overlap = check_overlap([events], {"the pretrained model": pretrained}, allow_overlap)
        if overlap:
            warnings.warn("task events the model was pretrained on: " + "; ".join(overlap),
                          stacklevel=2)
    return events.table


def check_overlap(parts: Sequence[LabelledEvents], models: Mapping[str, Any],
                  allow_overlap: bool = False) -> list[str]:
    """Refuse (or, with `allow_overlap`, list) events of `parts` that any of `models` (name
    -> model) was pretrained on (:func:`hepfm.provenance.check_disjoint`: files made by
    ``hepfm generate`` are matched by their Pythia seed stream, any other by its content)."""
    records = []
    for ev in parts:
        for f in ev.provenance():
            base = describe_file(f["path"], process_of_file(f["path"]), 0, 0)
            records += [{**base, "entries": [a, b]} for a, b in f["entries"]]
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


Events = TypeVar("Events", EventTable, LabelledEvents)


@dataclass
class Splits(Generic[Events]):
    """Train, validation and (fixed) test events of one task, labels 0/1."""

    train: Events
    val: Events
    test: Events


def split_task(events: Events, train_size: int | None, seed: int = 0,
               test_fraction: float = SPLIT["test_fraction"],
               val_fraction: float = SPLIT["val_fraction"], min_val: int = SPLIT["min_val"],
               *, test: Events | None = None) -> Splits[Events]:
    """Fixed test set (`test` when given, else a fixed fraction of `events`), then a
    balanced training set of `train_size` events (all but the validation share if None)
    and its validation set, drawn with `seed`. `events` is an
    :class:`~hepfm.data.table.EventTable` or :class:`~hepfm.data.labelled.LabelledEvents`."""
    train, val, held = split_indices(events.y, train_size, seed,
                                     0.0 if test is not None else test_fraction, val_fraction,
                                     min_val)
    return Splits(events.subset(train), events.subset(val),
                  test if test is not None else events.subset(held))


def split_indices(y: np.ndarray, train_size: int | None, seed: int = 0,
                  test_fraction: float = 0.25, val_fraction: float = 0.25,
                  min_val: int = 200) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sorted event indices of :func:`split_task`'s train, validation and test sets.

    ``test_fraction=0`` gives no test events (the test set comes from elsewhere).
    """
    if not 0 <= test_fraction < 1:
        raise ArgumentError(f"test_fraction must be in [0, 1), got {test_fraction}")
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


def _class_indices(y: np.ndarray, rng: np.random.Generator) -> list[np.ndarray]:
    return [rng.permutation(np.flatnonzero(y == c)) for c in (0, 1)]


def _balanced_take(pool: list[np.ndarray], n: int) -> list[np.ndarray]:
    """Take `n` events, half per class when possible, the shortfall from the other class."""
    half = [n // 2, n - n // 2]
    short = [max(0, h - len(p)) for h, p in zip(half, pool, strict=True)]
    take = [min(len(pool[0]), half[0] + short[1]), min(len(pool[1]), half[1] + short[0])]
    return [p[:k] for p, k in zip(pool, take, strict=True)]


def class_balanced(weight: np.ndarray | None, y: np.ndarray) -> np.ndarray | None:
    """Training weights: `weight` rescaled within each class so that the class's weights sum
    to its number of events (TMVA's ``NormMode=NumEvents``), keeping the class balance of
    the sampled events whatever the cross-sections; AUC and ROC are unchanged by it."""
    if weight is None:
        return None
    out = weight.astype(np.float64, copy=True)
    for c in np.unique(y):
        m = y == c
        total = out[m].sum()
        if total > 0:
            out[m] *= m.sum() / total
    return out
