"""Where a benchmark writes its results: a new dated file in ``benchmarks/results/``.

Every script that records results takes ``--out`` (default ``results/<name>-<date><suffix>``,
today's date) and ``--force``. An existing result, such as a committed record
``results/<name>.md``, is never replaced unless ``--force`` is given, and the check comes
before the benchmark runs.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path
from typing import NoReturn

RESULTS = Path(__file__).parent / "results"


def dated(name: str, suffix: str = ".md", day: dt.date | None = None) -> str:
    """``<name>-<YYYY-MM-DD><suffix>`` for `day` (default today)."""
    return f"{name}-{(day or dt.date.today()).isoformat()}{suffix}"


def add_output_options(parser: argparse.ArgumentParser, name: str, suffix: str = ".md") -> None:
    """``--out`` (default: a new dated file in results/) and ``--force``."""
    parser.add_argument("--out", type=Path, default=None,
                        help=f"result file [results/{dated(name, suffix, dt.date(2000, 1, 1))}"
                        .replace("2000-01-01", "<today>") + "]")
    parser.add_argument("--force", action="store_true",
                        help="replace an existing result file (default: refuse)")


def fail(message: str) -> NoReturn:
    """Exit with status 2 (a usage error, as argparse and the ``hepfm`` command use) after
    one line ``error: message``."""
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)


def refuse_existing(path: Path, force: bool, option: str = "--out") -> Path:
    """`path`, unless it holds a result and not `force` (then :func:`fail` naming `option`,
    where the path was given)."""
    if not force and (path.is_file() or (path.is_dir() and any(path.iterdir()))):
        fail(f"{path} exists (a recorded result): give --force to replace it, or another "
             f"{option}")
    return path


def output_path(args: argparse.Namespace, name: str, suffix: str = ".md") -> Path:
    """The result file of `args` (``--out``, else a new dated file), checked, its folder
    made."""
    path = args.out if args.out is not None else RESULTS / dated(name, suffix)
    refuse_existing(Path(path), args.force)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    return Path(path)
