"""The model shipped with the package loads offline and classifies fresh events."""

from __future__ import annotations

import numpy as np

from hepfm import load_pretrained
from hepfm.data import load_events
from hepfm.data.datasets import EventBatches
from hepfm.hub import available_models
from hepfm.processes import PRETRAINING


def test_hepfm_small_is_shipped_and_separates_processes(generated_dir):
    assert "hepfm-small" in available_models()
    model = load_pretrained("hepfm-small")
    assert model.config.classes == PRETRAINING and not model.training
    table = load_events(generated_dir, list(PRETRAINING))
    logits = np.concatenate([model(b)["multiclass"].detach().numpy()
                             for b in EventBatches(table, 1024, shuffle=False, shard=False)])
    accuracy = float(np.mean(logits.argmax(1) == table.y))
    # fresh events (another seed, no multi-parton interactions): far above chance (1/12)
    assert accuracy > 0.25, accuracy
