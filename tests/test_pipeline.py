"""One pipeline: a built-in task by name and the same task given as its files are one run."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from hepfm.cli import app
from hepfm.data import load_events
from hepfm.data.normalization import FeatureStats
from hepfm.errors import ArgumentError, OutputExistsError
from hepfm.models.foundation import FoundationModel, ModelConfig
from hepfm.taskdata import TaskData, split_task, task_data, task_data_list
from hepfm.training.task_run import finetune_task

runner = CliRunner()
#: Keys of a run record that depend on the clock, not on the run.
TIMING = ("train_seconds",)


@pytest.fixture(scope="module")
def tiny(generated_dir, tmp_path_factory) -> Path:
    torch.manual_seed(0)
    stats = FeatureStats.from_table(load_events(generated_dir, ["tt", "ttH"]))
    path = tmp_path_factory.mktemp("tiny")
    FoundationModel(ModelConfig(hidden=8, blocks=1, head_hidden=8), stats).save_pretrained(path)
    return path


def test_by_name_and_by_files_are_the_same_task(generated_dir, tiny, tmp_path):
    by_name = task_data("ttH_vs_tt", data=generated_dir)
    by_files = task_data("ttH_vs_tt", str(generated_dir / "ttH.root"),
                         str(generated_dir / "tt.root"))
    assert by_name.resolved() == by_files
    a, _ = by_name.load()
    b, _ = by_files.load()
    sa, sb = split_task(a, 100, 3), split_task(b, 100, 3)
    for part in ("train", "val", "test"):
        assert getattr(sa, part).provenance() == getattr(sb, part).provenance()
        assert np.array_equal(getattr(sa, part).y, getattr(sb, part).y)
    records = []
    for k, inputs in enumerate((by_name, by_files)):
        out = tmp_path / f"run{k}"
        finetune_task(inputs, str(tiny), "full", 100, 1, 0, out, progress=False,
                      allow_overlap=True)
        metrics = json.loads((out / "metrics.json").read_text())
        records.append(({k: v for k, v in metrics.items() if k not in TIMING},
                        json.loads((out / "data.json").read_text())))
    assert records[0] == records[1]
    assert records[0][0]["train_events"] == 100
    assert records[0][0]["test_events"] == 100  # 25% of 2 x 200


def test_split_of_a_table_and_of_labelled_events_agree(generated_dir):
    events, _ = task_data("ttH_vs_tt", data=generated_dir).load()
    s_events = split_task(events, 80, 1)
    s_table = split_task(events.table, 80, 1)
    for part in ("train", "val", "test"):
        assert np.array_equal(getattr(s_events, part).table.pt, getattr(s_table, part).pt)


def test_events_per_process_caps_each_process(generated_dir):
    events, _ = TaskData.from_task("ttH_vs_tt", generated_dir, 50).load()
    assert len(events) == 100 and int(events.y.sum()) == 50
    assert [f["entries"] for f in events.provenance()] == [[[0, 50]], [[0, 50]]]


def test_shared_signal_and_background_files_warn(generated_dir, tmp_path, caplog):
    copy = tmp_path / "copy.root"
    shutil.copy(generated_dir / "tt.root", copy)
    with caplog.at_level(logging.WARNING, logger="hepfm.taskdata"):
        task_data("t", str(generated_dir / "tt.root"), str(copy)).load()
    assert "have the same content" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="hepfm.taskdata"):
        task_data("t", str(generated_dir / "ttH.root"), str(generated_dir / "tt.root")).load()
    assert "same" not in caplog.text


def test_task_data_refuses_mixed_names_and_files(generated_dir):
    with pytest.raises(ArgumentError, match="mix process names"):
        task_data("t", "ttH", str(generated_dir / "tt.root"))
    with pytest.raises(ArgumentError, match="give task "):
        task_data()


def test_task_data_list_is_built_in_tasks_unless_events_are_given(tmp_path):
    from hepfm.errors import UnknownNameError
    from hepfm.tasks import TASKS

    assert [t.name for t in task_data_list("all", events_per_process=7)] == list(TASKS)
    assert all(t.events_per_process == 7 for t in task_data_list("all", events_per_process=7))
    two = task_data_list("ttH_vs_tt,VBF_vs_ggF", branch_map="nanoaod")
    assert [t.name for t in two] == ["ttH_vs_tt", "VBF_vs_ggF"]  # a branch map is no task
    assert all(t.branch_map.name == "nanoaod" and t.samples is not None for t in two)
    sig, bkg = tmp_path / "s.root", tmp_path / "b.root"
    sig.touch()
    bkg.touch()
    mine, = task_data_list("ttH_vs_tt,mine", signal=str(sig), background=str(bkg))
    assert (mine.name, mine.signal, mine.background) == ("ttH_vs_tt,mine", [str(sig)],
                                                         [str(bkg)])
    assert task_data_list("mine", signal=str(sig), background=str(bkg)) == [
        task_data("mine", str(sig), str(bkg))]
    with pytest.raises(ArgumentError, match="give task"):
        task_data_list()
    with pytest.raises(UnknownNameError, match="unknown task 'nope'"):
        task_data_list("ttH_vs_tt,nope")


def test_finetune_twice_into_one_directory_refuses_and_leaves_it(generated_dir, tiny,
                                                                  tmp_path):
    out = tmp_path / "run"
    args = ["finetune", "--task", "ttH_vs_tt", "--model", str(tiny), "--data",
            str(generated_dir), "--train-size", "60", "--epochs", "1", "--out", str(out),
            "--allow-overlap"]
    assert runner.invoke(app, args).exit_code == 0
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    res = runner.invoke(app, args)
    assert res.exit_code == 2 and "--force" in res.output and len(res.output.splitlines()) == 1
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before
    assert runner.invoke(app, [*args, "--force", "--seed", "1"]).exit_code == 0
    assert json.loads((out / "metrics.json").read_text())["seed"] == 1
    with pytest.raises(OutputExistsError):
        finetune_task(task_data("ttH_vs_tt", data=generated_dir), str(tiny), out=out)


def test_predict_takes_a_shipped_model_name(generated_dir, tmp_path):
    res = runner.invoke(app, ["predict", "--model", "hepfm-small", "--input",
                              str(generated_dir / "tt.root"), "--out", str(tmp_path),
                              "--head", "multiclass"])
    assert res.exit_code == 0, res.output
    import uproot

    with uproot.open(next(tmp_path.rglob("*_hepfm.root"))) as f:
        assert f["hepfm"].num_entries == 200
