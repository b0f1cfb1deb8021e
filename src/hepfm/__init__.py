"""hepfm: a pretrained graph-network foundation model for collider event classification.

The public API is re-exported here, lazily so that ``import hepfm`` stays fast:

- models: :class:`FoundationModel` (``from_pretrained`` / ``save_pretrained``),
  ``load_pretrained`` (its friendly alias), ``available_models``;
- fine-tuning: :class:`FineTuner` (a scikit-learn classifier), ``finetune``;
- tasks and their events: ``get_task``, ``make_task``, ``TASKS``, ``TaskData`` (a task as
  signal and background sources), ``task_data`` (``task_data_list``: several tasks),
  ``load_task_events``, ``split_task``;
  processes: ``PROCESSES``, ``PRETRAINING``;
- what the commands run: ``pretrain`` (with :class:`PretrainConfig`, :class:`ComputeConfig`),
  ``finetune_task``, ``scan_tasks``,
  ``predict_files``, ``export``, ``cka_report``; ``load_model``, ``parse_models``.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "PROCESSES": "hepfm.processes",
    "PRETRAINING": "hepfm.processes",
    "TASKS": "hepfm.tasks",
    "get_task": "hepfm.tasks",
    "make_task": "hepfm.tasks",
    "FoundationModel": "hepfm.models.foundation",
    "ModelConfig": "hepfm.models.config",
    "available_models": "hepfm.pretrained",
    "load_pretrained": "hepfm.hub",
    "save_pretrained": "hepfm.hub",
    "load_model": "hepfm.hub",
    "parse_models": "hepfm.hub",
    "TaskData": "hepfm.taskdata",
    "task_data": "hepfm.taskdata",
    "task_data_list": "hepfm.taskdata",
    "load_task_events": "hepfm.taskdata",
    "split_task": "hepfm.taskdata",
    "finetune": "hepfm.training.finetune",
    "FineTuner": "hepfm.training.finetune",
    "finetune_task": "hepfm.training.task_run",
    "scan_tasks": "hepfm.training.task_run",
    "pretrain": "hepfm.training.pretrain",
    "PretrainConfig": "hepfm.training.pretrain",
    "ComputeConfig": "hepfm.training.pretrain",
    "predict_files": "hepfm.inference",
    "export": "hepfm.exporting",
    "cka_report": "hepfm.analysis.cka_report",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'hepfm' has no attribute '{name}'")


def __dir__() -> list[str]:
    return sorted(__all__)
