"""Stamping a model directory as a release: a name, a semantic version and its weights' SHA-256.

A shipped model is a model directory (:mod:`hepfm.models.model_dir`) whose ``config.yaml``
records ``name``, ``version`` and ``weights_sha256``, and whose release is listed in
``releases.yaml`` (:data:`hepfm.pretrained.RELEASES_FILE`), the history of every name. To ship
a model, copy its run directory's ``config.yaml``, ``model.safetensors`` and ``metrics.json``
to ``src/hepfm/pretrained/<name>/`` and call::

    stamp_release("src/hepfm/pretrained/hepfm-base", "hepfm-base", "1.1.0",
                  note="12 x 80k events, multiclass")

Changed weights need a new version: a version is never reused for other weights, the same
weights are never released twice under one name, and versions of a name only go up (a new
major version when the events or detector the model was pretrained on change).
``config.yaml`` is made portable on the way: the pretraining files are named relative to
their sample directory (their Pythia stream, seeds and file names are what identify the
events, :mod:`hepfm.provenance`) and the sample directory itself is dropped; any other
absolute path left is refused.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

import yaml

from hepfm.atomic import write_text
from hepfm.errors import ArgumentError, CheckpointError
from hepfm.models.model_dir import CONFIG_NAME, read_config, verify_weights
from hepfm.pretrained import RELEASES_FILE, SHORT_SHA, read_releases, version_key

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
#: Keys that come first in a released config.yaml, in this order.
_HEAD = ("format", "hepfm_version", "name", "version")


def _is_absolute(value: str) -> bool:
    return (PurePosixPath(value).is_absolute() or PureWindowsPath(value).is_absolute()
            or value.startswith("~"))


def _relative(path: str, root: str | None) -> str:
    """`path` relative to `root` when inside it, else its file name."""
    if root and _is_absolute(path):
        try:
            return PurePosixPath(path).relative_to(root).as_posix()
        except ValueError:
            pass
    return PurePosixPath(path).name if _is_absolute(path) else path


def absolute_paths(value: Any, where: str = "") -> list[str]:
    """The keys (``a.b[2].c``) of every string in `value` that is an absolute path."""
    if isinstance(value, dict):
        return [k for key, v in value.items()
                for k in absolute_paths(v, f"{where}.{key}" if where else str(key))]
    if isinstance(value, list):
        return [k for i, v in enumerate(value) for k in absolute_paths(v, f"{where}[{i}]")]
    return [where] if isinstance(value, str) and _is_absolute(value) else []


def portable_config(config: dict[str, Any]) -> dict[str, Any]:
    """`config` without the paths of the machine that built it: each ``pretraining_events``
    file relative to ``data_dir`` (else its file name), ``data_dir`` dropped. Stream,
    seeds, entries and content hashes, which identify the events, are kept."""
    root = config.get("data_dir")
    out = {k: v for k, v in config.items() if k != "data_dir"}
    if isinstance(out.get("pretraining_events"), list):
        out["pretraining_events"] = [
            {**r, "file": _relative(str(r["file"]), root)} if isinstance(r, dict) and "file" in r
            else r for r in out["pretraining_events"]]
    return out


def _check_history(name: str, version: str, sha: str, releases: list[dict[str, Any]]
                   ) -> dict[str, Any] | None:
    """The release (name, version, sha) if already made, None if it may be made; raises
    when the version was released with other weights, the weights under another version,
    or the version is not above the latest of the name."""
    same_name = [r for r in releases if r["name"] == name]
    for r in same_name:
        if r["version"] == version:
            if r["weights_sha256"] == sha:
                return r
            raise CheckpointError(
                f"{name} {version} was released with weights "
                f"{r['weights_sha256'][:SHORT_SHA]}; these are {sha[:SHORT_SHA]}: give "
                "changed weights a new version")
        if r["weights_sha256"] == sha:
            raise CheckpointError(f"these weights ({sha[:SHORT_SHA]}) were released as "
                                  f"{name} {r['version']}; a new version needs new weights")
    latest = max((r["version"] for r in same_name), key=version_key, default=None)
    if latest is not None and version_key(version) <= version_key(latest):
        raise ArgumentError(f"version {version} of {name} is not above the latest "
                            f"release, {latest}")
    return None


def stamp_release(directory: str | os.PathLike[str], name: str, version: str, *,
                  note: str = "", date: str | None = None,
                  releases_file: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Record `name` and `version` in the model directory's ``config.yaml`` (made portable,
    :func:`portable_config`) and add the release to `releases_file` (default
    :data:`hepfm.pretrained.RELEASES_FILE`); returns the release.

    The weights are checked against the SHA-256 the config records. Stamping the same
    directory again is a no-op; reusing a version for other weights, releasing the same
    weights twice or a version not above the name's latest is an error.
    """
    directory = Path(directory)
    releases_file = Path(RELEASES_FILE if releases_file is None else releases_file)
    if not _NAME.match(name) or name != directory.name:
        raise ArgumentError(f"release name '{name}': letters, digits, '.', '_' and '-' only, "
                            f"and the name of its directory ('{directory.name}')")
    try:
        version_key(version)
    except ValueError as err:
        raise ArgumentError(f"release version: {err}") from None
    config = read_config(directory)
    sha = verify_weights(directory, config)
    if sha is None:
        raise CheckpointError(f"{directory}: no weights to release")
    releases = read_releases(releases_file)
    known = _check_history(name, version, sha, releases)
    config = portable_config(config)
    left = absolute_paths(config)
    if left:
        raise CheckpointError(f"{directory / CONFIG_NAME}: absolute paths of this machine in "
                              f"{', '.join(left)}; remove them before releasing")
    head = {k: config[k] for k in _HEAD[:2] if k in config}
    head.update(name=name, version=version)
    doc = {**head, **{k: v for k, v in config.items() if k not in _HEAD},
           "weights_sha256": sha}
    write_text(directory / CONFIG_NAME, yaml.safe_dump(doc, sort_keys=False))
    if known is not None:
        return known
    release = {"name": name, "version": version, "weights_sha256": sha,
               "date": date or time.strftime("%Y-%m-%d"), "note": note}
    write_text(releases_file, yaml.safe_dump({"releases": [*releases, release]},
                                             sort_keys=False, width=100))
    return release
