"""Models shipped with hepfm: one directory per name beside this file, usable offline.

Only where they are and how a name or a path resolves to a model directory; reading one is
:meth:`hepfm.FoundationModel.from_pretrained`.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any

from hepfm.errors import UnknownNameError

#: Where models shipped with the package live, one directory per name.
PRETRAINED_DIR = Path(__file__).parent
#: The shipped model that fine-tuning starts from when no other is named.
DEFAULT_MODEL = "hepfm-base"
_CONFIG_NAME = "config.yaml"


def available_models() -> list[str]:
    """Names of the models shipped with this installation."""
    if not PRETRAINED_DIR.is_dir():
        return []
    return sorted(p.name for p in PRETRAINED_DIR.iterdir() if (p / _CONFIG_NAME).is_file())


def describe_models() -> list[dict[str, Any]]:
    """One row per shipped model: its architecture, pretraining data and test scores, read
    from its ``config.yaml`` and ``metrics.json`` (nothing is loaded into torch)."""
    import yaml

    rows = []
    for name in available_models():
        path = PRETRAINED_DIR / name
        config = yaml.safe_load((path / _CONFIG_NAME).read_text())
        metrics_file = path / "metrics.json"
        metrics = json.loads(metrics_file.read_text()) if metrics_file.is_file() else {}
        model, test = config.get("model", {}), metrics.get("test", {})
        rows.append({
            "name": name, "default": name == DEFAULT_MODEL,
            "objective": config.get("objective"),
            "width": model.get("hidden"), "blocks": model.get("blocks"),
            "processes": len(config.get("processes") or []),
            "events_per_process": config.get("events_per_process"),
            "train_events": metrics.get("events", {}).get("train"),
            "test_events": test.get("events"), "accuracy": test.get("accuracy"),
            "macro_auc": test.get("macro_auc"),
            "megabytes": sum(f.stat().st_size for f in path.iterdir()) / 1e6,
        })
    return rows


def resolve_model_dir(name_or_dir: str | os.PathLike[str]) -> Path:
    """The directory of a shipped model (a name) or of a run (an existing path). A shipped
    name wins over a folder of the same name in the working directory (a warning says so;
    give ``./<name>`` for the folder)."""
    if isinstance(name_or_dir, str) and name_or_dir in available_models():
        if Path(name_or_dir).is_dir():
            warnings.warn(f"'{name_or_dir}' is the shipped model; the folder "
                          f"'{Path(name_or_dir).absolute()}' of the same name is not used "
                          f"(give './{name_or_dir}' to load it)", UserWarning, stacklevel=3)
        return PRETRAINED_DIR / name_or_dir
    path = Path(name_or_dir).expanduser()
    if path.is_dir():
        return path
    known = available_models()
    err = UnknownNameError("pretrained model", str(name_or_dir), known or ["(none shipped)"])
    err.message += f"; '{name_or_dir}' is also not a directory"
    raise err
