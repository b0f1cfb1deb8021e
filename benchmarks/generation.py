"""Generation benchmark: events/s per core per process, and where the time goes.

For each process one chunk of ``--events-per-process`` events is generated in this (single)
process and timed by stage (wall clock; the CPU time of the whole chunk is reported too, as this
is a shared machine): Pythia (including its ~0.3 s initialisation), detector objects (electrons,
muons, photons, MET, truth record), jets (FastJet clustering, smearing, b-tagging) and
writing (uproot ``extend`` and close). Prints a table and writes
``benchmarks/results/generation.md`` and ``generation.csv``.

    .venv/bin/python benchmarks/generation.py --events-per-process 300           # MPI on
    .venv/bin/python benchmarks/generation.py --events-per-process 300 --no-mpi
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import tempfile
import time
from datetime import datetime, timezone
from importlib.metadata import version
from pathlib import Path

from _results import RESULTS, dated, refuse_existing
from hepfm.generate import DetectorConfig, file_metadata
from hepfm.generate.run import ChunkTask, run_chunk
from hepfm.generate.writer import SampleWriter
from hepfm.processes import resolve_processes

STAGES = ("pythia", "objects", "jets", "write")


def bench_process(name: str, events: int, mpi: bool, seed: int, out: Path) -> dict[str, float]:
    """Seconds per stage for one chunk of `events` events of `name`."""
    detector = DetectorConfig()
    cpu = time.process_time()
    result = run_chunk(ChunkTask(name, 0, events, seed, mpi, detector))
    t0 = time.perf_counter()
    with SampleWriter(out / f"{name}.root", file_metadata(name, events, seed, mpi, events,
                                                          detector)) as writer:
        writer.write(result.collections)
    timings = {**result.timings, "write": time.perf_counter() - t0,
               "cpu": time.process_time() - cpu}
    timings["size_kb"] = (out / f"{name}.root").stat().st_size / 1024
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events-per-process", "--events", dest="events", type=int,
                        default=300, help="events per process (--events: its former name)")
    parser.add_argument("--processes", default="everything")
    parser.add_argument("--mpi", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder of the result "
                        "files generation[_nompi]-<today>.md and .csv [results/]")
    parser.add_argument("--force", action="store_true",
                        help="replace existing result files (default: refuse)")
    args = parser.parse_args()
    tag = "" if args.mpi else "_nompi"
    md, table_csv = (refuse_existing(args.out / dated(f"generation{tag}", s), args.force)
                     for s in (".md", ".csv"))

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in resolve_processes(args.processes):
            t = bench_process(name, args.events, args.mpi, args.seed, Path(tmp))
            total = sum(t[s] for s in STAGES)
            rows.append({"process": name, "events": args.events,
                         "ev_per_s_per_core": args.events / total,
                         "ev_per_cpu_s": args.events / t["cpu"],
                         **{f"{s}_share": t[s] / total for s in STAGES},
                         "ms_per_event": 1e3 * total / args.events,
                         "kb_per_1000_events": t["size_kb"] * 1000 / args.events})
            print(f"{name:14s} {rows[-1]['ev_per_s_per_core']:7.1f} ev/s "
                  f"({rows[-1]['ev_per_cpu_s']:.1f} per CPU second)", flush=True)

    header = ("| process | ev/s per core (wall) | ev per CPU s | ms/event (wall) | Pythia "
              "| objects+truth | jets | write | kB / 1000 ev |\n"
              "|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")
    lines = [f"| {r['process']} | {r['ev_per_s_per_core']:.1f} | {r['ev_per_cpu_s']:.1f} | "
             f"{r['ms_per_event']:.2f} | "
             + " | ".join(f"{100 * r[f'{s}_share']:.0f}%" for s in STAGES)
             + f" | {r['kb_per_1000_events']:.0f} |" for r in rows]
    pythia = sum(r["pythia_share"] * r["events"] / r["ev_per_s_per_core"] for r in rows)
    rest = sum((1 - r["pythia_share"]) * r["events"] / r["ev_per_s_per_core"] for r in rows)
    verdict = "OK" if rest < pythia else "TOO SLOW"
    summary = (f"Detector + jets + writing: {rest:.1f} s vs Pythia {pythia:.1f} s "
               f"({100 * rest / pythia:.0f}% of Pythia): {verdict}.")
    info = (f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, {platform.node()}, "
            f"{os.cpu_count()} cores (shared; load average {os.getloadavg()[0]:.1f}), "
            f"one process, MPI {'on' if args.mpi else 'off'}, {args.events} events per process "
            f"in one chunk (Pythia init included), pythia8mc {version('pythia8mc')}, "
            f"fastjet {version('fastjet')}, uproot {version('uproot')}")
    table = header + "\n".join(lines)
    print("\n" + table + "\n\n" + summary)

    args.out.mkdir(parents=True, exist_ok=True)
    md.write_text(
        f"# Generation benchmark{' (MPI off)' if not args.mpi else ''}\n\n{info}.\n\n"
        f"`.venv/bin/python benchmarks/generation.py --events-per-process {args.events}"
        f"{'' if args.mpi else ' --no-mpi'}`\n\n{table}\n\n{summary}\n")
    with open(table_csv, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


if __name__ == "__main__":
    main()
