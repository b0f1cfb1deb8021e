"""Loading by name: the friendly functions around :class:`~hepfm.models.FoundationModel`.

``load_pretrained(name_or_dir)`` is ``FoundationModel.from_pretrained``: a run directory, or
the name of a model shipped with the package (``src/hepfm/pretrained/<name>/``, available
offline; :func:`available_models` lists them). ``save_pretrained(model, dir)`` is
``model.save_pretrained(dir)``. The directory format lives in :mod:`hepfm.models.model_dir`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from hepfm.errors import ArgumentError, HepfmError, naming
from hepfm.models.foundation import FoundationModel
from hepfm.models.model_dir import CONFIG_NAME, FORMAT_VERSION, WEIGHTS_NAME, read_config
from hepfm.pretrained import DEFAULT_MODEL, PRETRAINED_DIR, available_models, resolve_model_dir


def load_pretrained(name_or_dir: str | os.PathLike[str], device: str | torch.device = "cpu"
                    ) -> FoundationModel:
    """A model directory or a shipped model by name, in eval mode on `device`
    (:meth:`FoundationModel.from_pretrained`)."""
    return FoundationModel.from_pretrained(name_or_dir, device=device)


def load_model(source: str | os.PathLike[str] | None = None, device: str | torch.device = "cpu"
               ) -> FoundationModel:
    """The model `source` names (a model directory or a shipped name), or the default
    shipped model :data:`~hepfm.pretrained.DEFAULT_MODEL` when None."""
    if source is None:
        if DEFAULT_MODEL not in available_models():
            found = (f"no shipped model '{DEFAULT_MODEL}' in this installation; pretrain one "
                     "with 'hepfm pretrain --processes all --out runs/pretrain' and pass")
            raise HepfmError(f"{found} its directory as the model ('runs/pretrain')"
                             ).for_cli(f"{found} --model runs/pretrain")
        source = DEFAULT_MODEL
    return load_pretrained(source, device)


def parse_models(spec: str | Sequence[str] | Mapping[str, str | None] | None
                 ) -> dict[str, str | None]:
    """Labelled models of a comparison: ``NAME_OR_DIR`` (label ``pretrained``),
    ``label=DIR,label=DIR``, a list of such items or a mapping; None is the default model.
    Every model is checked to be a model directory (its ``config.yaml`` is read)."""
    if spec is None:
        return {"pretrained": None}
    if isinstance(spec, Mapping):
        items = list(spec.items())
    else:
        parts = [p.strip() for s in ([spec] if isinstance(spec, str) else spec)
                 for p in str(s).split(",") if p.strip()]
        items = [tuple(p.split("=", 1)) if "=" in p else ("pretrained", p) for p in parts]
    models: dict[str, str | None] = {}
    for label, source in items:
        label = label.strip()
        if not label:
            raise _models_error("{models}: a model label is empty (give label=DIR)")
        if label in models:
            raise _models_error(f"{{models}}: the label '{label}' is given twice")
        if source is not None:
            read_config(resolve_model_dir(str(source).strip()))
        models[label] = None if source is None else str(source).strip()
    if not models:
        raise _models_error("{models}: no model given")
    return models


def _models_error(template: str) -> HepfmError:
    """An ArgumentError about the models of a comparison: ``models`` in Python (the
    argument of :func:`~hepfm.training.task_run.scan_tasks`), ``--model`` on the CLI."""
    return naming(ArgumentError, template, "models", options={"models": "--model"})


def save_pretrained(model: FoundationModel, directory: str | os.PathLike[str],
                    extra: dict[str, Any] | None = None) -> Path:
    """``model.save_pretrained(directory, **extra)``; `extra` goes into config.yaml."""
    return model.save_pretrained(directory, **(extra or {}))


__all__ = ["CONFIG_NAME", "FORMAT_VERSION", "PRETRAINED_DIR", "WEIGHTS_NAME",
           "available_models", "load_model", "load_pretrained", "parse_models", "read_config",
           "resolve_model_dir", "save_pretrained"]
