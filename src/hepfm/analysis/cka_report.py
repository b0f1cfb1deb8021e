"""``hepfm cka``: layer-by-layer CKA between models on the same events, as CSV and PNG.

Two modes:

* :func:`cka_report` (``--a RUN --b RUN``): the full stage x stage CKA matrix of two runs
  (``cka.csv``, heatmap ``cka.png``) and its same-stage diagonal (``cka_diagonal.csv``,
  ``cka_diagonal.png``).
* :func:`cka_group_report` (``--group-a RUN,RUN,... --group-b RUN,RUN,...``): same-stage CKA
  for every pair of runs within A, within B and across A and B (``cka_pairs.csv``), reduced
  to mean, std, min and max per stage (``cka_groups.csv``, plot ``cka_groups.png``). For
  example three scratch seeds against three fine-tuned seeds: do independent trainings agree,
  and where does fine-tuning move away from scratch?

Every model sees the very same events (one table read once, batches built with
:func:`hepfm.data.build_batch`); representations come from ``model.representations``. Both
modes write ``models.json``: the name, version and weights SHA-256 of every run compared.
"""

from __future__ import annotations

import itertools
import json
import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from hepfm.analysis.cka import Kernel, cka_diagonal, cka_matrix
from hepfm.analysis.plots import plot_cka_diagonal, plot_cka_heatmap
from hepfm.analysis.representations import extract_representations
from hepfm.atomic import atomic_path, refuse_existing, write_text
from hepfm.errors import ArgumentError, HepfmError, naming

PathLike = str | os.PathLike[str]


def resolve_processes(task: str | None, processes: str | Sequence[str] | None) -> list[str]:
    """Processes to draw events from: those of ``task``, or ``processes`` (a list, or
    ``"all"``, ``"everything"`` or ``"A,B,..."``; names need not be in the catalog)."""
    if task is not None and processes:
        raise HepfmError("give either task or processes, not both").for_cli(
            "give either --task or --processes, not both")
    if task is not None:
        from hepfm.tasks import get_task

        return list(get_task(task).processes)
    if isinstance(processes, str):
        if processes.strip() in ("all", "everything"):
            from hepfm.processes import resolve_processes as expand

            return expand(processes)
        processes = [p.strip() for p in processes.split(",") if p.strip()]
    if not processes:
        raise HepfmError("say which events to compare on: task or processes").for_cli(
            "say which events to compare on: --task NAME or --processes A,B,...")
    return list(dict.fromkeys(processes))


def load_cka_events(data: PathLike | None, processes: Sequence[str], events: int,
                    seed: int = 0, on_invalid: str = "error"):  # -> EventTable
    """``events`` events, an equal share per process, drawn at random (``seed``).

    The first ``ceil(events / n_processes)`` events of each process are read; ``data``
    defaults to the directory ``hepfm pretrain`` uses ($HEPFM_DATA or the user cache). CKA
    compares representations, so these may be training events; to use held-out events,
    point ``data`` at files the runs were not trained on. `on_invalid`: ``"error"`` or
    ``"drop"`` (events with bad values, see :func:`hepfm.data.reading.iterate_tables`).
    """
    from hepfm.data import load_events

    if events < 4:
        raise naming(ArgumentError, f"{{setting}} must be at least 4, got {events}", "events")
    per_process = math.ceil(events / len(processes))
    if data is None:
        from hepfm.samples import default_data_dir

        data = default_data_dir()
    table = load_events(data, list(processes), per_process, on_invalid=on_invalid)
    if len(table) > events:
        pick = np.random.default_rng(seed).choice(len(table), events, replace=False)
        table = table.subset(np.sort(pick))
    return table


def representations_of(run: PathLike, table, batch_size: int = 1024,
                       device: str | torch.device = "cpu") -> dict[str, Tensor]:
    """Load a run (directory or shipped name) and collect its stages on every event."""
    from hepfm.data import EventBatches
    from hepfm.hub import load_pretrained

    model = load_pretrained(run, device=device)
    batches = EventBatches(table, batch_size, shuffle=False, shard=False)
    return extract_representations(model, batches, device=device)


def record_models(runs: Sequence[PathLike], out: PathLike) -> None:
    """``models.json`` in `out`: {run as given: its name, version and weights SHA-256}."""
    from hepfm.models.model_dir import identity_of

    Path(out).mkdir(parents=True, exist_ok=True)
    write_text(Path(out) / "models.json",
               json.dumps({str(r): identity_of(r) for r in runs}, indent=1))


def _name(run: PathLike) -> str:
    return Path(run).name or str(run)


def cka_report(
    run_a: PathLike,
    run_b: PathLike,
    *,
    task: str | None = None,
    data: PathLike | None = None,
    processes: str | Sequence[str] | None = None,
    events: int = 10_000,
    kernel: Kernel = "linear",
    batch_size: int | None = None,
    out: PathLike = "cka",
    device: str | torch.device = "cpu",
    seed: int = 0,
    force: bool = False,
    on_invalid: str = "error",
) -> pd.DataFrame:
    """CKA matrix of two runs on the same events; writes CSVs and PNGs into ``out`` (a
    directory that holds files is refused unless `force`)."""
    refuse_existing(out, force)
    table = load_cka_events(data, resolve_processes(task, processes), events, seed,
                            on_invalid)
    reps_a = representations_of(run_a, table, device=device)
    reps_b = representations_of(run_b, table, device=device)
    matrix = cka_matrix(reps_a, reps_b, kernel=kernel, batch_size=batch_size, seed=seed,
                        device=device)
    record_models([run_a, run_b], out)
    return write_pair_outputs(matrix, out, _name(run_a), _name(run_b), kernel, len(table))


