"""``hepfm pretrain``: generate (if asked), load, train with Lightning, save, evaluate.

A run directory ends up holding::

    run.yaml                 the settings of this run (used by --resume)
    config.yaml              model architecture, features, normalisation, provenance
    model.safetensors        weights of the best epoch (lowest validation loss)
    metrics.csv              train/val loss, val accuracy and AUC per epoch (all attempts)
    logs/version_<k>/        Lightning CSV log of each attempt (k > 0: --resume)
    checkpoints/best.ckpt, checkpoints/last.ckpt   Lightning checkpoints (written
                             atomically; last.ckpt also on SIGTERM; loaded weights-only)
    metrics.json             validation and test metrics of the saved model
    confusion_matrix.csv/.png  test confusion matrix (multiclass)
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import yaml

from hepfm.atomic import refuse_existing, sweep_temporaries, write_text
from hepfm.devices import accelerator, resolve_device
from hepfm.errors import ArgumentError, HepfmError, InputDataError
from hepfm.processes import resolve_processes
from hepfm.samples import default_data_dir, distributed_rank, generate_command

if TYPE_CHECKING:
    import lightning as L

    from hepfm.training.datamodule import EventDataModule
    from hepfm.training.module import PretrainModule

T = TypeVar("T")

log = logging.getLogger(__name__)

DEFAULTS: dict[str, Any] = {
    "processes": "all",
    "objective": "multiclass",
    "events_per_process": 2000,
    "epochs": 10,
    "batch_size": 256,
    "seed": 0,
    "lr": 2e-3,
    "schedule": "cosine",
    "patience": 4,
    "on_invalid": "error",
}
RUN_SETTINGS = "run.yaml"
PRECISIONS = {"32": "32-true", "32-true": "32-true", "bf16": "bf16-mixed",
              "bf16-mixed": "bf16-mixed", "16-mixed": "16-mixed"}
#: Exit status after SIGTERM (128 + signal number), as a shell reports a killed process.
SIGTERM_EXIT = 128 + signal.SIGTERM


@dataclass
class PretrainResult:
    """Where the model is and how good it is."""

    run_dir: Path
    metrics: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> str:
        lines = [f"model saved in {self.run_dir} (load with hepfm.load_pretrained"
                 f"('{self.run_dir}'))"]
        test = self.metrics.get("test", {})
        if "accuracy" in test:
            def value(key: str) -> str:
                interval = (f" [{test[f'{key}_lo68']:.3f}, {test[f'{key}_hi68']:.3f}]"
                            if f"{key}_lo68" in test else "")
                return f"{test[key]:.3f}{interval}"

            lines.append(f"test: {test['events']} events, accuracy {value('accuracy')}, "
                         f"macro AUC {value('macro_auc')} (68% bootstrap intervals)")
            per = {k.split("/", 1)[1]: v for k, v in test.items() if k.startswith("accuracy/")}
            lines.append("per-class accuracy: " + ", ".join(f"{k} {v:.2f}"
                                                             for k, v in per.items()))
            lines.append(f"confusion matrix: {self.run_dir / 'confusion_matrix.png'} (.csv)")
        if test.get("multilabel_macro_auc") is not None:
            lines.append(f"test multilabel macro AUC {test['multilabel_macro_auc']:.3f}")
        if "mpm_type_accuracy" in test:
            tok = test.get("mpm_token_accuracy")
            lines.append(f"test masked objects: type accuracy {test['mpm_type_accuracy']:.3f}"
                         + ("" if tok is None else f", token accuracy {tok:.3f}")
                         + f", regression loss {test['mpm_regression_loss']:.3f}")
        return "\n".join(lines)


def _saved_settings(out_dir: Path, resume: bool) -> dict[str, Any]:
    """The settings saved in the run directory (when resuming; else none)."""
    path = out_dir / RUN_SETTINGS
    if not resume:
        return {}
    if not path.is_file():
        raise HepfmError(f"cannot resume: '{out_dir}' has no {RUN_SETTINGS} "
                         "(not a hepfm pretraining run directory)")
    try:
        saved = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise HepfmError(f"cannot resume: '{path}' is not valid YAML ({err.problem})") from None
    known = {f.name for f in fields(PretrainConfig)}
    unknown = sorted(set(saved) - known) if isinstance(saved, dict) else ["(not a mapping)"]
    if unknown:
        raise HepfmError(f"cannot resume: '{path}' holds unknown settings "
                         f"{', '.join(map(str, unknown))}")
    return saved


def _write_yaml(path: Path, data: dict[str, Any]) -> None:
    write_text(path, yaml.safe_dump(data, sort_keys=False))


def _merge_logs(out_dir: Path) -> None:
    """Concatenate the CSV logs of every attempt (first run, resumes) into metrics.csv."""
    import pandas as pd

    parts = sorted((out_dir / "logs").glob("version_*/metrics.csv"),
                   key=lambda p: int(p.parent.name.split("_")[1]))
    frames = [pd.read_csv(p) for p in parts if p.stat().st_size > 0]
    if frames:
        merged = pd.concat(frames, ignore_index=True)
        write_text(out_dir / "metrics.csv", merged.to_csv(index=False))


def _set_cpu_threads(device: str, threads: int | None) -> None:
    """Torch threads for CPU training: `threads`, else half the cores (at most 4).

    The graphs' tensors are small: extra threads gain little and, on a busy machine,
    oversubscribed OpenMP threads slow training down several times.
    """
    import torch

    if device == "cpu" or (device == "auto" and not torch.cuda.is_available()):
        torch.set_num_threads(threads or max(1, min(4, (os.cpu_count() or 1) // 2)))


def check_settings(s: dict[str, Any], compute: ComputeConfig) -> None:
    """Raise :class:`ArgumentError` for a setting that cannot work, before anything is
    loaded or generated: sizes below 1, unknown device, precision or objective."""
    from hepfm.data.reading import check_on_invalid
    from hepfm.objectives.mpm import parse_objective

    for key in ("epochs", "batch_size", "events_per_process", "patience"):
        value = s.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                  or value < (0 if key == "patience" else 1)):
            raise ArgumentError(f"{key} must be an integer >= "
                                f"{0 if key == 'patience' else 1}, got {value!r}")
    devices, num_nodes = compute.devices, compute.num_nodes
    if str(compute.precision) not in PRECISIONS:
        raise ArgumentError(f"unknown precision '{compute.precision}': use one of "
                            f"{', '.join(PRECISIONS)}")
    resolve_device(compute.device)
    check_on_invalid(s["on_invalid"])
    if num_nodes < 1 or (devices != -1 and isinstance(devices, int) and devices < 1):
        raise ArgumentError(f"devices must be >= 1 (or -1: all) and num_nodes >= 1, got "
                            f"{devices} and {num_nodes}")
    try:
        parse_objective(s["objective"])
    except HepfmError:
        raise
    except ValueError as err:  # a weight that is not a number
        raise ArgumentError(str(err)) from None
    mpm = s.get("mpm") or {}
    if "fraction" in mpm and not 0 < float(mpm["fraction"]) < 1:
        raise ArgumentError(f"mask fraction must be between 0 and 1, got {mpm['fraction']}")
    if "codebook_size" in mpm and int(mpm["codebook_size"]) < 2:
        raise ArgumentError(f"codebook size must be >= 2, got {mpm['codebook_size']}")


@contextlib.contextmanager
def _sigterm_to_lightning() -> Iterator[None]:
    """During ``fit``, SIGTERM belongs to Lightning alone (it stops at the next batch and
    :class:`CheckpointOnSigterm` saves); a handler installed by the caller (the CLI's, which
    exits at once) is put back afterwards."""
    in_main = threading.current_thread() is threading.main_thread()
    previous = signal.getsignal(signal.SIGTERM) if in_main else None
    if in_main:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        yield
    finally:
        if in_main and previous is not None:
            signal.signal(signal.SIGTERM, previous)


@dataclass
class PretrainConfig:
    """What is pretrained, on which events, and how: the settings ``run.yaml`` records.

    A field left ``None`` takes the value of the run being resumed, else :data:`DEFAULTS`.
    `objective`: ``multiclass``, ``multilabel``, ``both``, ``mpm`` or a sum such as
    ``mpm+multiclass``; `mpm` sets masked particle modeling's ``fraction``, ``targets`` and
    ``codebook_size`` (defaults: :data:`hepfm.objectives.mpm.MPM_DEFAULTS`);
    `model_config`: :class:`~hepfm.models.config.ModelConfig` fields (``hidden``, ...).
    With `streaming`, training events are streamed from the files (split by entry ranges per
    file, see :class:`~hepfm.training.datamodule.EventDataModule`); `events_per_process`
    then caps the entries read per file and, unless given, reads them all. `on_invalid`:
    ``"error"`` or ``"drop"``, what happens to events with bad values.
    """

    processes: str | list[str] | None = None
    objective: str | None = None
    data_dir: str | os.PathLike[str] | None = None
    events_per_process: int | None = None
    epochs: int | None = None
    batch_size: int | None = None
    seed: int | None = None
    lr: float | None = None
    schedule: str | None = None
    patience: int | None = None
    model_config: dict[str, Any] | None = None
    mpm: dict[str, Any] | None = None
    streaming: bool | None = None
    on_invalid: str | None = None

    def given(self) -> dict[str, Any]:
        """The fields that are set, as ``run.yaml`` writes them."""
        given = {k: v for k, v in asdict(self).items() if v is not None}
        if "processes" in given and not isinstance(given["processes"], str):
            given["processes"] = ",".join(given["processes"])
        if "data_dir" in given:
            given["data_dir"] = str(Path(given["data_dir"]).expanduser())
        if not self.streaming:
            given.pop("streaming", None)
        return given


@dataclass
class ComputeConfig:
    """Where and how a run trains; not recorded (a resumed run may use other hardware).

    `device`: ``auto``, ``cpu``, ``cuda`` (``gpu``) or ``mps``; `devices` per node and `num_nodes`
    above 1 train with DDP; `threads`: torch threads on a CPU (default half the cores, at
    most 4); `num_workers`: DataLoader worker processes; `generate_workers`: processes that
    generate missing samples.
    """

    device: str = "auto"
    precision: str = "32"
    devices: int | str = 1
    num_nodes: int = 1
    threads: int | None = None
    num_workers: int = 0
    generate_workers: int | None = None


def pretrain(
    config: PretrainConfig | None = None,
    out_dir: str | os.PathLike[str] | None = None,
    *,
    compute: ComputeConfig | None = None,
    resume: bool = False,
    force: bool = False,
    generate: bool = False,
    progress: bool = True,
    verbose: bool = True,
    **overrides: Any,
) -> PretrainResult:
    """Pretrain the foundation model as `config` says and write the run directory `out_dir`.

    `overrides` set fields of `config` or `compute` by name (``epochs=20``,
    ``device="cpu"``). Missing sample files are an error naming them and the
    ``hepfm generate`` command, unless `generate` is set or ``data_dir`` is left at its
    default (then they are generated, so that ``hepfm pretrain --processes all`` works on a
    fresh install). ``seed`` fixes the split, the initialisation and the batch order. With
    `resume`, the settings come from ``out_dir/run.yaml`` (those set here override them,
    e.g. more ``epochs``) and training continues from ``checkpoints/last.ckpt``; else an
    `out_dir` that holds files is refused unless `force`.
    """
    config, compute = _with_overrides(config or PretrainConfig(), compute or ComputeConfig(),
                                      overrides)
    out_dir = _run_dir(out_dir, resume, compute)
    if not resume and distributed_rank() == 0:  # ranks > 0 start after rank 0 wrote there
        refuse_existing(out_dir, force, "out_dir", "resume", option="--out")
    saved = _saved_settings(out_dir, resume)
    given = config.given()
    s = {**DEFAULTS, **saved, **given}  # defaults, then the saved run, then what is given
    names = resolve_processes(s["processes"])
    check_settings(s, compute)
    resume_from = None
    if resume:  # before any data is read or generated
        from hepfm.training.checkpoints import resume_checkpoint

        resume_from = resume_checkpoint(out_dir / "checkpoints")
    sample_events = s["events_per_process"]
    if s.get("streaming") and "events_per_process" not in given | saved:
        s["events_per_process"] = None  # streaming reads whole files unless capped

    dm = _data_module(s, names, compute, generate, sample_events, verbose)
    s["data_dir"] = str(dm.data_dir)
    _prepare_run_dir(out_dir, s, compute)
    dm.setup("fit")
    _check_sizes(dm, s)
    module = _lightning_module(s, dm)
    trainer = _trainer(s, out_dir, compute, dm.train_events(), progress, verbose)
    _fit(trainer, module, dm, resume_from, out_dir)
    if not trainer.is_global_zero:
        return PretrainResult(out_dir)
    return _save(trainer, module, dm, s, names, out_dir)


def _with_overrides(config: PretrainConfig, compute: ComputeConfig, overrides: dict[str, Any]
                    ) -> tuple[PretrainConfig, ComputeConfig]:
    """`config` and `compute` with the fields named in `overrides` replaced."""
    own = {f.name for f in fields(PretrainConfig)}
    hardware = {f.name for f in fields(ComputeConfig)}
    unknown = sorted(set(overrides) - own - hardware)
    if unknown:  # as Python reports an unexpected keyword argument
        raise TypeError(f"pretrain() got an unexpected keyword argument '{unknown[0]}'")
    return (replace(config, **{k: v for k, v in overrides.items() if k in own}),
            replace(compute, **{k: v for k, v in overrides.items() if k in hardware}))


def _run_dir(out_dir: str | os.PathLike[str] | None, resume: bool, compute: ComputeConfig
             ) -> Path:
    """The run directory: `out_dir`, or a new ``runs/pretrain-<time>`` for a single process."""
    if out_dir is None:
        if resume:
            raise HepfmError("resume needs out_dir, the run to continue").for_cli(
                "--resume needs --out RUN_DIR (the run to continue)")
        if compute.devices != 1 or compute.num_nodes != 1:
            raise HepfmError("give out_dir with devices/num_nodes: every rank must write to "
                             "the same run directory").for_cli(
                "give --out RUN_DIR with --devices/--num-nodes: every rank must write to the "
                "same run directory")
        out_dir = Path("runs") / time.strftime("pretrain-%Y%m%d-%H%M%S")
    return Path(out_dir).expanduser().absolute()


def _data_module(s: dict[str, Any], names: list[str], compute: ComputeConfig, generate: bool,
                 sample_events: int | None, verbose: bool) -> EventDataModule:
    """The data module of the run, its samples made (or their absence reported)."""
    from hepfm.training.datamodule import EventDataModule

    data_dir = s.get("data_dir")
    dm = EventDataModule(data_dir, names, s["events_per_process"], s["batch_size"], s["seed"],
                         num_workers=compute.num_workers, streaming=bool(s.get("streaming")),
                         cache_dir=Path(data_dir or default_data_dir()).expanduser() / ".cache",
                         generate=generate, sample_events=sample_events,
                         generate_workers=compute.generate_workers, verbose=verbose,
                         on_invalid=s["on_invalid"])
    dm.prepare_data()  # before the model: it is built with the data's normalisation
    return dm


def _prepare_run_dir(out_dir: Path, s: dict[str, Any], compute: ComputeConfig) -> None:
    """Seed, threads, and the run directory with its settings (what a killed run left
    half-written removed first)."""
    import lightning as L

    from hepfm.training.quiet import ignore_irrelevant_warnings

    ignore_irrelevant_warnings()
    _set_cpu_threads(compute.device, compute.threads)
    L.seed_everything(s["seed"], workers=True, verbose=False)
    out_dir.mkdir(parents=True, exist_ok=True)
    if distributed_rank() == 0:
        for d in (out_dir, out_dir / "checkpoints"):
            sweep_temporaries(d)
    _write_yaml(out_dir / RUN_SETTINGS, {k: v for k, v in s.items() if v is not None})


def _check_sizes(dm: EventDataModule, s: dict[str, Any]) -> None:
    """Warn about processes with fewer events than asked for; refuse an empty split."""
    wanted = s["events_per_process"]
    short = {p: n for p, n in dm.process_counts().items()
             if wanted is not None and n < wanted}
    if short:
        cmd = generate_command(list(short), wanted, dm.data_dir, s["seed"])
        listing = ", ".join(f"{p} ({n})" for p, n in short.items())
        print(f"warning: fewer than {wanted} events for {listing}; to make more: {cmd}",
              file=sys.stderr)
    if dm.train_events() == 0 or not dm.val:
        raise InputDataError(f"too few events in '{dm.data_dir}' to split into "
                             f"train/val/test ({dm.train_events()} training events)")


def _lightning_module(s: dict[str, Any], dm: EventDataModule) -> PretrainModule:
    """The model (normalised with the training statistics) inside its training module."""
    from hepfm.models.foundation import FoundationModel, ModelConfig
    from hepfm.objectives.mpm import MPM_DEFAULTS, fit_codebook, parse_objective
    from hepfm.training.module import PretrainModule

    cfg = ModelConfig(**(s.get("model_config") or {}))
    mpm = {**MPM_DEFAULTS, **(s.get("mpm") or {})}
    use_mpm = "mpm" in parse_objective(s["objective"])
    if use_mpm and cfg.mpm is None:
        cfg.mpm = {"codebook_size": int(mpm["codebook_size"]),
                   "hidden": cfg.head_hidden or cfg.hidden}
    model = FoundationModel(cfg, dm.stats)
    if use_mpm and "tokens" in mpm["targets"]:  # deterministic: refitted on --resume
        assert dm.train_sample is not None
        fit_codebook(model, dm.train_sample, seed=s["seed"])
    module = PretrainModule(model, s["objective"], lr=s["lr"], schedule=s["schedule"],
                            mask_fraction=mpm["fraction"], mpm_targets=mpm["targets"],
                            seed=s["seed"])
    if "multilabel" in module.objective.heads and not dm.has_multilabels:
        raise InputDataError(f"objective '{s['objective']}' needs truth labels but the files "
                             f"in '{dm.data_dir}' have no Truth branches")
    return module


def _trainer(s: dict[str, Any], out_dir: Path, compute: ComputeConfig, n_train: int,
             progress: bool, verbose: bool) -> L.Trainer:
    """The Trainer: early stopping and best/last checkpoints on the validation loss (saved
    atomically, loaded weights-only, last also on SIGTERM), a timer, CSV logs per attempt."""
    import lightning as L
    from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint, Timer
    from lightning.pytorch.loggers import CSVLogger

    from hepfm.training.checkpoints import LAST, CheckpointOnSigterm, SafeCheckpointIO

    ckpt_dir = out_dir / "checkpoints"
    devices, num_nodes = compute.devices, compute.num_nodes
    n_dev = devices if isinstance(devices, int) else 1
    distributed = n_dev > 1 or num_nodes > 1 or devices == -1
    return L.Trainer(
        max_epochs=s["epochs"],
        accelerator=accelerator(compute.device),
        devices=devices,
        num_nodes=num_nodes,
        strategy="ddp" if distributed else "auto",
        precision=PRECISIONS.get(str(compute.precision), compute.precision),
        callbacks=[EarlyStopping(monitor="val/loss", mode="min", patience=s["patience"]),
                   ModelCheckpoint(dirpath=ckpt_dir, filename="best", monitor="val/loss",
                                   mode="min", save_top_k=1, save_last=True,
                                   enable_version_counter=False),
                   Timer(), CheckpointOnSigterm(ckpt_dir / LAST)],
        plugins=[SafeCheckpointIO()],
        logger=CSVLogger(save_dir=out_dir, name="logs"),  # logs/version_<k>: one per attempt
        default_root_dir=out_dir,
        enable_progress_bar=progress,
        enable_model_summary=verbose,
        num_sanity_val_steps=0,
        log_every_n_steps=max(1, min(50, n_train // s["batch_size"])),
    )


def _callback(trainer: L.Trainer, kind: type[T]) -> T:
    return next(c for c in trainer.callbacks if isinstance(c, kind))  # type: ignore[attr-defined]


def _fit(trainer: L.Trainer, module: PretrainModule, dm: EventDataModule,
         resume_from: str | None, out_dir: Path) -> None:
    """Train; on SIGTERM say where the checkpoint is and exit with status 143."""
    from lightning.pytorch.utilities.exceptions import SIGTERMException

    from hepfm.training.checkpoints import CheckpointOnSigterm

    try:
        with _sigterm_to_lightning():
            trainer.fit(module, datamodule=dm, ckpt_path=resume_from)
    except SIGTERMException:
        if trainer.is_global_zero:
            on_sigterm = _callback(trainer, CheckpointOnSigterm)
            saved = (f"checkpoint saved in {on_sigterm.path}" if on_sigterm.saved
                     else "no checkpoint saved")
            print(f"stopped by SIGTERM at epoch {trainer.current_epoch}, step "
                  f"{trainer.global_step}: {saved}. Continue with: hepfm pretrain --resume "
                  f"--out {out_dir}", file=sys.stderr)
        raise SystemExit(SIGTERM_EXIT) from None


def _save(trainer: L.Trainer, module: PretrainModule, dm: EventDataModule,
          s: dict[str, Any], names: list[str], out_dir: Path) -> PretrainResult:
    """Save the best epoch's model with its provenance, the merged logs and the evaluation."""
    from lightning.pytorch.callbacks import Timer

    from hepfm.data.datasets import resolve_sources
    from hepfm.provenance import describe_files
    from hepfm.training.checkpoints import LAST, load_checkpoint
    from hepfm.training.evaluate import write_evaluation

    checkpoint = trainer.checkpoint_callback
    best = getattr(checkpoint, "best_model_path", "") or str(out_dir / "checkpoints" / LAST)
    ckpt = load_checkpoint(best)
    module.load_state_dict(ckpt["state_dict"])
    model = module.model.cpu().float().eval()
    best_epoch = (None if getattr(checkpoint, "best_model_score", None) is None
                  else int(ckpt["epoch"]))
    provenance = {
        "processes": names, "objective": s["objective"], "seed": s["seed"],
        "events_per_process": s["events_per_process"], "split": list(dm.split),
        "data_dir": str(dm.data_dir), "best_epoch": best_epoch,
        "pretraining_events": describe_files(resolve_sources(dm.data_dir, names),
                                             s["events_per_process"]),
    }
    if dm.streaming:
        provenance["streaming"] = True
    if module.objective.mpm is not None:
        provenance["mpm"] = module.objective.mpm.to_dict()
    model.save_pretrained(out_dir, **provenance)
    _merge_logs(out_dir)
    assert dm.val is not None and dm.test is not None
    metrics = write_evaluation(
        out_dir, model, {"val": dm.val, "test": dm.test}, names, module.objective.heads,
        mpm=module.objective.mpm,
        extra={"best_epoch": best_epoch,
               "train_time_s": _callback(trainer, Timer).time_elapsed("train"),
               "events": {"train": dm.train_events(), "val": len(dm.val),
                          "test": len(dm.test)}})
    return PretrainResult(out_dir, metrics)
