"""The model shipped with the package loads offline and classifies fresh events."""

from __future__ import annotations

import numpy as np
import pytest

from hepfm import load_pretrained
from hepfm.data import load_events
from hepfm.data.datasets import EventBatches
from hepfm.hub import available_models
from hepfm.processes import PRETRAINING


@pytest.mark.parametrize("name", ["hepfm-base", "hepfm-small"])
def test_shipped_models_separate_processes(generated_dir, name):
    assert name in available_models()
    model = load_pretrained(name)
    assert model.config.classes == PRETRAINING and not model.training
    table = load_events(generated_dir, list(PRETRAINING))
    logits = np.concatenate([model(b)["multiclass"].detach().numpy()
                             for b in EventBatches(table, 1024, shuffle=False, shard=False)])
    accuracy = float(np.mean(logits.argmax(1) == table.y))
    # fresh events (another seed, no multi-parton interactions): far above chance (1/12)
    assert accuracy > 0.25, accuracy


def test_models_lists_the_shipped_models_from_their_files():
    import json

    from typer.testing import CliRunner

    from hepfm.cli import app
    from hepfm.pretrained import PRETRAINED_DIR, describe_models

    rows = {r["name"]: r for r in describe_models()}
    assert rows["hepfm-base"]["default"] and not rows["hepfm-small"]["default"]
    assert rows["hepfm-base"]["events_per_process"] == 80000
    metrics = json.loads((PRETRAINED_DIR / "hepfm-small" / "metrics.json").read_text())
    small = rows["hepfm-small"]
    assert small["accuracy"] == metrics["test"]["accuracy"]
    assert small["train_events"] == metrics["events"]["train"]
    assert small["processes"] == 12 and small["width"] == 64 and small["megabytes"] < 10
    res = CliRunner().invoke(app, ["models"], env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    assert "hepfm-base*" in res.output and "* the default" in res.output
    assert "hepfm-small" in res.output and "hepfm-small*" not in res.output
    assert f"{metrics['test']['macro_auc']:.3f}" in res.output
