"""Time hepfm's CKA matrix against plain numpy linear CKA in one run.

Workload: 10k events, 6 stages x 6 stages, the sizes of the default model (hidden 64: the
encoder and block stages are 128 wide, mean-pooled nodes + global vector; readout and head
inputs 64). Features are synthetic but correlated across stages (successive random maps).

* hepfm linear: ``cka_matrix(kernel="linear")``, exact, unbiased HSIC, feature space.
* hepfm rbf minibatch: ``cka_matrix(kernel="rbf")``, unbiased HSIC over 1024-event batches.
* baseline (full-matrix): the reference recipe of Kornblith et al. (2019) in numpy float64:
  each stage's n x n linear Gram matrix, centred, ``HSIC = sum(Kc * Lc)``; B's Gram matrices
  are computed once and kept (about 0.8 GB each at 10k events), A's one at a time.
* baseline (feature space): the numpy ``||Y^T X||^2 / (||X^T X|| ||Y^T Y||)`` loop.

Usage: ``python benchmarks/cka.py [--events 10000] [--threads 1]``; writes a new dated file
``benchmarks/results/cka-<date>.md`` (``--out``; never over an existing file without
``--force``). Run it alone: the full-matrix baseline holds ~6.5 GB.
"""

from __future__ import annotations

import argparse
import os
import sys

THREADS = "1"
for _i, _arg in enumerate(sys.argv):
    if _arg == "--threads" and _i + 1 < len(sys.argv):
        THREADS = sys.argv[_i + 1]
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = THREADS  # before numpy/torch load their BLAS

import platform  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

from _results import add_output_options, output_path  # noqa: E402
from hepfm.analysis.cka import cka_matrix  # noqa: E402

STAGES = {"encoder": 128, "block_1": 128, "block_2": 128, "block_3": 128, "readout": 64,
          "head_input": 64}


def synthetic_representations(n: int, seed: int) -> dict[str, torch.Tensor]:
    """Stage features of one 'model': each stage a noisy nonlinear map of the previous one."""
    g = torch.Generator().manual_seed(seed)
    h = torch.randn(n, 32, generator=torch.Generator().manual_seed(0))  # shared events
    reps = {}
    for name, dim in STAGES.items():
        w = torch.randn(h.shape[1], dim, generator=g) / h.shape[1] ** 0.5
        h = torch.tanh(h @ w) + 0.3 * torch.randn(n, dim, generator=g)
        reps[name] = h.float()
    return reps


def numpy_full_matrix(reps_a: dict[str, np.ndarray], reps_b: dict[str, np.ndarray]
                      ) -> np.ndarray:
    """Kornblith et al. (2019) reference: n x n linear Gram matrices, centred, biased HSIC."""

    def centred_gram(x: np.ndarray) -> np.ndarray:
        k = x @ x.T
        means = k.mean(axis=0)
        k -= means[None, :]
        k -= means[:, None]
        k += means.mean()
        return k

    grams_b = [centred_gram(y) for y in reps_b.values()]
    self_b = [np.vdot(lc, lc) for lc in grams_b]
    out = np.empty((len(reps_a), len(reps_b)))
    for i, x in enumerate(reps_a.values()):
        kc = centred_gram(x)
        self_a = np.vdot(kc, kc)
        for j, lc in enumerate(grams_b):
            out[i, j] = np.vdot(kc, lc) / np.sqrt(self_a * self_b[j])
        del kc
    return out


def numpy_feature_space(reps_a: dict[str, np.ndarray], reps_b: dict[str, np.ndarray]
                        ) -> np.ndarray:
    """Plain numpy feature-space linear CKA, pair by pair."""
    out = np.empty((len(reps_a), len(reps_b)))
    for i, x in enumerate(reps_a.values()):
        x = x - x.mean(0)
        for j, y in enumerate(reps_b.values()):
            y = y - y.mean(0)
            out[i, j] = np.linalg.norm(y.T @ x) ** 2 / (
                np.linalg.norm(x.T @ x) * np.linalg.norm(y.T @ y))
    return out


def timed(fn, repeat: int = 1):  # -> (seconds, result)
    best, result = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t0)
    return best, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-full-matrix", action="store_true",
                        help="skip the n x n numpy baseline (memory ~ 7 n^2 x 8 bytes)")
    add_output_options(parser, "cka")
    args = parser.parse_args()
    out = output_path(args, "cka")
    torch.set_num_threads(args.threads)
    load = os.getloadavg()[0]
    n = args.events
    reps_a, reps_b = synthetic_representations(n, 1), synthetic_representations(n, 2)
    np_a = {k: v.double().numpy() for k, v in reps_a.items()}
    np_b = {k: v.double().numpy() for k, v in reps_b.items()}

    rows = []
    t_lin, m_lin = timed(lambda: cka_matrix(reps_a, reps_b, kernel="linear"), repeat=3)
    t_lin_b, m_lin_b = timed(lambda: cka_matrix(reps_a, reps_b, kernel="linear",
                                                unbiased=False), repeat=3)
    t_rbf, _ = timed(lambda: cka_matrix(reps_a, reps_b, kernel="rbf", batch_size=1024))
    t_fs, m_fs = timed(lambda: numpy_feature_space(np_a, np_b), repeat=3)
    rows.append(("hepfm linear, exact, unbiased (feature space)", t_lin))
    rows.append(("hepfm linear, exact, biased (feature space)", t_lin_b))
    rows.append(("hepfm rbf, minibatch 1024, unbiased", t_rbf))
    rows.append(("numpy linear, feature space, biased (baseline)", t_fs))
    err_fs = float(np.abs(m_lin_b.to_numpy() - m_fs).max())
    t_full, err_full = None, None
    if not args.no_full_matrix:
        t_full, m_full = timed(lambda: numpy_full_matrix(np_a, np_b))
        err_full = float(np.abs(m_lin_b.to_numpy() - m_full).max())
        rows.append(("numpy linear, n x n Gram matrices, biased (baseline)", t_full))

    lines = [
        "# CKA benchmark",
        "",
        f"{n} events, {len(STAGES)} x {len(STAGES)} stages (dims "
        f"{', '.join(map(str, STAGES.values()))}), float64 accumulation, "
        f"{args.threads} thread(s), CPU: {platform.processor() or platform.machine()}, "
        f"torch {torch.__version__}, numpy {np.__version__}, load average at start "
        f"{load:.1f} (shared 2-core machine; compare rows of one run only). "
        f"Command: `python benchmarks/cka.py --events {n} --threads {args.threads}`.",
        "",
        "| method | seconds |",
        "|---|---|",
        *[f"| {name} | {t:.3f} |" for name, t in rows],
        "",
    ]
    if t_full is not None:
        lines.append(f"- full-matrix baseline / hepfm linear: **{t_full / t_lin:.1f}x** "
                     f"(max |difference| of the biased CKA values {err_full:.1e})")
    lines.append(f"- feature-space numpy / hepfm linear: {t_fs / t_lin:.2f}x "
                 f"(max |difference| {err_fs:.1e})")
    if t_full is not None:
        lines.append(f"- full-matrix baseline / hepfm rbf minibatch: {t_full / t_rbf:.1f}x")
    lines.append(f"- unbiased-minus-biased linear CKA, mean over the matrix: "
                 f"{float((m_lin - m_lin_b).to_numpy().mean()):+.4f}")
    text = "\n".join(lines) + "\n"
    print(text)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, out)


if __name__ == "__main__":
    main()
