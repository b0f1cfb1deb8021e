"""Markdown table of a learning-curve scan: mean ± std AUC over seeds per curve and size.

    python benchmarks/scan_table.py benchmarks/results/scan_ttH_vs_tt/scan.csv
"""

from __future__ import annotations

import argparse

import pandas as pd

from hepfm.training.scan import summarise


def markdown(scan_csv: str) -> str:
    s = summarise(pd.read_csv(scan_csv))
    sizes = sorted(s["train_size"].unique())
    lines = []
    for task, t in s.groupby("task"):
        lines += [f"**{task}** (AUC on the fixed test set, mean ± std over seeds)", "",
                  "| curve | " + " | ".join(f"{n} events" for n in sizes) + " |",
                  "|---|" + "---|" * len(sizes)]
        order = ["scratch", *sorted(c for c in t["curve"].unique() if c != "scratch")]
        for curve in order:
            row = t[t["curve"] == curve].set_index("train_size")
            cells = [f"{row.at[n, 'auc_mean']:.3f} ± {row.at[n, 'auc_std']:.3f}"
                     if n in row.index else "" for n in sizes]
            lines.append(f"| {curve} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scan_csv", nargs="+")
    for path in parser.parse_args().scan_csv:
        print(markdown(path))
