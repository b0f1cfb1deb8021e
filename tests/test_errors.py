"""One fault, two wordings: a hepfm error names the Python argument to a Python caller
(``label_branch``) and the option to a user of the ``hepfm`` command (``--label-branch``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from hepfm.cli import app
from hepfm.errors import ArgumentError, HepfmError, InputDataError, naming

runner = CliRunner()


def test_naming_renders_arguments_and_options():
    err = naming(ArgumentError, "{setting} 'x' exists: pass {force=True}, {on_invalid='drop'} "
                 "or {label_branch}; or another {out_dir}", "out_dir", "force", "on_invalid",
                 "label_branch", options={"out_dir": "--out"})
    assert isinstance(err, ArgumentError)
    assert str(err) == ("out_dir 'x' exists: pass force=True, on_invalid='drop' or "
                        "label_branch; or another out_dir")
    assert err.cli_message == ("--out 'x' exists: pass --force, --on-invalid drop or "
                               "--label-branch; or another --out")
    untouched = naming(InputDataError, "file '{weird}.root': {setting}", "btag")
    assert str(untouched) == "file '{weird}.root': btag"  # only the named settings change


@pytest.fixture
def files(tmp_path: Path) -> tuple[str, str]:
    """Two (empty) files: enough for the checks made before anything is read."""
    sig, bkg = tmp_path / "sig.root", tmp_path / "bkg.root"
    sig.touch()
    bkg.touch()
    return str(sig), str(bkg)


@pytest.fixture
def full_dir(tmp_path: Path) -> str:
    """A directory that holds a file: an output that must not be replaced."""
    out = tmp_path / "out"
    out.mkdir()
    (out / "mine.txt").write_text("a user's file\n")
    return str(out)


def _task_data(**kw: Any) -> Callable[[], Any]:
    def call() -> Any:
        from hepfm.taskdata import task_data

        return task_data(**kw)
    return call


def _python_cases(files: tuple[str, str], out: str) -> list[tuple[Callable[[], Any], str, str]]:
    """(call, what the Python message says, the option it must not name)."""
    from hepfm.analysis.significance import yields_from_options
    from hepfm.atomic import refuse_existing
    from hepfm.data.labelled import load_branch_map
    from hepfm.generate import generate_samples
    from hepfm.hub import parse_models
    from hepfm.tasks import task_names
    from hepfm.training.pretrain import pretrain
    from hepfm.training.task_run import finetune_task

    return [
        (_task_data(mixed="x.root"), "mixed needs label_branch (the branch", "--label-branch"),
        (_task_data(signal="ttH"), "give both signal and background", "--signal"),
        (_task_data(signal=files[0], background="gone.root"),
         "background: no such file 'gone.root'", "--background"),
        (_task_data(task="ttH_vs_tt", btag="medium"),
         "btag applies to your own files (with branch_map)", "--btag"),
        (_task_data(), "give task (a built-in task", "--task"),
        (lambda: load_branch_map(None, "0.5"),
         "btag='0.5': branch 'Jet.BTag' is a bit mask", "--btag"),
        (lambda: load_branch_map("nowhere.yaml"),
         "branch_map: 'nowhere.yaml' is neither delphes", "--branch-map"),
        (lambda: parse_models("=x"), "models: a model label is empty", "--model"),
        (lambda: task_names(None), "give task=NAME,NAME or task='all'", "--task"),
        (lambda: yields_from_options("1,2", xsec="1,2"),
         "yields: give the yields, or luminosity with xsec, not both", "--yields"),
        (lambda: refuse_existing(out, False),
         "out '", "--out"),
        (lambda: finetune_task("ttH_vs_tt", out=out),
         "exists and is not empty: pass force=True to replace what is there, or choose "
         "another out", "--force"),
        (lambda: pretrain(processes="ttH,tt", out_dir=out, verbose=False),
         "pass force=True to replace what is there or resume=True to continue it, or choose "
         "another out_dir", "--resume"),
        (lambda: generate_samples("tt", 10, out, scheduler="tcp://h:1"),
         "scheduler needs executor='dask'", "--executor"),
        (lambda: generate_samples("tt", 10, out, shard="3/3"), "shard K/N needs 0 <= K < N",
         "--shard"),
    ]


def test_python_callers_see_the_python_arguments(files, full_dir):
    for call, says, option in _python_cases(files, full_dir):
        with pytest.raises(HepfmError) as err:
            call()
        assert says in str(err.value), (says, str(err.value))
        assert option not in str(err.value), str(err.value)
        assert err.value.cli_message and option in err.value.cli_message, err.value.cli_message
    assert Path(full_dir, "mine.txt").read_text() == "a user's file\n"


def _cli_cases(files: tuple[str, str], out: str) -> list[tuple[list[str], str]]:
    sig, bkg = files
    return [
        (["finetune", "--mixed", "x.root"], "--mixed needs --label-branch (the branch"),
        (["scan", "--mixed", "x.root"], "--mixed needs --label-branch (the branch"),
        (["finetune", "--signal", "ttH"], "give both --signal and --background"),
        (["scan", "--signal", sig, "--background", "gone.root"],
         "--background: no such file 'gone.root'"),
        (["finetune", "--task", "ttH_vs_tt", "--btag", "medium"],
         "--btag applies to your own files (with --branch-map)"),
        (["finetune"], "give --task (a built-in task"),
        (["scan"], "give --task (a built-in task"),
        (["finetune", "--signal", sig, "--background", bkg, "--btag", "0.5"],
         "--btag 0.5: branch 'Jet.BTag' is a bit mask"),
        (["finetune", "--signal", sig, "--background", bkg, "--branch-map", "nowhere.yaml"],
         "--branch-map: 'nowhere.yaml' is neither delphes"),
        (["scan", "--task", "ttH_vs_tt", "--model", "=x"], "--model: a model label is empty"),
        (["finetune", "--task", "ttH_vs_tt", "--yields", "1,2", "--xsec", "1,2"],
         "--yields: give the yields, or --luminosity with --xsec, not both"),
        (["finetune", "--task", "ttH_vs_tt", "--out", out],
         f"--out '{out}' exists and is not empty: pass --force to replace what is there, or "
         "choose another --out"),
        (["pretrain", "--processes", "ttH,tt", "--out", out],
         "pass --force to replace what is there or --resume to continue it, or choose "
         "another --out"),
        (["scan", "--task", "ttH_vs_tt", "--out", out],
         "pass --resume to continue it, or choose another --out"),
        (["generate", "--processes", "tt", "--events-per-process", "10", "--out", out,
          "--scheduler", "tcp://h:1"], "--scheduler needs --executor dask"),
        (["generate", "--processes", "tt", "--events-per-process", "10", "--out", out,
          "--shard", "3/3"], "--shard K/N needs 0 <= K < N"),
    ]


def test_the_command_line_sees_the_options(files, full_dir):
    for args, says in _cli_cases(files, full_dir):
        res = runner.invoke(app, args)
        out = res.output.strip()
        assert res.exit_code == 2, (args, out)
        assert len(out.splitlines()) == 1 and out.startswith("error: "), out
        assert says in out, (says, out)
        assert "=True" not in out and "label_branch" not in out, out
    assert Path(full_dir, "mine.txt").read_text() == "a user's file\n"
