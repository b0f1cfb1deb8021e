"""From ROOT files to graph batches: reading, features, graphs, datasets.

Typical use::

    from hepfm.data import load_events, EventBatches, FeatureStats
    table = load_events("samples/", "all", events_per_process=10_000)
    train, val, test = table.split((0.8, 0.1, 0.1), seed=0)
    stats = FeatureStats.from_table(train)
    loader = DataLoader(EventBatches(train, batch_size=1024), batch_size=None)
"""

from hepfm.data.branches import ATLAS_OPENDATA, BRANCH_MAPS, DELPHES, FLAT, NANOAOD, BranchMap
from hepfm.data.btag import BTagRule
from hepfm.data.datasets import (
    EventBatches,
    StreamingEvents,
    label_for,
    load_events,
    load_table,
    resolve_sources,
    save_table,
    shard_info,
)
from hepfm.data.features import (
    DEFAULT_SELECTION,
    EDGE_FEATURES,
    GLOBAL_FEATURES,
    NODE_FEATURES,
    NODE_TYPES,
    ObjectCut,
    Selection,
)
from hepfm.data.graphs import build_batch
from hepfm.data.labels import MULTILABELS, multilabels
from hepfm.data.normalization import FeatureStats
from hepfm.data.reading import arrays_to_table, iterate_tables, open_file, read_table
from hepfm.data.table import EventTable

__all__ = [
    "ATLAS_OPENDATA", "BRANCH_MAPS", "DEFAULT_SELECTION", "DELPHES", "EDGE_FEATURES", "FLAT",
    "GLOBAL_FEATURES", "MULTILABELS", "NANOAOD", "NODE_FEATURES", "NODE_TYPES", "BTagRule",
    "BranchMap", "EventBatches", "EventTable", "FeatureStats", "ObjectCut", "Selection",
    "StreamingEvents", "arrays_to_table", "build_batch", "iterate_tables", "label_for",
    "load_events", "load_table", "multilabels", "open_file", "read_table", "resolve_sources",
    "save_table", "shard_info",
]
