"""hepfm: a pretrained graph-network foundation model for collider event classification.

The public API is re-exported here lazily so that ``import hepfm`` stays fast:
``load_pretrained``, ``finetune``, ``PROCESSES``, ``TASKS``.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "PROCESSES": "hepfm.processes",
    "PRETRAINING": "hepfm.processes",
    "TASKS": "hepfm.tasks",
    "load_pretrained": "hepfm.hub",
    "save_pretrained": "hepfm.hub",
    "finetune": "hepfm.training.finetune",
    "FineTuner": "hepfm.training.finetune",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'hepfm' has no attribute '{name}'")
