"""One CLI vocabulary: an option name means one thing in every command, the
defaults shown in ``--help`` are the code's own constants, and every error leaves through
:class:`hepfm.cli.HepfmGroup` (bad input: one line, exit 2; a bug: one line, exit 1)."""

from __future__ import annotations

import inspect
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
import typer
from typer.testing import CliRunner

import hepfm.analysis.cka_report
import hepfm.inference
import hepfm.training.pretrain
import hepfm.training.task_run
from hepfm import cli
from hepfm.cli import app
from hepfm.errors import ArgumentError, InputDataError

runner = CliRunner()
COMMANDS: Any = typer.main.get_command(app)
#: The commands that run a model, each with the same --device.
MODEL_COMMANDS = ("pretrain", "finetune", "scan", "cka", "predict")


def _option(command: str, name: str) -> Any:
    params = COMMANDS.commands[command].params
    return next(p for p in params if p.param_type_name == "option" and name in p.opts)


def _one_line_error(args: list[str], *expected: str, status: int = 2) -> str:
    result = runner.invoke(app, args)
    out = result.output.strip()
    assert result.exit_code == status, out
    assert len(out.splitlines()) == 1 and out.startswith("error: "), out
    for text in expected:
        assert text in out, out
    return out


def _default(function: Any, name: str) -> Any:
    return inspect.signature(function).parameters[name].default


# ---------------------------------------------------------------- defaults from the code


def test_import_and_help_do_not_import_torch():
    code = ("import sys\nfrom typer.testing import CliRunner\nfrom hepfm.cli import app\n"
            "for c in ([], ['generate'], ['pretrain'], ['finetune'], ['scan'], ['cka'], "
            "['predict'], ['export']):\n"
            "    assert CliRunner().invoke(app, [*c, '--help']).exit_code == 0, c\n"
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env={"PYTHONPATH": ":".join(sys.path), "PATH": ""})
    assert out.stdout.strip() == "False"


def test_restated_constants_equal_the_code():
    from hepfm import defaults
    from hepfm.analysis.cka import DEFAULT_RBF_BATCH
    from hepfm.generate import generate_samples
    from hepfm.generate.parts import PART_CHUNKS
    from hepfm.models.masked import CODEBOOK_SIZE, MPMHead
    from hepfm.objectives.masking import MASK_FRACTION
    from hepfm.objectives.mpm import MPM_DEFAULTS, MaskedParticleObjective
    from hepfm.taskdata import DEFAULT_EVENTS_PER_PROCESS
    from hepfm.training.finetune import FinetuneConfig, FineTuner
    from hepfm.training.task_run import finetune_task, scan_tasks

    assert cli.TASK_SAMPLE_EVENTS == DEFAULT_EVENTS_PER_PROCESS
    # fine-tuning defaults are stated once, in hepfm.defaults: everything reads them there
    for f in (finetune_task, scan_tasks, FineTuner):
        assert _default(f, "epochs") == defaults.EPOCHS, f
    assert FinetuneConfig().epochs == defaults.EPOCHS
    assert {"fraction": MASK_FRACTION, "codebook_size": CODEBOOK_SIZE} == cli.MPM_DEFAULTS
    assert {k: MPM_DEFAULTS[k] for k in cli.MPM_DEFAULTS} == cli.MPM_DEFAULTS  # pretrain's
    assert MaskedParticleObjective().fraction == MASK_FRACTION
    assert MPMHead(8).codebook_size == CODEBOOK_SIZE
    code = {k: _default(hepfm.inference.predict_files, k) for k in ("step_size", "batch_size")}
    assert code == cli.PREDICT_DEFAULTS
    code = {"events": _default(hepfm.analysis.cka_report.cka_report, "events"),
            "rbf_batch": DEFAULT_RBF_BATCH}
    assert code == cli.CKA_DEFAULTS
    code = {"chunk_size": _default(generate_samples, "chunk_size"), "part_chunks": PART_CHUNKS}
    assert code == cli.GENERATE_DEFAULTS
    assert _default(generate_samples, "part_chunks") == PART_CHUNKS
    assert _default(FineTuner, "pretrained") == cli.DEFAULT_MODEL


def _help(command: str) -> str:
    result = runner.invoke(app, [command, "--help"], terminal_width=300)
    assert result.exit_code == 0
    return " ".join(result.output.split())  # one line: wrapping does not matter


