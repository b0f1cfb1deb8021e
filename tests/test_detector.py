"""The detector is close to the Delphes ATLAS card, and the CP task's samples differ in Phi."""

from __future__ import annotations

from pathlib import Path

import awkward as ak
import numpy as np
import pytest
import uproot

from hepfm.generate.detector import DetectorConfig


def test_btag_efficiency_follows_the_card_table():
    # ATL-PHYS-PUB-2015-022 as in the Delphes ATLAS card, computed by hand at these pT
    cfg = DetectorConfig()
    pt = np.array([30.0, 50.0, 100.0, 200.0, 400.0])
    eta = np.zeros(5)
    b = cfg.btag_efficiency(pt, eta, np.full(5, 2))
    np.testing.assert_allclose(b, [0.602, 0.674, 0.728, 0.708, 0.565], atol=2e-3)
    c = cfg.btag_efficiency(pt, eta, np.full(5, 1))
    np.testing.assert_allclose(c, 0.2 * np.tanh(0.02 * pt) / (1 + 0.0034 * pt))
    assert 0.09 < c[0] < 0.11 and 0.13 < c[2] < 0.15
    light = cfg.btag_efficiency(pt, eta, np.zeros(5, dtype=int))
    np.testing.assert_allclose(light, 0.002 + 7.3e-6 * pt)
    # nothing is tagged outside the tracker
    assert not cfg.btag_efficiency(pt, np.full(5, 2.6), np.full(5, 2)).any()


def test_jet_resolution_worsens_from_central_to_forward():
    cfg = DetectorConfig()
    e = np.full(3, 100.0)
    central, endcap, forward = cfg.jet_resolution(e, np.array([0.5, 2.5, 4.0]))
    assert central == pytest.approx(np.sqrt(0.0302**2 + 0.5205**2 / 100 + (1.59 / 100) ** 2))
    assert central < endcap < forward
    assert forward == pytest.approx(np.sqrt(0.0942**2 + 1.0 / 100))


def test_lepton_efficiency_by_region():
    cfg = DetectorConfig()
    eff = cfg.lepton_efficiency(cfg.muon_eff_barrel, cfg.muon_eff_endcap,
                                np.array([0.0, 1.49, 1.51, 2.6]))
    np.testing.assert_allclose(eff, [0.95, 0.95, 0.85, 0.85])


def test_vbf_has_untagged_forward_jets(generated_dir: Path):
    a = uproot.open(generated_dir / "VBF_H.root")["Delphes"].arrays(["Jet.Eta", "Jet.BTag"])
    eta, btag = ak.flatten(a["Jet.Eta"]), ak.flatten(a["Jet.BTag"])
    forward = np.abs(ak.to_numpy(eta)) > 2.5
    assert forward.sum() > 20  # tagging jets of VBF
    assert np.abs(ak.to_numpy(eta)).max() < DetectorConfig().jet_eta_max
    assert not ak.to_numpy(btag)[forward].any()


@pytest.mark.slow
def test_btag_efficiency_rises_with_pt_in_generated_b_jets():
    pytest.importorskip("pythia8mc")
    pytest.importorskip("fastjet")
    from hepfm.generate.jets import reconstruct_jets
    from hepfm.generate.objects import ParticleTable, reconstruct_leptons_photons
    from hepfm.generate.pythia import generate_events
    from hepfm.processes import get_process

    cfg = DetectorConfig()
    prt = generate_events(get_process("ttH"), 300, 4242, mpi=False)
    rng = np.random.default_rng(1)
    table = ParticleTable.from_pythia(prt, cfg)
    jets = reconstruct_jets(table, reconstruct_leptons_photons(table, cfg, rng).used, cfg, rng)
    pt = ak.to_numpy(ak.flatten(jets.collection.PT))
    eta = ak.to_numpy(ak.flatten(jets.collection.Eta))
    tag = ak.to_numpy(ak.flatten(jets.collection.BTag)).astype(bool)
    b = (jets.flavour == 2) & (np.abs(eta) < 2.5)
    rates = []
    for lo, hi in ((25.0, 50.0), (90.0, 250.0)):
        sel = b & (pt >= lo) & (pt < hi)
        expected = cfg.btag_efficiency(pt[sel], eta[sel], jets.flavour[sel]).mean()
        rate = tag[sel].mean()
        sigma = np.sqrt(expected * (1 - expected) / sel.sum())
        assert sel.sum() > 80 and abs(rate - expected) < 3.5 * sigma
        rates.append(rate)
    assert rates[1] > rates[0]
    light = (jets.flavour == 0) & (pt > 25)
    assert tag[light].mean() < 0.02


@pytest.mark.slow
def test_cp_samples_differ_in_the_decay_plane_angle():
    """Phi from the Z decay leptons (Pythia record): CP-odd has a negative mean cos(2 Phi),
    CP-even a mean near zero or positive. Identical samples would give the same mean."""
    pytest.importorskip("pythia8mc")
    from hepfm.analysis.angles import decay_plane_angle
    from hepfm.generate.objects import pt_eta_phi
    from hepfm.generate.pythia import generate_events
    from hepfm.processes import get_process

    means = {}
    for name in ("H4l_CPeven", "H4l_CPodd"):
        prt = generate_events(get_process(name), 1500, 777, mpi=False)
        is_lep = (abs(prt.id) == 11) | (abs(prt.id) == 13)
        mother = prt.id[ak.where(prt.mother1 >= 0, prt.mother1, 0)]
        lep = prt[is_lep & (mother == 23)]
        lep = lep[ak.num(lep) == 4]
        pt, eta, phi = pt_eta_phi(*(ak.to_numpy(ak.flatten(lep.p[c])) for c in ("px", "py", "pz")))
        charge = -np.sign(ak.to_numpy(ak.flatten(lep.id)))
        flavour = np.abs(ak.to_numpy(ak.flatten(lep.id)))
        angle = decay_plane_angle(*(x.reshape(-1, 4) for x in (pt, eta, phi, charge, flavour)))
        angle = angle[np.isfinite(angle)]
        assert len(angle) > 1000
        c2 = np.cos(2 * angle)
        means[name] = (c2.mean(), c2.std() / np.sqrt(len(c2)))
    (even, se_even), (odd, se_odd) = means["H4l_CPeven"], means["H4l_CPodd"]
    assert even - odd > 4 * np.hypot(se_even, se_odd)
    assert odd < -0.05


