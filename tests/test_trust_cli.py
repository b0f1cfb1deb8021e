"""Significance, calibration and systematic variations through `hepfm finetune`, `predict`
and `scan`, checked against the Python functions on the same events."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import uproot
from typer.testing import CliRunner

from hepfm.analysis.significance import Yields, significance_metrics
from hepfm.cli import app
from hepfm.data import read_table
from hepfm.data.variations import Variation
from hepfm.hub import load_pretrained
from hepfm.taskdata import load_task_events, split_task
from hepfm.tasks import get_task
from hepfm.training.finetune import class_probabilities

runner = CliRunner()


@pytest.fixture(scope="module")
def finetuned(generated_dir, tiny_pretrained, tmp_path_factory):
    out = tmp_path_factory.mktemp("ft")
    res = runner.invoke(app, ["finetune", "--task", "ttH_vs_tt", "--model", str(tiny_pretrained),
                              "--data", str(generated_dir), "--train-size", "100",
                              "--epochs", "2", "--events-per-process", "200",
                              "--out", str(out), "--yields", "50,2000", "--calibrate",
                              "--variation", "jes_up,btag_down:0.2"])
    assert res.exit_code == 0, res.output
    return out, res.output


def test_finetune_records_significance_calibration_and_shifts(generated_dir, finetuned):
    out, output = finetuned
    m = json.loads((out / "metrics.json").read_text())
    task = get_task("ttH_vs_tt")
    test = split_task(load_task_events(task, generated_dir, 200), 100, 0).test
    proba = class_probabilities(load_pretrained(out), test, "task")[:, 1]
    ref = significance_metrics(test.y, proba, yields=Yields(50, 2000), n_boot=1000)
    for k in ("z_asimov", "z_binned", "sic", "z_asimov_lo68", "sic_hi68"):
        assert m[k] == pytest.approx(ref[k], rel=1e-5), k
    assert (m["signal_yield"], m["background_yield"]) == (50, 2000)
    assert m["z_asimov_lo68"] <= m["z_asimov"] <= m["z_asimov_hi68"]
    # calibration: the saved model's scores are the temperature-scaled ones
    assert m["temperature"] > 0 and m["val_nll"] <= m["val_nll_uncalibrated"] + 1e-9
    assert m["brier"] == pytest.approx(np.mean((proba - test.y) ** 2), rel=1e-5)
    assert (out / "reliability.png").stat().st_size > 1000
    curve = pd.read_csv(out / "reliability.csv")
    assert curve["events"].sum() == len(test)
    # the variation: the same test events read with JES up
    jes = split_task(load_task_events(task, generated_dir, 200, variation=Variation("jes_up")),
                     100, 0).test
    assert np.array_equal(jes.y, test.y) and not np.array_equal(jes.pt, test.pt)
    p_jes = class_probabilities(load_pretrained(out), jes, "task")[:, 1]
    from hepfm.analysis.metrics import rank_auc

    v = m["variations"]["jes_up"]
    assert v["auc_shift"] == pytest.approx(rank_auc(test.y, p_jes) - rank_auc(test.y, proba))
    assert v["auc_shift_lo68"] <= v["auc_shift"] <= v["auc_shift_hi68"]
    assert set(m["variations"]) == {"jes_up", "btag_down:0.2"}
    assert m["variation_settings"]["btag_down:0.2"]["size"] == 0.2
    for word in ("z_asimov", "sic", "brier", "temperature", "jes_up", "AUC shift"):
        assert word in output


def test_predict_with_a_variation(generated_dir, finetuned, tmp_path):
    model_dir, _ = finetuned
    data = generated_dir / "ttH.root"
    res = runner.invoke(app, ["predict", "--model", str(model_dir), "--input", str(data),
                              "--out", str(tmp_path), "--variation", "jes_up"])
    assert res.exit_code == 0, res.output
    out = tmp_path / "ttH_hepfm_jes_up.root"
    with uproot.open(out) as f:
        scores = f["hepfm"]["hepfm_score"].array(library="np")
        info = json.loads(str(f["hepfm_info"]))
    assert info["variation"] == {"name": "jes_up", "size": 0.026, "seed": 0}
    model = load_pretrained(model_dir)
    varied = class_probabilities(model, read_table(data, variation=Variation("jes_up")))[:, 1]
    nominal = class_probabilities(model, read_table(data))[:, 1]
    assert scores == pytest.approx(varied, abs=1e-6)
    assert not np.allclose(scores, nominal)
    res = runner.invoke(app, ["predict", "--model", str(model_dir), "--input", str(data),
                              "--out", str(tmp_path), "--variation", "jes_sideways"])
    assert res.exit_code == 2 and "jes_up" in res.output


def test_scan_reports_significance_and_variation_shifts(generated_dir, tiny_pretrained,
                                                        tmp_path):
    from hepfm.analysis.metrics import rank_auc
    from hepfm.training.scan import load_scan

    args = ["scan", "--task", "ttH_vs_tt", "--model", str(tiny_pretrained),
            "--data", str(generated_dir), "--sizes", "60", "--modes", "bdt,frozen",
            "--seeds", "0,1", "--epochs", "1", "--events-per-process", "200",
            "--out", str(tmp_path), "--bootstrap", "200", "--variation", "jes_down"]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    assert "z_asimov" in res.output and "jes_down" in res.output
    summary = pd.read_csv(tmp_path / "summary.csv")
    for col in ("z_asimov_mean", "z_asimov_lo68", "z_binned_mean", "sic_mean", "sic_hi68"):
        assert summary[col].notna().all(), col
    assert (summary["z_asimov_lo68"] <= summary["z_asimov_hi68"]).all()
    frame = load_scan(tmp_path)
    shifts = pd.read_csv(tmp_path / "variations.csv")
    assert set(shifts["curve"]) == {"bdt", "frozen"} and set(shifts["variation"]) == {
        "jes_down"}
    # the mean AUC shift of the BDT, by hand from the stored scores of its two seeds
    with np.load(next((tmp_path / "scores" / "ttH_vs_tt").glob("test-*.npz"))) as t:
        y = t["y"]
    ids = frame.loc[frame["mode"] == "bdt", "run_id"]
    d = [rank_auc(y, np.load(tmp_path / "scores" / "ttH_vs_tt" / f"{r}@jes_down.npy"))
         - rank_auc(y, np.load(tmp_path / "scores" / "ttH_vs_tt" / f"{r}.npy")) for r in ids]
    row = shifts[shifts["curve"] == "bdt"].iloc[0]
    assert row["auc_shift_mean"] == pytest.approx(np.mean(d), abs=1e-9)
    assert row["auc_shift_lo68"] <= row["auc_shift_hi68"]
    # asking for one more variation trains the runs again (their models are not stored)
    before = {p.name for p in (tmp_path / "scores" / "ttH_vs_tt").iterdir()}
    res = runner.invoke(app, [*args[:-1], "jes_down,les_up", "--resume"])
    assert res.exit_code == 0, res.output
    after = {p.name for p in (tmp_path / "scores" / "ttH_vs_tt").iterdir()}
    assert {f"{r}@les_up.npy" for r in frame["run_id"]} == after - before


@pytest.fixture(scope="module")
def other_sample(tmp_path_factory):
    """ttH and tt events of another seed: a second test sample of ttH_vs_tt."""
    pytest.importorskip("pythia8mc")
    from hepfm.generate import generate_samples

    out = tmp_path_factory.mktemp("other")
    generate_samples(["ttH", "tt"], 120, out, seed=7, workers=1, mpi=False, progress=False)
    return out


def test_scan_scores_every_run_on_another_test_sample(generated_dir, tiny_pretrained,
                                                     other_sample, tmp_path):
    from hepfm.analysis.metrics import rank_auc
    from hepfm.training.scan import load_scan

    args = ["scan", "--task", "ttH_vs_tt", "--model", str(tiny_pretrained),
            "--data", str(generated_dir), "--sizes", "60", "--modes", "bdt,frozen",
            "--seeds", "0,1", "--epochs", "1", "--events-per-process", "200",
            "--out", str(tmp_path), "--bootstrap", "200",
            "--test-sample", f"other={other_sample}"]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    assert "other test samples" in res.output
    shifts = pd.read_csv(tmp_path / "test_samples.csv")
    assert set(shifts["curve"]) == {"bdt", "frozen"} and set(shifts["sample"]) == {"other"}
    frame = load_scan(tmp_path)
    scores = tmp_path / "scores" / "ttH_vs_tt"
    run = json.loads((tmp_path / "runs" / f"{frame['run_id'].iloc[0]}.json").read_text())
    with np.load(scores / f"test-{run['test_samples']['other']}.npz") as t:
        y_other = t["y"]
    with np.load(scores / f"test-{frame['test_id'].iloc[0]}.npz") as t:
        y = t["y"]
    assert len(y_other) == len(read_table(sorted(other_sample.glob("*.root")))) != len(y)
    # the BDT's mean AUC on the other sample and its shift, by hand from the stored scores
    ids = frame.loc[frame["mode"] == "bdt", "run_id"]
    other = [rank_auc(y_other, np.load(scores / f"{r}@sample=other.npy")) for r in ids]
    nominal = [rank_auc(y, np.load(scores / f"{r}.npy")) for r in ids]
    row = shifts[shifts["curve"] == "bdt"].iloc[0]
    assert row["auc_sample_mean"] == pytest.approx(np.mean(other), abs=1e-9)
    assert row["auc_shift_mean"] == pytest.approx(np.mean(other) - np.mean(nominal), abs=1e-9)
    assert row["auc_shift_lo68"] < row["auc_shift_hi68"]
    assert row["z_asimov_shift_lo68"] <= row["z_asimov_shift_hi68"]
    # other test samples are no systematic variation of the same events
    assert not (tmp_path / "variations.csv").exists()
    # resumed with the same sample: nothing is trained again
    before = {p.name: p.stat().st_mtime_ns for p in scores.iterdir()}
    res = runner.invoke(app, [*args, "--resume"])
    assert res.exit_code == 0, res.output
    assert {p.name: p.stat().st_mtime_ns for p in scores.iterdir()} == before


@pytest.mark.parametrize("value, message", [
    ("other", "--test-sample: 'other': give NAME=DIR"),
    ("same={data}", "test sample 'same': file '{data}/ttH.root' has the content of")])
def test_scan_refuses_a_bad_test_sample(generated_dir, tiny_pretrained, tmp_path, value,
                                        message):
    res = runner.invoke(app, ["scan", "--task", "ttH_vs_tt", "--model", str(tiny_pretrained),
                              "--data", str(generated_dir), "--sizes", "60", "--modes",
                              "bdt", "--out", str(tmp_path / "scan"), "--test-sample",
                              value.format(data=generated_dir)])
    assert res.exit_code == 2, res.output
    assert message.format(data=generated_dir) in res.output.replace("\n", " ")
    assert len(res.output.strip().splitlines()) == 1
    assert not (tmp_path / "scan" / "runs").exists()
