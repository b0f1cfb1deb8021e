"""Writes notebooks/tutorial.ipynb from the cells below (run: python notebooks/make_tutorial.py).

The same cells run top to bottom in tests/test_notebook.py with tiny settings, so the
tutorial cannot silently rot.
"""

from __future__ import annotations

import json
from pathlib import Path

CELLS: list[tuple[str, str]] = [
    ("markdown", """# hepfm tutorial: generate, pretrain, fine-tune, look inside

This notebook runs top to bottom on a laptop CPU in a few minutes. It

1. generates a small sample of collider events with Pythia 8 + FastJet + a parametric detector,
2. pretrains the graph network to tell the 12 Standard Model processes apart,
3. fine-tunes it on `ttH_vs_tt` and compares with the same network trained from scratch,
4. compares the two models' layers with Centered Kernel Alignment (CKA).

Raise `EVENTS` and `EPOCHS` for real results."""),
    ("code", """from pathlib import Path

EVENTS = 300          # events per process (20k for the README results)
EPOCHS = 3            # pretraining epochs
TRAIN_SIZE = 300      # labelled events for the downstream task
WORK = Path("tutorial-work")"""),
    ("markdown", """## 1. Generate events in the Delphes ROOT layout
`hepfm generate` on the command line does the same. Multi-parton interactions are switched
off here for speed."""),
    ("code", """from hepfm.generate import generate_samples
from hepfm.processes import PRETRAINING

files = generate_samples(PRETRAINING, EVENTS, WORK / "data", seed=1, workers=2, mpi=False)
print(len(files), "files, e.g.", files[0])"""),
    ("code", """import awkward as ak
import uproot

with uproot.open(WORK / "data" / "ttH.root") as f:
    tree = f["Delphes"]
    print(tree.num_entries, "events; branches:", [k for k in tree if "." in k][:8])
    jets = tree.arrays(["Jet.PT", "Jet.BTag"])
n_b = ak.sum(jets["Jet.BTag"] > 0, axis=1)
print("mean b-tagged jets per ttH event:", float(ak.mean(n_b)))"""),
    ("markdown", """## 2. Events become graphs
One event is one graph: a node per object plus the MET node, all ordered pairs as edges.
A whole chunk of events becomes one batched graph with array operations."""),
    ("code", """from hepfm.data import build_batch, load_events

table = load_events(WORK / "data", ["ttH", "tt"], events_per_process=100)
batch = build_batch(table)
print(batch)
print("nodes per event:", table.counts[:10])"""),
    ("markdown", """## 3. Pretrain on the 12 processes"""),
    ("code", """from hepfm import PretrainConfig, pretrain

config = PretrainConfig("all", "multiclass", WORK / "data", EVENTS, EPOCHS, batch_size=128,
                        model_config={"hidden": 32, "blocks": 2})
result = pretrain(config, WORK / "pretrain", device="cpu", progress=False)
print(result.summary())"""),
    ("markdown", """## 4. Fine-tune on ttH vs tt, against training from scratch
Task events come from another part of the generator's seed stream (made here if missing),
so no test event is one the model was pretrained on; `pretrained=model` checks that. The
test set of a task is fixed, whatever the training size or seed."""),
    ("code", """import hepfm

model = hepfm.load_pretrained(WORK / "pretrain")
task = hepfm.get_task("ttH_vs_tt")
events = hepfm.load_task_events(task, WORK / "tasks", EVENTS, generate=True, pretrained=model)
splits = hepfm.split_task(events, train_size=TRAIN_SIZE // 3, seed=0)

tuned = {}
for mode in ("scratch", "full", "frozen"):
    tuned[mode] = hepfm.FineTuner(model, mode=mode, epochs=10).fit(splits.train, splits.val)
    print(f"{mode:8s}", {k: round(v, 3) for k, v in tuned[mode].evaluate(splits.test).items()})"""),
    ("markdown", """## 5. Look inside with CKA
Layer-by-layer similarity of the fine-tuned and the from-scratch models on the same events."""),
    ("code", """from hepfm.analysis.cka import cka_matrix
from hepfm.analysis.representations import extract_representations
from hepfm.data.datasets import EventBatches

events = list(EventBatches(splits.test, 512, shuffle=False, shard=False))
reps = {m: extract_representations(t.model_, events) for m, t in tuned.items()}
matrix = cka_matrix(reps["full"], reps["scratch"], kernel="linear")
matrix.round(2)"""),
    ("markdown", """Scratch against scratch: a second from-scratch model with another seed.
Same-stage CKA between independent scratch trainings says whether they converge to the same
solution."""),
    ("code", """from hepfm.analysis.cka import cka_diagonal

scratch_2 = hepfm.FineTuner(model, mode="scratch", epochs=10, seed=1).fit(splits.train, splits.val)
reps["scratch_2"] = extract_representations(scratch_2.model_, events)
print("fine-tuned vs scratch:", cka_diagonal(matrix).round(2).to_dict())
print("scratch vs scratch:   ",
      cka_diagonal(cka_matrix(reps["scratch"], reps["scratch_2"])).round(2).to_dict())"""),
    ("code", """from hepfm.analysis.plots import plot_cka_heatmap

png = plot_cka_heatmap(matrix, WORK / "cka.png", label_a="fine-tuned", label_b="scratch")
print("heatmap written to", png)"""),
]


def notebook() -> dict:
    cells = []
    for kind, text in CELLS:
        cell = {"cell_type": kind, "metadata": {}, "source": text.splitlines(keepends=True)}
        if kind == "code":
            cell.update(outputs=[], execution_count=None)
        cells.append(cell)
    return {"cells": cells, "metadata": {"kernelspec": {"display_name": "Python 3",
                                                        "language": "python", "name": "python3"},
                                         "language_info": {"name": "python"}},
            "nbformat": 4, "nbformat_minor": 5}


if __name__ == "__main__":
    path = Path(__file__).with_name("tutorial.ipynb")
    path.write_text(json.dumps(notebook(), indent=1) + "\n")
    print("wrote", path)
