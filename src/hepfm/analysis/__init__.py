"""Analysis shared by pretraining and fine-tuning: metrics, plots and CKA.

* :mod:`hepfm.analysis.metrics`: AUC, accuracy, background rejection at fixed signal
  efficiency, ROC curve frames; per-class accuracy, macro AUC, confusion matrices.
* :mod:`hepfm.analysis.significance`: Asimov significance over cuts, binned significance,
  SIC, with bootstrap intervals, for stated yields (``Yields``).
* :mod:`hepfm.analysis.calibration`: Brier score, reliability curve, temperature scaling.
* :mod:`hepfm.analysis.plots`: ROC, confusion matrix, learning curve and CKA figures (PNG,
  written atomically).
* :mod:`hepfm.analysis.cka`: linear and RBF CKA, unbiased HSIC, minibatch CKA, ``cka_matrix``.
* :mod:`hepfm.analysis.representations`: ``extract_representations(model, batches)``.
* :mod:`hepfm.analysis.cka_report`: what ``hepfm cka`` runs.

Names are re-exported lazily so that importing the package does not load matplotlib.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    **dict.fromkeys(
        ["binary_metrics", "background_rejection", "roc_curve_frame", "per_class_accuracy",
         "macro_auc", "confusion_frame", "multiclass_metrics", "rank_auc", "bootstrap_auc",
         "bootstrap_counts", "bootstrap_multiclass", "percentile_interval"],
        "hepfm.analysis.metrics"),
    **dict.fromkeys(
        ["plot_roc", "plot_confusion", "plot_learning_curve", "plot_learning_summary",
         "plot_cka_heatmap", "plot_cka_diagonal", "plot_reliability"], "hepfm.analysis.plots"),
    **dict.fromkeys(["Yields", "asimov_significance", "significance_metrics",
                     "bootstrap_significance"], "hepfm.analysis.significance"),
    **dict.fromkeys(["brier_score", "reliability_curve", "fit_temperature",
                     "calibration_metrics"], "hepfm.analysis.calibration"),
    **dict.fromkeys(["BDTBaseline", "event_features"], "hepfm.analysis.baseline"),
    **dict.fromkeys(
        ["linear_cka", "rbf_cka", "kernel_cka", "minibatch_cka", "cka_matrix", "cka_diagonal",
         "hsic_biased", "hsic_unbiased", "linear_kernel", "rbf_kernel"], "hepfm.analysis.cka"),
    "extract_representations": "hepfm.analysis.representations",
    "cka_report": "hepfm.analysis.cka_report",
    "cka_group_report": "hepfm.analysis.cka_report",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'hepfm.analysis' has no attribute '{name}'")
