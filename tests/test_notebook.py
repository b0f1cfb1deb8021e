"""The tutorial notebook runs top to bottom (tiny settings, the shared generated sample)."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

NOTEBOOK = Path(__file__).parents[1] / "notebooks" / "tutorial.ipynb"


def test_tutorial_is_current_and_runs(generated_dir, tmp_path, monkeypatch):
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_tutorial", NOTEBOOK.with_name(
        "make_tutorial.py"))
    maker = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(maker)
    assert json.loads(NOTEBOOK.read_text()) == maker.notebook(), \
        "notebooks/tutorial.ipynb is stale: run python notebooks/make_tutorial.py"

    monkeypatch.chdir(tmp_path)
    (tmp_path / "tutorial-work").mkdir()
    (tmp_path / "tutorial-work" / "data").symlink_to(generated_dir)
    namespace: dict = {}
    for cell in json.loads(NOTEBOOK.read_text())["cells"]:
        if cell["cell_type"] != "code":
            continue
        source = "".join(cell["source"])
        if "generate_samples(" in source:  # the fixture already generated these files
            continue
        for full, tiny in (("EVENTS = 300", "EVENTS = 200"), ("EPOCHS = 3", "EPOCHS = 1"),
                           ("epochs=10", "epochs=2")):
            source = source.replace(full, tiny)
        exec(compile(source, "tutorial", "exec"), namespace)
    assert set(namespace["tuned"]) == {"scratch", "full", "frozen"}
    assert set(namespace["reps"]) == {"scratch", "full", "frozen", "scratch_2"}
    assert namespace["matrix"].shape[0] == namespace["matrix"].shape[1]
    assert (tmp_path / "tutorial-work" / "cka.png").stat().st_size > 1000
