"""Your own analysis: own files and labels on the CLI, weights, hepfm predict, ONNX export."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import awkward as ak
import numpy as np
import pytest
import torch
import uproot
from typer.testing import CliRunner

from hepfm.analysis.metrics import binary_metrics
from hepfm.cli import app
from hepfm.data import read_table
from hepfm.data.labelled import expand_files
from hepfm.data.normalization import FeatureStats
from hepfm.errors import InputDataError
from hepfm.hub import load_pretrained
from hepfm.models.foundation import FoundationModel, ModelConfig
from hepfm.taskdata import task_data
from hepfm.training.finetune import _loss, _WeightedBatches, predict_proba

from ._data_helpers import write_delphes

runner = CliRunner()
_spec = importlib.util.spec_from_file_location(
    "toy_delphes", Path(__file__).parents[1] / "data" / "toy_delphes.py")
toy = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(toy)


@pytest.fixture(scope="module")
def toy_dir(tmp_path_factory) -> Path:
    """signal/sig_{0,1,2}.root and background/bkg_{0,1,2}.root, 300 events each, baskets
    of 500 (one) except sig_2 (baskets of 70: several)."""
    out = tmp_path_factory.mktemp("toy")
    for k in range(3):
        toy.write_toy_file(out / "signal" / f"sig_{k}.root", 300, True, k,
                           basket_events=70 if k == 2 else 500)
        toy.write_toy_file(out / "background" / f"bkg_{k}.root", 300, False, 100 + k)
    return out


@pytest.fixture(scope="module")
def tiny_model(toy_dir, tmp_path_factory) -> Path:
    """A tiny pretrained model (normalised on the toy events) as a run directory."""
    torch.manual_seed(0)
    stats = FeatureStats.from_table(read_table(sorted(toy_dir.glob("*/*.root"))))
    path = tmp_path_factory.mktemp("pretrained")
    FoundationModel(ModelConfig(hidden=16, blocks=1, head_hidden=16), stats).save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def task_model(tiny_model, tmp_path_factory) -> Path:
    """The tiny model with a (random) binary task head, as a fine-tuned run directory."""
    torch.manual_seed(1)
    path = tmp_path_factory.mktemp("task")
    load_pretrained(tiny_model).with_head("task", 1).save_pretrained(path, task="toy")
    return path


def _met(path: Path) -> np.ndarray:
    return uproot.open(path)["Delphes"]["MissingET.MET"].array(library="np").astype(np.float64)


# --- inputs -------------------------------------------------------------------------------
def test_expand_files_globs_folders_lists_and_errors(toy_dir):
    sig = sorted(str(p) for p in (toy_dir / "signal").glob("*.root"))
    assert expand_files(f"{toy_dir}/signal/*.root") == sig
    assert expand_files(str(toy_dir / "signal")) == sig
    both = expand_files(f"{sig[1]},{toy_dir}/signal/sig_[02].root,{sig[1]}")
    assert both == [sig[1], sig[0], sig[2]]  # in the order given, each once
    with pytest.raises(InputDataError, match=r"^signal: 'nope/\*.root' matches no file"):
        expand_files("nope/*.root", "signal")
    with pytest.raises(InputDataError, match=r"^files: no such file 'missing\.root'"):
        expand_files(f"{sig[0]},missing.root")


def test_label_branch_gives_the_same_classes_as_separate_files(toy_dir, tmp_path):
    sig, bkg = toy.toy_arrays(200, True, 7), toy.toy_arrays(200, False, 8)
    perm = np.random.default_rng(0).permutation(400)
    mixed = {k: ak.concatenate([sig[k], bkg[k]])[perm] if isinstance(sig[k], ak.Array)
             else np.concatenate([sig[k], bkg[k]])[perm] for k in sig}
    for name, arrays in (("sig", sig), ("bkg", bkg), ("mixed", mixed)):
        with uproot.recreate(tmp_path / f"{name}.root") as f:
            f.mktree("Delphes", {k: v.type.content if isinstance(v, ak.Array) else v.dtype
                                 for k, v in arrays.items()},
                     field_name=lambda o, i: f"{o}.{i}", counter_name=lambda c: f"{c}_size")
            f["Delphes"].extend(arrays)
    sep, _ = task_data("t", str(tmp_path / "sig.root"), str(tmp_path / "bkg.root")).load()
    mix, _ = task_data("t", mixed=str(tmp_path / "mixed.root"),
                       label_branch="is_signal").load()
    assert np.array_equal(mix.entry, np.arange(400))
    def met_and_label(t):
        return sorted(zip(t.pt[t.offsets[1:] - 1].tolist(), t.y.tolist(), strict=True))

    assert met_and_label(mix.table) == met_and_label(sep.table)
    assert mix.table.y.sum() == 200 and np.array_equal(mix.table.y, (perm < 200).astype(int))


def test_bad_inputs_one_clear_line(toy_dir, task_model, tmp_path):
    sig, bkg = f"{toy_dir}/signal/sig_0.root", f"{toy_dir}/background/bkg_0.root"
    cases = [
        (["finetune", "--signal", "nothing/*.root", "--background", bkg],
         "--signal: 'nothing/*.root' matches no file"),
        (["finetune", "--signal", sig, "--background", "gone.root"],
         "--background: no such file 'gone.root'"),
        (["finetune", "--mixed", sig, "--label-branch", "no_such_branch"],
         "no branch 'no_such_branch' (--label-branch)"),
        (["finetune", "--mixed", sig, "--label-branch", "weight"],
         "branch 'weight' (--label-branch) must be 0 (background) or 1 (signal); entry 0"),
        (["finetune", "--mixed", sig], "--mixed needs --label-branch"),
        (["predict", "--model", str(tmp_path), "--input", sig, "--out", str(tmp_path / "o")],
         "not a hepfm model directory"),
        (["predict", "--model", str(tmp_path / "none"), "--input", sig, "--out", "o"],
         "is also not a directory"),
        (["export", "--model", str(tmp_path), "--out", str(tmp_path / "m.onnx")],
         "not a hepfm model directory"),
    ]
    for args, message in cases:
        res = runner.invoke(app, args)
        assert res.exit_code == 2, (args, res.output)
        line = " ".join(res.output.split())
        assert message in line, (args, res.output)


# --- fine-tuning on own files ---------------------------------------------------------------
def test_finetune_own_files_explicit_test_set_never_trained_on(toy_dir, tiny_model, tmp_path):
    out = tmp_path / "run"
    args = ["finetune", "--task", "toy", "--model", str(tiny_model),
            "--signal", f"{toy_dir}/signal/sig_[01].root",
            "--background", f"{toy_dir}/background/bkg_0.root,{toy_dir}/background/bkg_1.root",
            "--test-signal", f"{toy_dir}/signal/sig_2.root",
            "--test-background", str(toy_dir / "background" / "bkg_2.root"),
            "--weight-branch", "weight", "--train-size", "300", "--epochs", "1",
            "--out", str(out)]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["test_events"] == 600 and metrics["train_events"] == 300
    assert metrics["weighted"] and metrics["explicit_test_set"]
    data = json.loads((out / "data.json").read_text())

    def ids(part):
        return {(f["sha256"], e) for f in data[part] for a, b in f["entries"]
                for e in range(a, b)}

    test = ids("test")
    assert len(test) == 600 and not test & ids("train") and not test & ids("val")
    assert {Path(f["path"]).name for f in data["test"]} == {"sig_2.root", "bkg_2.root"}
    assert load_pretrained(out).heads["task"].out.out_features == 1

    copy = tmp_path / "copy_of_sig_0.root"  # same content under another name
    shutil.copy(toy_dir / "signal" / "sig_0.root", copy)
    args[args.index("--test-signal") + 1] = str(copy)
    res = runner.invoke(app, [*args, "--force"])
    assert res.exit_code == 2 and "same content as training file" in res.output


def test_scan_own_files(toy_dir, tiny_model, tmp_path):
    """Own-file scans are built-in scans: the BDT baseline, one stored run each (resumed,
    not rerun), stored test scores and weights, bootstrap intervals of the weighted AUC."""
    import pandas as pd

    from hepfm.training.scan import ScanStore

    args = ["scan", "--task", "toy", "--model", str(tiny_model),
            "--mixed", f"{toy_dir}/*/*_0.root,{toy_dir}/*/*_1.root",
            "--label-branch", "is_signal", "--weight-branch", "weight", "--sizes", "200",
            "--modes", "bdt,frozen", "--seeds", "0", "--epochs", "1", "--bootstrap", "50",
            "--out", str(tmp_path / "scan")]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    frame = pd.read_csv(tmp_path / "scan" / "scan.csv")
    assert sorted(zip(frame["model"], frame["mode"], strict=True)) == [
        ("none", "bdt"), ("pretrained", "frozen")]
    assert (frame["train_events"] == 200).all() and frame["test_events"].nunique() == 1
    store = ScanStore(tmp_path / "scan")
    test = np.load(store.test_path("toy", frame["test_id"][0]))
    for rid, auc in zip(frame["run_id"], frame["auc"], strict=True):  # the weighted AUC
        scores = np.load(store.score_path("toy", rid))
        assert auc == pytest.approx(binary_metrics(test["y"], scores,
                                                   sample_weight=test["weight"])["auc"])
    assert np.ptp(test["weight"]) > 0  # the raw weights were stored, not ones
    summary = pd.read_csv(tmp_path / "scan" / "summary.csv")
    assert (summary["auc_lo68"] <= summary["auc_mean"]).all()
    assert (summary["auc_mean"] <= summary["auc_hi68"]).all()
    stamp = {p.name: p.stat().st_mtime_ns for p in store.runs.iterdir()}
    assert runner.invoke(app, [*args, "--resume"]).exit_code == 0  # nothing retrained
    assert {p.name: p.stat().st_mtime_ns for p in store.runs.iterdir()} == stamp


# --- weights ---------------------------------------------------------------------------------
def test_weighted_loss_and_auc_against_hand_computation():
    logits = torch.tensor([[2.0], [-1.0], [0.5], [0.0]])
    y = torch.tensor([1, 0, 0, 1])
    w = torch.tensor([1.0, 3.0, 0.5, 2.0])
    p = 1 / (1 + np.exp(-logits[:, 0].numpy().astype(np.float64)))
    per = -(y.numpy() * np.log(p) + (1 - y.numpy()) * np.log(1 - p))
    assert _loss(logits, y).item() == pytest.approx(per.mean(), rel=1e-6)
    assert _loss(logits, y, w).item() == pytest.approx((w.numpy() * per).sum() / 6.5, rel=1e-6)
    assert _loss(logits, y, w).item() != pytest.approx(per.mean(), rel=1e-3)

    s = np.array([0.9, 0.2, 0.6, 0.6, 0.4, 0.1])
    yy = np.array([1, 0, 0, 1, 1, 0])
    ww = np.array([2.0, 1.0, 3.0, 0.5, 1.0, 4.0])
    sig, bkg = np.flatnonzero(yy == 1), np.flatnonzero(yy == 0)
    num = sum(ww[i] * ww[j] * (1.0 if s[i] > s[j] else 0.5 if s[i] == s[j] else 0.0)
              for i in sig for j in bkg)
    hand = num / (ww[sig].sum() * ww[bkg].sum())  # 0.82... vs unweighted 7.5/9
    got = binary_metrics(yy, s, sample_weight=ww)["auc"]
    assert got == pytest.approx(hand, abs=1e-12) and got != pytest.approx(7.5 / 9, abs=1e-3)


def test_weighted_batches_carry_each_events_weight(toy_dir):
    table = read_table(toy_dir / "signal" / "sig_0.root")
    met = table.pt[table.offsets[1:] - 1].astype(np.float64)
    weight = np.arange(len(table), dtype=np.float64) + 1
    seen = 0
    for batch in _WeightedBatches(table, weight, batch_size=64, shuffle=True, seed=3,
                                  shard=False):
        key = np.log1p(met).astype(np.float32)  # the global feature log(1 + MET)
        rows = np.abs(key[None, :] - batch.u[:, :1].numpy()).argmin(1)
        assert len(set(rows.tolist())) == batch.num_graphs
        np.testing.assert_array_equal(batch.weight.numpy(), weight[rows])
        seen += batch.num_graphs
    assert seen == len(table)


# --- predict -----------------------------------------------------------------------------------
def test_predict_writes_one_score_per_entry_in_order(toy_dir, task_model, tmp_path,
                                                     monkeypatch):
    import hepfm.data.reading as reading

    no_objects = write_delphes(tmp_path / "in" / "met_only.root",
                               [{"met": (30.0 + k, 0.1 * k)} for k in range(5)])
    empty = write_delphes(tmp_path / "in" / "empty.root", [])
    several = tmp_path / "in" / "sub" / "sig_2.root"  # baskets of 70 entries
    several.parent.mkdir()
    shutil.copy(toy_dir / "signal" / "sig_2.root", several)
    assert uproot.open(several)["Delphes"]["Jet.PT"].num_baskets == 5
    chunks = []
    real = reading.arrays_to_table

    def spy(arrays, *a, **kw):
        chunks.append((kw["source"], kw["entry_start"], len(arrays)))
        return real(arrays, *a, **kw)

    monkeypatch.setattr(reading, "arrays_to_table", spy)
    out = tmp_path / "scores"
    files = [str(several), str(no_objects), str(empty)]
    res = runner.invoke(app, ["predict", "--model", str(task_model), "--input", files[0],
                              *files[1:], "--out", str(out), "--step-size", "64"])
    assert res.exit_code == 0, res.output
    # streamed: chunks of at most 64 entries, consecutive, covering every entry once
    mine = [(s, n) for f, s, n in chunks if f == str(several)]
    assert [s for s, _ in mine] == list(range(0, 300, 64)) and max(n for _, n in mine) == 64

    model = load_pretrained(task_model)
    for f, name, n in ((several, "sub/sig_2_hepfm.root", 300),
                       (no_objects, "met_only_hepfm.root", 5),
                       (empty, "empty_hepfm.root", 0)):
        with uproot.open(out / name) as g:
            assert g["hepfm"].num_entries == n
            got = g["hepfm"]["hepfm_score"].array(library="np")
            info = json.loads(str(g["hepfm_info"]))
        assert info["input"] == str(Path(f).resolve()) and info["hepfm_version"]
        assert info["model"] == str(task_model.resolve()) and info["head"] == "task"
        assert info["model_identity"]["weights_sha256"] == model.identity["weights_sha256"]
        if n:
            want = predict_proba(model, read_table(f), "task")
            np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)
            assert np.all(np.isfinite(got))

    res = runner.invoke(app, ["predict", "--model", str(task_model), "--input", files[1],
                              "--out", str(out / "x")])
    assert res.exit_code == 0
    before = (out / "x" / "met_only_hepfm.root").stat().st_mtime_ns
    res = runner.invoke(app, ["predict", "--model", str(task_model), "--input", files[1],
                              "--out", str(out / "x")])
    assert res.exit_code == 2 and "output exists" in res.output
    assert (out / "x" / "met_only_hepfm.root").stat().st_mtime_ns == before
    assert not list((out / "x").glob(".*tmp"))
    res = runner.invoke(app, ["predict", "--model", str(task_model), "--input", files[1],
                              "--out", str(out / "x"), "--force", "--format", "parquet"])
    assert res.exit_code == 0, res.output
    pq = pytest.importorskip("pyarrow.parquet")
    t = pq.read_table(out / "x" / "met_only_hepfm.parquet")
    np.testing.assert_allclose(t["hepfm_score"].to_numpy(), predict_proba(
        model, read_table(no_objects), "task"), atol=1e-6)
    assert b"hepfm_info" in t.schema.metadata


def test_predict_multiclass_head_one_branch_per_class(toy_dir, tiny_model, tmp_path):
    from hepfm.inference import predict_files

    (out,) = predict_files(tiny_model, [str(toy_dir / "background" / "bkg_0.root")],
                           tmp_path, progress=False)
    with uproot.open(out) as f:
        arrays = f["hepfm"].arrays(library="np")
    names = [f"hepfm_score_{c}" for c in load_pretrained(tiny_model).config.classes]
    assert list(arrays) == names
    total = sum(arrays[n].astype(np.float64) for n in names)
    np.testing.assert_allclose(total, 1.0, atol=1e-5)


# --- ONNX ------------------------------------------------------------------------------------
def test_onnx_matches_pytorch_for_1_7_and_1000_events(task_model, tmp_path):
    pytest.importorskip("onnxruntime")
    from hepfm.exporting import check_onnx, example_table

    out = tmp_path / "model.onnx"
    res = runner.invoke(app, ["export", "--model", str(task_model), "--out", str(out),
                              "--no-check"])
    assert res.exit_code == 0, res.output
    rows = check_onnx(load_pretrained(task_model), out, "task",
                      [example_table(n, seed=n) for n in (1, 7, 1000)])
    assert [n for n, _ in rows] == [1, 7, 1000]
    assert all(diff < 1e-5 for _, diff in rows), rows
    res = runner.invoke(app, ["export", "--model", str(task_model), "--out", str(out)])
    assert res.exit_code == 2 and "output exists" in res.output


@pytest.mark.parametrize("reduce", ["sum", "mean", "amax", "amin"])
def test_onnx_scatter_reduce_has_torch_semantics(reduce, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    from hepfm.exporting import OPSET, _export_ops

    class Scatter(torch.nn.Module):
        def __init__(self, include_self: bool):
            super().__init__()
            self.include_self = include_self

        def forward(self, target, index, src):
            return target.scatter_reduce(0, index.view(-1, 1).expand_as(src), src, reduce,
                                         include_self=self.include_self)

    g = torch.Generator().manual_seed(0)
    target, src = torch.randn(6, 3, generator=g), torch.randn(10, 3, generator=g)
    index = torch.tensor([0, 0, 2, 2, 2, 3, 0, 5, 5, 3])  # rows 1 and 4 get nothing
    for include_self in (False, True):
        path = tmp_path / f"s{include_self}.onnx"
        with _export_ops():
            torch.onnx.export(Scatter(include_self), (target, index, src), str(path),
                              input_names=["t", "i", "s"], opset_version=OPSET, dynamo=False)
        got = ort.InferenceSession(str(path)).run(
            None, {"t": target.numpy(), "i": index.numpy(), "s": src.numpy()})[0]
        want = Scatter(include_self)(target, index, src).numpy()
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


def test_branch_map_from_yaml(tmp_path):
    import yaml

    from hepfm.data.branches import FLAT
    from hepfm.data.labelled import load_branch_map

    spec = {"name": "mine", "tree": "nominal", "branches": {
        c: dict(f) for c, f in FLAT.branches.items() if c != "truth"}}
    (tmp_path / "map.yaml").write_text(yaml.safe_dump(spec))
    bm = load_branch_map(str(tmp_path / "map.yaml"))
    assert (bm.name, bm.tree) == ("mine", "nominal") and bm.branches["jet"]["pt"] == "jet_pt"
    assert load_branch_map("flat") is FLAT
    spec["branches"]["jet"].pop("btag")
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(spec))
    with pytest.raises(InputDataError, match="collection 'jet' needs fields"):
        load_branch_map(str(tmp_path / "bad.yaml"))
    with pytest.raises(InputDataError,
                       match="neither delphes, flat, nanoaod, atlas-opendata nor a YAML"):
        load_branch_map("delphse")


def test_test_files_that_were_pretraining_events_are_refused(toy_dir, tiny_model, tmp_path):
    from hepfm.provenance import describe_file

    sig2 = toy_dir / "signal" / "sig_2.root"
    seen = tmp_path / "seen"  # a model that records sig_2 entries 100-200 as pretraining
    load_pretrained(tiny_model).save_pretrained(
        seen, pretraining_events=[describe_file(sig2, "x", 100, 200)])
    res = runner.invoke(app, ["finetune", "--model", str(seen),
                              "--signal", str(toy_dir / "signal" / "sig_0.root"),
                              "--background", str(toy_dir / "background" / "bkg_0.root"),
                              "--test-signal", str(sig2),
                              "--test-background", str(toy_dir / "background" / "bkg_2.root"),
                              "--out", str(tmp_path / "run")])
    assert res.exit_code == 2
    assert "100 events of" in " ".join(res.output.split()) and "sig_2.root" in res.output


def test_all_events_split_keeps_a_validation_share():
    from hepfm.taskdata import split_indices

    y = np.repeat([0, 1], 300)
    tr, va, te = split_indices(y, None, 0, test_fraction=0.0)  # failed before: 480 + 200 > 600
    assert len(te) == 0 and len(va) == 200 and len(tr) == 400 and not set(tr) & set(va)
    tr, va, _ = split_indices(np.repeat([0, 1], 5000), None, 0, test_fraction=0.0)
    assert (len(tr), len(va)) == (8000, 2000)


def test_scan_own_files_scratch_only(toy_dir, tiny_model, tmp_path):
    """A scan of scratch runs alone still takes its architecture from the --model model."""
    import pandas as pd

    res = runner.invoke(app, ["scan", "--task", "toy", "--model", str(tiny_model),
                              "--mixed", f"{toy_dir}/*/*_0.root,{toy_dir}/*/*_1.root",
                              "--label-branch", "is_signal", "--sizes", "200", "--modes",
                              "scratch", "--seeds", "0", "--epochs", "1", "--bootstrap", "20",
                              "--out", str(tmp_path / "scan")])
    assert res.exit_code == 0, res.output
    frame = pd.read_csv(tmp_path / "scan" / "scan.csv")
    assert list(zip(frame["model"], frame["mode"], strict=True)) == [("none", "scratch")]