def test_help_shows_the_code_defaults():
    from hepfm import defaults
    from hepfm.analysis.cka import DEFAULT_RBF_BATCH
    from hepfm.models.masked import CODEBOOK_SIZE
    from hepfm.objectives.masking import MASK_FRACTION
    from hepfm.pretrained import DEFAULT_MODEL
    from hepfm.training.pretrain import DEFAULTS

    shown = {  # (command, option): what --help shows as its default
        ("pretrain", "--events-per-process"): f"[{DEFAULTS['events_per_process']}]",
        ("pretrain", "--epochs"): f"[{DEFAULTS['epochs']}]",
        ("pretrain", "--batch-size"): f"[{DEFAULTS['batch_size']}]",
        ("pretrain", "--seed"): f"[{DEFAULTS['seed']}]",
        ("pretrain", "--processes"): f"[{DEFAULTS['processes']}]",
        ("pretrain", "--objective"): f"[{DEFAULTS['objective']}]",
        ("pretrain", "--mask-fraction"): f"[{MASK_FRACTION}]",
        ("pretrain", "--codebook-size"): f"[{CODEBOOK_SIZE}]",
        ("finetune", "--model"): f"[{DEFAULT_MODEL}]",
        ("scan", "--model"): f"[{DEFAULT_MODEL}]",
        ("cka", "--batch-size"): f"{DEFAULT_RBF_BATCH} for rbf]",
    }
    for (command, name), text in shown.items():
        assert text in _option(command, name).help, (command, name)
        # shown literally (rich markup once swallowed "[hepfm-base]" as a tag)
        assert f"{name} " in _help(command) and text in _help(command), (command, name)
    defaults = {
        ("finetune", "--epochs"): _default(hepfm.training.task_run.finetune_task, "epochs"),
        ("scan", "--epochs"): _default(hepfm.training.task_run.scan_tasks, "epochs"),
        ("scan", "--bootstrap"): _default(hepfm.training.task_run.scan_tasks, "n_boot"),
        ("scan", "--seeds"): ",".join(map(str, defaults.SCAN_SEEDS)),
        ("scan", "--sizes"): ",".join(map(str, defaults.SCAN_SIZES)),
        ("predict", "--batch-size"): _default(hepfm.inference.predict_files, "batch_size"),
        ("predict", "--step-size"): _default(hepfm.inference.predict_files, "step_size"),
        ("cka", "--events"): _default(hepfm.analysis.cka_report.cka_report, "events"),
    }
    for (command, name), value in defaults.items():
        assert _option(command, name).default == value, (command, name)
        assert f"[default: {value}]" in _help(command), (command, name)


# ---------------------------------------------------------------- one meaning per name


#: The options that name a task's events, in the order of ``--help``, after ``--task``.
TASK_OPTIONS = ["--signal", "--background", "--mixed", "--test-signal", "--test-background",
                "--test-mixed", "--label-branch", "--weight-branch", "--branch-map", "--btag",
                "--data"]


@pytest.mark.parametrize("command", ["finetune", "scan"])
def test_task_options_are_listed_after_task_then_the_commands_own(command):
    import re

    listed = re.findall(r"^\s+(--[a-z-]+)", runner.invoke(app, [command, "--help"],
                                                         terminal_width=200).output, re.M)
    assert listed[:12] == ["--task", *TASK_OPTIONS]

    def option(p: inspect.Parameter) -> str:
        decls = [d for d in p.default.param_decls or () if d.startswith("--")]
        return decls[0].split("/")[0] if decls else "--" + p.name.replace("_", "-")

    own = inspect.signature(getattr(cli, command).__wrapped__).parameters.values()
    assert listed == ["--task", *TASK_OPTIONS,
                      *(option(p) for p in own if p.name not in ("task", "sources")), "--help"]


