"""Writing samples as ROOT files in the Delphes layout, atomically, with JSON metadata.

The TTree ``Delphes`` is made with ``uproot``'s ``mktree`` (``file[name] = ...`` would write an
RNTuple) and filled with ``extend``, one basket per branch for every ``basket_events`` events
(chunks are buffered until then: big baskets make reading about twice as fast as the
generator's 500-event chunks would). Collections are jagged records whose
branches are named ``Jet.PT`` with counters ``Jet_size``, as in Delphes. The file is written
to a hidden temporary name in the same directory, unique across hosts and processes
(``.<name>.<host>.<pid>.<random>.tmp``), and renamed to its final name only when complete, so a
killed run never leaves a file that looks complete and two runs never share a temporary.

The metadata records ``events_sha256``, a digest of the event arrays as written
(:class:`EventsDigest`): the same events give the same digest on any host, whatever the
chunking, so a reused file is verified by reading it back (:func:`verify_events`).
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import socket
from pathlib import Path
from typing import Any

import awkward as ak
import numpy as np
import uproot

TREE = "Delphes"
METADATA_KEY = "hepfm_metadata"
F32, I32 = np.float32, np.int32
#: Collections and fields written, with their dtypes (docs/contracts.md, section 1).
SCHEMA: dict[str, dict[str, type]] = {
    "Jet": {"PT": F32, "Eta": F32, "Phi": F32, "Mass": F32, "BTag": I32},
    "Electron": {"PT": F32, "Eta": F32, "Phi": F32, "Charge": I32},
    "Muon": {"PT": F32, "Eta": F32, "Phi": F32, "Charge": I32},
    "Photon": {"PT": F32, "Eta": F32, "Phi": F32},
    "MissingET": {"MET": F32, "Phi": F32},
    "Truth": {"PID": I32, "PT": F32, "Eta": F32, "Phi": F32, "M1": I32},
}


def _typed(collection: str, array: ak.Array | None = None) -> ak.Array:
    """`array` (or an empty one) as jagged records with exactly the schema's fields and dtypes."""
    spec = SCHEMA[collection]
    if array is None:
        return ak.unflatten(ak.zip({f: np.zeros(0, d) for f, d in spec.items()}),
                            np.zeros(0, np.int64))
    return ak.zip({f: ak.values_astype(array[f], d) for f, d in spec.items()}, depth_limit=2)


def temp_path(path: Path) -> Path:
    """A fresh hidden temporary name for writing `path`: ``.<name>.<host>.<pid>.<random>.tmp``.

    Unique per host, process and call, so runs on several hosts (or in several PID
    namespaces) never write or delete each other's temporaries.
    """
    host = "".join(c if c.isalnum() or c == "-" else "-" for c in socket.gethostname())
    return path.with_name(f".{path.name}.{host or 'host'}.{os.getpid()}."
                          f"{secrets.token_hex(4)}.tmp")


def temp_glob(path: Path) -> str:
    """The glob pattern matching every temporary of `path` (see :func:`temp_path`)."""
    return f".{path.name}.*.tmp"


class EventsDigest:
    """SHA-256 of the event arrays in `SCHEMA` order, independent of how they were chunked.

    One running hash per branch (counts of each collection, then each field's values as
    little-endian bytes of the schema dtype); the digest hashes the branch digests in order.
    """

    def __init__(self) -> None:
        self._hashes = {c: hashlib.sha256() for c in SCHEMA}
        self._hashes.update({f"{c}.{f}": hashlib.sha256() for c, fs in SCHEMA.items() for f in fs})

    def update(self, collections: dict[str, ak.Array]) -> None:
        """Add one chunk of typed collections (as :func:`_typed` makes them)."""
        for c, fields in SCHEMA.items():
            array = collections[c]
            counts = ak.to_numpy(ak.num(array, axis=1)).astype("<i8")
            self._hashes[c].update(counts.tobytes())
            for f, dtype in fields.items():
                flat = ak.to_numpy(ak.flatten(array[f], axis=1))
                self._hashes[f"{c}.{f}"].update(flat.astype(np.dtype(dtype).newbyteorder("<"),
                                                             copy=False).tobytes())

    def hexdigest(self) -> str:
        total = hashlib.sha256()
        for key, h in self._hashes.items():
            total.update(f"{key}:{h.hexdigest()};".encode())
        return total.hexdigest()


