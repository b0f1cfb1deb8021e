"""Reading ROOT files into :class:`EventTable` chunks: columnar, validated, no event loop.

`iterate_tables` walks files with ``uproot`` in chunks; `arrays_to_table` turns one chunk of
awkward arrays into flat node arrays (object selection, pT ordering, MET node) with numpy.
Every problem with the input raises :class:`hepfm.errors.InputDataError` naming the file,
the tree and the branch. Values are checked as the model will see them: a value that is NaN,
infinite or beyond the float32 range, a negative pT or MET, or an object so energetic that
its features would overflow float32 (:data:`E_MAX`) is bad input (an error naming file,
branch and entry; with ``on_invalid="drop"`` the event is dropped and counted instead).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import awkward as ak
import numpy as np
import uproot

from hepfm.data import units
from hepfm.data.branches import DELPHES, ENERGY_FIELDS, JET_ENERGY, BranchMap
from hepfm.data.features import (
    BJET,
    DEFAULT_SELECTION,
    ELECTRON,
    JET,
    MET,
    MUON,
    OBJECT_COLLECTIONS,
    OBJECT_MASSES,
    PHOTON,
    Selection,
)
from hepfm.data.labels import MULTILABELS, multilabels
from hepfm.data.table import EventTable
from hepfm.data.variations import Variation
from hepfm.defaults import ON_INVALID
from hepfm.errors import ArgumentError, InputDataError, naming

log = logging.getLogger(__name__)

OnInvalid = Literal["error", "drop"]
#: What to do with an event holding a value the model cannot take: stop with an error
#: naming file, branch and entry, or drop the event (counted in one warning per file).
_TYPE_OF = {"electron": ELECTRON, "muon": MUON, "photon": PHOTON}
DEFAULT_STEP_SIZE = 100_000
_F32_MAX = float(np.finfo(np.float32).max)
#: Largest object energy (GeV) whose features stay finite in float32: the pair mass squares
#: the summed energy of two objects.
E_MAX = float(np.sqrt(np.finfo(np.float32).max)) / 2
#: Fields that cannot be negative.
_NON_NEGATIVE = {"pt", "met", JET_ENERGY}


@dataclass
class FileInfo:
    """An opened, checked input file: its tree, entry count and the collections present."""

    path: str
    tree: Any
    num_entries: int
    collections: tuple[str, ...]


def _listing(names: Sequence[str], limit: int = 40) -> str:
    names = list(names)
    more = f", ... ({len(names) - limit} more)" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def open_file(path: str | os.PathLike, branch_map: BranchMap = DELPHES,
              allow_empty: bool = False) -> FileInfo:
    """Open `path`, check the tree and branches of `branch_map`; raise a clear error if not."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise InputDataError(f"input file not found: '{path}'")
    if os.path.isdir(path):
        raise InputDataError(f"input path is a directory, not a ROOT file: '{path}'")
    try:
        f = uproot.open(path)
    except Exception as e:
        raise InputDataError(f"'{path}' is not a readable ROOT file ({type(e).__name__}: {e})") \
            from None
    try:
        tree = f[branch_map.tree]
    except Exception:
        keys = f.keys(cycle=False)
        raise InputDataError(
            f"'{path}' has no tree '{branch_map.tree}' (branch map '{branch_map.name}'). "
            f"Objects in the file: {_listing(keys) or 'none'}") from None
    if not hasattr(tree, "num_entries"):
        raise InputDataError(f"'{path}': '{branch_map.tree}' is a {type(tree).__name__}, "
                             "not a TTree")
    present = set(tree.keys(recursive=True, full_paths=False))
    present |= set(tree.keys(recursive=True))
    collections = []
    for coll, flds in branch_map.branches.items():
        names = branch_map.collection_branches(coll)
        missing = [b for b in names if b not in present]
        if not missing:
            collections.append(coll)
        elif coll in branch_map.optional and len(missing) == len(names):
            continue
        else:
            what = next((k for k, v in flds.items() if v == missing[0]), "type")
            raise InputDataError(
                f"'{path}', tree '{branch_map.tree}': missing branch '{missing[0]}' "
                f"({coll} '{what}', "
                f"branch map '{branch_map.name}'). Branches in the tree: "
                f"{_listing(sorted(tree.keys(recursive=True, full_paths=False)))}")
    n = int(tree.num_entries)
    if n == 0 and not allow_empty:
        raise InputDataError(f"'{path}', tree '{branch_map.tree}' has 0 entries (empty file)")
    return FileInfo(path, tree, n, tuple(collections))