def test_task_options_reach_the_task_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Every task option of finetune and scan ends up in the TaskData the command runs."""
    files = {name: tmp_path / f"{name}.root" for name in ("s", "b", "ts", "tb", "m", "tm")}
    for path in files.values():
        path.touch()
    ran: list[Any] = []

    def record(tasks: Any, *args: Any, **kwargs: Any) -> None:
        ran.append(tasks)
        raise _Reached()

    monkeypatch.setattr(hepfm.training.task_run, "finetune_task", record)
    monkeypatch.setattr(hepfm.training.task_run, "scan_tasks", record)
    own = ["--task", "mine", "--signal", str(files["s"]), "--background", str(files["b"]),
           "--test-signal", str(files["ts"]), "--test-background", str(files["tb"]),
           "--weight-branch", "w", "--branch-map", "flat", "--btag", "0.5"]
    mixed = ["--task", "mine", "--mixed", str(files["m"]), "--test-mixed", str(files["tm"]),
             "--label-branch", "y"]
    for args in (["finetune", *own], ["scan", *own], ["finetune", *mixed], ["scan", *mixed],
                 ["scan", "--task", "ttH_vs_tt,VBF_vs_ggF", "--data", str(tmp_path)]):
        assert isinstance(runner.invoke(app, [*args, "--debug"]).exception, _Reached), args
    first, [second], third, [fourth], built_in = ran
    assert first == second and third == fourth
    assert (first.name, first.signal, first.background, first.test_signal,
            first.test_background) == ("mine", [str(files["s"])], [str(files["b"])],
                                       [str(files["ts"])], [str(files["tb"])])
    assert (first.weight_branch, first.branch_map.name, first.branch_map.btag.cut) == \
        ("w", "flat", 0.5)
    assert (third.mixed, third.test_mixed, third.label_branch) == \
        ([str(files["m"])], [str(files["tm"])], "y")
    assert [(t.name, t.samples.data) for t in built_in] == [("ttH_vs_tt", str(tmp_path)),
                                                           ("VBF_vs_ggF", str(tmp_path))]


def test_seed_defaults_to_0_everywhere():
    from hepfm.training.finetune import FinetuneConfig
    from hepfm.training.pretrain import DEFAULTS

    assert cli.SEED == DEFAULTS["seed"] == FinetuneConfig().seed == 0
    assert _default(hepfm.training.task_run.finetune_task, "seed") == cli.SEED
    assert _default(hepfm.analysis.cka_report.cka_report, "seed") == cli.SEED
    with_seed = [name for name, c in COMMANDS.commands.items()
                 if any("--seed" in p.opts for p in c.params)]
    assert {"generate", "cka", "pretrain", "finetune"} <= set(with_seed)
    for name in with_seed:
        option = _option(name, "--seed")
        assert option.default == cli.SEED or f"[{cli.SEED}]" in option.help, name


def test_every_model_command_takes_the_same_device_option():
    options = [_option(c, "--device") for c in MODEL_COMMANDS]
    for o in options:
        assert o.default == "auto" and o.help == options[0].help, o
    for value in ("auto", "cpu", "cuda", "gpu", "mps"):  # the choices of pretrain everywhere
        assert value in options[0].help
    for c in MODEL_COMMANDS:
        _one_line_error([c, "--device", "tpu"], "'--device': 'tpu' is not one of auto, cpu")


def test_events_per_process_is_per_process_and_events_is_a_total():
    per_process = [name for name, c in COMMANDS.commands.items()
                   if any("--events-per-process" in p.opts for p in c.params)]
    assert set(per_process) == {"generate", "pretrain", "finetune", "scan"}
    for name in per_process:
        assert "per process" in _option(name, "--events-per-process").help.lower(), name
    events = [name for name, c in COMMANDS.commands.items()
              if any("--events" in p.opts and not p.hidden for p in c.params)]
    assert events == ["cka"] and "in all" in _option("cka", "--events").help
    assert "--events " not in _help("generate")


def test_every_model_option_is_model_and_takes_a_shipped_name():
    takes = [name for name, c in COMMANDS.commands.items()
             if any("--model" in p.opts for p in c.params)]
    assert set(takes) == {"finetune", "scan", "predict", "export", "cka"}
    for name in takes:
        assert "shipped name" in _option(name, "--model").help, name
    for c in COMMANDS.commands.values():  # the old spellings are gone
        opts = {o for p in c.params for o in p.opts}
        assert not opts & {"--from", "--a", "--b", "--tasks", "--data-train", "--data-test"}


def _resolved(device: str) -> str:
    return "cuda" if device in ("auto", "gpu") and torch.cuda.is_available() else \
        ("cpu" if device == "auto" else device)


class _Reached(Exception):
    """Raised by a stand-in once it has recorded its arguments."""


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Stand-ins for the functions each command runs: they record their keyword arguments."""
    seen: dict[str, Any] = {}

    def recorder(name: str):
        def record(*args: Any, **kwargs: Any) -> Any:
            seen[name] = kwargs
            raise _Reached(name)
        return record

    monkeypatch.setattr(hepfm.training.pretrain, "pretrain", recorder("pretrain"))
    monkeypatch.setattr(hepfm.training.task_run, "finetune_task", recorder("finetune"))
    monkeypatch.setattr(hepfm.training.task_run, "scan_tasks", recorder("scan"))
    monkeypatch.setattr(hepfm.analysis.cka_report, "cka_report", recorder("cka"))
    monkeypatch.setattr(hepfm.inference, "predict_files", recorder("predict"))
    return seen


