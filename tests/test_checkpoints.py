"""Checkpoints and model directories: never unpickled, whole or absent, saved on SIGTERM.

Issue 15 items 1 and 3: a pickle payload in ``last.ckpt`` is refused without running (and the
test proves it would run if unpickled); resume falls back to the previous good checkpoint; a
model directory killed between its two files is detected; temporaries are swept; SIGTERM
during ``hepfm pretrain`` leaves a checkpoint that ``--resume`` continues from.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

import hepfm.hub as hub
import hepfm.models.model_dir as model_dir
from hepfm.atomic import atomic_path, sweep_temporaries
from hepfm.cli import _on_sigterm, app
from hepfm.errors import CheckpointError
from hepfm.hub import load_pretrained, save_pretrained
from hepfm.models import FoundationModel, ModelConfig
from hepfm.training.checkpoints import SafeCheckpointIO, load_checkpoint, resume_checkpoint
from tests._data_helpers import random_events, write_delphes

TINY = {"hidden": 16, "blocks": 1, "head_hidden": 16}


class _Payload:
    """Unpickling this object calls ``os.makedirs(marker)``: code run by loading a file."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.makedirs, (self.marker,))


def _poison(path: Path, marker: Path) -> Path:
    torch.save({"state_dict": {}, "epoch": 0, "global_step": 0, "x": _Payload(marker)}, path)
    return path


