"""`hepfm finetune` and `hepfm scan` end to end on the generated sample."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from hepfm.cli import app
from hepfm.errors import InputDataError
from hepfm.hub import load_pretrained
from hepfm.taskdata import load_task_events
from hepfm.tasks import get_task, make_task
from hepfm.training.scan import compute_accounting

runner = CliRunner()


def test_finetune_cli_writes_metrics_and_roc(generated_dir, tiny_pretrained, tmp_path):
    out = tmp_path / "ft"
    res = runner.invoke(app, ["finetune", "--task", "ttH_vs_tt", "--model", str(tiny_pretrained),
                              "--data", str(generated_dir), "--train-size", "100",
                              "--epochs", "2", "--events-per-process", "200",
                              "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "auc" in res.output and "rejection_70" in res.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["train_events"] == 100 and metrics["test_events"] == 100
    assert 0.0 <= metrics["auc"] <= 1.0 and metrics["epochs_to_best"] >= 1
    # the AUC's 68% test-bootstrap interval, as bootstrap_auc + percentile_interval give it
    from hepfm.analysis.metrics import bootstrap_auc, percentile_interval
    from hepfm.taskdata import split_task
    from hepfm.training.finetune import class_probabilities

    test = split_task(load_task_events(get_task("ttH_vs_tt"), generated_dir, 200), 100, 0).test
    proba = class_probabilities(load_pretrained(out), test, "task")[:, 1]
    lo, hi = percentile_interval(bootstrap_auc(test.y, proba, n_boot=1000)[:, 0])
    assert (metrics["auc_lo68"], metrics["auc_hi68"]) == pytest.approx((lo, hi), abs=1e-6)
    assert metrics["auc_lo68"] < metrics["auc"] < metrics["auc_hi68"]
    assert "(68% bootstrap)" in res.output
    roc = pd.read_csv(out / "roc.csv")
    assert roc["tpr"].is_monotonic_increasing and (out / "roc.png").stat().st_size > 1000
    model = load_pretrained(out)
    assert model.heads["task"].out.out_features == 1


def test_finetune_records_the_release_it_started_from(generated_dir, tiny_pretrained,
                                                      tmp_path):
    import shutil

    import yaml

    from hepfm.atomic import file_sha256
    from hepfm.models.release import stamp_release

    released = tmp_path / "tiny-fm"
    shutil.copytree(tiny_pretrained, released)
    stamp_release(released, "tiny-fm", "1.2.0", releases_file=tmp_path / "releases.yaml")
    sha = file_sha256(released / "model.safetensors")
    out = tmp_path / "ft"
    res = runner.invoke(app, ["finetune", "--task", "ttH_vs_tt", "--model", str(released),
                              "--data", str(generated_dir), "--train-size", "60",
                              "--epochs", "1", "--events-per-process", "200", "--mode",
                              "frozen", "--out", str(out)])
    assert res.exit_code == 0, res.output
    want = {"name": "tiny-fm", "version": "1.2.0", "weights_sha256": sha}
    assert json.loads((out / "metrics.json").read_text())["from_model"] == want
    # the fine-tuned model's own directory keeps it too (hepfm predict reports it)
    assert yaml.safe_load((out / "config.yaml").read_text())["base_model"] == want
    assert load_pretrained(out).identity["weights_sha256"] == file_sha256(
        out / "model.safetensors") != sha
    # an unreleased directory is named by the path given, without a version
    unreleased = {"name": str(tiny_pretrained), "version": None,
                  "weights_sha256": file_sha256(tiny_pretrained / "model.safetensors")}
    assert load_pretrained(tiny_pretrained).identity == unreleased


def test_finetune_cli_custom_task_and_errors(generated_dir, tiny_pretrained, tmp_path):
    res = runner.invoke(app, ["finetune", "--signal", "ZH", "--background", "Z_jets",
                              "--model", str(tiny_pretrained), "--data", str(generated_dir),
                              "--train-size", "100", "--epochs", "1",
                              "--events-per-process", "200", "--out", str(tmp_path / "c")])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["finetune", "--task", "ttH_vs_ttbar"])
    assert res.exit_code == 2 and "ttH_vs_tt" in res.output
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputDataError, match="hepfm generate --processes ttH,tt"):
        from hepfm.samples import ensure_samples

        ensure_samples(get_task("ttH_vs_tt").processes, empty, 100, 0, generate=False)


def test_task_without_events_of_one_class(generated_dir, tmp_path):
    (tmp_path / "ttH.root").symlink_to(generated_dir / "ttH.root")
    (tmp_path / "tt.root").symlink_to(generated_dir / "ttH.root")  # wrong file on purpose
    task = make_task("t", ["ttH"], ["tt"])
    table = load_task_events(task, tmp_path)
    assert set(table.y.tolist()) == {0, 1}  # labels come from the file's process name
    with pytest.raises(InputDataError, match="no signal events"):
        load_task_events(task, {"ttH": [], "tt": str(generated_dir / "tt.root")})


def test_scan_one_row_per_run_resumes_and_accounts(generated_dir, tiny_pretrained, tmp_path):
    args = ["scan", "--task", "ttH_vs_tt", "--model", str(tiny_pretrained),
            "--data", str(generated_dir), "--sizes", "40,80", "--modes", "scratch,frozen",
            "--seeds", "0,1", "--epochs", "1", "--events-per-process", "200",
            "--out", str(tmp_path)]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    frame = pd.read_csv(tmp_path / "scan.csv")
    assert len(frame) == 2 * 2 * 2
    assert not frame.duplicated(["mode", "train_size", "seed"]).any()
    assert set(frame["model"]) == {"none", "pretrained"}
    assert (tmp_path / "learning_curve_ttH_vs_tt.png").stat().st_size > 1000
    from hepfm.atomic import file_sha256

    models = json.loads((tmp_path / "models.json").read_text())
    assert models["pretrained"]["weights_sha256"] == file_sha256(
        tiny_pretrained / "model.safetensors")
    efficiency = pd.read_csv(tmp_path / "label_efficiency.csv")
    assert sorted(efficiency["train_size"]) == [40, 80]
    assert (efficiency["curve"] == "frozen").all()
    assert "ttH_vs_tt: frozen at 40 training events matches scratch at" in res.output
    before = (tmp_path / "scan.csv").read_text()
    res = runner.invoke(app, args)  # an existing scan directory: --resume, or refused
    assert res.exit_code == 2 and "--resume" in res.output
    assert runner.invoke(app, [*args, "--resume"]).exit_code == 0  # nothing left to run
    assert (tmp_path / "scan.csv").read_text() == before


def test_compute_accounting_by_hand():
    rows = []
    for seed in (0, 1):
        rows += [
            {"task": "a", "model": "none", "mode": "scratch", "train_size": 100, "seed": seed,
             "auc": 0.70, "train_seconds": 10.0, "best_epoch": 3},
            {"task": "a", "model": "none", "mode": "scratch", "train_size": 1000, "seed": seed,
             "auc": 0.80, "train_seconds": 100.0, "best_epoch": 3},
            {"task": "a", "model": "p", "mode": "full", "train_size": 100, "seed": seed,
             "auc": 0.81, "train_seconds": 20.0, "best_epoch": 2},
        ]
    table, breakeven = compute_accounting(pd.DataFrame(rows), pretrain_seconds=240.0)
    row = table[table["task"] == "a"].iloc[0]
    assert row["curve"] == "full"
    assert row["scratch_best_auc"] == pytest.approx(0.80) and row["finetune_size"] == 100
    assert row["saved_seconds"] == pytest.approx(80.0)
    assert breakeven == {"full": 3}  # 240 s of pretraining / 80 s saved per task
    total = table[table["task"] == "total (1/1 tasks reached)"].iloc[0]
    assert total["scratch_seconds"] == pytest.approx(100.0)


def test_scan_rejects_bad_sizes_by_name():
    res = runner.invoke(app, ["scan", "--task", "ttH_vs_tt", "--sizes", "300,abc"])
    assert res.exit_code == 2 and "'--sizes': must be integers" in res.output
    res = runner.invoke(app, ["scan", "--task", "ttH_vs_tt", "--sizes", "0,300"])
    assert res.exit_code == 2 and "at least 2" in res.output