def write_pair_outputs(matrix: pd.DataFrame, out: PathLike, name_a: str, name_b: str,
                       kernel: str, n_events: int) -> pd.DataFrame:
    """``cka.csv``, ``cka.png``, ``cka_diagonal.csv`` and ``cka_diagonal.png`` in ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    _write_csv(matrix, out / "cka.csv")
    title = f"{kernel} CKA, {n_events} events"
    plot_cka_heatmap(matrix, out / "cka.png", title=title, label_a=name_a, label_b=name_b)
    diag = cka_diagonal(matrix)
    if len(diag):
        diag = diag.rename(f"{name_a} vs {name_b}")
        _write_csv(diag.to_frame(), out / "cka_diagonal.csv")
        plot_cka_diagonal(diag, out / "cka_diagonal.png", title=title)
    return matrix


def cka_group_report(
    group_a: Sequence[PathLike],
    group_b: Sequence[PathLike],
    *,
    task: str | None = None,
    data: PathLike | None = None,
    processes: str | Sequence[str] | None = None,
    events: int = 10_000,
    kernel: Kernel = "linear",
    batch_size: int | None = None,
    out: PathLike = "cka",
    device: str | torch.device = "cpu",
    seed: int = 0,
    labels: tuple[str, str] = ("A", "B"),
    force: bool = False,
    on_invalid: str = "error",
) -> pd.DataFrame:
    """Mean and spread of same-stage CKA within and across two groups of runs (written into
    ``out``, refused when it holds files unless `force`)."""
    if len(group_a) < 1 or len(group_b) < 1 or len(group_a) + len(group_b) < 2:
        raise HepfmError("group mode needs at least one run in each group")
    refuse_existing(out, force)
    table = load_cka_events(data, resolve_processes(task, processes), events, seed,
                            on_invalid)
    reps = {str(r): representations_of(r, table, device=device)
            for r in dict.fromkeys([*map(str, group_a), *map(str, group_b)])}
    record_models(list(reps), out)
    return group_summary(reps, [str(r) for r in group_a], [str(r) for r in group_b], out,
                         kernel=kernel, batch_size=batch_size, seed=seed, labels=labels,
                         n_events=len(table), device=device)


def group_summary(
    reps: dict[str, dict[str, Tensor]],
    group_a: Sequence[str],
    group_b: Sequence[str],
    out: PathLike,
    *,
    kernel: Kernel = "linear",
    batch_size: int | None = None,
    seed: int = 0,
    labels: tuple[str, str] = ("A", "B"),
    n_events: int | None = None,
    device: str | torch.device | None = None,
) -> pd.DataFrame:
    """Same-stage CKA of all pairs from precomputed ``reps`` (run -> stages); writes files."""
    la, lb = labels
    pairs = [(f"{la} vs {la}", a, b) for a, b in itertools.combinations(group_a, 2)]
    pairs += [(f"{lb} vs {lb}", a, b) for a, b in itertools.combinations(group_b, 2)]
    pairs += [(f"{la} vs {lb}", a, b) for a in group_a for b in group_b if a != b]
    rows = []
    for comparison, a, b in pairs:
        common = [s for s in reps[a] if s in reps[b]]
        if not common:
            raise HepfmError(f"runs '{a}' and '{b}' share no stage names")
        m = cka_matrix({s: reps[a][s] for s in common}, {s: reps[b][s] for s in common},
                       kernel=kernel, batch_size=batch_size, seed=seed, device=device)
        for stage, value in cka_diagonal(m).items():
            rows.append({"comparison": comparison, "run_a": a, "run_b": b, "stage": stage,
                         "cka": value})
    pair_frame = pd.DataFrame(rows, columns=["comparison", "run_a", "run_b", "stage", "cka"])
    order = list(dict.fromkeys(pair_frame["stage"]))
    summary = (pair_frame.groupby(["comparison", "stage"], sort=False)["cka"]
               .agg(mean="mean", std="std", min="min", max="max", n_pairs="count")
               .reset_index())
    summary["std"] = summary["std"].fillna(0.0)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    _write_csv(pair_frame, out / "cka_pairs.csv", index=False)
    _write_csv(summary, out / "cka_groups.csv", index=False)
    mean = summary.pivot(index="stage", columns="comparison", values="mean").reindex(order)
    std = summary.pivot(index="stage", columns="comparison", values="std").reindex(order)
    columns = list(dict.fromkeys(c for c, _, _ in pairs))
    title = f"{kernel} CKA, same stage" + (f", {n_events} events" if n_events else "")
    plot_cka_diagonal(mean[columns], out / "cka_groups.png", spread=std[columns], title=title)
    return summary


def _write_csv(frame: pd.DataFrame, path: Path, index: bool = True) -> None:
    """Write a CSV atomically (temporary name in the same directory, then rename)."""
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=index)