def test_pickle_payload_would_run_but_is_refused(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    marker = tmp_path / "payload-ran"
    ckpt = _poison(tmp_path / "last.ckpt", marker)
    torch.load(ckpt, weights_only=False)  # what an unpickling load does: the payload runs
    assert marker.is_dir()
    marker.rmdir()
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")  # as in the reproduction
    with pytest.raises(CheckpointError, match=r"last\.ckpt: refused.*os\.makedirs"):
        load_checkpoint(ckpt)
    with pytest.raises(CheckpointError, match=r"cannot resume.*last\.ckpt: refused"):
        resume_checkpoint(tmp_path)
    assert not marker.exists()


def test_resume_falls_back_to_previous_good_checkpoint(tmp_path: Path) -> None:
    good = tmp_path / "best.ckpt"
    torch.save({"state_dict": {"w": torch.ones(2)}, "epoch": 3}, good)
    os.utime(good, (time.time() - 60, time.time() - 60))
    truncated = tmp_path / "last.ckpt"
    truncated.write_bytes(good.read_bytes()[:100])  # a copy cut short under the final name
    with pytest.warns(UserWarning, match=r"resuming from .*best\.ckpt instead.*last\.ckpt: "
                                         r"unreadable checkpoint"):
        assert resume_checkpoint(tmp_path) == good
    _poison(truncated, tmp_path / "marker")
    with pytest.warns(UserWarning, match=r"last\.ckpt: refused"):
        assert resume_checkpoint(tmp_path) == good
    assert not (tmp_path / "marker").exists()


def test_checkpoint_io_writes_beside_target_and_leaves_old_file_on_failure(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "checkpoints" / "last.ckpt"
    io = SafeCheckpointIO()
    io.save_checkpoint({"state_dict": {"w": torch.zeros(3)}, "epoch": 1}, target)
    assert load_checkpoint(target)["epoch"] == 1
    written: list[Path] = []
    real_save = torch.save

    def dying_save(obj, f, *args, **kwargs):
        written.append(Path(f))
        Path(f).write_bytes(b"PK\x03\x04half")
        raise KeyboardInterrupt  # killed mid-write

    monkeypatch.setattr(torch, "save", dying_save)
    with pytest.raises(KeyboardInterrupt):
        io.save_checkpoint({"state_dict": {}, "epoch": 2}, target)
    monkeypatch.setattr(torch, "save", real_save)
    assert written[0].parent == target.parent  # same file system: a rename, never a copy
    assert load_checkpoint(target)["epoch"] == 1
    assert [p.name for p in target.parent.iterdir()] == ["last.ckpt"]


def test_sigterm_in_cli_removes_the_temporary_of_an_unfinished_write(tmp_path: Path) -> None:
    target = tmp_path / "model.safetensors"
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        with pytest.raises(SystemExit) as exit_info, atomic_path(target) as tmp:
            tmp.write_bytes(b"half")
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert exit_info.value.code == 128 + signal.SIGTERM
    assert list(tmp_path.iterdir()) == []


def test_sweep_removes_only_old_temporaries(tmp_path: Path) -> None:
    stale = tmp_path / ".last.ckpt.k3j2h1.tmp"
    fresh = tmp_path / ".model.safetensors.a8b7c6.tmp"
    keep = [tmp_path / "last.ckpt", tmp_path / ".hidden", tmp_path / "notes.tmp"]
    for p in [stale, fresh, *keep]:
        p.write_text("x")
    os.utime(stale, (time.time() - 3600, time.time() - 3600))
    assert sweep_temporaries(tmp_path, min_age_s=600) == [stale]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [fresh.name] + [p.name for p in keep])


# ----------------------------------------------------------------------- model directories
def _tiny(seed: int) -> FoundationModel:
    torch.manual_seed(seed)
    return FoundationModel(ModelConfig(**TINY))


def test_model_directory_killed_between_files_is_detected(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    save_pretrained(_tiny(0), tmp_path, extra={"seed": 0})
    load_pretrained(tmp_path)

    def killed(*args, **kwargs):
        raise KeyboardInterrupt  # SIGINT/SIGKILL after the weights, before the config

    monkeypatch.setattr(model_dir, "write_text", killed)
    with pytest.raises(KeyboardInterrupt):
        save_pretrained(_tiny(1), tmp_path, extra={"seed": 1})
    monkeypatch.undo()
    # before: the new weights loaded silently with the old config (seed 0)
    with pytest.raises(CheckpointError, match=r"no config\.yaml.*incomplete model directory"):
        load_pretrained(tmp_path)


def test_weights_from_elsewhere_do_not_match_config(tmp_path: Path) -> None:
    a = save_pretrained(_tiny(0), tmp_path / "a", extra={"seed": 0})
    b = save_pretrained(_tiny(1), tmp_path / "b", extra={"seed": 1})
    (a / "model.safetensors").write_bytes((b / "model.safetensors").read_bytes())
    with pytest.raises(CheckpointError, match=r"a/model\.safetensors: does not match "
                                              r"config\.yaml \(SHA-256 differs\)"):
        load_pretrained(a)


def test_shipped_name_wins_over_local_folder(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    shipped = hub.available_models()
    if not shipped:
        pytest.skip("no shipped model in this installation")
    name = shipped[0]
    monkeypatch.chdir(tmp_path)
    save_pretrained(_tiny(0), tmp_path / name, extra={"origin": "local"})
    with pytest.warns(UserWarning, match=rf"'{name}' is the shipped model.*'\./{name}'"):
        model = load_pretrained(name)
    assert model.run_config.get("origin") != "local"
    with pytest.warns(UserWarning, match="shipped model"):
        assert hub.resolve_model_dir(name) == hub.PRETRAINED_DIR / name
    assert load_pretrained(f"./{name}").run_config["origin"] == "local"


# ------------------------------------------------------------------- pretraining end to end
def _sample(directory: Path, events: int = 200) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for i, process in enumerate(("ttH", "tt")):
        write_delphes(directory / f"{process}.root", random_events(events, seed=i))
    return directory


def _pretrain_args(data: Path, out: Path, *extra: str) -> list[str]:
    return ["pretrain", "--processes", "ttH,tt", "--data", str(data), "--out", str(out),
            "--device", "cpu", "--threads", "1", *extra]


@pytest.mark.slow
def test_resume_refuses_payload_and_falls_back(tmp_path: Path) -> None:
    from hepfm.training.pretrain import PretrainConfig, pretrain

    data, run = _sample(tmp_path / "data"), tmp_path / "run"
    pretrain(PretrainConfig("ttH,tt", "multiclass", data), run, events_per_process=200, epochs=1,
             batch_size=64, device="cpu", model_config=TINY, progress=False, verbose=False)
    ckpts = run / "checkpoints"
    marker = tmp_path / "payload-ran"
    _poison(ckpts / "last.ckpt", marker)
    (ckpts / ".last.ckpt.x1y2z3.tmp").write_bytes(b"left by SIGKILL")
    with pytest.warns(UserWarning, match=r"best\.ckpt instead.*last\.ckpt: refused"):
        result = pretrain(out_dir=run, epochs=2, resume=True, device="cpu", progress=False,
                          verbose=False)
    assert result.metrics["best_epoch"] in (0, 1)
    assert not (ckpts / ".last.ckpt.x1y2z3.tmp").exists()
    assert not marker.exists()
    for name in ("last.ckpt", "best.ckpt"):
        _poison(ckpts / name, marker)
    out = CliRunner().invoke(app, ["pretrain", "--resume", "--out", str(run)])
    assert out.exit_code == 2
    assert out.output.startswith("error: cannot resume") and "last.ckpt: refused" in out.output
    assert "Traceback" not in out.output and not marker.exists()


@pytest.mark.slow
def test_sigterm_saves_a_checkpoint_and_resume_continues(tmp_path: Path) -> None:
    data, run = _sample(tmp_path / "data"), tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(Path(__file__).parents[1] / "src"), os.environ.get("PYTHONPATH", "")])}
    cmd = [sys.executable, "-m", "hepfm.cli", *_pretrain_args(
        data, run, "--epochs", "200", "--batch-size", "8", "--events-per-process", "200")]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=env)
    last = run / "checkpoints" / "last.ckpt"
    deadline = time.time() + 300
    while not last.exists():  # the end of epoch 0
        assert proc.poll() is None, proc.communicate()[0][-2000:]
        assert time.time() < deadline
        time.sleep(0.05)
    step0 = load_checkpoint(last)["global_step"]
    time.sleep(0.3)
    proc.send_signal(signal.SIGTERM)
    output = proc.communicate(timeout=180)[0]
    assert proc.returncode == 128 + signal.SIGTERM, output[-2000:]
    assert "stopped by SIGTERM" in output and "--resume" in output
    ckpt = load_checkpoint(last)
    assert ckpt["global_step"] > step0  # saved at SIGTERM, not the end-of-epoch one
    assert not [p for p in run.rglob("*.tmp")]
    assert not (run / "model.safetensors").exists()
    epochs = ckpt["epoch"] + 2
    result = CliRunner().invoke(app, ["pretrain", "--resume", "--out", str(run),
                                      "--epochs", str(epochs)])
    assert result.exit_code == 0, result.output
    assert f"model saved in {run}" in result.output and "macro AUC" in result.output
    assert "Loading `train_dataloader`" not in result.output
    model = load_pretrained(run)
    assert model.run_config["processes"] == ["ttH", "tt"]
    assert load_checkpoint(last)["global_step"] > ckpt["global_step"]
