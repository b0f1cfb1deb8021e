"""Model directories: ``save_pretrained`` writes one, ``load_pretrained`` reads one back.

A model directory holds exactly two files:

- ``config.yaml``: format version, hepfm version, architecture (``model``), feature names,
  normalisation, and provenance given by the trainer (``processes``, ``labels``, ``seed``...);
- ``model.safetensors``: every weight and normalisation buffer, no pickled Python objects.

``load_pretrained`` accepts a directory path or the name of a model shipped with the package
(``src/hepfm/pretrained/<name>/``, available offline); a shipped name wins over a folder of
the same name in the working directory (give ``./<name>`` for the folder).

A directory is whole or refused: each file is written to a temporary name and moved into
place with ``os.replace``; ``config.yaml`` is removed before the weights are replaced and
written last, holding the weights' SHA-256 (``weights_sha256``), which loading checks. A save
killed between the two files leaves no config (an incomplete directory) or a config whose
hash does not match: both are a :class:`~hepfm.errors.CheckpointError`, never a model
with the wrong provenance.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import torch
import yaml
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from hepfm import __version__
from hepfm.atomic import atomic_path, file_sha256, write_text
from hepfm.errors import CheckpointError, UnknownNameError
from hepfm.models.foundation import FoundationModel, ModelConfig
from hepfm.models.network import default_features

CONFIG_NAME = "config.yaml"
WEIGHTS_NAME = "model.safetensors"
FORMAT_VERSION = 1
#: Where models shipped with the package live, one directory per name.
PRETRAINED_DIR = Path(__file__).parent / "pretrained"


def available_models() -> list[str]:
    """Names of the models shipped with this installation."""
    if not PRETRAINED_DIR.is_dir():
        return []
    return sorted(p.name for p in PRETRAINED_DIR.iterdir() if (p / CONFIG_NAME).is_file())


def resolve_model_dir(name_or_dir: str | os.PathLike[str]) -> Path:
    """The directory of a run (path) or of a shipped model (name)."""
    shipped = PRETRAINED_DIR / str(name_or_dir)
    if isinstance(name_or_dir, str) and name_or_dir in available_models():
        if Path(name_or_dir).is_dir():
            warnings.warn(f"'{name_or_dir}' is the shipped model; the folder "
                          f"'{Path(name_or_dir).absolute()}' of the same name is not used "
                          f"(give './{name_or_dir}' to load it)", UserWarning, stacklevel=3)
        return shipped
    path = Path(name_or_dir).expanduser()
    if path.is_dir():
        return path
    known = available_models()
    err = UnknownNameError("pretrained model", str(name_or_dir), known or ["(none shipped)"])
    err.message += f"; '{name_or_dir}' is also not a directory"
    raise err


def _normalisation(model: FoundationModel) -> dict[str, Any]:
    stats = getattr(model, "stats", None)
    if stats is not None and hasattr(stats, "to_dict"):
        return stats.to_dict()
    return model.backbone.normalizer.to_dict()


def save_pretrained(model: FoundationModel, directory: str | os.PathLike[str],
                    extra: dict[str, Any] | None = None) -> Path:
    """Write `model` to `directory` (created if needed); `extra` goes into config.yaml.

    `extra` holds provenance such as ``processes``, ``seed``, ``objective`` or ``metrics``.
    """
    directory = Path(directory).expanduser()
    directory.mkdir(parents=True, exist_ok=True)
    config: dict[str, Any] = {
        "format": FORMAT_VERSION,
        "hepfm_version": __version__,
        "model": model.config.to_dict(),
        "normalisation": _normalisation(model),
    }
    for key, val in (extra or {}).items():
        if key in config:
            raise ValueError(f"extra key '{key}' would overwrite a reserved config entry")
        config[key] = val
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    with atomic_path(directory / WEIGHTS_NAME) as tmp:
        save_file(state, str(tmp), metadata={"hepfm_version": __version__})
        config["weights_sha256"] = file_sha256(tmp)
        # no config while the weights change: a kill here leaves an incomplete directory
        (directory / CONFIG_NAME).unlink(missing_ok=True)
    write_text(directory / CONFIG_NAME, yaml.safe_dump(config, sort_keys=False))
    return directory


def verify_weights(directory: str | os.PathLike[str], config: dict[str, Any]) -> None:
    """Check that ``model.safetensors`` is the file ``config.yaml`` was written with
    (its ``weights_sha256``; directories written before hepfm recorded it are not checked)."""
    expected = config.get("weights_sha256")
    path = Path(directory) / WEIGHTS_NAME
    if expected is None or not path.is_file():
        return
    if file_sha256(path) != expected:
        raise CheckpointError(
            f"{path}: does not match {CONFIG_NAME} (SHA-256 differs): the weights were "
            "replaced after the config was written, or a save was interrupted. Save the "
            "model again, or restore both files together")


def read_config(directory: str | os.PathLike[str]) -> dict[str, Any]:
    """The parsed ``config.yaml`` of a model directory."""
    path = Path(directory) / CONFIG_NAME
    if not path.is_file():
        if (path.parent / WEIGHTS_NAME).is_file():
            raise CheckpointError(f"{path.parent}: {WEIGHTS_NAME} but no {CONFIG_NAME}: an "
                                  "incomplete model directory (a save was interrupted?); "
                                  "save the model again")
        raise CheckpointError(f"{path.parent}: no {CONFIG_NAME}; not a hepfm model directory")
    try:
        config = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise CheckpointError(f"{path}: not valid YAML ({err})") from None
    if not isinstance(config, dict) or "model" not in config:
        raise CheckpointError(f"{path}: no 'model' section; not a hepfm model config")
    return config


def _major(version: str) -> str:
    return str(version).split(".")[0]


def _check_compatible(config: dict[str, Any], where: Path) -> ModelConfig:
    saved_version = str(config.get("hepfm_version", "?"))
    if _major(saved_version) != _major(__version__):
        raise CheckpointError(
            f"{where}: written by hepfm {saved_version}, this is hepfm {__version__} "
            f"(major versions differ); retrain or install hepfm {_major(saved_version)}.x")
    if config.get("format", FORMAT_VERSION) > FORMAT_VERSION:
        raise CheckpointError(f"{where}: format {config['format']} is newer than this hepfm "
                              f"reads ({FORMAT_VERSION}); upgrade hepfm")
    saved_features = config["model"].get("features", {})
    current = default_features()
    diffs = []
    for kind, names in current.items():
        old = tuple(saved_features.get(kind, ()))
        if old != names:
            diffs.append(f"{kind} features: saved {list(old)}, this hepfm builds {list(names)}")
    if diffs:
        raise CheckpointError(f"{where}: input features differ: " + "; ".join(diffs))
    try:
        return ModelConfig.from_dict(config["model"])
    except (TypeError, ValueError) as err:
        raise CheckpointError(f"{where}: architecture not understood: {err}") from None


def _load_weights(model: FoundationModel, path: Path) -> None:
    if not path.is_file():
        raise CheckpointError(f"{path.parent}: no {WEIGHTS_NAME}")
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError) as err:
        raise CheckpointError(f"{path}: unreadable weights ({err})") from None
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    extra = sorted(set(state) - set(expected))
    shapes = [f"{k}: saved {tuple(state[k].shape)}, config gives {tuple(expected[k].shape)}"
              for k in sorted(set(state) & set(expected)) if state[k].shape != expected[k].shape]
    problems = []
    if missing:
        problems.append(f"missing weights {missing}")
    if extra:
        problems.append(f"unexpected weights {extra}")
    if shapes:
        problems.append("shape mismatch " + "; ".join(shapes))
    if problems:
        raise CheckpointError(f"{path}: weights do not match config.yaml's architecture: "
                              + "; ".join(problems))
    model.load_state_dict(state)


def load_pretrained(name_or_dir: str | os.PathLike[str], device: str | torch.device = "cpu"
                    ) -> FoundationModel:
    """Load a model directory or a shipped model by name, in eval mode on `device`.

    Raises :class:`~hepfm.errors.CheckpointError` naming what differs when the directory
    comes from another hepfm major version or another architecture or feature set.
    """
    directory = resolve_model_dir(name_or_dir)
    config = read_config(directory)
    model_config = _check_compatible(config, directory)
    stats = None
    if config.get("normalisation") is not None:
        try:
            from hepfm.data.normalization import FeatureStats

            stats = FeatureStats.from_dict(config["normalisation"])
        except Exception:  # the buffers in model.safetensors are what the model uses
            stats = None
    model = FoundationModel(model_config)
    _load_weights(model, directory / WEIGHTS_NAME)  # names an architecture mismatch first
    verify_weights(directory, config)
    model.stats = stats
    model.run_config = config
    if str(device) == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    return model.to(device).eval()


__all__ = ["available_models", "file_sha256", "load_pretrained", "read_config",
           "save_pretrained", "verify_weights"]
