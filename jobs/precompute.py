"""A study's precomputations from the command line (`cli.py embed`, `convert`, `gate`): the
single-cell and flow embeddings and the chunked single-cell store the Immune landscape reads,
and the gating of the study's FCS files that the populations table reads from its cache.

Each runs as the app runs it (embeddings as jobs on the jobs cluster, gating one file per task
on it) and shows its progress as a bar on `err` (stderr), its result lines on `out` (stdout),
as jobs/console.py does for the pages' other jobs. A study that has nothing to do raises
`StudyError` saying so; a failed job raises `JobFailed`, Ctrl-C cancels the job and raises
`JobCancelled`.

    precompute.embed(study, params=EmbeddingParams(), force=False, flow=True)
    precompute.convert(study, "cells.store.zarr")
    ok = precompute.gate(Path("study"), workers=2, force=False)
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, TYPE_CHECKING

from data_loaders.errors import StudyError, ValidationReport
from jobs.core import JobCancelled, JobProgress, submit, wait

if TYPE_CHECKING:
    from analysis.embedding import EmbeddingParams
    from data_loaders.study import Study
    from jobs.tasks import EmbeddingDone

__all__ = ["embed", "convert", "gate", "GateRun", "flow_sample_size"]

# flow events embedded per file: enough for every population, ~150k points in all
_FLOW_POINTS, _FLOW_MIN, _FLOW_MAX = 150_000, 200, 5000


@contextmanager
def _percent_bar(desc: str, err: IO[str]) -> Iterator[Callable[[float, str], None]]:
    """A 0-100 % bar on `err`; yields `step(fraction, message)`."""
    from tqdm import tqdm

    with tqdm(total=100, unit="%", desc=desc, file=err,
              bar_format="{desc}: {percentage:3.0f}%|{bar}| {elapsed}") as bar:
        def step(fraction: float, message: str) -> None:
            bar.set_description(f"{desc}: {message}" if message else desc)
            bar.update(max(0, round(fraction * 100) - bar.n))

        yield step


def flow_sample_size(n_files: int) -> int:
    """Events per FCS file for the flow embedding: ~150k points over the study, 200 to 5000
    per file."""
    return max(_FLOW_MIN, min(_FLOW_MAX, _FLOW_POINTS // max(n_files, 1)))


def embed(study: Study, *, params: EmbeddingParams, force: bool = False, flow: bool = True,
          out: IO[str] | None = None, err: IO[str] | None = None) -> None:
    """The single-cell embedding (when the study has cells) and the flow embedding (when it
    has flow_fcs samples and `flow`), each as the job the app reads, cached on disk; `force`
    computes them again."""
    from analysis.embedding import cache_location
    from data_loaders.formats.fcs import flow_samples
    from jobs import tasks
    from jobs.cluster import describe

    out, err = out or sys.stdout, err or sys.stderr
    n_files = flow_samples(study).height if flow else 0
    if not study.has("single_cell") and not n_files:
        raise StudyError(f"{study.path}: no single-cell file and no flow_fcs samples to embed")
    cache = cache_location(study.path)
    if cache.note:
        print(f"note: {cache.note}", file=err)
    print(f"jobs: {describe()}", file=err)
    if study.has("single_cell"):
        start = time.perf_counter()
        done = _run("single-cell", tasks.embedding, study, params=params, force=force,
                    study=study, rerun=force, err=err)
        _embedded("single-cell", done, start, out)
    if n_files:
        start = time.perf_counter()
        done, notes = _run("flow", tasks.flow_embedding, study,
                           per_file=flow_sample_size(n_files), params=params, force=force,
                           study=study, rerun=force, err=err)
        for note in notes:
            print(f"note: {note}", file=err)
        _embedded("flow", done, start, out)


def _embedded(kind: str, done: EmbeddingDone, start: float, out: IO[str]) -> None:
    print(f"{kind}: {done.n:,} points, {done.source} in {time.perf_counter() - start:.1f} s "
          f"-> {done.cache_file}", file=out)


def _run(desc: str, fn: Callable[..., object], *args: object, study: Study, rerun: bool,
         err: IO[str], **kwargs: object) -> object:
    """`fn` as a job with its progress as a bar; cancelled on Ctrl-C."""
    handle = submit(fn, *args, study=study, rerun=rerun, **kwargs)
    with _percent_bar(desc, err) as step:
        def on_progress(p: JobProgress) -> None:
            step(p.fraction, p.message)

        try:
            return wait(handle, on_progress=on_progress)
        except KeyboardInterrupt:
            handle.cancel()
            handle.wait(30)
            raise JobCancelled(f"{desc}: cancelled") from None


def convert(study: Study, location: str | None = None, *, out: IO[str] | None = None,
            err: IO[str] | None = None) -> str:
    """Write the study's single-cell data as the chunked zarr store (cell-major and
    gene-major copies) at `location` (default: where the study reads it, `[single_cell]
    store` of study.toml, else beside the file); returns where it went."""
    from data_loaders.single_cell.convert import write_store
    from data_loaders.single_cell.zarr_store import ConvertedStore, store_location

    out, err = out or sys.stdout, err or sys.stderr
    store = study.single_cell
    if store is None:
        raise StudyError(f"{study.path}: no single-cell file to convert")
    source = store.source if isinstance(store, ConvertedStore) else store
    if source is None:
        raise StudyError(f"{study.path}: the study reads a converted store whose source file "
                         "is not in the folder; nothing to convert")
    read_from = store_location(source.path, source.config)
    start = time.perf_counter()
    with _percent_bar("convert", err) as step:
        got = write_store(source, location or read_from, progress=step)
    print(f"{got.n_cells:,} cells x {got.n_genes:,} genes ({got.n_nonzero:,} non-zero values"
          f"{', with counts' if got.counts else ''}) -> {got.location} in "
          f"{time.perf_counter() - start:.1f} s", file=out)
    if location and location != read_from:
        print(f"note: the study reads it once study.toml has [single_cell] store = "
              f"\"{location}\"", file=err)
    return str(got.location)


@dataclass(frozen=True)
class GateRun:
    """What `gate` did: files gated of those with a gate file, sample x gate rows."""

    gated: int
    files: int
    rows: int
    seconds: float

    @property
    def ok(self) -> bool:
        return self.gated == self.files


def gate(root: Path, *, workers: int | None = None, force: bool = False,
         out: IO[str] | None = None, err: IO[str] | None = None) -> GateRun:
    """Apply the study's FlowJo workspace or Gating-ML file to each of its flow_fcs samples,
    one file per task on the jobs cluster (a local one of `workers` processes, or the lab's
    scheduler; CART_JOBS=inline gates in local processes), cached; problems per file go to
    `err`."""
    from tqdm import tqdm

    from data_loaders import load_study
    from data_loaders.discovery import read_config
    from data_loaders.flow import gate_study, gating_jobs
    from jobs.parallel import executor
    from jobs.settings import job_settings

    out, err = out or sys.stdout, err or sys.stderr
    report = ValidationReport()
    config = read_config(root, report)
    study = load_study(root)   # validated samples (and the first, possibly uncached, gating)
    _, files = gating_jobs(root, config, study.samples, ValidationReport())
    if not files:
        raise StudyError(f"{root}: no flow_fcs samples with a gate file; name one in "
                         "study.toml [flow] gating or a samples.csv gating column")
    start = time.perf_counter()
    settings = job_settings(root)
    if workers:
        settings = replace(settings, workers=workers)
    with tqdm(total=len(files), unit="file", desc="gating", file=err) as bar:
        def step(done: int, total: int, label: str) -> None:
            bar.set_postfix_str(label[-40:])
            bar.update(done - bar.n)

        with executor(settings) as pool:
            pops = gate_study(root, config, study.samples, report, workers=workers,
                              progress=step, force=force, executor=pool)
    for f in report.findings:
        if f.table == "flow" and f.severity != "note":
            print(f"{f.severity.upper():8s} {f.file}: {f.problem}", file=err)
    run = GateRun(pops.get_column("sample_id").n_unique() if pops.height else 0, len(files),
                  pops.height, time.perf_counter() - start)
    print(f"gated {run.gated} of {run.files} files, {run.rows:,} sample x gate rows in "
          f"{run.seconds:.1f} s; see: python cli.py table populations --study {root}",
          file=out)
    return run
