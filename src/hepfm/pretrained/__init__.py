"""Models shipped with hepfm: one directory per name beside this file, usable offline.

Where they are, which versions of each name were ever released (``releases.yaml``: name,
version, weights SHA-256, date, what changed) and how a name, a pinned name
(``hepfm-base@2.0.0``, or ``@`` and the first 8 or more hex digits of the weights' SHA-256)
or a path resolves to a model directory. A shipped model's ``config.yaml`` records its
``name``, ``version`` and ``weights_sha256``; a shipped directory that is not the release
``releases.yaml`` lists under its version is refused, so an earlier name never silently
means other weights. Reading a directory is :meth:`hepfm.FoundationModel.from_pretrained`
(which checks the weights against the SHA-256); stamping a new release is
:func:`hepfm.models.release.stamp_release`.
"""

from __future__ import annotations

import json
import os
import re
import warnings
from pathlib import Path
from typing import Any

from hepfm.errors import ArgumentError, CheckpointError, UnknownNameError

#: Where models shipped with the package live, one directory per name.
PRETRAINED_DIR = Path(__file__).parent
#: The shipped model that fine-tuning starts from when no other is named.
DEFAULT_MODEL = "hepfm-base"
_CONFIG_NAME = "config.yaml"
#: Every release of every shipped name, shipped or not (the history of the names).
RELEASES_FILE = PRETRAINED_DIR / "releases.yaml"
#: Characters of the weights' SHA-256 shown to people (``hepfm models``, messages).
SHORT_SHA = 12
_VERSION = re.compile(r"^\d+\.\d+\.\d+$")
_SHA_PREFIX = re.compile(r"^[0-9a-f]{8,64}$")


def available_models() -> list[str]:
    """Names of the models shipped with this installation."""
    if not PRETRAINED_DIR.is_dir():
        return []
    return sorted(p.name for p in PRETRAINED_DIR.iterdir() if (p / _CONFIG_NAME).is_file())


def read_releases(path: str | os.PathLike[str] | None = None) -> list[dict[str, Any]]:
    """Every release in `path` (default :data:`RELEASES_FILE`): dicts with ``name``,
    ``version``, ``weights_sha256``, ``date`` and ``note``, oldest first ([] when there is
    no file)."""
    import yaml

    path = Path(RELEASES_FILE if path is None else path)
    if not path.is_file():
        return []
    doc = yaml.safe_load(path.read_text()) or {}
    releases = doc.get("releases") if isinstance(doc, dict) else None
    if not isinstance(releases, list) or not all(
            isinstance(r, dict) and {"name", "version", "weights_sha256"} <= set(r)
            for r in releases):
        raise CheckpointError(f"{path}: expected 'releases:', a list of entries with name, "
                              "version and weights_sha256")
    return [{**r, "version": str(r["version"])} for r in releases]


def version_key(version: str) -> tuple[int, int, int]:
    """``"1.10.0"`` -> ``(1, 10, 0)``, for ordering semantic versions."""
    if not _VERSION.match(str(version)):
        raise ArgumentError(f"'{version}' is not a semantic version MAJOR.MINOR.PATCH")
    major, minor, patch = (int(p) for p in str(version).split("."))
    return major, minor, patch


def split_pin(spec: str) -> tuple[str, str | None]:
    """``"hepfm-base@1.0.0"`` -> ``("hepfm-base", "1.0.0")``; no ``@``: ``(spec, None)``."""
    name, sep, pin = spec.rpartition("@")
    return (name, pin) if sep and name else (spec, None)


def _matches(pin: str, config: dict[str, Any]) -> bool:
    if _SHA_PREFIX.match(pin.lower()) and not _VERSION.match(pin):
        return str(config.get("weights_sha256", "")).startswith(pin.lower())
    return str(config.get("version")) == pin


def _read_config(directory: Path) -> dict[str, Any]:
    import yaml

    path = directory / _CONFIG_NAME
    try:
        config = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as err:
        raise CheckpointError(f"{path}: unreadable ({err})") from None
    return config if isinstance(config, dict) else {}