def _jagged(arr: ak.Array) -> tuple[np.ndarray, np.ndarray]:
    """Flat content and counts of a one-level jagged array (fast path on offsets)."""
    layout = arr.layout
    if isinstance(layout, ak.contents.ListOffsetArray) and \
            isinstance(layout.content, ak.contents.NumpyArray):
        off = np.asarray(layout.offsets)
        flat = np.asarray(layout.content.data)[off[0]:off[-1]]
        return flat, np.diff(off)
    return (np.asarray(ak.flatten(arr, axis=None)),
            np.asarray(ak.num(arr, axis=1), dtype=np.int64))


def _is_jagged(arr: ak.Array) -> bool:
    return arr.ndim > 1


class _Ctx:
    """Where a chunk comes from: file, branch map and the entry number of every row."""

    def __init__(self, source: str, branch_map: BranchMap, entries: np.ndarray):
        self.source, self.bm, self.entries = source, branch_map, entries

    def entry(self, row: int) -> int:
        """The entry number in the file of the chunk's `row`."""
        return int(self.entries[row])

    def where(self, branch: str) -> str:
        return f"'{self.source}', tree '{self.bm.tree}', branch '{branch}'"


def _collection(arrays: ak.Array, ctx: _Ctx, coll: str) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Flat arrays of every field of `coll` and their common counts (checked); for a
    collection split from a combined one, only its objects."""
    flds = dict(ctx.bm.branches[coll])
    split = ctx.bm.split.get(coll)
    if split is not None:
        flds["type"] = split[0]
    out: dict[str, np.ndarray] = {}
    counts = None
    first = None
    for f, b in flds.items():
        arr = arrays[b]
        if not _is_jagged(arr):
            raise InputDataError(f"{ctx.where(b)}: expected a jagged (per-object) branch "
                                 f"for {coll} {f}, got type {arr.type}")
        flat, c = _jagged(arr)
        if counts is None:
            counts, first = c, b
        elif not np.array_equal(c, counts):
            ev = int(np.flatnonzero(c != counts)[0])
            raise InputDataError(
                f"{ctx.where(b)}: jagged lengths disagree with '{first}' in the same "
                f"collection ({coll}): entry {ctx.entry(ev)} has {c[ev]} vs "
                f"{counts[ev]} values")
        out[f] = flat
    assert counts is not None
    counts = counts.astype(np.int64, copy=False)
    if split is not None:
        keep = np.abs(out.pop("type")) == split[1]
        event = np.repeat(np.arange(len(counts), dtype=np.int64), counts)
        counts = np.bincount(event[keep], minlength=len(counts)).astype(np.int64)
        out = {f: a[keep] for f, a in out.items()}
    return out, counts


def _to_gev(colls: dict[str, tuple[dict[str, np.ndarray], np.ndarray]],
            met: dict[str, np.ndarray], factor: float) -> None:
    """Energies, momenta and masses of `colls` and `met` from the map's unit to GeV."""
    if factor == 1.0:
        return
    for flds, _ in colls.values():
        for f in ENERGY_FIELDS & set(flds):
            flds[f] = flds[f].astype(np.float64) * factor
    met["met"] = met["met"].astype(np.float64) * factor


def _mass_from_energy(flds: dict[str, np.ndarray]) -> np.ndarray:
    """Jet masses from energies: sqrt(max(E^2 - (pT cosh eta)^2, 0)), in float64."""
    p = flds["pt"].astype(np.float64) * np.cosh(flds["eta"].astype(np.float64))
    e = flds[JET_ENERGY].astype(np.float64)
    return np.sqrt(np.maximum((e - p) * (e + p), 0.0))


def _check_btag(values: np.ndarray, counts: np.ndarray, ctx: _Ctx) -> None:
    """Raise when the b-tag values are not of the kind the map declares."""
    bad, what = ctx.bm.btag.problem(values)
    if not bad.any():
        return
    k = int(np.flatnonzero(bad)[0])
    entry = ctx.entry(int(np.searchsorted(np.cumsum(counts), k, side="right")))
    hint = ("if it is a score, give a working point ({btag=NUMBER}"
            + (f" or one of {', '.join(ctx.bm.btag.working_points)}"
               if ctx.bm.btag.working_points else "") + ")")
    if ctx.bm.btag.kind == "flag":
        hint += "; if a bit mask, {btag=bitN}"
    raise naming(
        InputDataError, f"{ctx.where(ctx.bm.branch('jet', 'btag'))}: value "
        f"{values[k].item()!r} at entry {entry} is {what}, but branch map '{ctx.bm.name}' "
        f"reads it as '{ctx.bm.btag.describe()}'; {hint}", "btag")


