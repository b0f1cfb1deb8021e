"""The on-disk form of a model: a directory holding exactly two files.

- ``config.yaml``: format version, hepfm version, architecture (``model``), the input
  normalisation (a copy of the model's normaliser buffers, for people to read), and provenance
  given by the trainer (``processes``, ``labels``, ``seed``...); a released model also its
  ``name`` and ``version`` (:mod:`hepfm.models.release`);
- ``model.safetensors``: every weight and buffer (the normalisation included: what the model
  uses), no pickled Python objects.

A directory is whole or refused: each file is written to a temporary name and moved into
place with ``os.replace``; ``config.yaml`` is removed before the weights are replaced and
written last, holding the weights' SHA-256 (``weights_sha256``), which loading checks. A save
killed between the two files leaves no config (an incomplete directory) or a config whose
hash does not match: both are a :class:`~hepfm.errors.CheckpointError`, never a model with
the wrong provenance. Reading is strict: another major version, another feature
set or weights that do not fit the architecture raise a
:class:`~hepfm.errors.CheckpointError` naming what differs. :class:`FoundationModel`'s
``save_pretrained`` / ``from_pretrained`` are the entry points.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from hepfm import __version__
from hepfm.atomic import atomic_path, file_sha256, write_text
from hepfm.errors import ArgumentError, CheckpointError
from hepfm.models.config import ModelConfig, default_features

CONFIG_NAME = "config.yaml"
WEIGHTS_NAME = "model.safetensors"
FORMAT_VERSION = 1


def write_model_dir(directory: str | os.PathLike[str], model: nn.Module,
                    config: ModelConfig, normalisation: dict[str, Any],
                    extra: dict[str, Any] | None = None) -> Path:
    """Write `model`'s weights and `config.yaml` to `directory` (created if needed).

    `extra` (provenance such as ``processes``, ``seed``, ``objective``, ``metrics``) goes
    into ``config.yaml`` beside the reserved entries, which it may not overwrite.
    """
    directory = Path(directory).expanduser()
    directory.mkdir(parents=True, exist_ok=True)
    doc: dict[str, Any] = {
        "format": FORMAT_VERSION,
        "hepfm_version": __version__,
        "model": config.to_dict(),
        "normalisation": normalisation,
    }
    for key, val in (extra or {}).items():
        if key in doc:
            raise ArgumentError(f"extra key '{key}' would overwrite a reserved config entry")
        doc[key] = val
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    with atomic_path(directory / WEIGHTS_NAME) as tmp:
        save_file(state, str(tmp), metadata={"hepfm_version": __version__})
        doc["weights_sha256"] = file_sha256(tmp)
        # no config while the weights change: a kill here leaves an incomplete directory
        (directory / CONFIG_NAME).unlink(missing_ok=True)
    write_text(directory / CONFIG_NAME, yaml.safe_dump(doc, sort_keys=False))
    return directory


def verify_weights(directory: str | os.PathLike[str], config: dict[str, Any]) -> str | None:
    """Check that ``model.safetensors`` is the file ``config.yaml`` was written with (its
    ``weights_sha256``, required) and return the file's SHA-256 (None without the file)."""
    expected = config.get("weights_sha256")
    path = Path(directory) / WEIGHTS_NAME
    if expected is None:
        raise CheckpointError(f"{Path(directory) / CONFIG_NAME}: no weights_sha256, so "
                              f"{WEIGHTS_NAME} cannot be checked; save the model again")
    if not path.is_file():
        return None
    actual = file_sha256(path)
    if actual != expected:
        raise CheckpointError(
            f"{path}: does not match {CONFIG_NAME} (SHA-256 differs): the weights were "
            "replaced after the config was written, or a save was interrupted. Save the "
            "model again, or restore both files together")
    return actual


def model_identity(config: dict[str, Any], source: str | os.PathLike[str],
                   weights_sha256: str | None = None) -> dict[str, Any]:
    """What a run records about the model it started from: ``name`` (the released name, else
    `source` as given), ``version`` (None unless released) and ``weights_sha256``."""
    return {"name": str(config.get("name") or source), "version": config.get("version"),
            "weights_sha256": weights_sha256 or config.get("weights_sha256")}


def identity_of(name_or_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """:func:`model_identity` of a shipped name (pinned or not) or a model directory, with
    its weights checked against ``config.yaml`` (nothing is loaded into torch)."""
    from hepfm.pretrained import resolve_model_dir

    directory = resolve_model_dir(name_or_dir)
    config = read_config(directory)
    return model_identity(config, name_or_dir, verify_weights(directory, config))


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
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(err, "problem", None) or type(err).__name__
        raise CheckpointError(f"{path}: not valid YAML{where} ({problem})") from None
    if not isinstance(config, dict) or "model" not in config:
        raise CheckpointError(f"{path}: no 'model' section; not a hepfm model config")
    return config


def _major(version: str) -> str:
    return str(version).split(".")[0]


def model_config(config: dict[str, Any], where: Path) -> ModelConfig:
    """The architecture in a parsed ``config.yaml``, after checking that this hepfm reads it
    (same major version, a known format, the same input features)."""
    saved_version = str(config.get("hepfm_version", "?"))
    if _major(saved_version) != _major(__version__):
        raise CheckpointError(
            f"{where}: written by hepfm {saved_version}, this is hepfm {__version__} "
            f"(major versions differ); retrain or install hepfm {_major(saved_version)}.x")
    if config.get("format", FORMAT_VERSION) > FORMAT_VERSION:
        raise CheckpointError(f"{where}: format {config['format']} is newer than this hepfm "
                              f"reads ({FORMAT_VERSION}); upgrade hepfm")
    saved_features = config["model"].get("features", {})
    diffs = []
    for kind, names in default_features().items():
        old = tuple(saved_features.get(kind, ()))
        if old != names:
            diffs.append(f"{kind} features: saved {list(old)}, this hepfm builds {list(names)}")
    if diffs:
        raise CheckpointError(f"{where}: input features differ: " + "; ".join(diffs))
    try:
        return ModelConfig.from_dict(config["model"])
    except (TypeError, ValueError) as err:
        raise CheckpointError(f"{where}: architecture not understood: {err}") from None


def load_weights(model: nn.Module, path: Path) -> None:
    """Load ``model.safetensors`` into `model`, naming every missing, unexpected or
    mis-shaped weight when they do not match."""
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
