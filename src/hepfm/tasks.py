"""Downstream classification tasks: a name, signal processes and background processes.

The five built-in tasks follow arXiv:2412.10665. Three use processes seen in pretraining;
``ttA_vs_ttH`` and ``Zprime_vs_tt`` have a signal the pretrained model has never seen.
Users define their own with :func:`make_task` (or ``--signal``/``--background`` on the CLI).
"""

from __future__ import annotations

from dataclasses import dataclass

from hepfm.errors import UnknownNameError
from hepfm.processes import get_process


@dataclass(frozen=True)
class Task:
    """A binary classification task: signal (label 1) against background (label 0)."""

    name: str
    signal: tuple[str, ...]
    background: tuple[str, ...]
    metric: str = "auc"
    description: str = ""

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
    description: str = "",
) -> Task:
    """A new task, checking that every process exists and that both classes are non-empty."""
    if not signal or not background:
        raise ValueError(f"task '{name}' needs at least one signal and one background process")
    for p in (*signal, *background):
        get_process(p)
    overlap = set(signal) & set(background)
    if overlap:
        raise ValueError(f"task '{name}': {sorted(overlap)} cannot be signal and background")
    return Task(name, tuple(signal), tuple(background), description=description)


TASKS: dict[str, Task] = {
    t.name: t
    for t in (
        make_task("ttH_vs_tt", ["ttH"], ["tt"], "ttH against top pairs (both pretrained)"),
        make_task("VBF_vs_ggF", ["VBF_H"], ["ggF_H"], "VBF against gluon-fusion Higgs"),
        make_task("ZH_vs_Z_jets", ["ZH"], ["Z_jets"], "ZH against Z + jets"),
        make_task("ttA_vs_ttH", ["ttA"], ["ttH"], "CP-odd ttA (unseen) against CP-even ttH"),
        make_task("Zprime_vs_tt", ["Zprime_tt"], ["tt"], "Z' → tt (unseen) against SM tt"),
    )
}


def get_task(name: str) -> Task:
    """The built-in task called `name`; a clear error listing the known tasks otherwise."""
    try:
        return TASKS[name]
    except KeyError:
        raise UnknownNameError("task", name, list(TASKS)) from None
