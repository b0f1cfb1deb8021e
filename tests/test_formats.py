"""Experiment formats: NanoAOD and ATLAS Open Data layouts, energy units, combined lepton
collections, jet energies, and b-tagging rules (flag, bit mask, score at a working point)."""

from __future__ import annotations

import importlib.util
import json
import warnings
from dataclasses import replace
from pathlib import Path

import awkward as ak
import numpy as np
import pytest
import torch
import uproot
import yaml
from typer.testing import CliRunner

from hepfm.cli import app
from hepfm.data import (
    ATLAS_OPENDATA,
    DELPHES,
    FLAT,
    NANOAOD,
    NODE_TYPES,
    BranchMap,
    BTagRule,
    read_table,
)
from hepfm.data.btag import btag_mismatch
from hepfm.data.features import BJET
from hepfm.data.labelled import load_branch_map
from hepfm.data.normalization import FeatureStats
from hepfm.data.units import UnitWarning
from hepfm.errors import ArgumentError, InputDataError
from hepfm.models.foundation import FoundationModel, ModelConfig

from ._data_helpers import delphes_arrays, random_events, write_delphes

runner = CliRunner()
DATA = Path(__file__).parents[1] / "data"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, DATA / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


layouts = _load("toy_layouts")
toy = _load("toy_delphes")


def write_layout(path: Path, events: list, layout: str, seed: int = 0) -> Path:
    """`events` (as for write_delphes) in `layout`, written by data/toy_layouts.py."""
    name, arrays, counter = layouts.convert_arrays(delphes_arrays(events, truth=False),
                                                   layout, seed)
    with uproot.recreate(path) as f:
        f.mktree(name, {k: v.type.content if isinstance(v, ak.Array) else v.dtype
                        for k, v in arrays.items()},
                 field_name=lambda o, i: f"{o}_{i}",
                 counter_name=lambda c: counter.format(c)).extend(arrays)
    return path


def _energy(t) -> np.ndarray:
    p = t.pt.astype(np.float64) * np.cosh(t.eta.astype(np.float64))
    return np.sqrt(p * p + np.square(t.mass.astype(np.float64)))


# --- b-tagging --------------------------------------------------------------------------
def test_delphes_bit_mask_value_2_is_not_a_bjet_at_the_first_working_point(tmp_path):
    jets = [(90.0 - 10 * k, 0.0, 0.5 * k, 5.0, v) for k, v in enumerate((0, 1, 2, 3))]
    path = write_delphes(tmp_path / "bits.root", [{"jets": jets, "met": (10.0, 0.0)}])
    t = read_table(path)
    assert [NODE_TYPES[k] for k in t.node_type[:4]] == ["jet", "bjet", "jet", "bjet"]
    assert t.btag[:4].tolist() == [0, 1, 0, 1]
    second = read_table(path, DELPHES.with_btag("bit1"))
    assert [NODE_TYPES[k] for k in second.node_type[:4]] == ["jet", "jet", "bjet", "bjet"]


def test_score_working_point_decides_the_b_jets_per_event(tmp_path):
    events = random_events(60, seed=3)
    path = write_layout(tmp_path / "nano.root", events, "nanoaod", seed=5)
    raw = uproot.open(path)["Events"].arrays(["Jet_pt", "Jet_btagDeepFlavB"])
    for spec, cut in (("0.2783", 0.2783), ("loose", 0.0490), ("tight", 0.71), ("0.9", 0.9)):
        t = read_table(path, NANOAOD.with_btag(spec))
        per_event = np.add.reduceat((t.node_type == BJET).astype(int), t.offsets[:-1])
        by_hand = ak.to_numpy(ak.sum((raw.Jet_btagDeepFlavB > cut) & (raw.Jet_pt > 25), axis=1))
        assert np.array_equal(per_event, by_hand), spec
    counts = {s: int((read_table(path, NANOAOD.with_btag(s)).node_type == BJET).sum())
              for s in ("loose", "medium", "0.9")}
    assert counts["loose"] > counts["medium"] > counts["0.9"]


