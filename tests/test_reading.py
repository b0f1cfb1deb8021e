"""Reading: selection, branch maps, and a clear InputDataError for every kind of bad input."""

from __future__ import annotations

import logging
import math

import awkward as ak
import numpy as np
import pytest
import uproot

from hepfm.data import FLAT, NODE_TYPES, ObjectCut, Selection, read_table
from hepfm.errors import InputDataError
from tests._data_helpers import delphes_arrays, random_events, write_delphes

EV = {"jets": [(50.0, 0.5, 0.1, 5.0, 0), (15.0, 0.5, 0.1, 5.0, 0), (80.0, 5.0, 0.1, 5.0, 0),
               (70.0, -1.0, 2.0, 8.0, 1)],
      "electrons": [(30.0, 0.1, 1.0, -1), (12.0, 2.7, 1.0, 1)],
      "muons": [(25.0, 0.1, -1.0, 1)], "photons": [(11.0, 0.3, 0.0)],
      "met": (40.0, 3.5), "truth": [(6, 120.0, 0.0, 0.0)]}


def test_selection_ordering_and_types(tmp_path):
    t = read_table(write_delphes(tmp_path / "a.root", [EV, {"met": (5.0, 0.0)}]))
    assert len(t) == 2 and t.counts.tolist() == [6, 1]
    # jets: 15 GeV fails pT, eta 5 fails |eta|; ordered by pT; then e, mu, photon, MET
    assert t.pt.tolist() == pytest.approx([70.0, 50.0, 30.0, 25.0, 11.0, 40.0, 5.0])
    names = [NODE_TYPES[k] for k in t.node_type]
    assert names == ["bjet", "jet", "electron", "muon", "photon", "met", "met"]
    assert t.mass[0] == pytest.approx(8.0) and t.charge[2] == -1
    assert t.phi[5] == pytest.approx(3.5 - 2 * math.pi)  # wrapped into [-pi, pi)
    assert t.y_multi is not None and t.y_multi[0, 0] == 1
    sel = Selection(jet=ObjectCut(10.0, 5.5, 1), photon=ObjectCut(20.0, 2.5, 4))
    t2 = read_table(tmp_path / "a.root", selection=sel)
    assert t2.pt.tolist()[:3] == pytest.approx([80.0, 30.0, 25.0])  # one jet, no photon


def test_flat_met_and_flat_branch_map(tmp_path):
    d = delphes_arrays([EV, EV])
    flat = {
        "jet_pt": d["Jet"].PT, "jet_eta": d["Jet"].Eta, "jet_phi": d["Jet"].Phi,
        "jet_m": d["Jet"].Mass, "jet_btag": d["Jet"].BTag,
        "el_pt": d["Electron"].PT, "el_eta": d["Electron"].Eta, "el_phi": d["Electron"].Phi,
        "el_charge": d["Electron"].Charge, "mu_pt": d["Muon"].PT, "mu_eta": d["Muon"].Eta,
        "mu_phi": d["Muon"].Phi, "mu_charge": d["Muon"].Charge,
        "met_met": ak.flatten(d["MissingET"].MET), "met_phi": ak.flatten(d["MissingET"].Phi),
    }
    with uproot.recreate(tmp_path / "flat.root") as f:
        f.mktree("ntuple", {k: v.type for k, v in flat.items()}).extend(flat)
    t = read_table(tmp_path / "flat.root", FLAT)
    ref = read_table(write_delphes(tmp_path / "d.root", [EV, EV], truth=False))
    assert t.y_multi is None  # no truth branches: no multilabels
    assert t.counts.tolist() == [5, 5]  # no photon branches in the flat file
    assert t.pt.tolist() == [p for p, k in zip(ref.pt, ref.node_type, strict=True) if k != 4]


def test_chunks_and_max_events(tmp_path):
    f = write_delphes(tmp_path / "a.root", random_events(100))
    full = read_table(f)
    chunked = read_table(f, step_size=7)
    assert np.array_equal(full.pt, chunked.pt) and np.array_equal(full.offsets, chunked.offsets)
    assert len(read_table([f, f], max_events=130, step_size=50)) == 130


def _raises(path, match, **kw):
    with pytest.raises(InputDataError, match=match) as e:
        read_table(path, **kw)
    assert str(path) in str(e.value)
    return str(e.value)


def test_missing_file(tmp_path):
    _raises(tmp_path / "nope.root", "not found")


def test_not_a_root_file(tmp_path):
    p = tmp_path / "x.root"
    p.write_text("hello, I am not ROOT\n" * 50)
    _raises(p, "not a readable ROOT file")


