"""The CLI checks every value before it loads or generates anything.

Each bad value is one line ``error: ...`` naming the option, exit status 2, no traceback;
an unexpected exception (a bug) is one line and status 1, with the traceback under --debug.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import hepfm.samples
import hepfm.training.pretrain
import hepfm.training.task_run
from hepfm.cli import app
from hepfm.errors import ArgumentError

runner = CliRunner()


@pytest.fixture
def nothing_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if a command gets as far as loading, generating or training."""
    def touched(*args, **kwargs):
        raise AssertionError("a command body ran although an option value was bad")

    monkeypatch.setattr(hepfm.training.pretrain, "pretrain", touched)
    monkeypatch.setattr(hepfm.samples, "ensure_samples", touched)
    monkeypatch.setattr(hepfm.training.task_run, "finetune_task", touched)
    monkeypatch.setattr(hepfm.training.task_run, "scan_tasks", touched)


def _one_line_error(args: list[str], *expected: str) -> str:
    result = runner.invoke(app, args)
    out = result.output.strip()
    assert result.exit_code == 2, out
    assert len(out.splitlines()) == 1 and out.startswith("error: "), out
    assert "Traceback" not in out
    for text in expected:
        assert text in out, out
    return out


A_FILE = Path(__file__)  # a file: nothing can be created below it, even as root

BAD = [
    (["pretrain", "--batch-size", "0"], "'--batch-size': must be at least 1, got 0"),
    (["pretrain", "--epochs", "0"], "'--epochs': must be at least 1"),
    (["pretrain", "--events-per-process", "0"], "'--events-per-process'"),
    (["pretrain", "--precision", "64"], "'--precision': '64' is not one of 32"),
    (["pretrain", "--device", "tpu"], "'--device': 'tpu' is not one of auto, cpu"),
    (["pretrain", "--objective", "mpm+multiclas"], "'--objective': unknown objective"),
    (["pretrain", "--processes", "ttX"], "'--processes': unknown process 'ttX'"),
    (["pretrain", "--mask-fraction", "1.5"], "'--mask-fraction': must be between 0 and 1"),
    (["pretrain", "--num-nodes", "0"], "'--num-nodes'"),
    (["pretrain", "--devices", "0"], "'--devices': must be at least 1 (or -1: all)"),
    (["pretrain", "--out", str(A_FILE / "run")], "'--out'", "is a file"),
    (["finetune", "--task", "ttH_vs_tt", "--mode", "fine"], "'--mode': 'fine' is not one of"),
    (["finetune", "--task", "ttH_vs_tt", "--train-size", "1"], "'--train-size'"),
    (["finetune", "--task", "ttH_vs_tt", "--epochs", "0"], "'--epochs'"),
    (["finetune", "--task", "ttH_vs_tt", "--model", "no-such-model"],
     "'--model': unknown pretrained model 'no-such-model'"),
    (["scan", "--task", "ttH_vs_tt", "--seeds", "-1"], "'--seeds': must be at least 0"),
    (["scan", "--task", "ttH_vs_tt", "--model", "a=hepfm-small,a=hepfm-base"],
     "'--model'", "the label 'a' is given twice"),
    (["scan", "--task", "ttH_vs_tt", "--modes", "scratch,fulll"],
     "'--modes': 'fulll' is not one of bdt, scratch, full, frozen or linear"),
    (["scan", "--task", "ttH_vs_tt", "--out", str(A_FILE / "scan")], "'--out'"),
    (["scan", "--task", "ttH_vs_tt", "--epochs", "0"], "'--epochs'"),
    (["cka", "--model", "hepfm-small", "--model", "hepfm-base", "--kernel", "poly"],
     "'--kernel': 'poly' is not one of linear or rbf"),
    (["pretrain", "--no-such-option"], "No such option: --no-such-option"),
    (["predict", "--model", "no-such-model", "--input", "x.root", "--out", "o"],
     "'--model': unknown pretrained model"),
    (["export", "--model", "hepfm-small", "--out", "m.onnx", "--format", "tflite"],
     "'--format': 'tflite' is not one of"),
    (["generate", "--events-per-process", "0", "--out", "g"], "'--events-per-process'"),
    (["check", "--processes", "ttX", "."], "'--processes': unknown process 'ttX'"),
    (["processes", "--all"], "No such option: --all"),
    (["tasks", "--all"], "No such option: --all"),
    (["models", "--all"], "No such option: --all"),
]


def test_every_command_has_error_cases() -> None:
    import typer

    commands = set(typer.main.get_command(app).commands)
    assert {args[0] for args, *_ in BAD} == commands


@pytest.mark.parametrize(("args", "expected"), [(b[0], b[1:]) for b in BAD],
                         ids=[" ".join(b[0][:3]) for b in BAD])