def test_btag_choice_errors_name_the_option_and_the_branch(tmp_path):
    with pytest.raises(ArgumentError, match=r"btag='0\.5': branch 'Jet.BTag' is a bit mask"):
        DELPHES.with_btag("0.5")
    with pytest.raises(ArgumentError, match="'medum' is not a working point of the map "
                                            r"\(loose, medium, tight\)"):
        NANOAOD.with_btag("medum")
    assert FLAT.with_btag("0.8").btag.record() == {"kind": "score", "cut": 0.8}
    assert NANOAOD.with_btag("tight").btag.describe() == "score > 0.71 (tight)"


def test_a_score_where_a_flag_or_a_bit_mask_is_expected_is_an_error(tmp_path):
    jets = [[(50.0, 0.0, 0.0, 5.0, 0), (40.0, 1.0, 1.0, 4.0, 1)], [(60.0, 0.5, 2.0, 6.0, 0)]]
    d = delphes_arrays([{"jets": j, "met": (10.0, 0.0)} for j in jets], truth=False)
    names = {"Jet": ("jet", {"PT": "pt", "Eta": "eta", "Phi": "phi", "Mass": "m"}),
             "Electron": ("el", {"PT": "pt", "Eta": "eta", "Phi": "phi", "Charge": "charge"}),
             "Muon": ("mu", {"PT": "pt", "Eta": "eta", "Phi": "phi", "Charge": "charge"})}
    flat = {f"{p}_{n}": d[c][f] for c, (p, fs) in names.items() for f, n in fs.items()}
    flat["jet_btag"] = ak.Array([[0.0, 1.0], [0.73]])
    flat["met_met"], flat["met_phi"] = ak.flatten(d["MissingET"].MET), \
        ak.flatten(d["MissingET"].Phi)
    path = tmp_path / "flat.root"
    with uproot.recreate(path) as f:
        f.mktree("ntuple", {k: v.type for k, v in flat.items()}).extend(flat)
    with pytest.raises(InputDataError, match=r"branch 'jet_btag': value 0\.73 at entry 1 is "
                                             "not a 0/1 flag.*give a working point"):
        read_table(path, FLAT)
    with pytest.raises(InputDataError, match="not a bit mask"):
        read_table(path, FLAT.with_btag("bit0"))
    t = read_table(path, FLAT.with_btag("0.5"))
    assert [NODE_TYPES[k] for k in t.node_type] == ["jet", "bjet", "met", "bjet", "met"]


def test_recorded_btag_mismatch_is_described():
    used = NANOAOD.with_btag("loose").btag
    assert btag_mismatch(None, used) is None
    assert btag_mismatch({"kind": "score", "cut": 0.049}, used) is None  # names do not matter
    assert btag_mismatch({"kind": "bits", "bit": 0}, used) == \
        "b-jets are 'score > 0.049 (loose)' here but were 'bit 0' in training"


# --- layouts, units, combined collections ---------------------------------------------
@pytest.mark.parametrize("layout", ["nanoaod", "atlas-opendata"])
def test_layouts_give_the_event_table_of_the_delphes_file(tmp_path, layout):
    events = random_events(80, seed=11)
    ref = read_table(write_delphes(tmp_path / "d.root", events, truth=False))
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnitWarning)  # the right unit: no warning
        t = read_table(write_layout(tmp_path / "x.root", events, layout), load_branch_map(layout))
    for name in ("offsets", "node_type", "charge", "btag", "y"):
        assert np.array_equal(getattr(t, name), getattr(ref, name)), name
    exact = layout == "nanoaod"  # GeV float32 as Delphes; ATLAS: MeV, and jet energies
    for name in ("pt", "eta", "phi"):
        np.testing.assert_allclose(getattr(t, name), getattr(ref, name),
                                   rtol=0 if exact else 1e-6, atol=0)
    np.testing.assert_allclose(_energy(t), _energy(ref), rtol=0 if exact else 2e-7)
    if exact:
        assert np.array_equal(t.mass, ref.mass)
    else:  # a mass from E^2 - p^2 in float32 MeV: close, not equal
        np.testing.assert_allclose(t.mass, ref.mass, atol=0.5)
    assert ref.counts.sum() > 400


