"""Feature definitions and multilabels, with hand-computed numbers."""

from __future__ import annotations

import math
from pathlib import Path

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


def test_multilabels_from_hand_built_truth_records():
    # (pid, pt, m1) per entry; m1 is the index of the mother entry in the same event
    events = [
        # ttH, H -> bb, t -> W+ b with W+ -> mu+ nu, tbar -> W- bbar with W- -> quarks
        [(25, 150, -1), (6, 220, -1), (-6, 90, -1), (5, 60, 0), (-5, 50, 0), (24, 80, 1),
         (5, 70, 1), (-24, 40, 2), (-5, 30, 2), (-13, 40, 5)],
        # ZH, H -> gamma gamma, Z -> ee
        [(25, 90, -1), (23, 95, -1), (22, 60, 0), (22, 40, 0), (11, 50, 1), (-11, 45, 1)],
        # QCD: nothing in the record
        [],
        # ggF H -> WW -> tau nu, quarks
        [(25, 30, -1), (24, 40, 0), (-24, 20, 0), (-15, 25, 1)],
        # single top (s-channel): t -> W b, W -> e nu, plus the hard-scatter bbar
        [(6, 410, -1), (-5, 60, -1), (24, 300, 0), (5, 100, 0), (-11, 200, 2)],
        # Z + jet, Z -> tau tau; and a Higgs with no daughter in the record (H -> gg)
        [(23, 120, -1), (15, 60, 0), (-15, 60, 0), (25, 10, -1)],
    ]
    pid, pt, m1 = (ak.Array([[e[k] for e in ev] for ev in events]) for k in range(3))
    y = multilabels(pid, pt, m1)
    assert y.shape == (6, len(MULTILABELS)) and y.dtype == np.float32
    on = [{MULTILABELS[k] for k in np.flatnonzero(r)} for r in y]
    assert on[0] == {"has_top", "has_W", "has_higgs", "higgs_to_bb", "hadronic_tops_1",
                     "W_to_mu", "W_to_quarks", "hard_b_4plus", "lead_res_pt_200_400"}
    assert on[1] == {"has_Z", "has_higgs", "higgs_to_gammagamma", "Z_to_ee", "hard_b_0",
                     "lead_res_pt_0_100"}
    assert on[2] == {"hard_b_0"}
    assert on[3] == {"has_W", "has_higgs", "higgs_to_WW", "W_to_tau", "W_to_quarks",
                     "hard_b_0", "lead_res_pt_0_100"}
    assert on[4] == {"has_top", "has_W", "hadronic_tops_0", "W_to_e", "hard_b_2",
                     "lead_res_pt_400_inf"}
    assert on[5] == {"has_Z", "has_higgs", "higgs_to_other", "Z_to_tautau", "hard_b_0",
                     "lead_res_pt_100_200"}
    # one-hot groups: exactly one b count per event, at most one Higgs mode per Higgs
    hard_b = [MULTILABELS.index(n) for n in MULTILABELS if n.startswith("hard_b_")]
    assert (y[:, hard_b].sum(axis=1) == 1).all()


def test_multilabels_read_from_generated_files(generated_dir: Path):
    tt = read_table(generated_dir / "tt.root").y_multi
    col = {n: k for k, n in enumerate(MULTILABELS)}
    tops = tt[:, [col["hadronic_tops_0"], col["hadronic_tops_1"], col["hadronic_tops_2"]]]
    assert (tops.sum(axis=1) == 1).all()
    frac = tops.mean(axis=0)  # tt: (1 - 0.67)^2, 2 x 0.67 x 0.33, 0.67^2 (W -> quarks 67 %)
    np.testing.assert_allclose(frac, [0.11, 0.44, 0.45], atol=0.1)
    zh = read_table(generated_dir / "ZH.root").y_multi
    assert zh[:, col["higgs_to_bb"]].mean() > 0.4  # H -> bb is 58 %
    assert (zh[:, [col["Z_to_ee"], col["Z_to_mumu"], col["Z_to_tautau"]]].sum(axis=1) >= 1).all()


