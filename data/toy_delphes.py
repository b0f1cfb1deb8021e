"""Toy Delphes-layout ROOT files written with uproot alone (not by hepfm): stand-ins for
your own analysis files in the README's "Your own analysis" walk-through and in the tests.

    python data/toy_delphes.py OUT [--files 4] [--events 2000] [--seed 0]

writes ``OUT/signal/sig_<k>.root`` and ``OUT/background/bkg_<k>.root``: a ``Delphes`` tree
with ``Jet.PT``, ``Jet.Eta``, ..., ``MissingET.MET``, ``MissingET.Phi`` (objects pT-ordered,
as Delphes writes them), plus two flat branches an analysis ntuple often has: ``weight``
(an event weight) and ``is_signal`` (1 or 0). Signal events have more and harder jets and
more b-tags; about 2% of all events have no object at all (only MET). Each file is written
in baskets of 500 events.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import awkward as ak
import numpy as np
import uproot


def toy_arrays(n: int, signal: bool, seed: int) -> dict[str, ak.Array]:
    """`n` events of one class as the awkward records of a Delphes tree (plus flat extras)."""
    rng = np.random.default_rng(seed)
    empty = rng.random(n) < 0.02  # events with no object at all

    def coll(mean: float, fields: dict, scale: float = 1.0) -> ak.Array:
        counts = np.where(empty, 0, rng.poisson(mean, n))
        k = int(counts.sum())
        cols = {f: ak.unflatten(g(k) * (scale if f == "PT" else 1), counts)
                for f, g in fields.items()}
        order = ak.argsort(cols["PT"], axis=1, ascending=False)
        return ak.zip({f: c[order] for f, c in cols.items()})

    f32 = np.float32

    def pt(k: int) -> np.ndarray:
        return (25 + rng.exponential(40, k)).astype(f32)

    def eta(k: int) -> np.ndarray:
        return rng.normal(0, 1.4, k).astype(f32)

    def phi(k: int) -> np.ndarray:
        return rng.uniform(-np.pi, np.pi, k).astype(f32)

    def charge(k: int) -> np.ndarray:
        return rng.choice(np.array([-1, 1], np.int32), k)

    b_rate = 0.35 if signal else 0.12
    ones = np.ones(n, np.int64)
    return {
        "Jet": coll(6.5 if signal else 4.5, {
            "PT": pt, "Eta": eta, "Phi": phi,
            "Mass": lambda k: rng.uniform(3, 25, k).astype(f32),
            "BTag": lambda k: (rng.random(k) < b_rate).astype(np.int32)},
            scale=1.4 if signal else 1.0),
        "Electron": coll(0.5, {"PT": pt, "Eta": eta, "Phi": phi, "Charge": charge}),
        "Muon": coll(0.5, {"PT": pt, "Eta": eta, "Phi": phi, "Charge": charge}),
        "Photon": coll(0.1, {"PT": pt, "Eta": eta, "Phi": phi}),
        "MissingET": ak.zip({"MET": ak.unflatten(rng.exponential(60, n).astype(f32), ones),
                             "Phi": ak.unflatten(phi(n), ones)}),
        "weight": rng.gamma(4.0, 0.25, n).astype(f32) * (0.01 if signal else 1.0),
        "is_signal": np.full(n, int(signal), np.int32),
    }


def write_toy_file(path: str | Path, n: int, signal: bool, seed: int,
                   basket_events: int = 500) -> Path:
    """One toy file of `n` events in baskets of `basket_events`."""
    data = toy_arrays(n, signal, seed)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with uproot.recreate(path) as f:
        types = {k: (v.type.content if isinstance(v, ak.Array) else v.dtype)
                 for k, v in data.items()}
        t = f.mktree("Delphes", types, field_name=lambda o, i: f"{o}.{i}",
                     counter_name=lambda c: f"{c}_size")
        for a in range(0, n, basket_events):
            t.extend({k: v[a:a + basket_events] for k, v in data.items()})
    return path


def write_toy(out: str | Path, files: int = 4, events: int = 2000, seed: int = 0
              ) -> list[Path]:
    """`files` signal and `files` background files of `events` events each under `out`."""
    out = Path(out)
    paths = []
    for k in range(files):
        paths.append(write_toy_file(out / "signal" / f"sig_{k}.root", events, True,
                                    seed * 1000 + k))
        paths.append(write_toy_file(out / "background" / f"bkg_{k}.root", events, False,
                                    seed * 1000 + 500 + k))
    return paths


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out")
    parser.add_argument("--files", type=int, default=4)
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    for p in write_toy(args.out, args.files, args.events, args.seed):
        print(p)
