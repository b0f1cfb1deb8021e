"""How often each multilabel target is set, per process: the table of docs/features.md.

    python benchmarks/labels.py samples/pretrain --events-per-process 20000

Reads the first N events of every pretraining process (their truth record) and prints a
Markdown table, one row per label and one column per process, of the fraction of events with
the label set: a label that is the same for every event of a process teaches no more than the
process label.
"""

from __future__ import annotations

import argparse

import pandas as pd


def fractions(data: str, events_per_process: int | None) -> pd.DataFrame:
    from hepfm.data import load_events
    from hepfm.data.labels import MULTILABELS
    from hepfm.processes import PRETRAINING

    columns = {}
    for name in PRETRAINING:
        table = load_events(data, [name], events_per_process)
        if table.y_multi is None:
            raise SystemExit(f"{data}: the {name} files have no truth record")
        columns[name] = table.y_multi.mean(axis=0)
    return pd.DataFrame(columns, index=list(MULTILABELS))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("data", help="pretraining sample directory")
    parser.add_argument("--events-per-process", type=int, default=None)
    args = parser.parse_args()
    frame = fractions(args.data, args.events_per_process)
    print("| label | " + " | ".join(frame.columns) + " |")
    print("|---|" + "---|" * len(frame.columns))
    for label, row in frame.iterrows():
        cells = " | ".join("" if v == 0 else f"{v:.2f}" for v in row)
        print(f"| `{label}` | {cells} |")


if __name__ == "__main__":
    main()