def test_combined_leptons_are_split_by_type(tmp_path):
    ev = {"electrons": [(30.0, 0.1, 1.0, -1), (12.0, 0.2, -1.0, 1)],
          "muons": [(45.0, -0.3, 0.5, 1)], "met": (20.0, 0.0)}
    path = write_layout(tmp_path / "a.root", [ev], "atlas-opendata")
    raw = uproot.open(path)["mini"].arrays(["lep_pt", "lep_type"])
    assert raw.lep_type.tolist() == [[13, 11, 11]]  # one collection, by pT, in MeV
    assert raw.lep_pt.tolist() == [[45000.0, 30000.0, 12000.0]]
    t = read_table(path, ATLAS_OPENDATA)
    assert [NODE_TYPES[k] for k in t.node_type] == ["electron", "electron", "muon", "met"]
    np.testing.assert_allclose(t.pt, [30.0, 12.0, 45.0, 20.0], rtol=1e-7)
    assert t.charge.tolist() == [-1, 1, 1, 0]


def test_a_file_in_the_other_unit_warns(tmp_path):
    events = random_events(20, seed=2)
    atlas = write_layout(tmp_path / "a.root", events, "atlas-opendata")
    with pytest.warns(UnitWarning, match=r"branch 'jet_pt'.*looks like MeV.*energy_unit: MeV"):
        read_table(atlas, replace(ATLAS_OPENDATA, energy_unit="GeV"))
    nano = write_layout(tmp_path / "n.root", events, "nanoaod")
    with pytest.warns(UnitWarning, match=r"branch 'Jet_pt'.*looks like GeV"):
        read_table(nano, replace(NANOAOD, energy_unit="MeV"))


def test_yaml_map_with_unit_split_energy_and_working_points(tmp_path):
    spec = tmp_path / "atlas.yaml"
    spec.write_text(yaml.safe_dump({k: v for k, v in ATLAS_OPENDATA.to_dict().items()
                                    if k != "name"}))
    bm = load_branch_map(str(spec))
    assert bm == replace(ATLAS_OPENDATA, name="atlas")
    assert load_branch_map(str(spec), "77").btag.cut == pytest.approx(0.645925)
    d = ATLAS_OPENDATA.to_dict()
    d["energy_unit"] = "keV"
    spec.write_text(yaml.safe_dump(d))
    with pytest.raises(InputDataError, match=r"branch_map: '.*atlas.yaml' is not a branch "
                                             "map.*energy_unit must be one of GeV, MeV"):
        load_branch_map(str(spec))
    with pytest.raises(ArgumentError, match="collection 'jet' needs fields"):
        BranchMap("x", "t", {"jet": {"pt": "a", "eta": "b", "phi": "c", "btag": "d"}})
    assert BTagRule.from_dict({"kind": "bits", "bit": 2}).describe() == "bit 2"


# --- the commands, end to end -------------------------------------------------------------
@pytest.fixture(scope="module")
def copies(tmp_path_factory) -> Path:
    """The same toy events (150 signal, 150 background per file) in three layouts:
    ``delphes/``, ``nanoaod/``, ``atlas-opendata/``, each with signal/ and background/."""
    out = tmp_path_factory.mktemp("layouts")
    for k in range(2):
        toy.write_toy_file(out / "delphes" / "signal" / f"sig_{k}.root", 150, True, k)
        toy.write_toy_file(out / "delphes" / "background" / f"bkg_{k}.root", 150, False, 50 + k)
    for layout in ("nanoaod", "atlas-opendata"):
        for src in sorted((out / "delphes").rglob("*.root")):
            layouts.convert_file(src, out / layout / src.relative_to(out / "delphes"), layout)
    return out


@pytest.fixture(scope="module")
def tiny(copies, tmp_path_factory) -> Path:
    torch.manual_seed(0)
    stats = FeatureStats.from_table(read_table(sorted((copies / "delphes").rglob("*.root"))))
    path = tmp_path_factory.mktemp("tiny")
    FoundationModel(ModelConfig(hidden=16, blocks=1, head_hidden=16), stats).save_pretrained(path)
    return path


