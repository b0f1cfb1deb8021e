"""Systematic variations applied to events as they are read.

A :class:`Variation` shifts the reconstructed objects the way an analysis propagates a
detector uncertainty, so that a trained classifier can be scored on shifted events:

==========  ===========  =====================================================================
name        default      what moves
==========  ===========  =====================================================================
jes_up      0.026        every jet's pT and mass times ``1 + size``; MET recomputed
jes_down    0.026        every jet's pT and mass times ``1 - size``; MET recomputed
jer         0.05         every jet's pT and mass times ``max(0, 1 + size z)``, ``z`` a seeded
                         standard normal per jet (extra resolution smearing); MET recomputed
les_up      0.01         every electron's and muon's pT times ``1 + size``; MET recomputed
les_down    0.01         every electron's and muon's pT times ``1 - size``; MET recomputed
btag_up     0.05         each event's expected number of b-tagged jets times ``1 + size`` (as
                         far as it has untagged jets): untagged jets with ``|eta| < 2.5`` are
                         tagged with probability ``min(1, size n_tagged / n_untagged)``
btag_down   0.05         each b-tagged jet is untagged with probability ``size`` (b-tagging
                         efficiency times ``1 - size``)
==========  ===========  =====================================================================

Energy-scale variations act on every object of the file *before* the object selection, so
that a jet or lepton crossing a pT threshold enters or leaves the event as it would in an
analysis; MET is recomputed consistently: the MET vector changes by minus the vector sum of
the objects' pT shifts (eta, phi and everything else stay). The b-tag variations act on the
selected jets (tagging does not change the selection). Files carry no jet flavour, so the
b-tag scale acts on tagged jets whatever their flavour, and ``btag_up`` adds tags only in
events that have one. Random numbers are keyed to (seed, entry number in the file, object
position), so the same file gives the same varied events whatever the chunk size; events are
never dropped or reordered by a variation (paired comparisons stay paired).

Write ``NAME`` for the default size or ``NAME:SIZE`` (``jes_up:0.05``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import numpy as np

from hepfm.data.features import BJET, JET
from hepfm.data.table import EventTable
from hepfm.errors import ArgumentError, UnknownNameError

#: Default size of each kind of variation (a fraction).
DEFAULT_SIZES: dict[str, float] = {"jes": 0.026, "jer": 0.05, "les": 0.01, "btag": 0.05}
#: Every variation name, in the order they are reported.
VARIATIONS: tuple[str, ...] = ("jes_up", "jes_down", "jer", "les_up", "les_down", "btag_up",
                               "btag_down")
#: Jets beyond this |eta| are never tagged by ``btag_up`` (the tracker's acceptance).
BTAG_ETA_MAX = 2.5
_STREAMS = {"jer": 1, "btag": 2}
_U64 = np.uint64


@dataclass(frozen=True)
class Variation:
    """One systematic variation: `name` (see :data:`VARIATIONS`), its `size` (a fraction;
    None: the default of :data:`DEFAULT_SIZES`) and the `seed` of its random numbers."""

    name: str
    size: float | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if self.name not in VARIATIONS:
            raise UnknownNameError("variation", self.name, list(VARIATIONS))
        if self.size is None:
            object.__setattr__(self, "size", DEFAULT_SIZES[self.kind])
        if not (isinstance(self.size, (int, float)) and 0 < self.size < 1):
            raise ArgumentError(f"variation '{self.name}': the size must be a fraction in "
                                f"(0, 1), got {self.size}")

    @property
    def kind(self) -> str:
        """``jes``, ``jer``, ``les`` or ``btag``."""
        return self.name.split("_")[0]

    @property
    def sign(self) -> int:
        return -1 if self.name.endswith("_down") else 1

    @property
    def label(self) -> str:
        """``NAME`` at the default size, else ``NAME:SIZE``."""
        return self.name if self.size == DEFAULT_SIZES[self.kind] else \
            f"{self.name}:{self.size:g}"

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    # -- before the object selection: energy scales and resolution -------------------------
    def apply_objects(self, collections: dict[str, tuple[dict[str, np.ndarray], np.ndarray]],
                      met: dict[str, np.ndarray], entries: np.ndarray
                      ) -> tuple[dict[str, tuple[dict[str, np.ndarray], np.ndarray]],
                                 dict[str, np.ndarray]]:
        """Varied copies of the flat object arrays (``{collection: (fields, counts)}``) and
        of ``met`` (``met``, ``phi``) of events numbered `entries`; inputs untouched."""
        scaled = {"jes": ("jet",), "jer": ("jet",), "les": ("electron", "muon")}.get(self.kind)
        if not scaled:
            return collections, met
        out = dict(collections)
        dx = np.zeros(len(entries))
        dy = np.zeros(len(entries))
        for coll in scaled:
            if coll not in collections:
                continue
            flds, counts = collections[coll]
            if self.kind == "jer":
                ev = np.repeat(np.arange(len(counts)), counts)
                index = np.arange(len(ev)) - np.repeat(np.cumsum(counts) - counts, counts)
                z = _normal(self.seed, _STREAMS["jer"], entries[ev], index)
                factor = np.maximum(0.0, 1.0 + self.size * z)
            else:
                factor = np.full(len(flds["pt"]), 1.0 + self.sign * self.size)
            pt = flds["pt"].astype(np.float64)
            new = dict(flds)
            new["pt"] = (pt * factor).astype(flds["pt"].dtype)
            if "mass" in flds:
                new["mass"] = (flds["mass"] * factor).astype(flds["mass"].dtype)
            shift = new["pt"].astype(np.float64) - pt
            phi = flds["phi"].astype(np.float64)
            ev = np.repeat(np.arange(len(counts)), counts)
            dx += np.bincount(ev, shift * np.cos(phi), minlength=len(counts))
            dy += np.bincount(ev, shift * np.sin(phi), minlength=len(counts))
            out[coll] = (new, counts)
        m, p = met["met"].astype(np.float64), met["phi"].astype(np.float64)
        mx, my = m * np.cos(p) - dx, m * np.sin(p) - dy
        varied = dict(met)
        moved = (dx != 0) | (dy != 0)  # elsewhere MET keeps its very values
        varied["met"] = np.where(moved, np.hypot(mx, my), m).astype(met["met"].dtype)
        varied["phi"] = np.where(moved, np.arctan2(my, mx), p).astype(met["phi"].dtype)
        return out, varied

    # -- after the object selection: b-tagging ----------------------------------------------
    def apply_table(self, table: EventTable, entries: np.ndarray) -> EventTable:
        """`table` with the b-tags varied (a copy; other variations return it unchanged)."""
        if self.kind != "btag" or not len(table):
            return table
        counts = table.counts
        ev = np.repeat(np.arange(len(table)), counts)
        index = np.arange(len(ev)) - np.repeat(table.offsets[:-1] - table.offsets[0], counts)
        u = _uniform(self.seed, _STREAMS["btag"], entries[ev], index)
        tagged = table.node_type == BJET
        if self.sign < 0:
            flip = tagged & (u < self.size)
        else:
            untagged = (table.node_type == JET) & (np.abs(table.eta) < BTAG_ETA_MAX)
            n_tag = np.bincount(ev, tagged, minlength=len(table))
            n_untag = np.bincount(ev, untagged, minlength=len(table))
            with np.errstate(divide="ignore", invalid="ignore"):
                p = np.where(n_untag > 0, np.minimum(1.0, self.size * n_tag / n_untag), 0.0)
            flip = untagged & (u < p[ev])
        node_type = table.node_type.copy()
        node_type[flip] = np.where(tagged[flip], JET, BJET)
        btag = table.btag.copy()
        btag[flip] = 1.0 - btag[flip]
        return replace(table, node_type=node_type, btag=btag)


def parse_variation(spec: str | Variation, seed: int = 0) -> Variation:
    """``NAME`` or ``NAME:SIZE`` -> :class:`Variation` (a Variation is returned as is)."""
    if isinstance(spec, Variation):
        return spec
    name, _, size = str(spec).strip().partition(":")
    if not size:
        return Variation(name, None, seed)
    try:
        value = float(size)
    except ValueError:
        raise ArgumentError(f"variation '{spec}': '{size}' is no number (write NAME or "
                            "NAME:SIZE, e.g. jes_up:0.05)") from None
    return Variation(name, value, seed)


def _mix(seed: int, stream: int, entry: np.ndarray, index: np.ndarray) -> np.ndarray:
    """A 64-bit hash (splitmix64 finaliser) of (seed, stream, entry, index) per element."""
    with np.errstate(over="ignore"):
        x = (np.asarray(entry, np.int64).astype(_U64) * _U64(0x9E3779B97F4A7C15)
             ^ np.asarray(index, np.int64).astype(_U64) * _U64(0xC2B2AE3D27D4EB4F)
             ^ _U64((seed * 1_000_003 + stream) & 0xFFFFFFFFFFFFFFFF) * _U64(0x165667B19E3779F9))
        for _ in range(2):
            x ^= x >> _U64(30)
            x *= _U64(0xBF58476D1CE4E5B9)
            x ^= x >> _U64(27)
            x *= _U64(0x94D049BB133111EB)
            x ^= x >> _U64(31)
    return x


def _uniform(seed: int, stream: int, entry: np.ndarray, index: np.ndarray) -> np.ndarray:
    """Uniform numbers in (0, 1), one per (entry, index), the same for the same key."""
    return ((_mix(seed, stream, entry, index) >> _U64(11)).astype(np.float64) + 0.5) / 2.0**53


def _normal(seed: int, stream: int, entry: np.ndarray, index: np.ndarray) -> np.ndarray:
    """Standard normal numbers (Box-Muller), one per (entry, index)."""
    u1 = _uniform(seed, stream, entry, 2 * np.asarray(index, np.int64))
    u2 = _uniform(seed, stream, entry, 2 * np.asarray(index, np.int64) + 1)
    return np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)
