"""Exact model identity: versions, weights SHA-256, pinned names, the release history and
portable provenance in shipped model directories."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
import yaml
from typer.testing import CliRunner

from hepfm import load_pretrained
from hepfm.atomic import file_sha256
from hepfm.cli import app
from hepfm.errors import ArgumentError, CheckpointError
from hepfm.models.foundation import FoundationModel, ModelConfig
from hepfm.models.model_dir import identity_of
from hepfm.models.release import absolute_paths, portable_config, stamp_release
from hepfm.pretrained import PRETRAINED_DIR, available_models, read_releases, split_pin
from hepfm.provenance import DataLeakError, check_disjoint, find_overlap, pretraining_events

TINY = {"hidden": 8, "blocks": 1, "head_hidden": 8, "dropout": 0.0}
STREAM = {"seed": 1, "label_id": 5, "chunk_size": 500, "first_chunk": 0,
          "settings": "b8c3dfd341b5fbd9"}


def _config(name: str) -> dict:
    return yaml.safe_load((PRETRAINED_DIR / name / "config.yaml").read_text())


def _save(path: Path, init: int, **extra) -> Path:
    torch.manual_seed(init)
    return FoundationModel(ModelConfig(**TINY)).save_pretrained(path, **extra)


# ---------------------------------------------------------------------- shipped models
@pytest.mark.parametrize("name", ["hepfm-base", "hepfm-small"])
def test_shipped_model_records_its_release(name):
    config = _config(name)
    sha = file_sha256(PRETRAINED_DIR / name / "model.safetensors")
    assert config["name"] == name and config["weights_sha256"] == sha
    released = [r for r in read_releases() if r["name"] == name]
    assert {"version": config["version"], "sha": sha} in [
        {"version": r["version"], "sha": r["weights_sha256"]} for r in released]
    model = load_pretrained(name)
    assert model.identity == {"name": name, "version": config["version"],
                              "weights_sha256": sha}
    # pinned by version or by the start of the SHA-256: the same weights
    assert load_pretrained(f"{name}@{config['version']}").identity == model.identity
    assert load_pretrained(f"{name}@{sha[:10]}").identity == model.identity
    # no path of the machine that built it
    assert absolute_paths(config) == [] and "data_dir" not in config


def test_versions_of_shipped_models():
    # re-pretrained on another detector under the same name: a new major version
    assert _config("hepfm-base")["version"] == "2.0.0"
    assert _config("hepfm-small")["version"] == "2.0.0"
    base = {r["version"]: r["weights_sha256"] for r in read_releases()
            if r["name"] == "hepfm-base"}
    assert set(base) == {"1.0.0", "2.0.0"} and base["1.0.0"] != base["2.0.0"]
    small = {r["version"]: r["weights_sha256"] for r in read_releases()
             if r["name"] == "hepfm-small"}
    assert set(small) == {"1.0.0", "2.0.0"} and small["1.0.0"] != small["2.0.0"]
    assert set(available_models()) <= {r["name"] for r in read_releases()}


def test_an_earlier_version_is_refused_not_replaced():
    with pytest.raises(CheckpointError, match=r"hepfm-small 1\.0\.0 \(weights dd3105622d7b.*"
                       r"not in this installation.*hepfm-small 2\.0\.0"):
        load_pretrained("hepfm-small@1.0.0")
    with pytest.raises(CheckpointError, match=r"hepfm-base 1\.0\.0 \(weights 420c5165b9d4.*"
                       r"not in this installation.*hepfm-base 2\.0\.0"):
        load_pretrained("hepfm-base@1.0.0")
    with pytest.raises(CheckpointError, match=r"no such version of hepfm-base.*2\.0\.0"):
        load_pretrained("hepfm-base@1.1.0")
    with pytest.raises(CheckpointError, match="neither a version"):
        load_pretrained("hepfm-base@latest")
    assert split_pin("hepfm-base@1.0.0") == ("hepfm-base", "1.0.0")
    assert split_pin("hepfm-base") == ("hepfm-base", None)
    res = CliRunner().invoke(app, ["finetune", "--task", "ttH_vs_tt", "--model",
                                   "hepfm-small@1.0.0"])
    assert res.exit_code == 2 and "hepfm-small 1.0.0" in res.output


def test_shipped_directory_with_other_weights_is_refused(monkeypatch, tmp_path):
    import hepfm.pretrained as pretrained

    shipped = tmp_path / "shipped"
    shutil.copytree(PRETRAINED_DIR, shipped)
    monkeypatch.setattr(pretrained, "PRETRAINED_DIR", shipped)
    monkeypatch.setattr(pretrained, "RELEASES_FILE", shipped / "releases.yaml")
    base = shipped / "hepfm-base"
    _save(base, 3, name="hepfm-base", version="2.0.0")  # new weights, the old version
    with pytest.raises(CheckpointError, match=r"hepfm-base 2\.0\.0 was released with weights "
                       r"f8a795c35b7f.*need a new version"):
        load_pretrained("hepfm-base")


def test_models_command_fits_80_columns():
    res = CliRunner().invoke(app, ["models"], env={"COLUMNS": "80"})
    assert res.exit_code == 0, res.output
    assert max(len(line) for line in res.output.splitlines()) <= 80
    for name in ("hepfm-base", "hepfm-small"):
        config = _config(name)
        row = next(line for line in res.output.splitlines() if name in line)
        assert config["version"] in row and config["weights_sha256"][:12] in row


# ---------------------------------------------------------------------- loading checks
def test_weights_checked_on_load_with_a_one_line_error(tmp_path):
    a = _save(tmp_path / "a", 0)
    b = _save(tmp_path / "b", 1)
    assert identity_of(a)["weights_sha256"] == file_sha256(a / "model.safetensors")
    (a / "model.safetensors").write_bytes((b / "model.safetensors").read_bytes())
    with pytest.raises(CheckpointError) as err:
        load_pretrained(a)
    assert "\n" not in str(err.value)
    assert str(a / "model.safetensors") in str(err.value) and "SHA-256 differs" in str(err.value)
    with pytest.raises(CheckpointError, match="SHA-256 differs"):
        identity_of(a)


# ---------------------------------------------------------------------- stamping releases
def test_stamp_release_records_version_hash_and_portable_provenance(tmp_path):
    releases = tmp_path / "releases.yaml"
    events = [{"file": "/data/pre/tt_0.root", "process": "tt", "entries": [0, 100],
               "stream": STREAM},
              {"file": "/elsewhere/own.root", "process": "own", "entries": [0, 5],
               "sha256": "ab" * 32}]
    d = _save(tmp_path / "tiny-fm", 0, data_dir="/data/pre", pretraining_events=events,
              seed=4)
    sha = file_sha256(d / "model.safetensors")
    release = stamp_release(d, "tiny-fm", "1.0.0", note="first", releases_file=releases)
    assert release["weights_sha256"] == sha and release["version"] == "1.0.0"
    config = yaml.safe_load((d / "config.yaml").read_text())
    assert list(config)[:4] == ["format", "hepfm_version", "name", "version"]
    assert config["name"] == "tiny-fm" and config["weights_sha256"] == sha
    assert "data_dir" not in config and config["seed"] == 4
    assert [r["file"] for r in config["pretraining_events"]] == ["tt_0.root", "own.root"]
    assert config["pretraining_events"][0]["stream"] == STREAM
    assert config["pretraining_events"][1]["sha256"] == "ab" * 32
    assert load_pretrained(d).identity == {"name": "tiny-fm", "version": "1.0.0",
                                           "weights_sha256": sha}
    # stamping again is a no-op; the history holds one entry
    assert stamp_release(d, "tiny-fm", "1.0.0", releases_file=releases) == release
    assert len(read_releases(releases)) == 1

    _save(d, 1)  # retrained: other weights in the same directory
    with pytest.raises(CheckpointError, match=r"tiny-fm 1\.0\.0 was released with weights"):
        stamp_release(d, "tiny-fm", "1.0.0", releases_file=releases)
    with pytest.raises(ArgumentError, match=r"0\.9\.0 of tiny-fm is not above.*1\.0\.0"):
        stamp_release(d, "tiny-fm", "0.9.0", releases_file=releases)
    with pytest.raises(ArgumentError, match="semantic version"):
        stamp_release(d, "tiny-fm", "1.1", releases_file=releases)
    assert stamp_release(d, "tiny-fm", "1.1.0", releases_file=releases)["version"] == "1.1.0"
    assert [r["version"] for r in read_releases(releases)] == ["1.0.0", "1.1.0"]

    old = _save(tmp_path / "old" / "tiny-fm", 0)  # the 1.0.0 weights again
    with pytest.raises(CheckpointError, match=r"released as tiny-fm 1\.0\.0"):
        stamp_release(old, "tiny-fm", "2.0.0", releases_file=releases)


def test_stamp_release_refuses_other_absolute_paths(tmp_path):
    d = _save(tmp_path / "tiny-fm", 0, source="/home/someone/runs/pre")
    with pytest.raises(CheckpointError, match=r"absolute paths of this machine in source"):
        stamp_release(d, "tiny-fm", "1.0.0", releases_file=tmp_path / "r.yaml")
    assert not (tmp_path / "r.yaml").exists()
    assert "name" not in yaml.safe_load((d / "config.yaml").read_text())


# ---------------------------------------------------------------------- overlap check
def test_overlap_check_works_with_relative_file_names():
    """Events are identified by their stream, not by where the file lies."""
    seen = portable_config({"data_dir": "/data/pre", "pretraining_events": [
        {"file": "/data/pre/tt_0.root", "process": "tt", "entries": [0, 1000],
         "stream": STREAM}]})["pretraining_events"]
    assert seen[0]["file"] == "tt_0.root"
    task = [{"file": "/other/host/tt.root", "process": "tt", "entries": [0, 600],
             "stream": {**STREAM, "chunk_size": 300}}]  # the same seed stream, other chunks
    # chunks 0 and 1 of 300 events are the first 300 events of chunks 0 and 1 of 500
    assert [n for _, _, n in find_overlap(seen, task)] == [600]
    with pytest.raises(DataLeakError, match=r"600 events of /other/host/tt\.root.*tt_0\.root"):
        check_disjoint(seen, task, "tiny-fm")
    later = [{**task[0], "stream": {**STREAM, "first_chunk": 2}}]
    assert check_disjoint(seen, later, "tiny-fm") == []


def test_shipped_record_still_refuses_its_own_pretraining_events():
    seen = pretraining_events(_config("hepfm-base"))
    ttH = next(r for r in seen if r["process"] == "ttH" and r["stream"]["first_chunk"] == 20)
    assert ttH["file"] == "ttH_20.root"
    task = [{"file": "/data/tasks/ttH.root", "process": "ttH", "entries": [0, 50],
             "stream": dict(ttH["stream"])}]
    with pytest.raises(DataLeakError, match=r"50 events of /data/tasks/ttH\.root.*ttH_20"):
        check_disjoint(seen, task, "hepfm-base")