def test_bad_value_is_one_line_exit_2_before_anything_runs(nothing_runs, args, expected):
    out = _one_line_error(args, *expected)
    assert "--help" in out  # says where to look


def test_bad_values_checked_by_the_library_before_samples(tmp_path: Path) -> None:
    from hepfm.training.pretrain import PretrainConfig, pretrain

    empty = tmp_path / "no-samples"  # an InputDataError would mean the samples were looked at
    for kwargs, match in [({"batch_size": 0}, "batch_size"), ({"epochs": 0}, "epochs"),
                          ({"precision": "64"}, "precision"), ({"device": "tpu"}, "device")]:
        with pytest.raises(ArgumentError, match=match):
            pretrain(PretrainConfig("ttH,tt", data_dir=empty), tmp_path / "run", verbose=False,
                     **kwargs)
    assert not (tmp_path / "run").exists()


def test_missing_pythia_names_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pythia8mc", None)  # import pythia8mc now fails
    out = _one_line_error(["generate", "--processes", "tt", "--events-per-process", "5", "--out",
                           str(tmp_path / "gen")], "pythia8mc",
                          "pip install 'hepfm[generate]'")
    assert "hepfm generate needs" in out
    assert not list((tmp_path / "gen").glob("*.root")) if (tmp_path / "gen").exists() else True
    _one_line_error(["pretrain", "--processes", "tt", "--data", str(tmp_path / "empty"),
                     "--generate", "--out", str(tmp_path / "run")],
                    "generating samples needs", "pip install 'hepfm[generate]'")


def test_bug_is_one_line_and_traceback_with_debug(monkeypatch: pytest.MonkeyPatch) -> None:
    def bug(*args, **kwargs):
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(hepfm.training.task_run, "finetune_task", bug)
    result = runner.invoke(app, ["finetune", "--task", "ttH_vs_tt"])
    out = result.output.strip()
    assert result.exit_code == 1 and len(out.splitlines()) == 1
    assert out.startswith("error: internal error: ZeroDivisionError: division by zero")
    assert "--debug" in out
    for args in (["--debug", "finetune", "--task", "ttH_vs_tt"],
                 ["finetune", "--task", "ttH_vs_tt", "--debug"]):
        result = runner.invoke(app, args)
        assert isinstance(result.exception, ZeroDivisionError)  # raised: traceback shown


def test_cli_choices_are_the_library_ones() -> None:
    from hepfm import cli
    from hepfm.devices import DEVICES
    from hepfm.training.finetune import MODES
    from hepfm.training.pretrain import PRECISIONS

    assert cli.MODE_CHOICES == MODES
    assert cli.DEVICE_CHOICES == DEVICES and set(cli.PRECISION_CHOICES) == set(PRECISIONS)


def test_every_value_error_left_is_a_commented_programming_error() -> None:
    """User input raises hepfm errors; a bare ValueError is a bug of hepfm, said where."""
    src = Path(hepfm.samples.__file__).parent
    bare = [f"{path.relative_to(src)}:{k}" for path in sorted(src.rglob("*.py"))
            for k, line in enumerate(path.read_text().splitlines(), 1)
            if "raise ValueError" in line and "# programming error: " not in line]
    assert bare == []


def test_library_errors_reach_the_cli_as_one_line(tmp_path: Path) -> None:
    """Errors raised by the library (not by an option's check) are one line and exit 2."""
    import yaml

    detector = tmp_path / "detector.yaml"
    detector.write_text("btag_b_norm: 0.7\nno_such_parameter: 1\n")
    listing = tmp_path / "list.yaml"
    listing.write_text("- 1\n- 2\n")
    from hepfm.models.foundation import FoundationModel, ModelConfig

    model = tmp_path / "model"
    FoundationModel(ModelConfig(hidden=8, blocks=1, head_hidden=8)).save_pretrained(model)
    config = yaml.safe_load((model / "config.yaml").read_text())
    config["model"]["no_such_field"] = 1
    (model / "config.yaml").write_text(yaml.safe_dump(config))
    cases = [
        (["generate", "--events-per-process", "5", "--out", str(tmp_path / "g"), "--detector",
          str(detector)], f"detector file '{detector}'", "no_such_parameter"),
        (["generate", "--events-per-process", "5", "--out", str(tmp_path / "g"), "--detector",
          str(listing)], f"detector file '{listing}' must hold 'name: value' lines"),
        (["pretrain", "--objective", "mpm:x+multiclass"], "'--objective'",
         "weight 'x' is not a number"),
        (["export", "--model", str(model), "--out", str(tmp_path / "m.onnx")],
         "architecture not understood", "no_such_field"),
        (["predict", "--model", str(model), "--input", __file__, "--out", str(tmp_path / "p")],
         "architecture not understood"),
    ]
    for args, *expected in cases:
        _one_line_error(args, *expected)