#: Events per basket written (ROOT's AutoFlush cluster plays this role in Delphes files).
BASKET_EVENTS = 10_000


class SampleWriter:
    """Writes one sample file: ``write`` chunks, then ``close`` (rename) or ``abort``."""

    def __init__(self, path: str | os.PathLike[str], metadata: dict[str, Any],
                 basket_events: int = BASKET_EVENTS):
        self.path = Path(path)
        self.metadata = dict(metadata)
        self.n_events = 0
        self.basket_events = basket_events
        self._buffer: list[dict[str, ak.Array]] = []
        self._buffered = 0
        self.tmp = temp_path(self.path)
        self._digest = EventsDigest()
        self._file = uproot.recreate(self.tmp)
        self._tree = self._file.mktree(
            TREE, {c: _typed(c).type for c in SCHEMA},
            field_name=lambda outer, inner: f"{outer}.{inner}",
            counter_name=lambda counted: f"{counted}_size",
        )

    def write(self, collections: dict[str, ak.Array]) -> None:
        """Append one chunk of events (every collection of `SCHEMA`, same length)."""
        lengths = {len(collections[c]) for c in SCHEMA}
        if len(lengths) != 1:
            msg = f"collections of different lengths: {lengths}"
            raise ValueError(msg)  # programming error: the generator fills all together
        typed = {c: _typed(c, collections[c]) for c in SCHEMA}
        self._digest.update(typed)
        self._buffer.append(typed)
        self._buffered += lengths.pop()
        os.utime(self.tmp)  # a live temporary stays young (stale ones are swept by age)
        if self._buffered >= self.basket_events:
            self._flush()

    def _flush(self) -> None:
        if not self._buffer:
            return
        parts, self._buffer = self._buffer, []
        self._tree.extend({c: parts[0][c] if len(parts) == 1 else
                           ak.concatenate([p[c] for p in parts]) for c in SCHEMA})
        self.n_events += self._buffered
        self._buffered = 0

    def close(self) -> Path:
        """Write what is buffered and the metadata, close, and move the file to its name."""
        self._flush()
        self.metadata["n_events_written"] = self.n_events
        self.metadata["events_sha256"] = self._digest.hexdigest()
        self._file[METADATA_KEY] = json.dumps(self.metadata, sort_keys=True)
        self._file.close()
        os.replace(self.tmp, self.path)
        return self.path

    def abort(self) -> None:
        """Close and delete the temporary file."""
        try:
            self._file.close()
        finally:
            self.tmp.unlink(missing_ok=True)

    def __enter__(self) -> SampleWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def read_metadata(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The ``hepfm_metadata`` JSON of a complete file, or None if absent, truncated or corrupt.

    Complete means: the ROOT file ends where its header says, the metadata parses, and the
    TTree holds the number of events the metadata says.
    """
    path = Path(path)
    if not path.is_file():
        return None
    try:
        with uproot.open(path) as f:
            if f.file.fEND != path.stat().st_size:
                return None
            meta = json.loads(str(f[METADATA_KEY]))
            if f[TREE].num_entries != meta.get("n_events_written", -1):
                return None
            return meta
    except Exception:
        return None


def events_digest(path: str | os.PathLike[str]) -> str:
    """The :class:`EventsDigest` of the events stored in a sample file (reads every branch)."""
    digest = EventsDigest()
    with uproot.open(path) as f:
        tree = f[TREE]
        for start, stop in _steps(tree.num_entries, 50_000):
            a = tree.arrays([f"{c}.{x}" for c, fs in SCHEMA.items() for x in fs],
                            entry_start=start, entry_stop=stop, library="ak")
            digest.update({c: ak.zip({x: a[f"{c}.{x}"] for x in fs}, depth_limit=2)
                           for c, fs in SCHEMA.items()})
    return digest.hexdigest()


def _steps(n: int, step: int) -> list[tuple[int, int]]:
    return [(a, min(a + step, n)) for a in range(0, n, step)] or [(0, 0)]


def verify_events(path: str | os.PathLike[str], metadata: dict[str, Any]) -> bool:
    """Whether the file's events match its ``events_sha256`` (a file that records none
    does not)."""
    expected = metadata.get("events_sha256")
    if expected is None:
        return False
    try:
        return events_digest(path) == expected
    except Exception:
        return False