def test_device_reaches_the_code_that_runs_the_model(recorded, tmp_path: Path):
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.yaml").write_text("model: {}\n")
    data = tmp_path / "x.root"
    data.write_bytes(b"")
    argv = {"pretrain": ["pretrain"], "finetune": ["finetune", "--task", "ttH_vs_tt"],
            "scan": ["scan", "--task", "ttH_vs_tt", "--out", str(tmp_path / "scan")],
            "cka": ["cka", "--model", "hepfm-small", "--model", "hepfm-base"],
            "predict": ["predict", "--model", str(model), "--input", str(data), "--out",
                        str(tmp_path / "out")]}
    for command, args in argv.items():
        for device in ("auto", "cpu"):
            result = runner.invoke(app, [*args, "--device", device, "--debug"])
            assert isinstance(result.exception, _Reached), (command, result.output)
            given = recorded[command]
            given = vars(given["compute"]) if command == "pretrain" else given
            assert given["device"] == _resolved(device), (command, device)


def test_finetune_trains_on_the_device_given(generated_dir: Path, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch):
    from hepfm.models.foundation import FoundationModel, ModelConfig
    from hepfm.taskdata import task_data

    small = FoundationModel(ModelConfig(hidden=8, blocks=1, head_hidden=8))
    small.save_pretrained(tmp_path / "m")
    configs = []

    def finetune(model, train, val, head, config, **kwargs):
        configs.append(config)
        raise _Reached("finetune")

    monkeypatch.setattr(hepfm.training.task_run, "finetune", finetune)
    task = task_data("ttH_vs_tt", data=generated_dir)
    for k, device in enumerate(("cpu", None)):
        with pytest.raises(_Reached):
            hepfm.training.task_run.finetune_task(
                task, str(tmp_path / "m"), train_size=40, out=tmp_path / f"r{k}",
                progress=False, allow_overlap=True, **({"device": device} if device else {}))
    assert configs[0].accelerator == "cpu"
    assert configs[1].accelerator == "auto"  # the Python default: Lightning's auto


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_a_device_torch_does_not_see_is_exit_2(recorded):
    for command in (["finetune", "--task", "ttH_vs_tt"],
                    ["cka", "--model", "hepfm-small", "--model", "hepfm-base"]):
        _one_line_error([*command, "--device", "cuda"], "--device cuda: torch sees no CUDA GPU")
    assert not recorded


# ---------------------------------------------------------------- generate


def test_generate_events_errors(tmp_path: Path):
    out = ["--out", str(tmp_path / "g")]
    _one_line_error(["generate", "--events", "5", *out], "No such option: --events")
    _one_line_error(["generate", *out], "needs --events-per-process")
    _one_line_error(["generate", "--events-per-process", "0", *out],
                    "'--events-per-process': must be at least 1")
    _one_line_error(["generate", "--events-per-process", "5", "--seed", "-1", *out], "'--seed'")
    _one_line_error(["generate", "--events-per-process", "5", "--processes", ",", *out],
                    "'--processes': no process given")
    missing = tmp_path / "no-such-detector.yaml"
    _one_line_error(["generate", "--events-per-process", "5", "--detector", str(missing), *out],
                    "'--detector'", str(missing))
    assert not (tmp_path / "g").exists()


def test_the_printed_generate_command_uses_the_new_names(tmp_path: Path):
    from hepfm.samples import generate_command

    assert generate_command(["tt", "ttH"], 20, tmp_path, 1) == \
        f"hepfm generate --processes tt,ttH --events-per-process 20 --out {tmp_path} --seed 1"
    assert generate_command(["tt"], 20, tmp_path, 1, first_chunk=1_000_000).endswith(
        "--seed 1 --first-chunk 1000000")


# ---------------------------------------------------------------- one error path


def test_no_command_catches_errors_itself():
    source = Path(cli.__file__).read_text()
    body = source[source.index("@app.command()"):]
    assert "except (HepfmError" not in body and "fail(err)" not in body


