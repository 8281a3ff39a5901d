"""Flow and mass cytometry FCS files (FCS 2.0/3.0/3.1, read with flowio).

`read_fcs(path)` returns the events of one file with its channel names ($PnN) and marker names
($PnS). `arcsinh(values, cofactor=...)` is the usual variance-stabilising transform of
cytometry intensities, asinh(x / cofactor): cofactor 150 for fluorescence flow cytometry and
5 for mass cytometry (Bendall et al., Science 2011). `flow_events(study, ...)` reads every
sample of assay `flow_fcs` in the samples table (its `file` column is a path relative to the
study folder), subsamples events per file with a seed and returns one long polars frame of
transformed intensities with the sample's patient and day, ready to embed.

A file whose HEADER/TEXT data offsets are off by one byte (a known quirk of some exporters) is
still read; the returned `FcsData.notes` say so. A file that cannot be read raises `StudyError`
naming the file.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from data_loaders.errors import StudyError

if TYPE_CHECKING:
    from data_loaders.study import Study

__all__ = ["FcsData", "FlowEvents", "read_fcs", "arcsinh", "flow_events", "flow_samples",
           "FLOW_COFACTOR", "MASS_COFACTOR"]

FLOW_COFACTOR = 150.0
MASS_COFACTOR = 5.0
# Channels that are not markers: scatter and time are kept but never chosen by default.
_NON_MARKER = ("FSC", "SSC", "TIME", "EVENT", "WIDTH", "CELL_LENGTH")


@dataclass(frozen=True)
class FcsData:
    """One FCS file: events (n_events x n_channels, float32) and its channel annotation."""

    file: str
    events: np.ndarray
    channels: tuple[str, ...]          # $PnN (detector / channel names)
    markers: tuple[str, ...]           # $PnS (stain / marker names, "" when absent)
    metadata: dict[str, str] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    @property
    def n_events(self) -> int:
        return int(self.events.shape[0])

    @property
    def labels(self) -> tuple[str, ...]:
        """The marker name where the file gives one, else the channel name."""
        return tuple(m.strip() or c for c, m in zip(self.channels, self.markers, strict=True))

    def is_marker(self, i: int) -> bool:
        """True for fluorescence/mass channels, False for scatter, time and width."""
        name = self.channels[i].upper()
        return not any(name.startswith(p) for p in _NON_MARKER)


def read_fcs(path: str | Path, *, name: str | None = None) -> FcsData:
    """Read one FCS file. Raises `StudyError` naming the file when it cannot be parsed."""
    import flowio

    path = Path(path)
    label = name or path.name
    notes: list[str] = []
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                fd = flowio.FlowData(str(path))
            except flowio.exceptions.FCSParsingError as exc:
                if "off by" not in str(exc):
                    raise
                fd = flowio.FlowData(str(path), ignore_offset_error=True)
                notes.append("the file's data offsets ($BEGINDATA/$ENDDATA) are off by one "
                             "byte; read anyway, as other FCS readers do")
            events = np.asarray(fd.as_array(preprocess=True), dtype=np.float32)
    except FileNotFoundError as exc:
        raise StudyError("FCS file not found", file=label,
                         fix="correct the path in the samples table's file column") from exc
    except Exception as exc:
        first = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise StudyError(f"cannot be read as an FCS file ({first})", file=label,
                         fix="export the file again from the cytometer software; it may be "
                         "truncated or not an FCS file") from exc
    n_expected = int(getattr(fd, "event_count", 0) or 0)
    if events.ndim != 2 or events.shape[0] != n_expected:
        raise StudyError(f"holds {events.shape[0] if events.ndim else 0} events but its TEXT "
                         f"segment announces {n_expected}", file=label,
                         fix="the file is truncated; export it again")
    channels = tuple(str(c) for c in fd.pnn_labels)
    markers = tuple(str(m or "") for m in (fd.pns_labels or [""] * len(channels)))
    meta = {str(k): str(v) for k, v in fd.text.items()
            if not str(k).startswith(("p", "bdword")) or not str(k)[1:2].isdigit()}
    return FcsData(label, events, channels, markers, meta, tuple(notes))


def arcsinh(values: np.ndarray, *, cofactor: float = FLOW_COFACTOR) -> np.ndarray:
    """asinh(x / cofactor) as float32: 150 for flow cytometry, 5 for mass cytometry."""
    if cofactor <= 0:
        raise ValueError("cofactor must be positive")
    return np.arcsinh(np.asarray(values, dtype=np.float32) / np.float32(cofactor))


@dataclass(frozen=True)
class FlowEvents:
    """Transformed events of a study's FCS samples, subsampled per file.

    `frame`: sample_id, subject_id, day, timepoint, event (row in its file), then one float32
    column per marker (asinh-transformed). `markers` lists those columns; `n_total` counts every
    event in the files (before subsampling); `notes` and `errors` name files and problems.
    """

    frame: pl.DataFrame
    markers: tuple[str, ...]
    n_total: int
    cofactor: float
    notes: tuple[str, ...] = ()
    errors: tuple[str, ...] = ()
    digest: str = ""                   # hash of the files read and the options (cache key)


def flow_samples(study: Study) -> pl.DataFrame:
    """Rows of the samples table with assay flow_fcs and a file (sample_id, subject_id, day,
    timepoint, file)."""
    s = study.samples
    if s.height == 0 or "file" not in s.columns or "assay" not in s.columns:
        return pl.DataFrame(schema={"sample_id": pl.String, "subject_id": pl.String,
                                    "day": pl.Int64, "timepoint": pl.String, "file": pl.String})
    return (s.filter((pl.col("assay").str.to_lowercase() == "flow_fcs")
                     & pl.col("file").is_not_null())
            .select("sample_id", "subject_id", "day", "timepoint", "file")
            .sort("subject_id", "day", "sample_id"))


def flow_events(study: Study, *, markers: Sequence[str] | None = None,
                per_file: int = 5000, cofactor: float = FLOW_COFACTOR,
                seed: int = 0) -> FlowEvents:
    """Read every flow_fcs sample of the study, subsample `per_file` events per file (seeded),
    asinh-transform and keep `markers` (default: the marker channels common to all files)."""
    rows = flow_samples(study)
    root = Path(study.path).resolve()
    notes: list[str] = []
    errors: list[str] = []
    parts: list[tuple[dict[str, Any], FcsData, np.ndarray]] = []
    h = hashlib.blake2b(digest_size=16)
    h.update(f"{per_file}|{cofactor}|{seed}|{sorted(markers or [])}".encode())
    n_total = 0
    for rec in rows.iter_rows(named=True):
        path = (root / rec["file"]).resolve()
        if not path.is_relative_to(root):
            errors.append(f"{rec['file']}: lies outside the study folder; skipped")
            continue
        try:
            fcs = read_fcs(path, name=rec["file"])
        except StudyError as err:
            errors.append(str(err))
            continue
        st = path.stat()
        h.update(f"{rec['file']}|{st.st_size}|{st.st_mtime_ns}".encode())
        notes.extend(f"{rec['file']}: {n}" for n in fcs.notes)
        n_total += fcs.n_events
        rng = np.random.default_rng([seed, len(parts)])
        take = np.sort(rng.choice(fcs.n_events, size=min(per_file, fcs.n_events),
                                  replace=False))
        parts.append((rec, fcs, take))
    if not parts:
        empty = pl.DataFrame(schema={"sample_id": pl.String, "subject_id": pl.String,
                                     "day": pl.Int64, "timepoint": pl.String,
                                     "event": pl.Int64})
        return FlowEvents(empty, (), 0, cofactor, tuple(notes), tuple(errors), h.hexdigest())
    common = common_markers([p[1] for p in parts])
    chosen = [m for m in (markers or common) if m in common]
    dropped = sorted(set(markers or []) - set(chosen))
    if dropped:
        notes.append(f"marker(s) not in every file, left out: {', '.join(dropped)}")
    frames = []
    for rec, fcs, take in parts:
        labels = list(fcs.labels)
        cols = {m: arcsinh(fcs.events[take, labels.index(m)], cofactor=cofactor) for m in chosen}
        frames.append(pl.DataFrame({
            "sample_id": [rec["sample_id"]] * len(take), "subject_id": [rec["subject_id"]] *
            len(take), "day": [rec["day"]] * len(take), "timepoint": [rec["timepoint"]] *
            len(take), "event": take.astype(np.int64), **cols},
            schema_overrides={"day": pl.Int64, "timepoint": pl.String}))
    return FlowEvents(pl.concat(frames, how="vertical"), tuple(chosen), n_total, cofactor,
                      tuple(notes), tuple(errors), h.hexdigest())


def common_markers(files: list[FcsData]) -> list[str]:
    first = files[0]
    order = [lab for i, lab in enumerate(first.labels) if first.is_marker(i)]
    common = set(order)
    for f in files[1:]:
        common &= {lab for i, lab in enumerate(f.labels) if f.is_marker(i)}
    return [m for m in order if m in common]
