"""Multilabel targets from the compact truth record (``Truth.PID``, ``Truth.PT``).

The list is fixed and documented (``docs/features.md``): a model's multilabel logits are
indexed by it. Presence labels look at ``|PID|``; the pT bins one-hot the pT of the leading
resonance (the highest-pT top, W, Z or Higgs in the record) and are all zero when the event
has none.
"""

from __future__ import annotations

import awkward as ak
import numpy as np

#: (label name, PDG ids whose presence sets it).
PRESENCE_LABELS: tuple[tuple[str, tuple[int, ...]], ...] = (
    ("has_top", (6,)),
    ("has_W", (24,)),
    ("has_Z", (23,)),
    ("has_higgs", (25, 36)),
    ("has_b", (5,)),
    ("has_electron", (11,)),
    ("has_muon", (13,)),
    ("has_tau", (15,)),
)
#: PDG ids of the resonances whose leading pT is binned.
RESONANCE_IDS: tuple[int, ...] = (6, 24, 23, 25, 36)
#: Edges of the leading-resonance pT bins in GeV; the last bin is open.
RESONANCE_PT_BINS: tuple[float, ...] = (0.0, 100.0, 200.0, 400.0)

MULTILABELS: tuple[str, ...] = (
    *(name for name, _ in PRESENCE_LABELS),
    "lead_res_pt_0_100", "lead_res_pt_100_200", "lead_res_pt_200_400", "lead_res_pt_400_inf",
)


def multilabels(pid: ak.Array, pt: ak.Array) -> np.ndarray:
    """Multilabel targets, float32 [B, len(MULTILABELS)], from jagged truth PID and pT."""
    counts = np.asarray(ak.num(pid, axis=1), dtype=np.int64)
    n, n_labels = len(counts), len(MULTILABELS)
    apid = np.abs(np.asarray(ak.flatten(pid, axis=None), dtype=np.int64))
    fpt = np.asarray(ak.flatten(pt, axis=None), dtype=np.float64)
    event = np.repeat(np.arange(n, dtype=np.int64), counts)
    code = np.where(apid < len(_PRESENCE_LUT), apid, 0)
    lab = _PRESENCE_LUT[code]
    hit = lab >= 0
    seen = np.bincount(event[hit] * n_labels + lab[hit], minlength=n * n_labels)
    out = (seen > 0).astype(np.float32).reshape(n, n_labels)
    res = np.flatnonzero(_RESONANCE_LUT[code])
    if len(res):  # leading resonance pT: a maximum over runs of one event (events ascend)
        ev = event[res]
        runs = np.flatnonzero(np.concatenate([[True], ev[1:] != ev[:-1]]))
        lead = np.maximum.reduceat(fpt[res], runs)
        ok = lead >= 0
        bins = np.searchsorted(np.asarray(RESONANCE_PT_BINS), lead[ok], side="right") - 1
        out[ev[runs[ok]], len(PRESENCE_LABELS) + bins] = 1.0
    return out


def _luts() -> tuple[np.ndarray, np.ndarray]:
    top = max(max(ids) for _, ids in PRESENCE_LABELS) + 1
    presence = np.full(top, -1, dtype=np.int64)
    for k, (_, ids) in enumerate(PRESENCE_LABELS):
        presence[list(ids)] = k
    presence[0] = -1
    resonance = np.zeros(top, dtype=bool)
    resonance[list(RESONANCE_IDS)] = True
    return presence, resonance


_PRESENCE_LUT, _RESONANCE_LUT = _luts()
