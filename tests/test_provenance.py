"""No test event is ever a pretraining event: provenance records and the overlap check."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import uproot
import yaml
from typer.testing import CliRunner

from hepfm.cli import app
from hepfm.data.datasets import resolve_sources
from hepfm.provenance import (
    TASK_FIRST_CHUNK,
    DataLeakError,
    check_disjoint,
    describe_files,
    find_overlap,
)
from hepfm.tasks import get_task

TINY = {"hidden": 16, "blocks": 1, "head_hidden": 16, "dropout": 0.0}
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def samples(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Three tt/ttH samples of seed 1: the pretraining stream (chunk 0 on), a shorter copy of
    the same stream with another chunk size, and the task stream (TASK_FIRST_CHUNK on)."""
    pytest.importorskip("pythia8mc")
    from hepfm.generate import generate_samples

    out = {}
    for name, events, chunk, first in (("pre", 150, 50, 0), ("same", 300, 30, 0),
                                       ("task", 200, 50, TASK_FIRST_CHUNK)):
        out[name] = tmp_path_factory.mktemp(name)
        generate_samples(["ttH", "tt"], events, out[name], seed=1, mpi=False, chunk_size=chunk,
                         first_chunk=first, progress=False)
    return out


def test_identity_follows_the_pythia_stream_not_the_file(samples):
    pre = describe_files(resolve_sources(samples["pre"], ["ttH", "tt"]), 150)
    same = describe_files(resolve_sources(samples["same"], ["ttH", "tt"]), None)
    task = describe_files(resolve_sources(samples["task"], ["ttH", "tt"]), None)
    assert [r["entries"] for r in pre] == [[0, 150], [0, 150]]
    assert pre[0]["stream"]["first_chunk"] == 0 and task[0]["stream"]["first_chunk"] > 0
    # chunks of 30 events of the same seed are the first 30 events of the 50-event chunks:
    # entries 0-29, 30-59, 60-89 of "same" are entries 0-29, 50-79, 100-129 of "pre"
    overlap = find_overlap(pre, same)
    assert [n for _, _, n in overlap] == [90, 90]
    assert find_overlap(pre, task) == []
    # only the first 20 pretraining entries seen: 20 shared events per process
    assert [n for _, _, n in find_overlap(describe_files(
        resolve_sources(samples["pre"], ["ttH", "tt"]), 20), same)] == [20, 20]


def test_user_files_are_identified_by_content(samples, tmp_path):
    arrays = uproot.open(samples["pre"] / "tt.root")["Delphes"].arrays(
        ["MissingET.MET", "MissingET.Phi"])
    for name in ("a", "b"):
        with uproot.recreate(tmp_path / f"{name}.root") as f:
            f.mktree("Delphes", {"MET": "float32"})
            f["Delphes"].extend({"MET": arrays["MissingET.MET"][:, 0] + (name == "b")})
    a = describe_files({"x": [str(tmp_path / "a.root")]}, 100)
    b = describe_files({"x": [str(tmp_path / "b.root")]}, None)
    assert "sha256" in a[0] and a[0]["entries"] == [0, 100]
    (tmp_path / "copy").mkdir()
    (tmp_path / "copy" / "a.root").write_bytes((tmp_path / "a.root").read_bytes())
    copy = describe_files({"x": [str(tmp_path / "copy" / "a.root")]}, None)
    assert [n for _, _, n in find_overlap(a, copy)] == [100]
    assert find_overlap(a, b) == []
    with pytest.raises(DataLeakError, match=r"100 events of .*copy/a\.root \(entries 0-150\)"):
        check_disjoint(a, copy, "my-model")
    assert len(check_disjoint(a, copy, "my-model", allow_overlap=True)) == 1


