"""``--on-invalid {error,drop}`` on every command that reads event files.

``error`` (the default) stops at an event with a bad value, naming file, branch and entry;
``drop`` leaves such events out with one warning per file, records the policy with the
run, and ``hepfm predict`` scores them NaN so that its output still matches the input entry
by entry.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
import torch
import uproot
from typer.testing import CliRunner

from hepfm.cli import app
from hepfm.data import read_table
from hepfm.data.normalization import FeatureStats
from hepfm.hub import load_pretrained
from hepfm.inference import scores
from hepfm.models.foundation import FoundationModel, ModelConfig
from hepfm.taskdata import task_data
from tests._data_helpers import random_events, write_delphes

runner = CliRunner()
#: Entries of the signal file with a bad value: a NaN jet pT, and an infinite MET last.
BAD = (5, 299)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """sig.root (300 events, two invalid), bkg.root (300 valid); the same as ttH.root and
    tt.root in a sample directory."""
    out = tmp_path_factory.mktemp("invalid")
    sig = random_events(300, seed=1)
    sig[BAD[0]]["jets"] = [(float("nan"), 0.0, 0.0, 1.0, 0)]
    sig[BAD[1]]["met"] = (float("inf"), 0.0)
    bkg = random_events(300, seed=2, met_start=5000.0)
    samples = out / "samples"
    return {"sig": write_delphes(out / "sig.root", sig),
            "bkg": write_delphes(out / "bkg.root", bkg),
            "samples": samples, "_": write_delphes(samples / "ttH.root", sig),
            "__": write_delphes(samples / "tt.root", bkg)}


@pytest.fixture(scope="module")
def model_dir(files: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny model (normalised on the valid background events) with a one-logit task head."""
    torch.manual_seed(0)
    stats = FeatureStats.from_table(read_table(files["bkg"]))
    path = tmp_path_factory.mktemp("model")
    FoundationModel(ModelConfig(hidden=16, blocks=1, head_hidden=16), stats).with_head(
        "task", 1).save_pretrained(path, task="toy")
    return path


def _commands(files: dict[str, Path], model: Path, out: Path) -> dict[str, list[str]]:
    sig, bkg, samples = str(files["sig"]), str(files["bkg"]), str(files["samples"])
    return {
        "finetune": ["finetune", "--signal", sig, "--background", bkg, "--model", str(model),
                     "--out", str(out / "ft")],
        "scan": ["scan", "--task", "toy", "--signal", sig, "--background", bkg, "--modes",
                 "bdt", "--sizes", "100", "--seeds", "0", "--out", str(out / "scan")],
        "predict": ["predict", "--model", str(model), "--input", sig, "--out",
                    str(out / "pred")],
        "cka": ["cka", "--model", str(model), "--model", str(model), "--data", samples,
                "--processes", "ttH,tt", "--events", "600", "--out", str(out / "cka")],
        "pretrain": ["pretrain", "--processes", "ttH,tt", "--data", samples,
                     "--events-per-process", "300", "--epochs", "1", "--out",
                     str(out / "pre")],
    }


@pytest.mark.parametrize("command", ["finetune", "scan", "predict", "cka", "pretrain"])
def test_a_bad_event_is_exit_2_naming_file_branch_and_the_option(files, model_dir, tmp_path,
                                                                 command):
    result = runner.invoke(app, _commands(files, model_dir, tmp_path)[command])
    lines = result.output.strip().splitlines()  # predict's progress bar may come first
    out = lines[-1]
    assert result.exit_code == 2, result.output
    assert [line for line in lines if "error" in line] == [out], result.output
    assert out.startswith("error: "), out
    assert ("sig.root" in out or "ttH.root" in out) and "'Jet.PT'" in out, out
    assert f"first at entry {BAD[0]}" in out and "--on-invalid drop" in out, out
    assert "on_invalid=" not in out  # the command line names options, not arguments


def test_the_python_message_names_the_argument(files):
    with pytest.raises(ValueError, match="pass on_invalid='drop'") as err:
        read_table(files["sig"])
    assert "--on-invalid" not in str(err.value)


def test_drop_leaves_out_the_bad_events_with_one_warning(files, caplog):
    with caplog.at_level(logging.WARNING):
        events, _ = task_data("toy", str(files["sig"]), str(files["bkg"]),
                              on_invalid="drop").load()
    signal = events.entry[events.y == 1]
    assert signal.tolist() == [k for k in range(300) if k not in BAD]
    assert len(events) == 598 and events.table.entry.tolist() == events.entry.tolist()
    lines = [r.getMessage() for r in caplog.records if "dropped" in r.getMessage()]
    assert len(lines) == 1 and "sig.root': dropped 2 of 300 events" in lines[0]
    assert "'Jet.PT'" in lines[0] and "'MissingET.MET'" in lines[0]


def test_finetune_drop_records_the_policy_and_the_entries_used(files, model_dir, tmp_path):
    out = tmp_path / "ft"
    result = runner.invoke(app, [*_commands(files, model_dir, tmp_path)["finetune"],
                                 "--on-invalid", "drop", "--epochs", "1", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["inputs"]["on_invalid"] == "drop"
    assert metrics["train_events"] + metrics["val_events"] + metrics["test_events"] == 598
    used = json.loads((out / "data.json").read_text())
    entries = [e for part in used.values() for f in part if f["path"].endswith("sig.root")
               for a, b in f["entries"] for e in range(a, b)]
    assert len(entries) == 298 and not set(BAD) & set(entries)


def test_predict_drop_gives_nan_exactly_at_the_bad_entries(files, model_dir, tmp_path):
    result = runner.invoke(app, [*_commands(files, model_dir, tmp_path)["predict"],
                                 "--on-invalid", "drop", "--step-size", "7"])
    assert result.exit_code == 0, result.output
    path = tmp_path / "pred" / "sig_hepfm.root"
    with uproot.open(path) as f:
        got = f["hepfm"]["hepfm_score"].array(library="np")
        info = json.loads(str(f["hepfm_info"]))
    assert len(got) == 300 and info["on_invalid"] == "drop"
    assert np.flatnonzero(np.isnan(got)).tolist() == list(BAD)
    model = load_pretrained(model_dir)
    want = scores(model, read_table(files["sig"], on_invalid="drop"), "task")[:, 0]
    assert np.allclose(np.delete(got, BAD), want, atol=1e-6)
