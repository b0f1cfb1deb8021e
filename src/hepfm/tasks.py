"""Downstream classification tasks: a name, signal processes and background processes.

Five built-in tasks, each testing what its name says (docs/tasks.md: what separates signal
from background physically, and the information limit where known). Three use processes seen
in pretraining (``ttH_vs_tt``, ``VBF_vs_ggF``, ``ZH_vs_Z_jets``, as in arXiv:2412.10665);
``H4l_CPodd_vs_CPeven`` and ``Zprime_vs_tt`` use processes never seen in pretraining.
Users define their own with :func:`make_task` (or ``--signal``/``--background`` on the CLI).
"""

from __future__ import annotations

from dataclasses import dataclass

from hepfm.errors import ArgumentError, UnknownNameError, naming
from hepfm.processes import get_process


@dataclass(frozen=True)
class Task:
    """A binary classification task: signal (label 1) against background (label 0)."""

    name: str
    signal: tuple[str, ...]
    background: tuple[str, ...]
    metric: str = "auc"
    description: str = ""
    min_leptons: int = 0
    """Preselection: events need at least this many electrons + muons (0: none)."""

    @property
    def processes(self) -> tuple[str, ...]:
        """All processes the task needs, signal first."""
        return self.signal + self.background

    def label_of(self, process: str) -> int:
        """1 for a signal process, 0 for a background process."""
        if process in self.signal:
            return 1
        if process in self.background:
            return 0
        raise UnknownNameError(f"process of task {self.name}", process, list(self.processes))


def make_task(
    name: str, signal: list[str] | tuple[str, ...], background: list[str] | tuple[str, ...],
    description: str = "", min_leptons: int = 0,
) -> Task:
    """A new task, checking that every process exists and that both classes are non-empty."""
    if not signal or not background:
        raise ArgumentError(f"task '{name}' needs at least one signal and one background process")
    for p in (*signal, *background):
        get_process(p)
    overlap = set(signal) & set(background)
    if overlap:
        raise ArgumentError(f"task '{name}': {sorted(overlap)} cannot be signal and background")
    return Task(name, tuple(signal), tuple(background), description=description,
                min_leptons=min_leptons)


TASKS: dict[str, Task] = {
    t.name: t
    for t in (
        make_task("ttH_vs_tt", ["ttH"], ["tt"],
                  "ttH against top pairs: extra b jets / Higgs decay products (both pretrained)"),
        make_task("VBF_vs_ggF", ["VBF_H"], ["ggF_H"],
                  "VBF against gluon-fusion Higgs: two forward tagging jets, large m_jj and "
                  "delta eta_jj, little central radiation"),
        make_task("ZH_vs_Z_jets", ["ZH"], ["Z_jets"],
                  "ZH (Z -> ll) against Z + jets: the Higgs decay products (b pair at 125 GeV)"),
        make_task("H4l_CPodd_vs_CPeven", ["H4l_CPodd"], ["H4l_CPeven"],
                  "CP-odd against CP-even H -> ZZ* -> 4l, events with four reconstructed "
                  "leptons: decay-plane angle Phi and Z decay angles (unseen in pretraining)",
                  min_leptons=4),
        make_task("Zprime_vs_tt", ["Zprime_tt"], ["tt_highmass"],
                  "1 TeV Z' -> tt against SM tt in the same 800-1200 GeV m_tt window: the "
                  "resonance peak, production angle and colour flow, not HT (unseen signal)"),
    )
}


def get_task(name: str) -> Task:
    """The built-in task called `name`; a clear error listing the known tasks otherwise."""
    try:
        return TASKS[name]
    except KeyError:
        raise UnknownNameError("task", name, list(TASKS)) from None


def task_names(spec: str | None) -> list[str]:
    """Built-in task names of ``NAME,NAME`` or ``all``, each checked."""
    if not spec:
        raise naming(ArgumentError, "give {task=NAME,NAME} or {task='all'} (see 'hepfm "
                     "tasks')", "task")
    names = list(TASKS) if spec.strip() == "all" else [
        s.strip() for s in spec.split(",") if s.strip()]
    for name in names:
        get_task(name)
    return names
