"""Event-level features and the BDT baseline, against hand computations."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.exceptions import NotFittedError

from hepfm.analysis.baseline import FEATURE_NAMES, BDTBaseline, event_features
from hepfm.data.features import BJET, ELECTRON, JET, MET, MUON, PHOTON
from hepfm.data.table import EventTable


def _table(events: list[list[tuple]], y: list[int]) -> EventTable:
    """events: [(type, pt, eta, phi, mass, charge), ...] per event."""
    rows = [r for e in events for r in e]
    col = list(zip(*rows, strict=True))
    offsets = np.concatenate([[0], np.cumsum([len(e) for e in events])]).astype(np.int64)
    t = np.array(col[0], np.int8)
    return EventTable(offsets=offsets, pt=np.array(col[1], np.float32),
                      eta=np.array(col[2], np.float32), phi=np.array(col[3], np.float32),
                      mass=np.array(col[4], np.float32), charge=np.array(col[5], np.int8),
                      btag=(t == BJET).astype(np.float32), node_type=t,
                      y=np.array(y, np.int64), process=np.zeros(len(events), np.int16))


def test_features_by_hand():
    pi = np.pi
    table = _table([
        # jets 50 (phi 0) and b-jet 40 (phi pi), muons 30+ and 20- back to back, MET 25
        [(JET, 50, 0, 0, 0, 0), (BJET, 40, 0, pi, 0, 0), (MUON, 30, 0, 0, 0, 1),
         (MUON, 20, 0, pi, 0, -1), (MET, 25, 0, pi / 2, 0, 0)],
        # only MET: every object feature is missing
        [(MET, 10, 0, 0, 0, 0)],
        # photons out of pT order, one electron at 90 degrees to MET
        [(ELECTRON, 40, 1.0, 0, 0, -1), (PHOTON, 30, 0.5, 0, 0, 0),
         (PHOTON, 60, -0.5, 1, 0, 0), (MET, 40, 0, pi / 2, 0, 0)],
    ], [1, 0, 1])
    f = event_features(table)
    assert list(f.columns) == list(FEATURE_NAMES) and len(f) == 3
    e0, e1, e2 = (f.iloc[i] for i in range(3))
    assert (e0["n_jets"], e0["n_bjets"], e0["n_muons"], e0["n_leptons"]) == (2, 1, 2, 2)
    assert e0["ht"] == 90 and e0["met"] == 25 and e0["lep_charge_sum"] == 0
    assert (e0["jet1_pt"], e0["jet2_pt"], e0["bjet1_pt"]) == (50, 40, 40)
    assert np.isnan(e0["jet3_pt"]) and np.isnan(e0["m_bb"])
    # massless back-to-back pairs: m = 2 sqrt(pT1 pT2)
    assert e0["m_jj"] == pytest.approx(2 * np.sqrt(50 * 40), rel=1e-6)
    assert e0["m_ll"] == pytest.approx(2 * np.sqrt(30 * 20), rel=1e-6)
    assert e0["m_visible"] == pytest.approx(np.sqrt(140 ** 2 - 20 ** 2), rel=1e-6)
    assert e0["min_dphi_jet_met"] == pytest.approx(pi / 2, rel=1e-6)
    assert e1["met"] == 10 and e1["n_jets"] == 0
    assert np.isnan(e1[["jet1_pt", "lep1_pt", "m_jj", "m_ll", "mt_lep_met"]]).all()
    assert (e2["photon1_pt"], e2["photon1_eta"]) == (60, pytest.approx(-0.5))
    assert e2["n_electrons"] == 1 and e2["lep1_eta"] == pytest.approx(1.0)
    # mT of lepton and MET at 90 degrees: sqrt(2 * 40 * 40)
    assert e2["mt_lep_met"] == pytest.approx(np.sqrt(2 * 40 * 40), rel=1e-6)


def _random_table(n: int, seed: int) -> EventTable:
    """Signal events have harder jets: a BDT must find it."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    events = []
    for label in y:
        k = rng.integers(1, 5)
        jets = [(JET, float(rng.exponential(40 + 40 * label)) + 20, float(rng.normal()),
                 float(rng.uniform(-3, 3)), 5.0, 0) for _ in range(k)]
        events.append([*jets, (MET, float(rng.exponential(30)), 0.0, 0.0, 0.0, 0)])
    return _table(events, list(y))


def test_bdt_estimator_conventions():
    train, val, test = (_random_table(n, s) for n, s in ((600, 0), (300, 1), (400, 2)))
    est = BDTBaseline(random_state=3)
    with pytest.raises(NotFittedError):
        est.predict_proba(test)
    assert est.fit(train, val) is est
    proba = est.predict_proba(test)
    assert proba.shape == (400, 2) and np.allclose(proba.sum(1), 1.0)
    assert set(est.predict(test)) <= {0, 1} and 1 <= est.n_iter_ <= est.max_iter
    assert est.score(test, test.y) > 0.6  # ClassifierMixin accuracy on harder signal jets
    again = BDTBaseline(random_state=3).fit(train, val)
    assert np.array_equal(again.signal_score(test), est.signal_score(test))  # seeded
    assert est.get_params()["random_state"] == 3
