"""The events of Delphes-layout files rewritten, with uproot alone (not by hepfm), in the
layouts of CMS NanoAOD and of the ATLAS 13 TeV Open Data: stand-ins for experiment files in
the README's "Experiment formats" walk-through and in the tests.

    python data/toy_layouts.py IN OUT --layout nanoaod|atlas-opendata [--seed 0]

IN is a Delphes-layout file or a folder of them (``*.root``, searched recursively; e.g. made
by ``data/toy_delphes.py``); OUT receives the same file names. The events are the same:

- ``nanoaod``: tree ``Events``; ``nJet``, ``Jet_pt``, ``Jet_eta``, ``Jet_phi``, ``Jet_mass``,
  ``Jet_btagDeepFlavB``; ``nElectron``, ``Electron_pt/eta/phi/charge``; ``nMuon``,
  ``Muon_pt/eta/phi/charge``; ``nPhoton``, ``Photon_pt/eta/phi``; scalar ``MET_pt``,
  ``MET_phi``; GeV.
- ``atlas-opendata``: tree ``mini``; ``jet_n``, ``jet_pt``, ``jet_eta``, ``jet_phi``,
  ``jet_E``, ``jet_MV2c10``; one lepton collection ``lep_n``, ``lep_pt/eta/phi/E/charge`` and
  ``lep_type`` (11 electron, 13 muon), ordered by pT; ``photon_n``, ``photon_pt/eta/phi/E``;
  scalar ``met_et``, ``met_phi``; MeV.

The Delphes b-tag (bit 0 of ``Jet.BTag``) becomes a score on the right side of the layout's
default working point: DeepJet in [0.75, 1) for tagged jets and [0, 0.25) for the others
(so ``medium`` and ``tight`` reproduce the Delphes tags, ``loose`` tags more); MV2c10 in
[0.83, 1) and [-1, 0.8) (the 70% working point reproduces them). Flat branches of the input
(an event weight, a label) are copied as they are; the truth record is not.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import awkward as ak
import numpy as np
import uproot

LAYOUTS = ("nanoaod", "atlas-opendata")
LEPTON_MASS = {11: 0.000511, 13: 0.10566}
#: Score ranges [tagged, untagged] of the b-tag discriminant of each layout.
SCORES = {"nanoaod": ((0.75, 1.0), (0.0, 0.25)), "atlas-opendata": ((0.83, 1.0), (-1.0, 0.8))}


def _energy(pt: ak.Array, eta: ak.Array, mass: ak.Array | float) -> ak.Array:
    p = np.asarray(ak.flatten(pt), np.float64) * np.cosh(np.asarray(ak.flatten(eta), np.float64))
    m = mass if isinstance(mass, float) else np.asarray(ak.flatten(mass), np.float64)
    return ak.unflatten(np.sqrt(p * p + np.square(m)), ak.num(pt))


def _scores(btag: ak.Array, layout: str, rng: np.random.Generator) -> ak.Array:
    tagged = (np.asarray(ak.flatten(btag), np.int64) & 1) == 1
    (t_lo, t_hi), (u_lo, u_hi) = SCORES[layout]
    s = np.where(tagged, rng.uniform(t_lo, t_hi, len(tagged)),
                 rng.uniform(u_lo, u_hi, len(tagged)))
    return ak.unflatten(s.astype(np.float32), ak.num(btag))


def _f32(a: ak.Array, factor: float = 1.0) -> ak.Array:
    return ak.values_astype(a * factor, np.float32)


def convert_arrays(d: dict[str, ak.Array | np.ndarray], layout: str, seed: int = 0
                   ) -> tuple[str, dict[str, ak.Array | np.ndarray], str]:
    """A Delphes tree's arrays (records ``Jet``, ``Electron``, ``Muon``, ``Photon``,
    ``MissingET``, and flat branches) -> (tree name, arrays of `layout`, counter pattern)."""
    rng = np.random.default_rng(seed)
    jet, el, mu, ph = d["Jet"], d["Electron"], d["Muon"], d["Photon"]
    met = ak.flatten(d["MissingET"].MET)
    met_phi = ak.flatten(d["MissingET"].Phi)
    extra = {k: np.asarray(v) for k, v in d.items()
             if k not in ("Jet", "Electron", "Muon", "Photon", "MissingET", "Truth")}
    if layout == "nanoaod":
        out = {
            "Jet": ak.zip({"pt": jet.PT, "eta": jet.Eta, "phi": jet.Phi, "mass": jet.Mass,
                           "btagDeepFlavB": _scores(jet.BTag, layout, rng)}),
            "Electron": ak.zip({"pt": el.PT, "eta": el.Eta, "phi": el.Phi,
                                "charge": el.Charge}),
            "Muon": ak.zip({"pt": mu.PT, "eta": mu.Eta, "phi": mu.Phi, "charge": mu.Charge}),
            "Photon": ak.zip({"pt": ph.PT, "eta": ph.Eta, "phi": ph.Phi}),
            "MET_pt": ak.to_numpy(met).astype(np.float32),
            "MET_phi": ak.to_numpy(met_phi).astype(np.float32),
        }
        return "Events", {**out, **extra}, "n{}"
    if layout != "atlas-opendata":
        raise ValueError(f"layout must be one of {', '.join(LAYOUTS)}, got '{layout}'")
    mev = 1000.0

    def leptons(c: ak.Array, pdg: int) -> ak.Array:
        return ak.zip({"pt": _f32(c.PT, mev), "eta": c.Eta, "phi": c.Phi,
                       "E": _f32(_energy(c.PT, c.Eta, LEPTON_MASS[pdg]), mev),
                       "charge": c.Charge,
                       "type": ak.values_astype(ak.ones_like(c.Charge) * pdg, np.uint32)})

    lep = ak.concatenate([leptons(el, 11), leptons(mu, 13)], axis=1)
    lep = lep[ak.argsort(lep.pt, axis=1, ascending=False)]
    out = {
        "jet": ak.zip({"pt": _f32(jet.PT, mev), "eta": jet.Eta, "phi": jet.Phi,
                       "E": _f32(_energy(jet.PT, jet.Eta, jet.Mass), mev),
                       "MV2c10": _scores(jet.BTag, layout, rng)}),
        "lep": lep,
        "photon": ak.zip({"pt": _f32(ph.PT, mev), "eta": ph.Eta, "phi": ph.Phi,
                          "E": _f32(_energy(ph.PT, ph.Eta, 0.0), mev)}),
        "met_et": (ak.to_numpy(met).astype(np.float64) * mev).astype(np.float32),
        "met_phi": ak.to_numpy(met_phi).astype(np.float32),
    }
    return "mini", {**out, **extra}, "{}_n"


def convert_file(src: str | Path, dst: str | Path, layout: str, seed: int = 0) -> Path:
    """Rewrite the ``Delphes`` tree of `src` into `dst` in `layout`."""
    flat = uproot.open(src)["Delphes"].arrays(library="ak")
    d: dict[str, ak.Array | np.ndarray] = {
        c: ak.zip({f.split(".", 1)[1]: flat[f] for f in flat.fields if f.startswith(c + ".")})
        for c in ("Jet", "Electron", "Muon", "Photon", "MissingET")}
    d.update({k: ak.to_numpy(flat[k]) for k in flat.fields
              if "." not in k and not k.endswith("_size")})
    name, arrays, counter = convert_arrays(d, layout, seed)
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    with uproot.recreate(dst) as f:
        types = {k: (v.type.content if isinstance(v, ak.Array) else v.dtype)
                 for k, v in arrays.items()}
        t = f.mktree(name, types, field_name=lambda o, i: f"{o}_{i}",
                     counter_name=lambda c: counter.format(c))
        if len(flat):
            t.extend(arrays)
    return dst


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("source", type=Path, help="a Delphes-layout file or folder")
    ap.add_argument("out", type=Path)
    ap.add_argument("--layout", choices=LAYOUTS, required=True)
    ap.add_argument("--seed", type=int, default=0, help="seed of the b-tag scores")
    args = ap.parse_args()
    files = sorted(args.source.rglob("*.root")) if args.source.is_dir() else [args.source]
    for k, src in enumerate(files):
        rel = src.relative_to(args.source) if args.source.is_dir() else Path(src.name)
        print(convert_file(src, args.out / rel, args.layout, args.seed + k))


if __name__ == "__main__":
    main()