def test_finetune_refuses_pretraining_events_and_runs_on_disjoint_ones(samples, tmp_path):
    from hepfm.training.pretrain import PretrainConfig, pretrain

    run = tmp_path / "pre"
    config = PretrainConfig("ttH,tt", "multiclass", samples["pre"], 150, 1, 64, seed=0,
                            model_config=TINY)
    pretrain(config, run, device="cpu", progress=False, verbose=False)
    recorded = yaml.safe_load((run / "config.yaml").read_text())["pretraining_events"]
    assert {r["process"] for r in recorded} == {"ttH", "tt"}

    runner = CliRunner()
    args = ["finetune", "--task", "ttH_vs_tt", "--model", str(run), "--train-size", "60",
            "--epochs", "1", "--events-per-process", "200"]
    res = runner.invoke(app, [*args, "--data", str(samples["same"]), "--out",
                              str(tmp_path / "leak")])
    assert res.exit_code == 2
    assert "were pretraining events" in res.output and "tt.root (entries 0-200)" in res.output
    assert "Traceback" not in res.output
    assert not (tmp_path / "leak").exists()

    res = runner.invoke(app, [*args, "--data", str(samples["task"]), "--out",
                              str(tmp_path / "ok")])
    assert res.exit_code == 0, res.output
    assert json.loads((tmp_path / "ok" / "metrics.json").read_text())["pretraining_overlap"] == []

    res = runner.invoke(app, [*args, "--data", str(samples["same"]), "--allow-overlap",
                              "--out", str(tmp_path / "forced")])
    assert res.exit_code == 0, res.output
    lines = json.loads((tmp_path / "forced" / "metrics.json").read_text())["pretraining_overlap"]
    assert len(lines) == 2 and all("were pretraining events" in x for x in lines)
    # a model trained from scratch has seen nothing: no check
    res = runner.invoke(app, [*args, "--data", str(samples["same"]), "--mode", "scratch",
                              "--out", str(tmp_path / "scratch")])
    assert res.exit_code == 0, res.output
    assert get_task("ttH_vs_tt").processes == ("ttH", "tt")


def test_python_api_makes_task_samples_in_the_task_stream(samples, tmp_path, monkeypatch):
    """hepfm.load_task_events with no directory makes missing task samples as hepfm finetune
    does (task seed stream, chunks from TASK_FIRST_CHUNK); a given directory without them is
    an error naming that command; `pretrained` refuses a model's pretraining events."""
    import hepfm
    from hepfm.errors import InputDataError
    from hepfm.models.foundation import FoundationModel, ModelConfig

    monkeypatch.setenv("HEPFM_DATA", str(tmp_path / "data"))
    task = hepfm.get_task("ttH_vs_tt")
    table = hepfm.load_task_events(task, events_per_process=40)
    made = describe_files(resolve_sources(tmp_path / "data" / "tasks", ["ttH", "tt"]), None)
    assert [r["stream"]["first_chunk"] for r in made] == [TASK_FIRST_CHUNK] * 2
    assert [r["entries"] for r in made] == [[0, 40], [0, 40]]
    assert len(table) == 80 and set(table.y.tolist()) == {0, 1}

    with pytest.raises(InputDataError, match=f"--seed 1 --first-chunk {TASK_FIRST_CHUNK}"):
        hepfm.load_task_events(task, tmp_path / "empty")

    model = FoundationModel(ModelConfig(**TINY))
    model.run_config = {"pretraining_events": describe_files(
        resolve_sources(samples["pre"], ["ttH", "tt"]), None)}
    with pytest.raises(DataLeakError, match=r"the pretrained model was pretrained on.*"
                       r"allow_overlap=True"):
        hepfm.load_task_events(task, samples["same"], pretrained=model)
    with pytest.warns(UserWarning, match="task events the model was pretrained on"):
        kept = hepfm.load_task_events(task, samples["same"], pretrained=model,
                                      allow_overlap=True)
    assert len(kept) == len(hepfm.load_task_events(task, samples["same"]))
    assert len(hepfm.load_task_events(task, samples["task"], pretrained=model)) == 400


def test_data_module_prepare_data_makes_or_names_missing_samples(tmp_path):
    from hepfm.errors import InputDataError
    from hepfm.training.datamodule import EventDataModule

    dm = EventDataModule(tmp_path / "given", ["ttH", "tt"], 30, seed=3)
    with pytest.raises(InputDataError, match=r"--events-per-process 30 .* --seed 3"):
        dm.prepare_data()
    assert not (tmp_path / "given").exists() or not any((tmp_path / "given").iterdir())
    dm = EventDataModule(tmp_path / "given", ["ttH", "tt"], 30, seed=3, generate=True)
    dm.prepare_data()
    dm.setup("fit")
    records = describe_files(resolve_sources(tmp_path / "given", ["ttH", "tt"]), None)
    assert [r["entries"] for r in records] == [[0, 30], [0, 30]]
    assert [r["stream"]["seed"] for r in records] == [3, 3]
    assert dm.process_counts() == {"ttH": 30, "tt": 30}
    assert dm.train_events() == len(dm.train) == 48
