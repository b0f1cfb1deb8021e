"""Event generation: Pythia 8, a parametric detector, FastJet jets, Delphes-layout ROOT files.

``generate_samples`` is the entry point (``hepfm generate`` on the command line);
``check_directory`` verifies a sample directory (``hepfm check``).
"""

from __future__ import annotations

from hepfm.generate.check import check_directory
from hepfm.generate.detector import DetectorConfig
from hepfm.generate.parts import SampleConflictError
from hepfm.generate.run import (
    GenerateArgumentError,
    OutputDirError,
    file_metadata,
    generate_samples,
    run_chunk,
)
from hepfm.generate.writer import SCHEMA, read_metadata

__all__ = [
    "SCHEMA",
    "DetectorConfig",
    "GenerateArgumentError",
    "OutputDirError",
    "SampleConflictError",
    "check_directory",
    "file_metadata",
    "generate_samples",
    "read_metadata",
    "run_chunk",
]