def _met(arrays: ak.Array, ctx: _Ctx) -> dict[str, np.ndarray]:
    out = {}
    for f, b in ctx.bm.branches["met"].items():
        arr = arrays[b]
        if _is_jagged(arr):
            flat, c = _jagged(arr)
            if np.any(c != 1):
                ev = int(np.flatnonzero(c != 1)[0])
                raise InputDataError(f"{ctx.where(b)}: MET must have exactly one entry per "
                                     f"event; entry {ctx.entry(ev)} has {c[ev]}")
        else:
            flat = np.asarray(arr)
        out[f] = flat
    return out


def _bad_values(a: np.ndarray, non_negative: bool) -> tuple[np.ndarray, str]:
    """Mask of values the model cannot take, and why: NaN, infinite or beyond float32 once
    cast to the model's dtype; negative where `non_negative`."""
    if a.dtype.kind not in "fi":
        return np.zeros(len(a), dtype=bool), ""
    if a.dtype.kind == "i":
        return (a < 0 if non_negative else np.zeros(len(a), dtype=bool)), "negative"
    ok = (a >= 0) & (a <= _F32_MAX) if non_negative else np.abs(a) <= _F32_MAX  # NaN: False
    bad = ~ok
    if not bad.any():
        return bad, ""
    v = a[bad]
    finite = np.isfinite(v)
    reasons = [r for r, m in (("NaN or infinite", ~finite),
                              ("beyond the float32 range", finite & (np.abs(v) > _F32_MAX)),
                              ("negative", finite & (v < 0))) if m.any()]
    return bad, ", ".join(reasons)


def _invalid_events(n: int, colls: dict[str, tuple[dict[str, np.ndarray], np.ndarray]],
                    met: dict[str, np.ndarray], ctx: _Ctx) -> tuple[np.ndarray, list[str]]:
    """Boolean mask of events with a bad value (see :func:`_bad_values`) and, per branch
    where some were found, ``'branch' (reason, first at entry k)``."""
    bad = np.zeros(n, dtype=bool)
    where: list[str] = []

    def note(branch: str, reason: str, ev_bad: np.ndarray) -> None:
        first = ctx.entry(int(np.flatnonzero(ev_bad)[0]))
        where.append(f"'{branch}' ({reason}, first at entry {first})")

    for coll, (flds, counts) in colls.items():
        ev = None
        for f, a in flds.items():
            nb, reason = _bad_values(a, f in _NON_NEGATIVE)
            if nb.any():
                if ev is None:
                    ev = np.repeat(np.arange(n), counts)
                ev_bad = np.zeros(n, dtype=bool)
                ev_bad[ev[nb]] = True
                bad |= ev_bad
                note(ctx.bm.branch(coll, f), reason, ev_bad)
    for f, a in met.items():
        nb, reason = _bad_values(a, f in _NON_NEGATIVE)
        if nb.any():
            bad |= nb
            note(ctx.bm.branch("met", f), reason, nb)
    return bad, where


_COLLECTION_OF_TYPE = {JET: "jet", BJET: "jet", ELECTRON: "electron", MUON: "muon",
                       PHOTON: "photon", MET: "met"}