def test_cp_task_keeps_only_four_lepton_events(generated_dir: Path):
    from hepfm.taskdata import lepton_counts, load_task_events
    from hepfm.tasks import get_task

    task = get_task("H4l_CPodd_vs_CPeven")
    table = load_task_events(task, generated_dir)
    assert len(table) > 0 and (lepton_counts(table) >= 4).all()
    n_file = 0
    for name in task.processes:
        a = uproot.open(generated_dir / f"{name}.root")["Delphes"].arrays(
            ["Electron_size", "Muon_size"])
        n_file += int(np.sum(a["Electron_size"] + a["Muon_size"] >= 4))
    assert len(table) == n_file  # the generator's acceptance is the reading selection's


# ---------------------------------------------------------------- detector version 2


def _table(particles: list[tuple[int, float, float, float]]):
    """A one-event ParticleTable of final-state particles (pdg, pt, eta, phi), all visible."""
    from hepfm.generate.objects import ParticleTable

    pdg, pt, eta, phi = (np.array(c) for c in zip(*particles, strict=True))
    n = len(pdg)
    px, py, pz = pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)
    return ParticleTable(1, np.array([0, n]), np.zeros(n, dtype=np.int64), pdg,
                         np.ones(n, dtype=int), np.zeros(n, dtype=np.int64),
                         np.zeros(n, dtype=np.int64), np.zeros(n, dtype=np.int64), px, py, pz,
                         pt * np.cosh(eta), pt, eta, phi, np.ones(n, dtype=bool))


def test_isolation_leaves_out_electrons_and_muons():
    from hepfm.generate.objects import relative_isolation

    # two muons 0.1 apart and a pion and a photon inside both cones
    table = _table([(13, 50.0, 0.0, 0.0), (-13, 40.0, 0.1, 0.0), (211, 2.0, 0.05, 0.1),
                    (22, 1.0, 0.05, -0.1), (11, 30.0, 0.0, 0.2)])
    iso = relative_isolation(table, np.array([0, 1]), DetectorConfig())
    # the card's EFlowFilter: only the pion and the photon count (the muon and electron not)
    np.testing.assert_allclose(iso, [3.0 / 50.0, 3.0 / 40.0])


def test_close_lepton_pair_is_reconstructed_isolated():
    from hepfm.generate.objects import reconstruct_leptons_photons

    table = _table([(13, 50.0, 0.0, 0.0), (-13, 40.0, 0.1, 0.0)])
    cfg = DetectorConfig(muon_eff_barrel=1.0, muon_track_eff_barrel=1.0)
    muons = reconstruct_leptons_photons(table, cfg, np.random.default_rng(0)).collections["Muon"]
    assert ak.num(muons).tolist() == [2]  # before version 2 each spoiled the other's isolation


def test_tracking_efficiency_follows_the_card():
    cfg = DetectorConfig()
    eta = np.array([0.0, 1.4, 1.6, 2.4, 2.6])
    e_low = cfg.tracking_efficiency(11, np.full(5, 50.0), eta)
    e_high = cfg.tracking_efficiency(11, np.full(5, 150.0), eta)
    mu = cfg.tracking_efficiency(13, np.full(5, 50.0), eta)
    np.testing.assert_allclose(e_low, [0.95, 0.95, 0.83, 0.83, 0.0])
    np.testing.assert_allclose(e_high, [0.99, 0.99, 0.90, 0.90, 0.0])
    np.testing.assert_allclose(mu, [0.99, 0.99, 0.98, 0.98, 0.0])


def test_no_muon_beyond_the_tracker():
    from hepfm.generate.objects import reconstruct_leptons_photons

    # a muon at |eta| 2.6 is inside MuonEfficiency's 2.7 but has no track (card)
    table = _table([(13, 50.0, 2.6, 0.0), (13, 50.0, -2.0, 2.0)])
    cfg = DetectorConfig(muon_eff_endcap=1.0, muon_track_eff_endcap=1.0)
    muons = reconstruct_leptons_photons(table, cfg, np.random.default_rng(0)).collections["Muon"]
    np.testing.assert_allclose(ak.to_numpy(ak.flatten(muons.Eta)), [-2.0])


def test_generated_files_record_the_detector_version(generated_dir: Path):
    from hepfm.generate.detector import DETECTOR_VERSION
    from hepfm.generate.writer import read_metadata

    meta = read_metadata(generated_dir / "VBF_H.root")
    assert meta["detector_version"] == DETECTOR_VERSION == 2
    assert meta["shower"] == "simple"
    assert "SpaceShower:dipoleRecoil = on" in meta["pythia_settings"]
    assert not any(s.startswith("PartonShowers:model") for s in meta["pythia_settings"])
    muon_eta = uproot.open(generated_dir / "ZH.root")["Delphes"]["Muon.Eta"].array()
    assert float(ak.max(abs(ak.flatten(muon_eta)))) < 2.5
