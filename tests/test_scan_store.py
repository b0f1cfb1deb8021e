"""Scan directories: the BDT baseline on the same test set, stored scores, safe resume keys
and many writers."""

from __future__ import annotations

import json
import multiprocessing as mp
import shutil

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score
from typer.testing import CliRunner

from hepfm.cli import app
from hepfm.training.scan import ScanStore, load_scan, read_scan_csv

runner = CliRunner()


def _args(data, model, out, epochs=1, modes="bdt,scratch,frozen"):
    return ["scan", "--task", "ttH_vs_tt", "--model", f"01={model}", "--data", str(data),
            "--sizes", "60", "--modes", modes, "--seeds", "0", "--epochs", str(epochs),
            "--events-per-process", "200", "--out", str(out), "--resume"]


@pytest.fixture(scope="module")
def scanned(generated_dir, tiny_pretrained, tmp_path_factory):
    out = tmp_path_factory.mktemp("scan")
    res = runner.invoke(app, _args(generated_dir, tiny_pretrained, out))
    assert res.exit_code == 0, res.output
    return out


def test_bdt_is_scored_on_the_same_test_events(scanned):
    frame = read_scan_csv(scanned / "scan.csv")
    assert sorted(frame["mode"]) == ["bdt", "frozen", "scratch"]
    assert frame["test_id"].nunique() == 1 and frame["test_events"].nunique() == 1
    bdt = frame[frame["mode"] == "bdt"].iloc[0]
    assert bdt["model"] == "none" and 0.5 < bdt["auc"] <= 1.0  # ttH vs tt: HT, b-tags
    assert bdt["train_events"] == 60
    test = np.load(scanned / "scores" / "ttH_vs_tt" / f"test-{bdt['test_id']}.npz")
    assert len(test["y"]) == bdt["test_events"] == 100  # 25% of 2 x 200 events
    for r in frame.itertuples():  # every stored score vector reproduces its row's AUC
        scores = np.load(scanned / "scores" / "ttH_vs_tt" / f"{r.run_id}.npy")
        assert scores.shape == test["y"].shape
        assert roc_auc_score(test["y"], scores) == pytest.approx(r.auc, abs=1e-12)
    summary = pd.read_csv(scanned / "summary.csv")
    assert "bdt" in set(summary["curve"])


def test_label_01_stays_a_string_and_resumes(scanned, generated_dir, tiny_pretrained):
    frame = read_scan_csv(scanned / "scan.csv")
    assert set(frame["model"]) == {"none", "01"}
    assert set(load_scan(scanned)["model"]) == {"none", "01"}
    before = {p.name: p.stat().st_mtime_ns for p in (scanned / "runs").iterdir()}
    res = runner.invoke(app, _args(generated_dir, tiny_pretrained, scanned))
    assert res.exit_code == 0, res.output
    after = {p.name: p.stat().st_mtime_ns for p in (scanned / "runs").iterdir()}
    assert after == before  # nothing was run again


def test_changed_epochs_rerun_instead_of_reusing(scanned, generated_dir, tiny_pretrained, tmp_path):
    out = tmp_path / "scan"
    shutil.copytree(scanned, out)
    res = runner.invoke(app, _args(generated_dir, tiny_pretrained, out, epochs=2))
    assert res.exit_code == 0, res.output
    frame = load_scan(out)
    counts = frame["mode"].value_counts().to_dict()
    # the networks are trained again; the BDT does not depend on epochs and is reused
    assert counts == {"scratch": 2, "frozen": 2, "bdt": 1}
    keys = [json.loads(p.read_text())["key"] for p in (out / "runs").iterdir()]
    assert sorted(k["train"]["epochs"] for k in keys if k["mode"] == "scratch") == [1, 2]
    # the summary of the directory as a whole refuses to mix the two settings
    res = runner.invoke(app, ["scan", "--out", str(out), "--summarise-only"])
    assert res.exit_code == 2 and "differ only in their settings" in res.output


def test_summarise_only_remakes_the_tables(scanned, tmp_path):
    out = tmp_path / "copy"
    shutil.copytree(scanned, out)
    for name in ("summary.csv", "compute.csv", "learning_curve_ttH_vs_tt.png"):
        (out / name).unlink()
    res = runner.invoke(app, ["scan", "--out", str(out), "--summarise-only"])
    assert res.exit_code == 0, res.output
    assert pd.read_csv(out / "summary.csv").equals(pd.read_csv(scanned / "summary.csv"))
    assert (out / "learning_curve_ttH_vs_tt.png").stat().st_size > 1000


def test_unknown_mode_is_refused_before_any_work():
    res = runner.invoke(app, ["scan", "--task", "ttH_vs_tt", "--modes", "bdt,fine",
                              "--data", "/nonexistent"])
    assert res.exit_code == 2 and "'fine' is not one of bdt" in res.output


def _writer(directory: str, worker: int, n: int) -> None:
    store = ScanStore(directory).prepare()
    for k in range(n):
        rid = f"w{worker}r{k}"
        row = {"task": "t", "model": "m", "mode": "full", "train_size": 10, "seed": k,
               "auc": 0.5 + worker / 100, "run_id": rid}
        store.save_run(rid, {"worker": worker, "k": k}, row, np.zeros(3))
        store.assemble()


def test_concurrent_writers_keep_every_row(tmp_path):
    ctx = mp.get_context("fork")
    procs = [ctx.Process(target=_writer, args=(str(tmp_path), w, 15)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    frame = read_scan_csv(tmp_path / "scan.csv")
    assert len(frame) == 60 and frame["run_id"].nunique() == 60
    assert not list(tmp_path.rglob("*.tmp"))


def test_scan_into_a_directory_with_files_needs_resume(tmp_path):
    from hepfm.errors import OutputExistsError
    from hepfm.training.task_run import scan_tasks

    mine = "task,model,mode,train_size,seed,auc\nt,m,full,1,0,0.7\n"
    (tmp_path / "scan.csv").write_text(mine)
    with pytest.raises(OutputExistsError, match="pass resume=True to continue it") as err:
        scan_tasks(["ttH_vs_tt"], None, [60], ["bdt"], [0], tmp_path)
    assert "force" not in str(err.value)  # scan_tasks has no force: never offered
    assert "--resume to continue it" in err.value.cli_message
    assert (tmp_path / "scan.csv").read_text() == mine


def test_stored_test_events_and_scores_read_back(tmp_path):
    from hepfm.training.scan_trust import SAMPLE, varied_score_path

    store = ScanStore(tmp_path).prepare()
    assert store.load_test("t", "abc") is None
    store.save_test("t", "abc", np.array([0, 1, 1]))
    store.save_test("t", "abc", np.array([1, 1, 1]), np.array([2.0, 2.0, 2.0]))  # kept
    y, w = store.load_test("t", "abc")
    assert y.tolist() == [0, 1, 1] and w.tolist() == [1.0, 1.0, 1.0]
    (tmp_path / "scores" / "t").mkdir(parents=True, exist_ok=True)
    for i, rid in enumerate(("r1", "r2")):
        np.save(store.score_path("t", rid), np.full(3, i, np.float32))
        np.save(varied_score_path(store.scores, "t", rid, SAMPLE + "v"), np.full(2, i + 5.0))
    assert store.load_scores("t", ["r2", "r1"]).tolist() == [[1, 1, 1], [0, 0, 0]]
    assert store.load_scores("t", ["r1", "r2"], SAMPLE + "v").tolist() == [[5, 5], [6, 6]]
