"""The README's Python example runs as written (on the small generated sample)."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).parents[1] / "README.md"


def _example() -> str:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert blocks, "README has no Python example"
    return blocks[0]


def test_readme_python_example_uses_the_top_level_api_only():
    import hepfm

    code = _example()
    assert re.findall(r"^(?:from|import) .*$", code, flags=re.M) == ["import hepfm"]
    used = set(re.findall(r"\bhepfm\.(\w+)", code))
    assert used and used <= set(hepfm.__all__), used - set(hepfm.__all__)
    for name in used:  # each resolves to what the package defines (the lazy table)
        assert getattr(hepfm, name) is getattr(
            __import__(hepfm._LAZY[name], fromlist=[name]), name), name


def test_readme_python_example_runs(generated_dir, tmp_path, capsys, monkeypatch):
    """The example reads the default task directory: the generated sample stands in there
    (another stream than hepfm-small's pretraining events, so the overlap check passes)."""
    tasks = tmp_path / "data" / "tasks"
    tasks.mkdir(parents=True)
    for process in ("ttH", "tt"):
        (tasks / f"{process}.root").symlink_to(generated_dir / f"{process}.root")
    monkeypatch.setenv("HEPFM_DATA", str(tmp_path / "data"))
    code = _example()
    for full, small in (("train_size=2000", "train_size=100"),
                        ('"runs/my_ttH"', repr(str(tmp_path / "my_ttH")))):
        assert full in code, f"README example changed: {full} not found"
        code = code.replace(full, small)
    exec(compile(code, "README.md", "exec"), {})
    printed = capsys.readouterr().out
    assert "auc" in printed and "rejection_70" in printed
    assert (tmp_path / "my_ttH" / "model.safetensors").is_file()