def _finetune(copies: Path, tiny: Path, out: Path, layout: str, *extra: str):
    d = copies / layout
    return runner.invoke(app, [
        "finetune", "--task", "toy", "--model", str(tiny), "--branch-map", layout,
        "--signal", str(d / "signal" / "sig_0.root"),
        "--background", str(d / "background" / "bkg_0.root"),
        "--test-signal", str(d / "signal" / "sig_1.root"),
        "--test-background", str(d / "background" / "bkg_1.root"),
        "--train-size", "100", "--epochs", "1", "--out", str(out), *extra])


def _scores(path: Path) -> np.ndarray:
    return uproot.open(path)["hepfm"]["hepfm_score"].array(library="np")


def test_predict_atlas_opendata_gives_the_scores_of_the_delphes_copy(copies, tiny, tmp_path):
    run = tmp_path / "run"
    res = _finetune(copies, tiny, run, "atlas-opendata")
    assert res.exit_code == 0, res.output
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["inputs"]["energy_unit"] == "MeV"
    assert config["inputs"]["btag"] == {"kind": "score", "cut": 0.8244273, "working_point": "70"}
    sig = "signal/sig_1.root"
    res = runner.invoke(app, ["predict", "--model", str(run), "--branch-map", "atlas-opendata",
                              "--input", str(copies / "atlas-opendata" / sig),
                              "--out", str(tmp_path / "a")])
    assert res.exit_code == 0, res.output
    with pytest.warns(UserWarning, match="b-jets are 'bit 0' here but were 'score > 0.8244"):
        res = runner.invoke(app, ["predict", "--model", str(run),
                                  "--input", str(copies / "delphes" / sig),
                                  "--out", str(tmp_path / "d")])
    assert res.exit_code == 0, res.output
    atlas, delphes = _scores(tmp_path / "a" / "sig_1_hepfm.root"), \
        _scores(tmp_path / "d" / "sig_1_hepfm.root")
    assert len(atlas) == 150 and np.ptp(delphes) > 1e-3
    np.testing.assert_allclose(atlas, delphes, rtol=0, atol=2e-6)
    info = json.loads(str(uproot.open(tmp_path / "a" / "sig_1_hepfm.root")["hepfm_info"]))
    assert info["branch_map"] == "atlas-opendata" and info["btag"]["cut"] == 0.8244273


def test_finetune_nanoaod_records_the_working_point_and_predict_warns_on_another(
        copies, tiny, tmp_path):
    run = tmp_path / "run"
    res = _finetune(copies, tiny, run, "nanoaod", "--btag", "0.2783")
    assert res.exit_code == 0, res.output
    record = {"branch_map": "nanoaod", "energy_unit": "GeV",
              "btag": {"kind": "score", "cut": 0.2783}}
    assert json.loads((run / "metrics.json").read_text())["inputs"] == {**record,
                                                                        "on_invalid": "error"}
    assert {k: v for k, v in yaml.safe_load((run / "config.yaml").read_text())["inputs"].items()
            if k in record} == record
    data = str(copies / "nanoaod" / "signal" / "sig_1.root")
    with pytest.warns(UserWarning, match=r"b-jets are 'score > 0.049 \(loose\)' here but "
                                         r"were 'score > 0.2783' in training \(the working point "
                                         r"is btag= in Python, --btag on the command line\)"):
        res = runner.invoke(app, ["predict", "--model", str(run), "--branch-map", "nanoaod",
                                  "--btag", "loose", "--input", data, "--out", str(tmp_path / "p")])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["finetune", "--task", "ttH", "--btag", "medium"])
    assert res.exit_code == 2 and "--btag applies to your own files" in res.output
    res = _finetune(copies, tiny, tmp_path / "bad", "nanoaod", "--btag", "medum")
    assert res.exit_code == 2 and "'medum' is not a working point" in res.output
