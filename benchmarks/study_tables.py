"""Markdown tables of a scan directory's summary.csv and differences.csv (for the README).

    python benchmarks/study_tables.py benchmarks/results/study > tables.md

Each AUC cell is ``mean ± seed std [68% test-bootstrap interval]``; each difference cell
is ``mean [paired 68% interval]``, in units of 0.001 AUC.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

CURVES = ("bdt", "scratch", "frozen", "full")


def _auc_cell(r: pd.Series) -> str:
    return f"{r.auc_mean:.3f} ± {r.auc_std:.3f} [{r.auc_lo68:.3f}, {r.auc_hi68:.3f}]"


def _diff_cell(r: pd.Series) -> str:
    return (f"{1000 * r.diff_mean:+.0f} [{1000 * r.diff_lo68:+.0f}, "
            f"{1000 * r.diff_hi68:+.0f}]")


def task_tables(summary: pd.DataFrame, diffs: pd.DataFrame, task: str) -> str:
    s = summary[summary.task == task]
    sizes = sorted(s.train_size.unique())
    head = "| curve | " + " | ".join(f"{n:,} events" for n in sizes) + " |"
    rule = "|---" * (len(sizes) + 1) + "|"
    lines = [f"**{task}**: AUC, mean ± seed std [68% test-bootstrap interval]", "", head, rule]
    for curve in [c for c in CURVES if c in set(s.curve)] + sorted(set(s.curve) - set(CURVES)):
        cells = []
        for n in sizes:
            row = s[(s.curve == curve) & (s.train_size == n)]
            cells.append(_auc_cell(row.iloc[0]) if len(row) else "")
        lines.append(f"| {curve} | " + " | ".join(cells) + " |")
    d = diffs[diffs.task == task]
    lines += ["", f"**{task}**: differences in 0.001 AUC, mean over seeds [paired 68% interval]",
              "", head.replace("curve", "difference"), rule]
    for curve, ref in (("full", "scratch"), ("frozen", "scratch"), ("full", "bdt"),
                       ("scratch", "bdt")):
        cells = []
        for n in sizes:
            row = d[(d.curve == curve) & (d.reference == ref) & (d.train_size == n)]
            cells.append(_diff_cell(row.iloc[0]) if len(row) else "")
        if any(cells):
            lines.append(f"| {curve} − {ref} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scan_dir", type=Path)
    args = parser.parse_args()
    summary = pd.read_csv(args.scan_dir / "summary.csv")
    diffs = pd.read_csv(args.scan_dir / "differences.csv")
    for task in summary.task.unique():
        print(task_tables(summary, diffs, task))


if __name__ == "__main__":
    main()
