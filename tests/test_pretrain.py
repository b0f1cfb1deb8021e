"""End-to-end pretraining on the generated sample: run directory, reload, resume, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from typer.testing import CliRunner

from hepfm.cli import app
from hepfm.errors import HepfmError, InputDataError
from hepfm.hub import load_pretrained
from hepfm.processes import PRETRAINING
from hepfm.training.datamodule import EventDataModule
from hepfm.training.evaluate import class_scores, predict
from hepfm.training.pretrain import PretrainConfig, pretrain

TINY = {"hidden": 16, "blocks": 1, "head_hidden": 16, "dropout": 0.0}
pytestmark = pytest.mark.slow


def _run(data: Path, out: Path, epochs: int, resume: bool = False):
    return pretrain(PretrainConfig("all", "both", data), out, events_per_process=200, epochs=epochs,
                    batch_size=128, device="cpu", seed=3, resume=resume,
                    model_config=None if resume else TINY, progress=False, verbose=False)


@pytest.fixture(scope="module")
def run_dir(generated_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("pretrain") / "run"
    _run(generated_dir, out, epochs=1)
    return out


def test_resume_and_run_directory(run_dir: Path, generated_dir: Path) -> None:
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
    result = _run(generated_dir, run_dir, epochs=2, resume=True)
    for name in ("config.yaml", "model.safetensors", "run.yaml", "metrics.csv", "metrics.json",
                 "confusion_matrix.csv", "confusion_matrix.png", "checkpoints/best.ckpt",
                 "logs/version_0/metrics.csv", "logs/version_1/metrics.csv"):
        assert (run_dir / name).is_file(), name
    log = pd.read_csv(run_dir / "metrics.csv")
    assert sorted(log["epoch"].unique()) == [0, 1]  # epoch 0 before, epoch 1 after resuming
    cm = pd.read_csv(run_dir / "confusion_matrix.csv", index_col=0)
    assert list(cm.index) == list(PRETRAINING) and cm.shape == (12, 12)
    test = result.metrics["test"]
    assert 0 <= test["accuracy"] <= 1 and 0 <= test["macro_auc"] <= 1
    for key in ("accuracy", "macro_auc"):  # 68% test-bootstrap interval around the value
        assert test[f"{key}_lo68"] <= test[key] <= test[f"{key}_hi68"]
        assert test[f"{key}_hi68"] - test[f"{key}_lo68"] > 0
    assert set(test["multilabel_auc"])
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert config["seed"] == 3 and config["processes"] == list(PRETRAINING)
    assert config["model"]["hidden"] == 16
    assert "model saved in" in result.summary()
    assert f"[{test['accuracy_lo68']:.3f}, {test['accuracy_hi68']:.3f}]" in result.summary()


def test_reload_reproduces_logged_val_accuracy(run_dir: Path, generated_dir: Path) -> None:
    model = load_pretrained(run_dir)
    config = model.run_config
    log = pd.read_csv(run_dir / "metrics.csv").dropna(subset=["val/acc"])
    logged = float(log.loc[log["epoch"] == config["best_epoch"], "val/acc"].iloc[-1])
    dm = EventDataModule(generated_dir, config["processes"], 200, seed=config["seed"])
    dm.setup()
    assert dm.val is not None
    scores, y = class_scores(predict(model, dm.val)["multiclass"], dm.val.y, PRETRAINING)
    assert np.mean(scores.argmax(1) == y) == pytest.approx(logged, abs=1e-6)


def test_missing_files_name_the_generate_command(tmp_path: Path) -> None:
    with pytest.raises(InputDataError, match=r"(?s)ttH, tt.*hepfm generate --processes ttH,tt"):
        pretrain(PretrainConfig("ttH,tt", data_dir=tmp_path), tmp_path / "run", verbose=False)
    result = CliRunner().invoke(app, ["pretrain", "--processes", "ttH", "--data",
                                      str(tmp_path), "--out", str(tmp_path / "run")])
    assert result.exit_code == 2
    assert "hepfm generate --processes ttH --events-per-process 2000" in result.output
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("objective", ["both", "mpm"])
def test_bf16_mixed_precision_trains(generated_dir: Path, tmp_path: Path, objective: str) -> None:
    """The autocast path GPU users take (``--precision bf16-mixed``), here on the CPU:
    finite losses and weights, and a float32 model saved."""
    config = PretrainConfig("ttH,tt,QCD_multijet", objective, generated_dir, 100, 1, 64,
                            seed=1, model_config=TINY)
    result = pretrain(config, tmp_path / "run", device="cpu", precision="bf16-mixed",
                      progress=False, verbose=False)
    log = pd.read_csv(tmp_path / "run" / "metrics.csv")
    losses = log.filter(like="loss").to_numpy(dtype=float)
    assert np.isfinite(losses[~np.isnan(losses)]).all() and (~np.isnan(losses)).any()
    model = load_pretrained(tmp_path / "run")
    params = list(model.parameters())
    assert all(p.dtype == torch.float32 and bool(p.isfinite().all()) for p in params)
    assert result.metrics["test"]


@pytest.mark.parametrize("objective", ["multiclass", "multilabel", "both", "mpm",
                                       "mpm+multiclass"])
def test_every_compared_objective_trains_and_reloads(generated_dir: Path, tmp_path: Path,
                                                     objective: str) -> None:
    """The five objectives of benchmarks/objectives.py: a few steps each, the model reloads
    with the heads the objective trained, and the multilabel head has the truth targets."""
    from hepfm.data.labels import MULTILABELS

    run = tmp_path / "run"
    config = PretrainConfig("ttH,tt,ZH", objective, generated_dir, 60, 1, 64, seed=2,
                            model_config=TINY)
    pretrain(config, run, device="cpu", progress=False, verbose=False)
    model = load_pretrained(run)
    assert model.run_config["objective"] == objective
    assert tuple(model.config.labels) == MULTILABELS
    assert ("mpm" in model.run_config) == ("mpm" in objective)
    assert all(bool(p.isfinite().all()) for p in model.parameters())


def test_keyword_settings_reach_config_and_compute(tmp_path: Path) -> None:
    from hepfm.training.pretrain import ComputeConfig, PretrainConfig, _with_overrides

    config, compute = _with_overrides(PretrainConfig("ttH,tt", epochs=3), ComputeConfig(),
                                      {"epochs": 5, "device": "cpu", "threads": 2})
    assert (config.processes, config.epochs) == ("ttH,tt", 5)
    assert (compute.device, compute.threads, compute.devices) == ("cpu", 2, 1)
    with pytest.raises(TypeError, match="'epoch'"):
        pretrain(PretrainConfig("ttH,tt", data_dir=tmp_path), tmp_path / "run", epoch=3)
    assert not (tmp_path / "run").exists()


def test_given_settings_are_what_run_yaml_records(tmp_path: Path) -> None:
    from hepfm.training.pretrain import PretrainConfig

    given = PretrainConfig(["ttH", "tt"], data_dir="~/s", epochs=2, streaming=False).given()
    assert given == {"processes": "ttH,tt", "data_dir": str(Path("~/s").expanduser()),
                     "epochs": 2}


def test_resume_refuses_a_run_yaml_with_unknown_settings(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "run.yaml").write_text("processes: ttH,tt\nmodel: {hidden: 16}\n")
    with pytest.raises(HepfmError, match=r"run\.yaml' holds unknown settings model$"):
        pretrain(out_dir=run, resume=True, verbose=False)
    (run / "run.yaml").write_text("processes: [ttH\n")
    with pytest.raises(HepfmError, match="not valid YAML"):
        pretrain(out_dir=run, resume=True, verbose=False)
