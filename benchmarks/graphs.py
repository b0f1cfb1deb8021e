"""Benchmark: hepfm's batched graph builder vs the per-event ``Data`` + ``DataLoader`` pattern.

One run, same events, same features, one thread. Also times reading alone (raw
``uproot`` arrays of the needed branches) against reading + graph building, for files written
with different basket sizes: how fast reading is depends on how a file was written.

    python benchmarks/graphs.py [--events 50000] [--basket-events 500 1600 10000]
                                [--files a.root ...] [--batch-size 1024]

Without ``--files`` Delphes-layout files of synthetic events are written with numpy first,
one per ``--basket-events`` (events per basket; ROOT's default 32 kB baskets hold about 1600
events of ``Jet.PT`` here, ``hepfm generate`` writes 500). The result table is printed and
saved to a new dated file ``benchmarks/results/graphs-<date>.md`` (``--out``; never over an
existing file without ``--force``).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import argparse
import platform
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import awkward as ak
import numpy as np
import torch
import uproot
from torch_geometric.data import Batch, Data
from torch_geometric.loader import DataLoader

from _results import add_output_options, output_path
from hepfm.data import DELPHES, EventTable, arrays_to_table, build_batch, open_file
from hepfm.data import graphs as hgraphs
from hepfm.data.edge_kernel import HAVE_NUMBA, numba


def synthetic_file(path: Path, n: int, seed: int = 0, basket_events: int = 1600) -> Path:
    """`n` ttbar-like events in the Delphes layout, made with numpy (no event loop).

    As in Delphes, objects are ordered by decreasing pT within each collection; the truth
    record holds 0-9 particles per event (``hepfm generate`` writes 0-10). Every branch gets
    one basket per `basket_events` events.
    """
    rng = np.random.default_rng(seed)

    def coll(counts: np.ndarray, fields: dict[str, Callable[[int], np.ndarray]]) -> ak.Array:
        tot = int(counts.sum())
        cols = {f: ak.unflatten(g(tot), counts) for f, g in fields.items()}
        if "PT" in cols:
            order = ak.argsort(cols["PT"], axis=1, ascending=False)
            cols = {f: c[order] for f, c in cols.items()}
        return ak.zip(cols)

    f32 = np.float32
    pt = lambda k: (15 + rng.exponential(45, k)).astype(f32)  # noqa: E731
    eta = lambda k: rng.normal(0, 1.6, k).astype(f32)  # noqa: E731
    phi = lambda k: rng.uniform(-np.pi, np.pi, k).astype(f32)  # noqa: E731
    charge = lambda k: (2 * rng.integers(0, 2, k) - 1).astype(np.int32)  # noqa: E731
    ones = np.ones(n, dtype=np.int64)
    data = {
        "Jet": coll(np.minimum(rng.poisson(5.0, n), 14),
                    {"PT": pt, "Eta": eta, "Phi": phi,
                     "Mass": lambda k: rng.uniform(2, 20, k).astype(f32),
                     "BTag": lambda k: (rng.random(k) < 0.25).astype(np.int32)}),
        "Electron": coll(rng.poisson(0.4, n), {"PT": pt, "Eta": eta, "Phi": phi,
                                                "Charge": charge}),
        "Muon": coll(rng.poisson(0.4, n), {"PT": pt, "Eta": eta, "Phi": phi, "Charge": charge}),
        "Photon": coll(rng.poisson(0.2, n), {"PT": pt, "Eta": eta, "Phi": phi}),
        "MissingET": ak.zip({"MET": ak.unflatten(rng.exponential(50, n).astype(f32), ones),
                             "Phi": ak.unflatten(phi(n), ones)}),
        "Truth": coll(rng.integers(0, 10, n), {
            "PID": lambda k: rng.choice([6, -6, 24, -24, 5, -5, 11, 13], k).astype(np.int32),
            "PT": pt, "Eta": eta, "Phi": phi,
            "M1": lambda k: np.full(k, -1, np.int32)}),  # the mother's index: none
    }
    with uproot.recreate(path) as f:
        t = f.mktree("Delphes", {k: v.type.content for k, v in data.items()},
                     field_name=lambda o, i: f"{o}.{i}", counter_name=lambda c: f"{c}_size")
        for a in range(0, n, basket_events):
            t.extend({k: v[a:a + basket_events] for k, v in data.items()})
    return path


CPU_TIMES: dict[str, float] = {}


def best_of(fn: Callable[[], object], repeat: int, name: str = "") -> float:
    """Smallest wall time of `repeat` calls (the machine is shared: noise only adds); the
    smallest CPU time of this process goes to ``CPU_TIMES[name]``."""
    times, cpu = [], []
    for _ in range(repeat):
        t, c = time.perf_counter(), time.process_time()
        fn()
        times.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    CPU_TIMES[name] = min(cpu)
    return min(times)


# ---------------------------------------------------------------- the per-event baseline
def per_event_data(table: EventTable, i: int) -> Data:
    """The common pattern: one ``Data`` per event, numpy inside the event (same features)."""
    a, b = int(table.offsets[i]), int(table.offsets[i + 1])
    pt, eta, phi, m = table.pt[a:b], table.eta[a:b], table.phi[a:b], table.mass[a:b]
    t = table.node_type[a:b].astype(np.int64)
    n = b - a
    px, py, pz = pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)
    e = np.sqrt(px * px + py * py + pz * pz + m * m)
    onehot = np.eye(6, dtype=np.float32)[t]
    x = np.column_stack([np.log1p(pt), eta, np.sin(phi), np.cos(phi), np.log1p(e),
                         table.charge[a:b], table.btag[a:b], onehot]).astype(np.float32)
    s, r = np.nonzero(~np.eye(n, dtype=bool))
    deta = eta[s] - eta[r]
    dphi = np.mod(phi[s] - phi[r] + np.pi, 2 * np.pi) - np.pi
    m2 = (e[s] + e[r]) ** 2 - (px[s] + px[r]) ** 2 - (py[s] + py[r]) ** 2 - (pz[s] + pz[r]) ** 2
    ea = np.column_stack([deta, dphi, np.hypot(deta, dphi),
                          np.log1p(np.sqrt(np.maximum(m2, 0)))]).astype(np.float32)
    jets = t <= 1
    u = np.array([[np.log1p(pt[t == 5].sum()), np.log1p(pt[jets].sum()), jets.sum(),
                   (t == 1).sum(), ((t == 2) | (t == 3)).sum()]], dtype=np.float32)
    return Data(x=torch.from_numpy(x), edge_index=torch.from_numpy(np.stack([s, r])),
                edge_attr=torch.from_numpy(ea), u=torch.from_numpy(u),
                node_type=torch.from_numpy(t), y=torch.tensor([int(table.y[i])]))


def consume(batches: Iterable[Batch]) -> int:
    """Take the batches one at a time, as a training loop does (each is freed after use)."""
    return sum(b.num_edges for b in batches)


def consume_edges(props: list[tuple[dict[str, np.ndarray], np.ndarray]], backend: str) -> int:
    """The edge stage alone, batch by batch (`props`: node arrays and offsets per batch)."""
    return sum(hgraphs.edges(p, o, backend)[0].shape[1] for p, o in props)


def baseline(table: EventTable, batch_size: int) -> int:
    data = [per_event_data(table, i) for i in range(len(table))]
    return consume(DataLoader(data, batch_size=batch_size, shuffle=False))


def hepfm_batches(arrays: ak.Array, batch_size: int, keep_order: bool = False,
                  backend: str | None = None) -> Iterator[Batch]:
    table, _ = arrays_to_table(arrays, DELPHES)
    for i in range(0, len(table), batch_size):
        yield build_batch(table[i:i + batch_size], keep_order=keep_order, backend=backend)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=50_000)
    ap.add_argument("--baseline-events", type=int, default=10_000,
                    help="events for the (slow) per-event baseline")
    ap.add_argument("--batch-size", type=int, default=1024)
    ap.add_argument("--files", nargs="*", help="Delphes-layout ROOT files (default: synthetic)")
    ap.add_argument("--basket-events", type=int, nargs="+", default=[1600],
                    help="events per basket of the synthetic files (one file each)")
    ap.add_argument("--repeat", type=int, default=3)
    add_output_options(ap, "graphs")
    args = ap.parse_args()
    out = output_path(args, "graphs")
    torch.set_num_threads(1)
    backends = [hgraphs.BACKEND] + [b for b in ("numba", "numpy")
                                    if b != hgraphs.BACKEND and (b == "numpy" or HAVE_NUMBA)]
    default = backends[0]
    bs, rep = args.batch_size, args.repeat

    with tempfile.TemporaryDirectory() as tmp:
        if args.files:
            sources = [(f"`{f}`", Path(f)) for f in args.files]
        else:
            sources = [(f"synthetic, {be} events per basket",
                        synthetic_file(Path(tmp) / f"synthetic_{be}.root", args.events,
                                       basket_events=be)) for be in args.basket_events]
        info = open_file(sources[0][1])
        names = DELPHES.all_branches(info.collections)
        n_ev = min(args.events, info.num_entries)

        def reader(path: Path) -> Callable[[], ak.Array]:
            def read() -> ak.Array:  # no array cache: every call decompresses the baskets
                tree = uproot.open(path, array_cache=None, object_cache=None)["Delphes"]
                return tree.arrays(names, entry_stop=n_ev, library="ak", array_cache=None)
            return read

        arrays = reader(sources[0][1])()
        read_bytes = arrays.layout.nbytes / n_ev
        consume(hepfm_batches(arrays[:bs], bs))  # compiles the numba kernel (or loads it)
        t_table = best_of(lambda: arrays_to_table(arrays, DELPHES), rep, "table")
        table, _ = arrays_to_table(arrays, DELPHES)
        t_build = {b: best_of(lambda: consume(hepfm_batches(arrays, bs, backend=b)),  # noqa: B023
                              rep, f"build {b}") for b in backends}
        t_ordered = best_of(lambda: consume(hepfm_batches(arrays, bs, keep_order=True)), rep,
                            "ordered")

        # where the builder's time goes, stage by stage, on the same batches
        parts = [table[i:i + bs] for i in range(0, len(table), bs)]

        def by_size(tables: list[EventTable]) -> list[EventTable]:
            return [t.subset(np.argsort(t.counts, kind="stable")) for t in tables]

        def node_props(tables: list[EventTable]) -> list[tuple[dict[str, np.ndarray],
                                                                np.ndarray]]:
            return [(hgraphs.node_features(t)[1], t.offsets - t.offsets[0]) for t in tables]

        t_sort = best_of(lambda: by_size(parts), rep, "sort")
        t_nodes = best_of(lambda: [hgraphs.node_features(t) for t in parts], rep, "nodes")
        # the edge stage's input per builder: numba takes the batches as they come, numpy
        # sorts them by node count first
        props = {"numba": node_props(parts), "numpy": node_props(by_size(parts))}
        t_edges = {b: best_of(lambda: consume_edges(props[b], b), rep, f"edges {b}")  # noqa: B023
                   for b in backends}
        t_glob = best_of(lambda: [hgraphs.global_features(p, o) for p, o in props["numba"]],
                         rep, "globals")

        # a floor: allocating and writing the bytes of the finished batches, one at a time
        first = build_batch(table[:bs])
        bytes_per_event = sum(t.numel() * t.element_size() for _, t in first.items()
                              if isinstance(t, torch.Tensor)) / first.num_graphs

        def write_only() -> None:
            for t in parts:
                np.empty(int(bytes_per_event * len(t)), np.uint8).fill(1)

        t_write = best_of(write_only, rep, "write")

        # reading alone against reading + graph building, for every source
        reading = []
        for label, path in sources:
            read = reader(path)
            t_read = best_of(read, rep, f"read {label}")
            t_rb = {b: best_of(lambda: consume(hepfm_batches(read(), bs, backend=b)),  # noqa: B023
                               rep, f"read_build {b} {label}") for b in backends}
            reading.append((label, path, t_read, t_rb))

        nb = min(args.baseline_events, len(table))
        sub = table[:nb]
        t_base = best_of(lambda: baseline(sub, bs), 1, "baseline")
        # same features: compare the first batch of both (event order kept)
        ref = next(iter(DataLoader([per_event_data(sub, i) for i in range(min(bs, nb))],
                                   batch_size=bs)))
        for b in backends:
            ours = build_batch(sub[:bs], backend=b)
            for k in ("x", "edge_attr", "u"):
                assert torch.allclose(getattr(ref, k), getattr(ours, k), atol=2e-4), (b, k)
            assert torch.equal(ref.edge_index, ours.edge_index), b
        disk = {label: Path(path).stat().st_size / n_ev for label, path, _, _ in reading}

    c = CPU_TIMES

    def both(n: int, wall: float, cpu: float) -> str:
        return f"{n / wall:,.0f} ev/s ({n / cpu:,.0f} per CPU-second)"

    def per_event(n: int, wall: float, cpu: float) -> str:
        return f"{1e6 * wall / n:.2f} us/event ({1e6 * cpu / n:.2f} CPU)"

    sorts = default == "numpy"
    rest = t_build[default] - t_table - t_nodes - t_edges[default] - t_glob - t_sort * sorts
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    rows = [
        ("source (builder rows)", sources[0][0]),
        ("events (hepfm) / events (baseline)", f"{n_ev} / {nb}"),
        ("mean nodes / edges per event",
         f"{table.n_nodes / len(table):.2f} / "
         f"{float((table.counts * (table.counts - 1)).sum()) / len(table):.1f}"),
        ("batch size", str(bs)),
        ("torch threads", str(torch.get_num_threads())),
        ("1-min load average at the end (2 cores shared)", f"{load:.1f}"),
        *[(f"hepfm, {b} builder: awkward arrays -> batches (training order)",
           f"{both(n_ev, t_build[b], c[f'build {b}'])}; "
           f"{per_event(n_ev, t_build[b], c[f'build {b}'])}") for b in backends],
        (f"hepfm, {default} builder: awkward arrays -> batches (event order kept)",
         both(n_ev, t_ordered, c["ordered"])),
        ("stage: awkward -> EventTable (selection, ordering)",
         f"{both(n_ev, t_table, c['table'])}; {per_event(n_ev, t_table, c['table'])}"),
        ("stage, numpy builder only: sorting the batch by node count",
         per_event(n_ev, t_sort, c["sort"])),
        ("stage: node features", per_event(n_ev, t_nodes, c["nodes"])),
        *[(f"stage: edge index + edge features, {b}",
           per_event(n_ev, t_edges[b], c[f"edges {b}"])) for b in backends],
        ("stage: global features", per_event(n_ev, t_glob, c["globals"])),
        (f"the rest of the {default} builder (tensors, `Batch` assembly), by difference",
         f"{1e6 * rest / n_ev:.2f} us/event"),
        ("floor: writing the batches' bytes, nothing computed "
         f"({bytes_per_event:.0f} bytes/event)", per_event(n_ev, t_write, c["write"])),
        ("baseline: per-event Data + DataLoader", both(nb, t_base, c["baseline"])),
        ("speed-up, wall (target >= 30x)",
         f"{(n_ev / t_build[default]) / (nb / t_base):.1f}x"),
        ("speed-up, CPU time",
         f"{(n_ev / c[f'build {default}']) / (nb / c['baseline']):.1f}x"),
    ]
    read_rows = []
    for label, _, t_read, t_rb in reading:
        cr = c[f"read {label}"]
        for b in backends:
            crb = c[f"read_build {b} {label}"]
            read_rows.append(
                f"| {label} | {b} | {disk[label]:.0f} | {per_event(n_ev, t_read, cr)} | "
                f"{per_event(n_ev, t_rb[b], crb)} | **{t_rb[b] / t_read:.2f}x** | "
                f"{crb / cr:.2f}x |")
    notes = [
        "Batches are consumed one at a time, as the training loop and the streaming dataset "
        "do, on both sides. Reading yields the objects' columns "
        f"({read_bytes:.0f} bytes/event in awkward arrays); a batch holds x, edge_index "
        "(int64, as PyG wants) and edge_attr for all n(n-1) ordered pairs "
        f"({bytes_per_event:.0f} bytes/event, mostly edges). Node and global features are "
        "numpy code. Edges come from a compiled loop over each event's unordered pairs "
        "(`hepfm.data.edge_kernel`, numba, `pip install hepfm[fast]`) or, without numba, "
        "from numpy blocks of equal-size events (the batch is sorted by node count first); "
        "both compute each unordered pair once and mirror it (delta eta and delta phi change "
        "sign, delta R and the pair mass do not), and give the same numbers bit for bit.",
        "",
    ]
    lines = [
        "# Graph building benchmark (`benchmarks/graphs.py`)", "",
        "Command: `python benchmarks/graphs.py"
        f"{' --files ' + ' '.join(args.files) if args.files else ''} --events {args.events} "
        f"--basket-events {' '.join(map(str, args.basket_events))} "
        f"--baseline-events {args.baseline_events} --batch-size {args.batch_size} "
        f"--repeat {args.repeat}`", "",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPUs visible, "
        f"Python {platform.python_version()}, torch {torch.__version__}, "
        f"uproot {uproot.__version__}, awkward {ak.__version__}, numpy {np.__version__}"
        f"{', numba ' + numba.__version__ if HAVE_NUMBA else ''}.",
        f"Best of {args.repeat} runs (baseline: 1 run); one thread. Wall-clock rate first, "
        "then events per CPU-second of this process (less sensitive to other users).", "",
        "| quantity | value |", "|---|---|",
        *[f"| {k} | {v} |" for k, v in rows], "",
        "Reading alone (`uproot` arrays of the needed branches, no cache) against reading + "
        "graph building (the same arrays to training batches), per file and builder:", "",
        "| file | builder | bytes/event on disk | reading alone | reading + building | "
        "ratio, wall (target <= 2x) | ratio, CPU time |",
        "|---|---|---|---|---|---|---|",
        *read_rows, "", *notes,
    ]
    text = "\n".join(lines)
    print(text)
    out.write_text(text)


if __name__ == "__main__":
    main()
