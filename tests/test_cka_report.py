"""`hepfm cka` end to end: tiny Delphes-layout ROOT files, tiny saved models, the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import awkward as ak
import numpy as np
import pandas as pd
import pytest
import torch
import uproot
from typer.testing import CliRunner

from hepfm.analysis.cka_report import group_summary, resolve_processes
from hepfm.cli import app
from hepfm.errors import HepfmError

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _write_delphes(path: Path, n: int, seed: int, shift: float) -> None:
    """A Delphes-layout tree of `n` random events (jets, leptons, MET)."""
    rng = np.random.default_rng(seed)

    def coll(nmax: int, fields: dict[str, str]) -> ak.Array:
        counts = rng.integers(0, nmax + 1, n)
        tot = int(counts.sum())
        make = {
            "pt": lambda: rng.exponential(50, tot) + 20 + shift,
            "eta": lambda: rng.normal(0, 1.5, tot),
            "phi": lambda: rng.uniform(-np.pi, np.pi, tot),
            "mass": lambda: rng.exponential(10, tot),
        }
        out = {}
        for name, kind in fields.items():
            if kind == "int01":
                v = rng.integers(0, 2, tot).astype(np.int32)
            elif kind == "charge":
                v = rng.choice([-1, 1], tot).astype(np.int32)
            else:
                v = make[kind]().astype(np.float32)
            out[name] = ak.unflatten(v, counts)
        return ak.zip(out)

    one = np.ones(n, dtype=np.int64)
    data = {
        "Jet": coll(5, {"PT": "pt", "Eta": "eta", "Phi": "phi", "Mass": "mass", "BTag": "int01"}),
        "Electron": coll(1, {"PT": "pt", "Eta": "eta", "Phi": "phi", "Charge": "charge"}),
        "Muon": coll(1, {"PT": "pt", "Eta": "eta", "Phi": "phi", "Charge": "charge"}),
        "MissingET": ak.zip({
            "MET": ak.unflatten(rng.exponential(40, n).astype(np.float32), one),
            "Phi": ak.unflatten(rng.uniform(-3, 3, n).astype(np.float32), one)}),
    }
    with uproot.recreate(path) as f:
        f.mktree("Delphes", {k: v.type for k, v in data.items()},
                 field_name=lambda o, i: f"{o}.{i}", counter_name=lambda c: f"{c}_size")
        f["Delphes"].extend(data)


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from hepfm.hub import save_pretrained
    from hepfm.models.foundation import FoundationModel, ModelConfig

    root = tmp_path_factory.mktemp("cka")
    data = root / "data"
    data.mkdir()
    _write_delphes(data / "tt.root", 40, 0, 0.0)
    _write_delphes(data / "ttH.root", 40, 1, 30.0)
    runs = {}
    for seed in range(3):
        torch.manual_seed(seed)
        model = FoundationModel(ModelConfig(hidden=8, blocks=2, head_hidden=8))
        runs[f"run{seed}"] = save_pretrained(model, root / f"run{seed}")
    return {"data": data, "root": root, **runs}


def test_pair_mode_writes_matrix_and_plots(setup: dict[str, Path]) -> None:
    out = setup["root"] / "out_pair"
    result = CliRunner().invoke(app, [
        "cka", "--model", str(setup["run0"]), "--model", str(setup["run1"]), "--task", "ttH_vs_tt",
        "--data", str(setup["data"]), "--events", "50", "--out", str(out)])
    assert result.exit_code == 0, result.output
    matrix = pd.read_csv(out / "cka.csv", index_col=0)
    stages = ["encoder", "block_1", "block_2", "readout", "head_input:multiclass",
              "head_input:multilabel"]
    assert list(matrix.index) == stages and list(matrix.columns) == stages
    assert np.isfinite(matrix.to_numpy()).all()
    for name in ("cka.png", "cka_diagonal.png"):
        assert (out / name).read_bytes()[:8] == PNG_MAGIC
    from hepfm.atomic import file_sha256

    models = json.loads((out / "models.json").read_text())
    assert [models[str(setup[r])]["weights_sha256"] for r in ("run0", "run1")] == [
        file_sha256(setup[r] / "model.safetensors") for r in ("run0", "run1")]
    # a model against itself on the same events: exactly 1 on the diagonal
    same = setup["root"] / "out_same"
    result = CliRunner().invoke(app, [
        "cka", "--model", str(setup["run0"]), "--model", str(setup["run0"]),
        "--processes", "tt,ttH",
        "--data", str(setup["data"]), "--events", "40", "--kernel", "rbf", "--out", str(same)])
    assert result.exit_code == 0, result.output
    diag = pd.read_csv(same / "cka_diagonal.csv", index_col=0).iloc[:, 0]
    assert np.allclose(diag.to_numpy(), 1.0)


def test_group_mode_writes_summary(setup: dict[str, Path]) -> None:
    out = setup["root"] / "out_group"
    result = CliRunner().invoke(app, [
        "cka", "--group-a", f"{setup['run0']},{setup['run1']}", "--group-b", str(setup["run2"]),
        "--task", "ttH_vs_tt", "--data", str(setup["data"]), "--events", "30",
        "--labels", "scratch,finetuned", "--out", str(out)])
    assert result.exit_code == 0, result.output
    summary = pd.read_csv(out / "cka_groups.csv")
    assert set(summary["comparison"]) == {"scratch vs scratch", "scratch vs finetuned"}
    across = summary[summary["comparison"] == "scratch vs finetuned"]
    assert (across["n_pairs"] == 2).all() and len(across) == 6
    assert ((summary["min"] <= summary["mean"]) & (summary["mean"] <= summary["max"])).all()
    assert len(pd.read_csv(out / "cka_pairs.csv")) == 3 * 6
    assert (out / "cka_groups.png").read_bytes()[:8] == PNG_MAGIC


def test_group_summary_statistics(tmp_path: Path) -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(200, 4, generator=g)
    reps = {"a1": {"s": x}, "a2": {"s": x * 2.0}, "b1": {"s": torch.randn(200, 4, generator=g)}}
    summary = group_summary(reps, ["a1", "a2"], ["b1"], tmp_path).set_index("comparison")
    assert summary.at["A vs A", "mean"] == pytest.approx(1.0)
    assert summary.at["A vs A", "std"] == 0.0
    assert abs(summary.at["A vs B", "mean"]) < 0.1
    assert summary.at["A vs B", "n_pairs"] == 2


def test_cli_errors(setup: dict[str, Path]) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["cka", "--model", str(setup["run0"]), "--task", "ttH_vs_tt"])
    assert result.exit_code == 2 and "give two models" in result.output
    before = sorted((setup["root"] / "out_pair").iterdir())  # written by the pair-mode test
    result = runner.invoke(app, ["cka", "--model", str(setup["run0"]), "--model",
                                 str(setup["run1"]), "--out", str(setup["root"] / "out_pair")])
    assert result.exit_code == 2 and "--force" in result.output
    assert sorted((setup["root"] / "out_pair").iterdir()) == before
    result = runner.invoke(app, ["cka", "--model", str(setup["run0"]),
                                 "--model", str(setup["run1"]),
                                 "--task", "ttH_vs_tt", "--kernel", "cosine"])
    assert result.exit_code == 2 and "linear or rbf" in result.output
    result = runner.invoke(app, ["cka", "--model", str(setup["run0"]),
                                 "--model", str(setup["run1"]),
                                 "--task", "nope", "--data", str(setup["data"])])
    assert result.exit_code == 2 and "unknown task" in result.output
    with pytest.raises(HepfmError, match="either"):
        resolve_processes("ttH_vs_tt", "tt")
    assert resolve_processes(None, "tt, ttH,tt") == ["tt", "ttH"]
