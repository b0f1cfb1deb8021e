"""Markdown tables of a learning-curve scan, from the files of its scan directory.

    python benchmarks/scan_table.py runs/scan          # summary.csv + differences.csv
    python benchmarks/scan_table.py runs/scan/scan.csv # mean ± seed std only

AUC cells: mean over seeds ± seed std, then the 68% test-set bootstrap interval of that
mean; difference cells: mean over seeds of the paired difference, then its 68% paired
bootstrap interval. Remake the CSV files first with ``hepfm scan --out DIR --summarise-only``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from hepfm.training.scan import read_scan_csv, summarise


def _order(curves) -> list[str]:
    first = {"scratch": 0, "bdt": 1}
    return sorted(curves, key=lambda c: (first.get(c, 2), str(c)))


def _table(frame: pd.DataFrame, label: str, cell) -> list[str]:
    sizes = sorted(frame["train_size"].unique())
    lines = ["| " + label + " | " + " | ".join(f"{n} events" for n in sizes) + " |",
             "|---|" + "---|" * len(sizes)]
    for name, t in frame.groupby("_row", sort=False):
        row = t.set_index("train_size")
        lines.append(f"| {name} | " + " | ".join(cell(row.loc[n]) if n in row.index else ""
                                                 for n in sizes) + " |")
    return lines


def _auc_cell(r: pd.Series) -> str:
    text = f"{r['auc_mean']:.3f} ± {r['auc_std']:.3f}"
    if pd.notna(r.get("auc_lo68")):
        text += f" [{r['auc_lo68']:.3f}, {r['auc_hi68']:.3f}]"
    return text


def _diff_cell(r: pd.Series) -> str:
    text = f"{r['diff_mean']:+.3f}"
    if pd.notna(r.get("diff_lo68")):
        text += f" [{r['diff_lo68']:+.3f}, {r['diff_hi68']:+.3f}]"
    return text


def markdown(path: str) -> str:
    p = Path(path)
    if p.is_dir():
        summary = pd.read_csv(p / "summary.csv", dtype={"task": str, "curve": str})
        diffs = pd.read_csv(p / "differences.csv", dtype={"task": str, "curve": str,
                                                          "reference": str})
    else:
        summary, diffs = summarise(read_scan_csv(p)), pd.DataFrame()
    lines = []
    for task, t in summary.groupby("task"):
        t = t.assign(_row=pd.Categorical(t["curve"], _order(t["curve"].unique()), True))
        lines += [f"**{task}**: AUC on the fixed test set, mean ± std over seeds "
                  "[68% test bootstrap interval]", "",
                  *_table(t.sort_values("_row"), "curve", _auc_cell), ""]
        d = diffs[diffs["task"] == task] if len(diffs) else diffs
        if len(d):
            d = d.assign(_row=d["curve"] + " − " + d["reference"])
            lines += [f"**{task}**: AUC differences, mean over seeds [68% paired bootstrap "
                      "interval]", "", *_table(d, "difference", _diff_cell), ""]
    return "\n".join(lines)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scans", nargs="+", help="scan directories or scan.csv files")
    for path in parser.parse_args().scans:
        print(markdown(path))
