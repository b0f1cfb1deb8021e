"""Copy a run or scan directory into the committed results, without this machine's paths.

    python benchmarks/publish.py runs/scan benchmarks/results/study --root .

Run and scan records name the files they read as the command was given them, often as
absolute paths. The copy writes every path under `--root` (default: the current directory)
relative to it, in the text files (``.json``, ``.csv``, ``.yaml``, ``.txt``, ``.md``); other
files (scores, plots, weights) are copied as they are. Checkpoints are left out. A result
folder that holds files is written into only with ``--force``.
"""

from __future__ import annotations

import argparse
import os
import shutil
from pathlib import Path

from _results import fail, refuse_existing

TEXT = {".json", ".csv", ".yaml", ".txt", ".md"}
SKIP = {"checkpoints", "logs"}


def publish(source: Path, dest: Path, root: Path) -> int:
    """Copy `source` into `dest` with the paths under `root` made relative; returns the
    number of files copied."""
    prefix = str(root.resolve()).rstrip(os.sep) + os.sep
    n = 0
    for path in sorted(source.rglob("*")):
        rel = path.relative_to(source)
        if not path.is_file() or SKIP & set(rel.parts) or path.name.startswith("."):
            continue
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix in TEXT:
            target.write_text(path.read_text().replace(prefix, ""))
        else:
            shutil.copyfile(path, target)
        n += 1
    return n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="run or scan directory")
    parser.add_argument("dest", type=Path, help="result folder")
    parser.add_argument("--root", type=Path, default=Path("."),
                        help="paths under it become relative [the current directory]")
    parser.add_argument("--force", action="store_true",
                        help="write into a result folder that holds files (default: refuse)")
    args = parser.parse_args()
    if not args.source.is_dir():
        fail(f"{args.source} is not a directory")
    dest = refuse_existing(args.dest, args.force, "dest")
    print(f"{publish(args.source, dest, args.root)} files copied into {dest}")


if __name__ == "__main__":
    main()
