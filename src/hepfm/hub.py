"""Loading by name: the friendly functions around :class:`~hepfm.models.FoundationModel`.

``load_pretrained(name_or_dir)`` is ``FoundationModel.from_pretrained``: a run directory, or
the name of a model shipped with the package (``src/hepfm/pretrained/<name>/``, available
offline; :func:`available_models` lists them). ``save_pretrained(model, dir)`` is
``model.save_pretrained(dir)``. The directory format lives in :mod:`hepfm.models.model_dir`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from hepfm.models.foundation import FoundationModel
from hepfm.models.model_dir import CONFIG_NAME, FORMAT_VERSION, WEIGHTS_NAME, read_config
from hepfm.pretrained import PRETRAINED_DIR, available_models, resolve_model_dir


def load_pretrained(name_or_dir: str | os.PathLike[str], device: str | torch.device = "cpu"
                    ) -> FoundationModel:
    """A model directory or a shipped model by name, in eval mode on `device`
    (:meth:`FoundationModel.from_pretrained`)."""
    return FoundationModel.from_pretrained(name_or_dir, device=device)


def save_pretrained(model: FoundationModel, directory: str | os.PathLike[str],
                    extra: dict[str, Any] | None = None) -> Path:
    """``model.save_pretrained(directory, **extra)``; `extra` goes into config.yaml."""
    return model.save_pretrained(directory, **(extra or {}))


__all__ = ["CONFIG_NAME", "FORMAT_VERSION", "PRETRAINED_DIR", "WEIGHTS_NAME",
           "available_models", "load_pretrained", "read_config", "resolve_model_dir",
           "save_pretrained"]
