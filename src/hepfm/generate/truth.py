"""The compact hard-process truth record: PDG id, pT, eta, phi of the interesting particles.

From the hard scatter (Pythia status codes |status| 22-29: intermediate and outgoing particles
of the hardest process and its resonance decays; incoming partons, 21, and the MPI scatters,
31-39, are left out) it keeps tops, W, Z, H, A, Z', b quarks, charged leptons and photons
(so that H -> gamma gamma is visible). Resonances
(t, W, Z, H, A, Z') are followed along their recoil copies to the last copy, the one that
decays, so that e.g. a gluon-fusion Higgs has the pT it gets from initial-state radiation;
b quarks and leptons keep the kinematics they have in the hard process.

``M1`` links each entry to the entry it decays from, as Delphes' ``GenParticle.M1`` does: the
index (within the event's record) of the resonance whose decaying copy is its mother, or -1
(produced in the hard scatter itself, or from a particle the record does not keep). So a
lepton from a W from a top reads ``M1 -> W``, ``W.M1 -> t``: decay chains (the Higgs decay
mode, hadronic or leptonic tops and W/Z bosons) are read from the record alone.
"""

from __future__ import annotations

import awkward as ak
import numpy as np

from hepfm.generate.objects import ParticleTable, jagged

#: |PDG id| of the particles kept in the truth record.
TRUTH_IDS = np.array([5, 6, 11, 13, 15, 22, 23, 24, 25, 32, 36])
#: Resonances followed to their last (decaying) copy.
RESONANCE_IDS = np.array([6, 23, 24, 25, 32, 36])
_MAX_COPIES = 200


def last_copies(table: ParticleTable, rows: np.ndarray) -> np.ndarray:
    """Follow each row through its copies to the last copy, the one that decays.

    A copy is a first daughter with the same id: a carbon copy after recoil (one daughter) or
    the particle after it radiated (a W emitting a photon, ``W -> W gamma``). Loops over the
    depth of the copy chain (tens at most), vectorised over all rows.
    """
    rows = rows.copy()
    for _ in range(_MAX_COPIES):
        nxt = table.daughter1[rows]
        step = (nxt > table.offsets[table.event[rows]]) & (table.id[nxt] == table.id[rows])
        if not step.any():
            break
        rows[step] = nxt[step]
    return rows


def truth_record(table: ParticleTable) -> ak.Array:
    """The Delphes-style ``Truth`` collection (``PID``, ``PT``, ``Eta``, ``Phi``, ``M1``) per
    event."""
    t = table
    abs_status = np.abs(t.status)
    rows = np.nonzero((abs_status >= 22) & (abs_status <= 29)
                      & np.isin(np.abs(t.id), TRUTH_IDS))[0]
    resonance = np.isin(np.abs(t.id[rows]), RESONANCE_IDS)
    kin = rows.copy()
    kin[resonance] = last_copies(t, rows[resonance])
    return jagged(t.event[rows], t.n_events, PID=t.id[rows].astype(np.int32),
                  PT=t.pt[kin].astype(np.float32), Eta=t.eta[kin].astype(np.float32),
                  Phi=t.phi[kin].astype(np.float32), M1=mother_index(t, rows, kin, resonance))


def mother_index(table: ParticleTable, rows: np.ndarray, kin: np.ndarray,
                 resonance: np.ndarray) -> np.ndarray:
    """For each record row, the record index (within its event) of the resonance whose last
    copy (`kin`) is the row's mother, else -1. `rows` are sorted (grouped by event)."""
    event = table.event[rows]
    first = np.searchsorted(event, event)  # record index of each event's first entry
    decaying, position = kin[resonance], np.flatnonzero(resonance)
    order = np.argsort(decaying)
    decaying, position = decaying[order], position[order]
    if len(decaying) == 0:
        return np.full(len(rows), -1, dtype=np.int32)
    mother = table.mother1[rows]
    at = np.minimum(np.searchsorted(decaying, mother), len(decaying) - 1)
    return np.where(decaying[at] == mother, position[at] - first, -1).astype(np.int32)