def check_release(name: str, config: dict[str, Any]) -> None:
    """Refuse a shipped model whose ``config.yaml`` is not the release ``releases.yaml``
    lists under its name and version (same weights SHA-256)."""
    where = PRETRAINED_DIR / name / _CONFIG_NAME
    version, sha = config.get("version"), config.get("weights_sha256")
    if config.get("name") != name or version is None or sha is None:
        raise CheckpointError(f"{where}: a shipped model must record name '{name}', version "
                              "and weights_sha256 (hepfm.models.release.stamp_release)")
    released = [r for r in read_releases() if r["name"] == name
                and r["version"] == str(version)]
    if not released:
        raise CheckpointError(f"{where}: {name} {version} is not in {RELEASES_FILE.name}; "
                              "stamp it with hepfm.models.release.stamp_release")
    if released[0]["weights_sha256"] != sha:
        raise CheckpointError(
            f"{where}: {name} {version} was released with weights "
            f"{released[0]['weights_sha256'][:SHORT_SHA]}, this directory holds "
            f"{str(sha)[:SHORT_SHA]}: changed weights need a new version")


def _pin_error(spec: str, name: str, pin: str, config: dict[str, Any]) -> CheckpointError:
    have = (f"{name} {config.get('version', '(no version)')} (weights "
            f"{str(config.get('weights_sha256', '?'))[:SHORT_SHA]})")
    if not (_VERSION.match(pin) or _SHA_PREFIX.match(pin.lower())):
        return CheckpointError(f"'{spec}': '{pin}' is neither a version (MAJOR.MINOR.PATCH) "
                               "nor 8 or more hex digits of the weights' SHA-256")
    earlier = [r for r in read_releases() if r["name"] == name and _matches(pin, r)]
    if earlier:
        r = earlier[0]
        return CheckpointError(
            f"'{spec}': {name} {r['version']} (weights {r['weights_sha256'][:SHORT_SHA]}, "
            f"{r.get('date', '')}) is not in this installation, which has {have}; install "
            f"the hepfm release that shipped it, or pin {name}@{config.get('version')}")
    return CheckpointError(f"'{spec}': no such version of {name}; this installation has "
                           f"{have}")


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
            "version": config.get("version"), "weights_sha256": config.get("weights_sha256"),
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
    give ``./<name>`` for the folder). ``NAME@VERSION`` (or ``NAME@SHA256_PREFIX``, 8+ hex
    digits) is that name only if its ``config.yaml`` records that version (or weights);
    anything else is a :class:`~hepfm.errors.CheckpointError` naming what this installation
    has. A shipped model must be the release ``releases.yaml`` lists (:func:`check_release`).
    """
    if isinstance(name_or_dir, str) and "@" in name_or_dir and not Path(
            name_or_dir).expanduser().is_dir():
        name, pin = split_pin(name_or_dir)
        if pin is not None:
            directory = resolve_model_dir(name)
            config = _read_config(directory)
            if not _matches(pin, config):
                raise _pin_error(name_or_dir, name, pin, config)
            return directory
    if isinstance(name_or_dir, str) and name_or_dir in available_models():
        if Path(name_or_dir).is_dir():
            warnings.warn(f"'{name_or_dir}' is the shipped model; the folder "
                          f"'{Path(name_or_dir).absolute()}' of the same name is not used "
                          f"(give './{name_or_dir}' to load it)", UserWarning, stacklevel=3)
        check_release(name_or_dir, _read_config(PRETRAINED_DIR / name_or_dir))
        return PRETRAINED_DIR / name_or_dir
    path = Path(name_or_dir).expanduser()
    if path.is_dir():
        return path
    known = available_models()
    err = UnknownNameError("pretrained model", str(name_or_dir), known or ["(none shipped)"])
    err.message += f"; '{name_or_dir}' is also not a directory"
    raise err
