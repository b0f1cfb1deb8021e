"""Multilabel targets from the compact truth record (``Truth.PID``, ``Truth.PT``, ``Truth.M1``).

The list is fixed and documented (``docs/features.md``, with each label's fraction per
process): a model's multilabel logits are indexed by it. Most targets vary event by event
inside a process, so a multilabel head learns more than the process label:

- presence: a top, W, Z or Higgs (25, or the CP-odd 36) in the record;
- the Higgs decay mode, one-hot over bb, WW, ZZ, tautau, gammagamma and other (gg, cc, Z
  gamma, mumu ...), from the Higgs's daughters (``M1``); all zero without a Higgs;
- how many tops decay hadronically (their W has no charged-lepton daughter), one-hot over
  0, 1, 2; all zero without a top;
- the decay of every W (e nu, mu nu, tau nu or quarks) and Z (ee, mumu, tautau or other:
  neutrinos or quarks), multi-hot over the event's bosons;
- the number of b quarks in the hard process (from the scatter and from resonance decays),
  one-hot over 0, 1, 2, 3, 4 or more;
- the leading resonance pT (the highest-pT top, W, Z or Higgs), one-hot over four bins; all
  zero without one.
"""

from __future__ import annotations

import awkward as ak
import numpy as np

PRESENCE_LABELS: tuple[tuple[str, tuple[int, ...]], ...] = (
    ("has_top", (6,)),
    ("has_W", (24,)),
    ("has_Z", (23,)),
    ("has_higgs", (25, 36)),
)
#: Higgs decay modes by the |PDG id| of a daughter; "other" when none of these.
HIGGS_MODES: tuple[tuple[str, int], ...] = (
    ("higgs_to_bb", 5), ("higgs_to_WW", 24), ("higgs_to_ZZ", 23), ("higgs_to_tautau", 15),
    ("higgs_to_gammagamma", 22),
)
HADRONIC_TOPS: tuple[str, ...] = ("hadronic_tops_0", "hadronic_tops_1", "hadronic_tops_2")
#: W and Z decays by the |PDG id| of a charged-lepton daughter; the last: none of them.
W_DECAYS: tuple[str, ...] = ("W_to_e", "W_to_mu", "W_to_tau", "W_to_quarks")
Z_DECAYS: tuple[str, ...] = ("Z_to_ee", "Z_to_mumu", "Z_to_tautau", "Z_to_other")
HARD_B: tuple[str, ...] = ("hard_b_0", "hard_b_1", "hard_b_2", "hard_b_3", "hard_b_4plus")
#: PDG ids of the resonances whose leading pT is binned.
RESONANCE_IDS: tuple[int, ...] = (6, 24, 23, 25, 36)
#: Edges of the leading-resonance pT bins in GeV; the last bin is open.
RESONANCE_PT_BINS: tuple[float, ...] = (0.0, 100.0, 200.0, 400.0)
RESONANCE_PT: tuple[str, ...] = (
    "lead_res_pt_0_100", "lead_res_pt_100_200", "lead_res_pt_200_400", "lead_res_pt_400_inf")

MULTILABELS: tuple[str, ...] = (
    *(name for name, _ in PRESENCE_LABELS),
    *(name for name, _ in HIGGS_MODES), "higgs_to_other",
    *HADRONIC_TOPS, *W_DECAYS, *Z_DECAYS, *HARD_B, *RESONANCE_PT,
)
_COL = {name: k for k, name in enumerate(MULTILABELS)}
_LEPTONS = (11, 13, 15)


