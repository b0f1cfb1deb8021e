"""The README's Python example runs as written (on the small generated sample)."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).parents[1] / "README.md"


def test_readme_python_example_runs(generated_dir, tmp_path, capsys):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert blocks, "README has no Python example"
    code = blocks[0]
    for full, small in (('"~/.cache/hepfm/data"', repr(str(generated_dir))),
                        ("train_size=2000", "train_size=100"),
                        ('"runs/my_ttH"', repr(str(tmp_path / "my_ttH")))):
        assert full in code, f"README example changed: {full} not found"
        code = code.replace(full, small)
    exec(compile(code, "README.md", "exec"), {})
    printed = capsys.readouterr().out
    assert "auc" in printed and "rejection_70" in printed
    assert (tmp_path / "my_ttH" / "model.safetensors").is_file()