def test_truncated_file(tmp_path):
    p = write_delphes(tmp_path / "t.root", random_events(3000))
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    _raises(p, "truncated|readable")


def test_missing_tree(tmp_path):
    p = write_delphes(tmp_path / "t.root", random_events(5), tree="Events")
    msg = _raises(p, "no tree 'Delphes'")
    assert "Events" in msg


def test_missing_branch(tmp_path):
    d = delphes_arrays(random_events(5))
    d["Jet"] = ak.zip({k: d["Jet"][k] for k in ("PT", "Eta", "Phi", "Mass")})  # no BTag
    with uproot.recreate(tmp_path / "m.root") as f:
        f.mktree("Delphes", {k: v.type.content for k, v in d.items()},
                 field_name=lambda o, i: f"{o}.{i}", counter_name=lambda c: f"{c}_size"
                 ).extend(d)
    msg = _raises(tmp_path / "m.root", "missing branch 'Jet.BTag'")
    assert "tree 'Delphes'" in msg and "Jet.PT" in msg  # lists what is there


def test_jagged_lengths_disagree(tmp_path):
    d = delphes_arrays(random_events(20, seed=2))
    flat = {f"{c}.{k}": d[c][k] for c in d for k in d[c].fields}
    flat["Jet.Eta"] = ak.Array([[0.1] * (len(x) + 1) for x in flat["Jet.PT"].tolist()])
    with uproot.recreate(tmp_path / "j.root") as f:
        f.mktree("Delphes", {k: v.type for k, v in flat.items()}).extend(flat)
    _raises(tmp_path / "j.root", "jagged lengths disagree")


def test_met_with_two_entries(tmp_path):
    d = delphes_arrays(random_events(4))
    d["MissingET"] = ak.zip({"MET": ak.Array([[1.0, 2.0]] * 4), "Phi": ak.Array([[0.0, 0.1]] * 4)})
    with uproot.recreate(tmp_path / "m.root") as f:
        f.mktree("Delphes", {k: v.type.content for k, v in d.items()},
                 field_name=lambda o, i: f"{o}.{i}", counter_name=lambda c: f"{c}_size"
                 ).extend(d)
    _raises(tmp_path / "m.root", "exactly one entry")


def test_nan_and_inf(tmp_path, caplog):
    evs = random_events(10)
    evs[3]["jets"] = [(float("nan"), 0.0, 0.0, 1.0, 0)]
    evs[7]["met"] = (float("inf"), 0.0)
    p = write_delphes(tmp_path / "n.root", evs)
    msg = _raises(p, "NaN or infinite")
    assert "Jet.PT" in msg and "MissingET.MET" in msg and "on_invalid='drop'" in msg
    with caplog.at_level(logging.WARNING):
        t = read_table(p, on_invalid="drop")
    warning = caplog.text.strip().splitlines()
    assert len(t) == 8 and len(warning) == 1
    assert f"'{p}': dropped 2 of 10 events" in warning[0]
    assert "'Jet.PT' (NaN or infinite, first at entry 3)" in warning[0]
    assert "'MissingET.MET' (NaN or infinite, first at entry 7)" in warning[0]
    met = t.pt[t.node_type == 5]
    assert sorted(met.tolist()) == [1000.0 + k for k in range(10) if k not in (3, 7)]
    kept = [k for k in range(10) if k not in (3, 7)]
    assert t.entry.tolist() == kept  # entry numbers in the file, gaps where events went
    chunked = read_table(p, on_invalid="drop", step_size=3)  # a chunk of one bad event
    assert chunked.entry.tolist() == kept and np.array_equal(chunked.pt, t.pt)
    assert read_table(p, on_invalid="drop", max_events=5).entry.tolist() == [0, 1, 2, 4]
    with pytest.raises(ValueError, match="on_invalid must be 'error' or 'drop'"):
        read_table(p, on_invalid="skip")


def test_every_event_keeps_its_entry_number(tmp_path):
    p = write_delphes(tmp_path / "e.root", random_events(9))
    assert read_table(p, step_size=4).entry.tolist() == list(range(9))
    assert read_table(p, entry_ranges=[(2, 6)]).entry.tolist() == [2, 3, 4, 5]
    t = read_table([p, p])
    assert t.entry.tolist() == [*range(9), *range(9)]
    assert t.subset([10, 3]).entry.tolist() == [1, 3] and t[4:6].entry.tolist() == [4, 5]


def test_empty_file(tmp_path):
    p = write_delphes(tmp_path / "e.root", [])
    _raises(p, "0 entries")
