"""Models shipped with hepfm: one directory per name beside this file, usable offline.

Only where they are and how a name or a path resolves to a model directory; reading one is
:meth:`hepfm.FoundationModel.from_pretrained`.
"""

from __future__ import annotations

import os
from pathlib import Path

from hepfm.errors import UnknownNameError

#: Where models shipped with the package live, one directory per name.
PRETRAINED_DIR = Path(__file__).parent
_CONFIG_NAME = "config.yaml"


def available_models() -> list[str]:
    """Names of the models shipped with this installation."""
    if not PRETRAINED_DIR.is_dir():
        return []
    return sorted(p.name for p in PRETRAINED_DIR.iterdir() if (p / _CONFIG_NAME).is_file())


def resolve_model_dir(name_or_dir: str | os.PathLike[str]) -> Path:
    """The directory of a run (an existing path) or of a shipped model (a name)."""
    path = Path(name_or_dir).expanduser()
    if path.is_dir():
        return path
    shipped = PRETRAINED_DIR / str(name_or_dir)
    if isinstance(name_or_dir, str) and "/" not in name_or_dir and shipped.is_dir():
        return shipped
    known = available_models()
    err = UnknownNameError("pretrained model", str(name_or_dir), known or ["(none shipped)"])
    err.message += f"; '{name_or_dir}' is also not a directory"
    raise err