def test_bad_input_is_one_line_exit_2(tmp_path: Path, recorded):
    no_model = tmp_path / "no-model"
    empty = tmp_path / "empty"
    empty.mkdir()
    root = tmp_path / "a.root"
    root.write_bytes(b"")
    cases = [
        (["scan", "--summarise-only", "--out", str(tmp_path / "no-scan")],
         "no-scan' is no scan directory"),
        (["scan", "--summarise-only", "--out", str(empty)], "is no scan directory"),
        (["scan", "--task", "ttH_vs_tt", "--bootstrap", "-1"], "'--bootstrap'"),
        (["predict", "--model", str(no_model), "--input", str(root), "--out", str(tmp_path)],
         "'--model':", "is also not a directory"),
        (["predict", "--model", str(empty), "--input", str(root), "--out", str(tmp_path)],
         "no config.yaml"),
        (["predict", "--model", "hepfm-small", "--input", str(root), "--out", str(tmp_path),
          "--format", "csv"], "'--format': 'csv' is not one of root or parquet"),
        (["predict", "--model", "hepfm-small", "--input", str(root), "--out", str(tmp_path),
          "--batch-size", "0"], "'--batch-size': must be at least 1"),
        (["export", "--model", str(no_model), "--out", str(tmp_path / "m.onnx")],
         "'--model':", "is also not a directory"),
        (["export", "--model", "hepfm-small", "--out", str(tmp_path / "m.onnx"), "--format",
          "tflite"], "'--format': 'tflite' is not one of"),
        (["cka", "--model", "hepfm-small"], "give two models: --model A --model B"),
        (["cka", "--group-a", "x", "--group-b", "y", "--labels", "one"], "--labels takes two"),
        (["cka", "--group-a", "x", "--model", "hepfm-small"],
         "group mode takes --group-a and --group-b"),
        (["cka", "--model", "hepfm-small", "--model", "hepfm-base", "--events", "3"],
         "'--events': must be at least 4"),
        (["cka", "--model", "hepfm-small", "--model", "hepfm-base", "--processes", "ttX"],
         "unknown process 'ttX'"),
        (["finetune", "--signal", "ttH", "--background", "ttH,tt"],
         "['ttH'] cannot be signal and background"),
        (["finetune", "--signal", "ttH"], "give both --signal and --background"),
        (["check", str(tmp_path / "nowhere")], "is not a directory"),
    ]
    for args, *expected in cases:
        _one_line_error(args, *expected)
    assert not recorded  # nothing got as far as running


def test_library_errors_stay_value_errors(tmp_path: Path):
    from hepfm.tasks import make_task
    from hepfm.training.scan import summarise_scan

    with pytest.raises(ArgumentError) as err:
        make_task("t", ["tt"], ["tt"])
    assert isinstance(err.value, ValueError)
    with pytest.raises(InputDataError) as err:
        summarise_scan(tmp_path)
    assert isinstance(err.value, FileNotFoundError) and isinstance(err.value, ValueError)


def test_a_plain_value_error_is_a_bug(monkeypatch: pytest.MonkeyPatch):
    def bug(*args, **kwargs):
        raise ValueError("an internal check failed")

    monkeypatch.setattr(hepfm.training.task_run, "finetune_task", bug)
    _one_line_error(["finetune", "--task", "ttH_vs_tt", "--device", "cpu"],
                    "internal error: ValueError: an internal check failed", "--debug", status=1)


DOCS = [Path(__file__).parents[1] / p for p in ("README.md", "data/README.md")] + sorted(
    (Path(__file__).parents[1] / "docs").glob("*.md"))


def _documented_commands() -> list[tuple[str, str, list[str]]]:
    """``(file, command, options)`` of every ``hepfm COMMAND ...`` line in the docs' shell
    code blocks (continuation lines joined)."""
    import re

    found = []
    for path in DOCS:
        lines: list[str] = []
        fence: str | None = None  # the opening fence of the block we are in
        block: list[str] = []
        for line in path.read_text().splitlines():
            if line.startswith("```"):
                if fence in ("```bash", "```sh", "```"):
                    lines += "\n".join(block).replace("\\\n", " ").splitlines()
                fence, block = (line.strip() if fence is None else None), []
            elif fence is not None:
                block.append(line)
        for line in lines:
            for m in re.finditer(r"(?:^|[\s;&|(])hepfm ([a-z]+)([^|;&#)]*)", line.strip()):
                if m.group(1) in COMMANDS.commands:
                    found.append((path.name, m.group(1),
                                  re.findall(r"(--[a-z][a-z-]*)", m.group(2))))
    return found


def test_documented_commands_use_current_option_names():
    documented = _documented_commands()
    assert any(c == "generate" and "--events-per-process" in o for _, c, o in documented)
    for where, command, options in documented:
        known = {o for p in COMMANDS.commands[command].params if not getattr(p, "hidden", False)
                 for o in [*p.opts, *p.secondary_opts]} | {"--help", "--debug"}
        assert set(options) <= known, (where, command, set(options) - known)