def _overflowing_events(table: EventTable, ctx: _Ctx) -> tuple[np.ndarray, list[str]]:
    """Events with an object whose energy exceeds :data:`E_MAX` (its features, such as the
    pair masses, would overflow float32), and where the first one was found."""
    pt = table.pt.astype(np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        e = np.sqrt(np.square(pt * np.cosh(table.eta.astype(np.float64)))
                    + np.square(table.mass.astype(np.float64)))
    over = ~(e <= E_MAX)
    if not over.any():
        return np.zeros(len(table), dtype=bool), []
    ev = np.repeat(np.arange(len(table)), np.diff(table.offsets))
    bad = np.zeros(len(table), dtype=bool)
    bad[ev[over]] = True
    node = int(np.flatnonzero(over)[0])
    coll = _COLLECTION_OF_TYPE[int(table.node_type[node])]
    branch = ctx.bm.branch(coll, "met" if coll == "met" else "pt")
    return bad, [f"'{branch}' (energy {e[node]:.3g} GeV above {E_MAX:.3g}: its features "
                 f"would overflow float32, first at entry {ctx.entry(int(ev[node]))})"]


def _select(flds: dict[str, np.ndarray], counts: np.ndarray, coll: str,
            selection: Selection) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Apply pT/eta cuts, order by pT (descending) within events, keep at most max_objects.

    Objects come pT-ordered from Delphes-layout files; only unordered input is sorted. The
    kept objects are gathered once (cuts and the maximum together) in the ordered case.
    """
    cut = selection.cut(coll)
    n = len(counts)
    pt, eta = flds["pt"], flds["eta"]
    keep = (pt > cut.pt_min) & (np.abs(eta) < cut.eta_max)
    kept = np.zeros(len(pt) + 1, dtype=np.int64)  # objects kept before each position
    np.cumsum(keep, out=kept[1:])
    ends = np.cumsum(counts)
    c = kept[ends] - kept[ends - counts]
    idx = None if int(kept[-1]) == len(pt) else np.flatnonzero(keep)
    start = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(c, out=start[1:])
    pt = pt if idx is None else pt[idx]
    first = np.zeros(len(pt) + 1, dtype=bool)  # first object of an event
    first[start[:-1]] = True
    if len(pt) > 1 and not np.all((pt[1:] <= pt[:-1]) | first[1:-1]):
        # one float64 key (event + fraction decreasing in pT): much faster than lexsort
        ev = np.repeat(np.arange(n, dtype=np.int64), c)
        scale = 0.5 / (float(np.abs(pt).max()) * 1.0001 + 1.0)
        order = np.argsort(ev + (0.5 - pt.astype(np.float64) * scale), kind="stable")
        idx = order if idx is None else idx[order]
    if n and int(c.max()) > cut.max_objects:  # drop the softest objects of crowded events
        over = np.flatnonzero(c > cut.max_objects)
        extra = c[over] - cut.max_objects
        first_drop = start[over] + cut.max_objects
        drop = np.arange(int(extra.sum()), dtype=np.int64) + np.repeat(
            first_drop - (np.cumsum(extra) - extra), extra)
        idx = np.delete(np.arange(len(pt), dtype=np.int64) if idx is None else idx, drop)
        c = np.minimum(c, cut.max_objects)
    if idx is not None:
        flds = {k: v[idx] for k, v in flds.items()}
    return flds, c


def arrays_to_table(
    arrays: ak.Array,
    branch_map: BranchMap = DELPHES,
    selection: Selection = DEFAULT_SELECTION,
    *,
    collections: Sequence[str] | None = None,
    label: int = 0,
    process: int = 0,
    processes: tuple[str, ...] = (),
    on_invalid: OnInvalid = "error",
    source: str = "<arrays>",
    entry_start: int = 0,
    entries: np.ndarray | None = None,
    variation: Variation | None = None,
    problems: list[str] | None = None,
) -> tuple[EventTable, int]:
    """One chunk of branch arrays (fields named as in `branch_map`) -> (EventTable, n_dropped).

    `collections` are those present (default: all of the map's collections found in
    `arrays`). Missing photons mean no photon nodes; missing truth means ``y_multi=None``.
    The rows are entries ``entry_start, entry_start + 1, ...`` of `source` (or `entries`);
    the table's ``entry`` keeps them, gaps where events were dropped. A `variation`
    (:mod:`hepfm.data.variations`) shifts the objects before the selection (and the b-tags
    after it); its random numbers follow the entry numbers. Events with bad values raise
    :class:`~hepfm.errors.InputDataError`, or with ``on_invalid="drop"`` are left out and
    what was wrong is appended to `problems`.
    """
    check_on_invalid(on_invalid)
    n = len(arrays)
    if entries is None:
        entries = entry_start + np.arange(n, dtype=np.int64)
    ctx = _Ctx(source, branch_map, np.asarray(entries, dtype=np.int64))
    if collections is None:
        collections = [c for c in branch_map.branches
                       if all(b in arrays.fields for b in branch_map.collection_branches(c))]
    kwargs = dict(selection=selection, collections=collections, label=label, process=process,
                  processes=processes, variation=variation)
    colls = {c: _collection(arrays, ctx, c) for c in OBJECT_COLLECTIONS if c in collections}
    met = _met(arrays, ctx)
    _to_gev(colls, met, units.scale(branch_map.energy_unit))
    bad, where = _invalid_events(n, colls, met, ctx)
    if bad.any():
        return _without_bad_events(arrays, bad, where, on_invalid, ctx, problems, **kwargs)
    if variation is not None:
        colls, met = variation.apply_objects(colls, met, ctx.entries)
    if "jet" in colls:
        jets, jet_counts = colls["jet"]
        _check_btag(jets["btag"], jet_counts, ctx)
        if JET_ENERGY in jets:
            jets["mass"] = _mass_from_energy(jets)
            del jets[JET_ENERGY]
    sel = {c: _select(flds, counts, c, selection) for c, (flds, counts) in colls.items()}
    y_multi = None
    if "truth" in collections:
        tb = branch_map.branches["truth"]
        y_multi = multilabels(arrays[tb["pid"]], arrays[tb["pt"]], arrays[tb["m1"]])
    table = EventTable(
        **_nodes(sel, met, n, branch_map), y=np.full(n, label, np.int64),
        process=np.full(n, process, np.int16), processes=processes, y_multi=y_multi,
        entry=ctx.entries.copy())
    if variation is not None:
        table = variation.apply_table(table, ctx.entries)
    bad, where = _overflowing_events(table, ctx)
    if bad.any():
        return _without_bad_events(arrays, bad, where, on_invalid, ctx, problems, **kwargs)
    return table, 0


def _nodes(sel: dict[str, tuple[dict[str, np.ndarray], np.ndarray]],
           met: dict[str, np.ndarray], n: int, branch_map: BranchMap) -> dict[str, np.ndarray]:
    """The node arrays and offsets of `n` events: the selected objects of every collection
    in `sel`, then the MET node of each event (phi wrapped into [-pi, pi))."""
    total = np.ones(n, dtype=np.int64)  # the MET node
    for _, c in sel.values():
        total += c
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(total, out=offsets[1:])
    N = int(offsets[-1])
    out = {"offsets": offsets, "pt": np.empty(N, np.float32), "eta": np.empty(N, np.float32),
           "phi": np.empty(N, np.float32), "mass": np.zeros(N, np.float32),
           "charge": np.zeros(N, np.int8), "btag": np.zeros(N, np.float32),
           "node_type": np.empty(N, np.int8)}
    base = offsets[:-1].copy()
    for coll, (flds, c) in sel.items():
        cstart = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(c, out=cstart[1:])
        dest = np.arange(len(flds["pt"]), dtype=np.int64) + np.repeat(base - cstart[:-1], c)
        base += c
        for key in ("pt", "eta", "phi"):
            out[key][dest] = flds[key]
        if coll == "jet":
            out["mass"][dest] = flds["mass"]
            isb = branch_map.btag.tagged(flds["btag"])
            out["btag"][dest] = isb
            out["node_type"][dest] = np.where(isb, BJET, JET)
        else:
            out["mass"][dest] = OBJECT_MASSES[coll]
            out["node_type"][dest] = _TYPE_OF[coll]
        if "charge" in flds:
            out["charge"][dest] = flds["charge"]
    dest = offsets[1:] - 1
    out["pt"][dest] = met["met"]
    out["eta"][dest] = 0.0
    out["phi"][dest] = met["phi"]
    out["node_type"][dest] = MET
    phi = out["phi"]
    if len(phi) and (phi.min() < -np.pi or phi.max() >= np.pi):  # e.g. a [0, 2pi) convention
        out["phi"] = (np.mod(phi.astype(np.float64) + np.pi, 2 * np.pi) - np.pi
                      ).astype(np.float32)
    return out


def check_on_invalid(on_invalid: str) -> None:
    """Raise :class:`~hepfm.errors.ArgumentError` unless `on_invalid` is in :data:`ON_INVALID`."""
    if on_invalid not in ON_INVALID:
        raise ArgumentError(f"on_invalid must be 'error' or 'drop', got {on_invalid!r}")


def _check_units(arrays: ak.Array, branch_map: BranchMap, path: str) -> bool:
    """Warn when the jet pT of a chunk look like another unit than the map's; True once
    there were jets to look at."""
    branch = branch_map.branch("jet", "pt")
    pt = np.asarray(ak.flatten(arrays[branch], axis=None), dtype=np.float64)
    pt = pt[np.isfinite(pt)]
    if not len(pt):
        return False
    units.check_jet_pt(pt * units.scale(branch_map.energy_unit), branch_map.energy_unit,
                       f"'{path}', tree '{branch_map.tree}', branch '{branch}' (branch map "
                       f"'{branch_map.name}')")
    return True


def _without_bad_events(arrays: ak.Array, bad: np.ndarray, where: list[str],
                        on_invalid: OnInvalid, ctx: _Ctx, problems: list[str] | None,
                        **kwargs: Any) -> tuple[EventTable, int]:
    """Raise for the `bad` events, or (``on_invalid="drop"``) read the others."""
    n_bad = int(bad.sum())
    if on_invalid != "drop":
        found = (f"'{ctx.source}', tree '{ctx.bm.tree}': bad values in branch(es) "
                 f"{'; '.join(where)}; {n_bad} event(s) in all. Fix the file, or")
        raise InputDataError(f"{found} pass on_invalid='drop' to leave such events out."
                             ).for_cli(f"{found} pass --on-invalid drop to leave such events out.")
    if problems is not None:
        problems += where
    table, more = arrays_to_table(arrays[~bad], ctx.bm, on_invalid="drop", source=ctx.source,
                                  entries=ctx.entries[~bad], problems=problems, **kwargs)
    return table, n_bad + more


def iterate_tables(
    files: str | os.PathLike | Sequence[str | os.PathLike],
    branch_map: BranchMap = DELPHES,
    selection: Selection = DEFAULT_SELECTION,
    *,
    step_size: int = DEFAULT_STEP_SIZE,
    max_events: int | None = None,
    entry_ranges: Sequence[tuple[int, int]] | None = None,
    label: int = 0,
    process: int = 0,
    processes: tuple[str, ...] = (),
    on_invalid: OnInvalid = "error",
    variation: Variation | None = None,
) -> Iterator[EventTable]:
    """Yield EventTables of up to `step_size` events from `files`, in order.

    `max_events` stops after that many entries in total; `entry_ranges` (one (start, stop)
    per file) reads only those entries. An event with a bad value is an error naming file,
    branch and entry, or with ``on_invalid="drop"`` is left out, with one warning per file
    saying how many and why (the tables' ``entry`` numbers then have gaps). `variation`
    shifts the events as they are read (see :mod:`hepfm.data.variations`).
    """
    check_on_invalid(on_invalid)
    if isinstance(files, (str, os.PathLike)):
        files = [files]
    files = [os.fspath(f) for f in files]
    remaining = max_events
    for k, path in enumerate(files):
        if remaining is not None and remaining <= 0:
            return
        info = open_file(path, branch_map)
        start, stop = (0, info.num_entries) if entry_ranges is None else entry_ranges[k]
        stop = min(stop, info.num_entries)
        if remaining is not None:
            stop = min(stop, start + remaining)
        if stop <= start:
            continue
        names = branch_map.all_branches(info.collections)
        pos = start
        dropped = 0
        problems: list[str] = []
        it = info.tree.iterate(names, step_size=step_size, entry_start=start,
                               entry_stop=stop, library="ak")
        checked_units = "jet" not in info.collections
        while True:
            try:
                arrays = next(it)
            except StopIteration:
                break
            except InputDataError:
                raise
            except Exception as e:
                raise InputDataError(
                    f"'{path}', tree '{branch_map.tree}': cannot read entries from {pos} on "
                    f"(truncated or corrupt file?): {type(e).__name__}: {e}") from None
            if not checked_units:
                checked_units = _check_units(arrays, branch_map, path)
            table, nd = arrays_to_table(
                arrays, branch_map, selection, collections=info.collections, label=label,
                process=process, processes=processes, on_invalid=on_invalid, source=path,
                entry_start=pos, variation=variation, problems=problems)
            pos += len(arrays)
            dropped += nd
            if remaining is not None:
                remaining -= len(arrays)
            yield table
        if dropped:
            first = {p.split(" (")[0]: p for p in reversed(problems)}  # first per branch
            log.warning("'%s': dropped %d of %d events with bad values in %s", path, dropped,
                        pos - start, "; ".join(reversed(first.values())))


def read_table(
    files: str | os.PathLike | Sequence[str | os.PathLike],
    branch_map: BranchMap = DELPHES,
    selection: Selection = DEFAULT_SELECTION,
    **kwargs: Any,
) -> EventTable:
    """All events of `files` in one EventTable (see `iterate_tables` for the options)."""
    tables = list(iterate_tables(files, branch_map, selection, **kwargs))
    if not tables:
        return EventTable.empty(kwargs.get("processes", ()))
    return tables[0] if len(tables) == 1 else EventTable.concat(tables)


__all__ = ["MULTILABELS", "ON_INVALID", "FileInfo", "arrays_to_table", "check_on_invalid",
           "iterate_tables", "open_file", "read_table"]
