"""A study's precomputations from the command line (`cli.py embed`, `convert`, `gate`): the
single-cell and flow embeddings and the chunked single-cell store the Immune landscape reads,
and the gating of the study's FCS files that the populations table reads from its cache.

The embeddings and the gating are the pages' own jobs (jobs/tasks.py: the Immune landscape's
"Compute a UMAP" and the Cytometry page's "Gate all files again"), submitted with the same
arguments, so the same key: a run started while the page's job runs joins it (in another
process it waits on the job's lock, showing the job's progress), and either reads the other's
stored result. Progress is a bar on `err` (stderr, jobs/console.py's, as for every job of
the command line), result lines go to `out` (stdout). A study that has nothing to do raises
`StudyError` saying so; a failed job raises `JobFailed`, Ctrl-C cancels the job and raises
`JobCancelled`.

    precompute.embed(study, params=EmbeddingParams(), force=False, flow=True)
    precompute.convert(study, "cells.store.zarr")
    run = precompute.gate(study, workers=2, force=False)
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, TYPE_CHECKING

from data_loaders.errors import StudyError
from jobs.console import follow, percent_bar
from jobs.core import find, submit

if TYPE_CHECKING:
    from analysis.embedding import EmbeddingParams
    from data_loaders.study import Study
    from jobs.tasks import EmbeddingDone

__all__ = ["embed", "convert", "gate", "GateRun"]


def embed(study: Study, *, params: EmbeddingParams, force: bool = False, flow: bool = True,
          out: IO[str] | None = None, err: IO[str] | None = None) -> None:
    """The single-cell embedding (when the study has cells) and the flow embedding (when it
    has flow_fcs samples and `flow`), each as the job the app reads, cached on disk; `force`
    computes them again."""
    from analysis.embedding import cache_location
    from data_loaders.formats.fcs import FLOW_COFACTOR, flow_events, flow_samples
    from jobs import tasks
    from jobs.cluster import describe
    from views.landscape import per_file

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
        n = per_file(study)     # the page's events per file and markers: the page's key
        markers = flow_events(study, per_file=n, cofactor=FLOW_COFACTOR).markers
        done, notes = _run("flow", tasks.flow_embedding, study, per_file=n, params=params,
                           markers=tuple(markers), cofactor=FLOW_COFACTOR, force=force,
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
    return follow(lambda: submit(fn, *args, study=study, rerun=rerun, **kwargs), desc, err)


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
    with percent_bar("convert", err) as step:
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


def gate(study: Study, *, workers: int | None = None, force: bool = False,
         out: IO[str] | None = None, err: IO[str] | None = None) -> GateRun:
    """Apply the study's FlowJo workspace or Gating-ML file to each of its flow_fcs samples as
    the Cytometry page's gating job (`jobs.tasks.regate`, one file per task on the jobs
    cluster: a local one of `workers` processes, or the lab's scheduler; CART_JOBS=inline
    gates in `workers` local processes), cached; its progress counts files; problems per
    file go to `err`. A stored result of the same study files is shown as it is unless
    `force`. `study` is loaded as the page loads it (de-identified on a shared server), so
    the key is the page's; loading it gated what was not cached yet."""
    from data_loaders.flow import study_jobs
    from jobs import tasks
    from jobs.cluster import describe
    from jobs.core import step_progress
    from jobs.settings import job_settings

    out, err = out or sys.stdout, err or sys.stderr
    root = Path(study.path)
    if not study_jobs(study)[1]:
        raise StudyError(f"{root}: no flow_fcs samples with a gate file; name one in "
                         "study.toml [flow] gating or a samples.csv gating column")
    start = time.perf_counter()
    settings = job_settings(root)
    if workers:
        settings = replace(settings, workers=workers)
    # the page's arguments (jobs_panel passes progress=jobs.step_progress); force and
    # workers say how, not what, so they leave the key as it is
    kwargs = {"force": force, "workers": workers, "progress": step_progress}
    known = None if force else find(tasks.regate, study, study=study, **kwargs)
    if known is not None and known.status() == "done":
        print("gating: the stored result (cached on disk; --force gates again)", file=err)
        done = known.result()
    else:
        print(f"gating: {describe(settings)}", file=err)
        done = follow(lambda: submit(tasks.regate, study, study=study, settings=settings,
                                     **kwargs), "gating", err)
    for severity, file, problem in done.findings:
        print(f"{severity.upper():8s} {file}: {problem}", file=err)
    run = GateRun(done.gated, done.files, done.rows, time.perf_counter() - start)
    print(f"gated {run.gated} of {run.files} files, {run.rows:,} sample x gate rows in "
          f"{run.seconds:.1f} s; see: python cli.py table populations --study {root}",
          file=out)
    return run