def multilabels(pid: ak.Array, pt: ak.Array, m1: ak.Array) -> np.ndarray:
    """Multilabel targets, float32 [B, len(MULTILABELS)], from the jagged truth record."""
    counts = np.asarray(ak.num(pid, axis=1), dtype=np.int64)
    n = len(counts)
    apid = np.abs(np.asarray(ak.flatten(pid, axis=None), dtype=np.int64))
    fpt = np.asarray(ak.flatten(pt, axis=None), dtype=np.float64)
    mother = np.asarray(ak.flatten(m1, axis=None), dtype=np.int64)
    event = np.repeat(np.arange(n, dtype=np.int64), counts)
    has_mother = (mother >= 0) & (mother < counts[event])
    # the global row of each entry's mother (itself when it has none: never used then)
    mrow = np.where(has_mother, np.repeat(np.cumsum(counts) - counts, counts) + mother,
                    np.arange(len(apid)))
    mpid = np.where(has_mother, apid[mrow], 0)
    out = np.zeros((n, len(MULTILABELS)), dtype=np.float32)

    def mark(rows: np.ndarray, cols: int | np.ndarray) -> None:
        out[event[rows], cols] = 1.0

    for name, ids in PRESENCE_LABELS:
        mark(np.flatnonzero(np.isin(apid, ids)), _COL[name])
    higgs = np.flatnonzero(np.isin(apid, (25, 36)))
    mark(higgs, _COL[HIGGS_MODES[0][0]] + _higgs_mode(apid, mpid, mrow, has_mother)[higgs])
    lepton_of = _lepton_daughter(apid, mrow, has_mother)
    w_rows, z_rows = np.flatnonzero(apid == 24), np.flatnonzero(apid == 23)
    mark(w_rows, _COL[W_DECAYS[0]] + _decay_index(lepton_of[w_rows]))
    mark(z_rows, _COL[Z_DECAYS[0]] + _decay_index(lepton_of[z_rows]))
    # a top is hadronic when the W it decays to has no charged-lepton daughter
    w_of_top = w_rows[has_mother[w_rows] & (mpid[w_rows] == 6)]
    hadronic = np.bincount(event[w_of_top], lepton_of[w_of_top] == 0, minlength=n)
    with_top = np.flatnonzero(np.bincount(event, apid == 6, minlength=n) > 0)
    out[with_top, _COL[HADRONIC_TOPS[0]] + np.minimum(hadronic[with_top], 2).astype(int)] = 1.0
    n_b = np.bincount(event, apid == 5, minlength=n).astype(int)
    out[np.arange(n), _COL[HARD_B[0]] + np.minimum(n_b, len(HARD_B) - 1)] = 1.0
    _leading_resonance_pt(apid, fpt, event, out)
    return out


def _lepton_daughter(apid: np.ndarray, mrow: np.ndarray, has_mother: np.ndarray) -> np.ndarray:
    """Per entry, the |PDG id| of a charged-lepton daughter (11, 13, 15), else 0."""
    found = np.zeros(len(apid), dtype=np.int64)
    child = np.flatnonzero(has_mother & np.isin(apid, _LEPTONS))
    found[mrow[child]] = apid[child]
    return found


def _decay_index(lepton: np.ndarray) -> np.ndarray:
    """0, 1, 2 for a daughter e, mu, tau; 3 for none."""
    index = np.full(len(lepton), len(_LEPTONS), dtype=np.int64)
    for k, pdg in enumerate(_LEPTONS):
        index[lepton == pdg] = k
    return index


def _higgs_mode(apid: np.ndarray, mpid: np.ndarray, mrow: np.ndarray, has_mother: np.ndarray
                ) -> np.ndarray:
    """Per entry, the index in HIGGS_MODES of a Higgs's decay (len(HIGGS_MODES): other)."""
    mode = np.full(len(apid), len(HIGGS_MODES), dtype=np.int64)
    for k, (_, daughter) in enumerate(HIGGS_MODES):
        child = np.flatnonzero(has_mother & np.isin(mpid, (25, 36)) & (apid == daughter))
        mode[mrow[child]] = k
    return mode


def _leading_resonance_pt(apid: np.ndarray, fpt: np.ndarray, event: np.ndarray,
                          out: np.ndarray) -> None:
    """One-hot bin of the highest resonance pT of each event (none without a resonance)."""
    res = np.flatnonzero(np.isin(apid, RESONANCE_IDS))
    if not len(res):
        return
    ev = event[res]
    runs = np.flatnonzero(np.concatenate([[True], ev[1:] != ev[:-1]]))
    lead = np.maximum.reduceat(fpt[res], runs)
    ok = lead >= 0
    bins = np.searchsorted(np.asarray(RESONANCE_PT_BINS), lead[ok], side="right") - 1
    out[ev[runs[ok]], _COL[RESONANCE_PT[0]] + bins] = 1.0
