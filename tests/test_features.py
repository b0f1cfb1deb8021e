"""Feature definitions and multilabels, with hand-computed numbers."""

from __future__ import annotations

import math

import awkward as ak
import numpy as np
import pytest

from hepfm.data import (
    EDGE_FEATURES,
    GLOBAL_FEATURES,
    MULTILABELS,
    NODE_FEATURES,
    NODE_TYPES,
    Selection,
    build_batch,
    multilabels,
    read_table,
)
from tests._data_helpers import write_delphes


def _edge(batch, s: int, r: int) -> np.ndarray:
    ei = batch.edge_index.numpy()
    k = np.flatnonzero((ei[0] == s) & (ei[1] == r))
    assert len(k) == 1
    return batch.edge_attr.numpy()[k[0]]


def test_feature_lists_follow_the_contract():
    assert NODE_TYPES == ("jet", "bjet", "electron", "muon", "photon", "met")
    assert len(NODE_FEATURES) == 13 and NODE_FEATURES[-6:] == tuple(f"is_{t}" for t in NODE_TYPES)
    assert EDGE_FEATURES == ("delta_eta", "delta_phi", "delta_r", "log_mass")
    assert GLOBAL_FEATURES == ("log_met", "log_ht", "n_jets", "n_bjets", "n_leptons")


def test_selection_round_trip():
    s = Selection()
    assert Selection.from_dict(s.to_dict()) == s


def test_massless_back_to_back_pair(tmp_path):
    # two photons at eta 0, back to back: m = 2 sqrt(pT1 pT2) = 2 sqrt(30 * 120) = 120 GeV
    ev = {"photons": [(120.0, 0.0, 0.0), (30.0, 0.0, math.pi - 1e-7)],
          "met": (50.0, math.pi / 2)}
    f = write_delphes(tmp_path / "a.root", [ev])
    b = build_batch(read_table(f))
    assert b.x.shape == (3, 13)
    e = _edge(b, 0, 1)
    assert e[3] == pytest.approx(math.log(121.0), abs=1e-4)
    assert e[2] == pytest.approx(math.pi, abs=1e-5)
    # photon (120, phi 0) with MET (50, phi pi/2), both massless at eta 0:
    # m^2 = 2 * 120 * 50 * (1 - cos(pi/2)) = 12000
    assert _edge(b, 0, 2)[3] == pytest.approx(math.log(math.sqrt(12000.0) + 1), abs=1e-4)
    # MET node: pt = MET, eta 0, E = MET
    x = b.x.numpy()
    assert x[2, 0] == pytest.approx(math.log1p(50.0))
    assert x[2, 1] == 0.0 and x[2, 4] == pytest.approx(math.log1p(50.0))
    assert x[2, NODE_FEATURES.index("is_met")] == 1


def test_delta_phi_wraps_across_pi(tmp_path):
    f = write_delphes(tmp_path / "a.root", [{"photons": [(50.0, 0.5, 3.0), (40.0, -0.5, -3.0)],
                                             "met": (10.0, 0.0)}])
    b = build_batch(read_table(f))
    d = 6.0 - 2 * math.pi  # 3 - (-3) wrapped into [-pi, pi)
    e01, e10 = _edge(b, 0, 1), _edge(b, 1, 0)
    assert e01[1] == pytest.approx(d, abs=1e-5) and e10[1] == pytest.approx(-d, abs=1e-5)
    assert e01[0] == pytest.approx(1.0) and e10[0] == pytest.approx(-1.0)
    assert e01[2] == pytest.approx(math.hypot(1.0, d), abs=1e-5)
    assert np.all(b.edge_attr[:, 1].numpy() >= -math.pi)
    assert np.all(b.edge_attr[:, 1].numpy() < math.pi)


def test_node_and_global_features(tmp_path):
    ev = {"jets": [(100.0, 1.0, 0.5, 10.0, 1), (50.0, -1.0, 1.0, 5.0, 0)],
          "electrons": [(30.0, 0.2, -1.0, -1)], "muons": [(20.0, 0.1, 2.0, 1)],
          "met": (40.0, 0.3)}
    b = build_batch(read_table(write_delphes(tmp_path / "a.root", [ev])))
    x = b.x.numpy()
    assert b.node_type.tolist() == [1, 0, 2, 3, 5]  # bjet, jet, electron, muon, met
    e0 = math.sqrt((100 * math.cosh(1.0)) ** 2 + 10.0 ** 2)
    assert x[0, :7] == pytest.approx([math.log1p(100), 1.0, math.sin(0.5), math.cos(0.5),
                                      math.log1p(e0), 0.0, 1.0], rel=1e-5)
    assert x[2, 5] == -1 and x[3, 5] == 1
    assert b.u.numpy()[0] == pytest.approx([math.log1p(40), math.log1p(150), 2, 1, 2], rel=1e-6)


def test_multilabels_known_numbers():
    pid = ak.Array([[6, -6, 5], [24, 13], [], [36, 25, 15], [23, 11]])
    pt = ak.Array([[150.0, 90.0, 40.0], [450.0, 30.0], [], [250.0, 10.0, 5.0], [99.9, 1.0]])
    y = multilabels(pid, pt)
    assert y.shape == (5, len(MULTILABELS)) and y.dtype == np.float32
    on = [{MULTILABELS[k] for k in np.flatnonzero(r)} for r in y]
    assert on[0] == {"has_top", "has_b", "lead_res_pt_100_200"}
    assert on[1] == {"has_W", "has_muon", "lead_res_pt_400_inf"}
    assert on[2] == set()
    assert on[3] == {"has_higgs", "has_tau", "lead_res_pt_200_400"}
    assert on[4] == {"has_Z", "has_electron", "lead_res_pt_0_100"}
