"""Hand-built events written to ROOT in the Delphes layout (tests of hepfm.data)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import awkward as ak
import numpy as np
import uproot

# event = {"jets": [(pt, eta, phi, mass, btag)], "electrons": [(pt, eta, phi, charge)],
#          "muons": [...], "photons": [(pt, eta, phi)], "met": (met, phi),
#          "truth": [(pid, pt, eta, phi[, m1])]}  (m1: index of the mother entry, -1 if left out)
_COLS = {
    "Jet": ("jets", ("PT", "Eta", "Phi", "Mass", "BTag")),
    "Electron": ("electrons", ("PT", "Eta", "Phi", "Charge")),
    "Muon": ("muons", ("PT", "Eta", "Phi", "Charge")),
    "Photon": ("photons", ("PT", "Eta", "Phi")),
    "Truth": ("truth", ("PID", "PT", "Eta", "Phi", "M1")),
}
_INT = {"BTag", "Charge", "PID", "M1"}


def delphes_arrays(events: list[dict[str, Any]], truth: bool = True) -> dict[str, ak.Array]:
    """Awkward records per collection, as `hepfm generate` writes them."""
    out = {}
    for coll, (key, fields) in _COLS.items():
        if coll == "Truth" and not truth:
            continue
        counts = [len(e.get(key, [])) for e in events]
        rows = [o for e in events for o in e.get(key, [])]
        d = {}
        for k, f in enumerate(fields):
            dt = np.int32 if f in _INT else np.float32
            vals = (np.array([r[k] if k < len(r) else -1 for r in rows], dtype=dt) if rows
                    else np.zeros(0, dt))
            d[f] = ak.unflatten(vals, np.array(counts, dtype=np.int64))
        out[coll] = ak.zip(d)
    met = np.array([e.get("met", (0.0, 0.0)) for e in events], dtype=np.float32).reshape(-1, 2)
    ones = np.ones(len(events), dtype=np.int64)
    out["MissingET"] = ak.zip({"MET": ak.unflatten(met[:, 0], ones),
                               "Phi": ak.unflatten(met[:, 1], ones)})
    return out


def write_delphes(path: str | Path, events: list[dict[str, Any]], truth: bool = True,
                  tree: str = "Delphes") -> Path:
    """Write `events` to `path` in the Delphes layout (``Jet.PT``, ``Jet_size``, ...)."""
    data = delphes_arrays(events, truth)
    with uproot.recreate(path) as f:
        t = f.mktree(tree, {k: v.type.content for k, v in data.items()},
                     field_name=lambda o, i: f"{o}.{i}", counter_name=lambda c: f"{c}_size")
        if events:
            t.extend(data)
    return Path(path)


def random_events(n: int, seed: int = 0, met_start: float = 1000.0) -> list[dict[str, Any]]:
    """`n` random events; event k has MET = met_start + k (an id that survives reading)."""
    rng = np.random.default_rng(seed)
    evs = []
    for k in range(n):
        def obj(extra, nmax):
            return [(float(rng.uniform(25, 300)), float(rng.uniform(-2.4, 2.4)),
                     float(rng.uniform(-3.1, 3.1)), *extra())
                    for _ in range(int(rng.integers(0, nmax + 1)))]
        evs.append({
            "jets": obj(lambda: (float(rng.uniform(0, 20)), int(rng.integers(0, 2))), 5),
            "electrons": obj(lambda: (int(rng.choice([-1, 1])),), 2),
            "muons": obj(lambda: (int(rng.choice([-1, 1])),), 1),
            "photons": obj(lambda: (), 1),
            "met": (met_start + k, float(rng.uniform(-3, 3))),
            "truth": [(int(rng.choice([6, -6, 24, 25, 5])), float(rng.uniform(0, 500)), 0.0,
                       0.0) for _ in range(int(rng.integers(0, 3)))],
        })
    return evs
