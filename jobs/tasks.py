"""The long computations of the app as job functions: module-level (a worker imports them by
name), taking the `Study` first, reporting progress through `jobs.progress`, returning small
results (what is large is already cached by the computation itself: embedding coordinates,
the gene-column store, gating results).

Pages and the CLI submit these:

    handle = jobs.submit(tasks.embedding, study, params=params, study=study)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from jobs.core import progress, step_progress

if TYPE_CHECKING:
    from analysis.embedding import EmbeddingParams
    from analysis.pseudobulk import PseudobulkParams, PseudobulkResult
    from data_loaders.study import Study

__all__ = ["EmbeddingDone", "GatingDone", "embedding", "flow_embedding", "gene_store",
           "pseudobulk", "regate", "compare"]

Progress = Callable[[float, str], None]
StepProgress = Callable[[int, int, str], None]


@dataclass(frozen=True)
class EmbeddingDone:
    """What an embedding job leaves: the coordinates are in `cache_file` (read back with
    `analysis.embedding.load_embedding`)."""

    n: int
    basis: str
    source: str
    cache_file: str
    note: str = ""


def embedding(study: Study, *, params: EmbeddingParams, force: bool = False,
              progress: Progress = progress) -> EmbeddingDone:
    """The single-cell embedding (HVG, PCA, UMAP), computed once and cached on disk: the job
    of the Immune landscape's "Compute a UMAP" and of `cli.py embed` (one key for the same
    study and `params`, so either joins the other while it runs)."""
    from analysis.embedding import embed_study

    emb = embed_study(study, params=params, force=force, progress=progress)
    return EmbeddingDone(emb.n, emb.basis, emb.source, str(emb.cache_file), emb.note)


def flow_embedding(study: Study, *, per_file: int, params: EmbeddingParams,
                   markers: tuple[str, ...] | None = None, cofactor: float | None = None,
                   force: bool = False, progress: Progress = progress
                   ) -> tuple[EmbeddingDone, tuple[str, ...]]:
    """The embedding of the study's flow events (FCS files, `per_file` events of each,
    arcsinh at `cofactor`, default the flow one) on `markers` (None: every marker the files
    share), and the notes about files that could not be read. The Immune landscape's flow
    UMAP and `cli.py embed` submit this with the same arguments for the same choices."""
    from analysis.embedding import embed_flow
    from data_loaders.formats.fcs import FLOW_COFACTOR, flow_events

    progress(0.0, "reading the FCS events")
    events = flow_events(study, per_file=per_file,
                         cofactor=FLOW_COFACTOR if cofactor is None else cofactor)
    emb = embed_flow(study, events.frame, markers=list(markers or events.markers),
                     digest=events.digest, params=params, force=force, progress=progress)
    return (EmbeddingDone(emb.n, emb.basis, emb.source, str(emb.cache_file), emb.note),
            (*events.notes, *events.errors))


def gene_store(study: Study) -> str:
    """Build the gene-major copy of the expression (for colouring by gene and marker tests)
    when the store has none of its own; its path ("" for a converted store, which holds it)."""
    from analysis.embedding import expression_store

    path = expression_store(study, progress=progress)
    return "" if path is None else str(path)


def pseudobulk(study: Study, *, params: PseudobulkParams) -> PseudobulkResult:
    """The pseudobulk DESeq2 test of `params` (cached on disk by analysis.pseudobulk)."""
    from analysis.pseudobulk import pseudobulk_de

    return pseudobulk_de(study, params=params, progress=progress)


@dataclass(frozen=True)
class GatingDone:
    """What gating every FCS file left: files gated of those with a gate file, sample x gate
    rows of the populations table (in the cache the next load reads) and the problems found,
    each (severity, file, problem)."""

    gated: int
    files: int
    rows: int
    findings: tuple[tuple[str, str, str], ...] = ()

    @property
    def problems(self) -> tuple[str, ...]:
        return tuple(f"{file}: {problem}" for _, file, problem in self.findings)


def regate(study: Study, *, force: bool = True, workers: int | None = None,
           progress: StepProgress = step_progress) -> GatingDone:
    """Gate every FCS file of the study with its gate file, one file per task on the cluster
    (`workers` local processes in inline mode), results cached by file content and gate file
    (`force` reads every file again): the Cytometry page's "Gate all files again" and
    `cli.py gate`, one job for both. Progress counts files."""
    from data_loaders.flow import regate_study, study_jobs
    from jobs.parallel import executor

    _, files = study_jobs(study)
    with executor() as pool:
        pops, report = regate_study(study, progress=progress, force=force, workers=workers,
                                    executor=pool)
    findings = tuple((f.severity, f.file, f.problem) for f in report.findings
                     if f.table == "flow" and f.severity != "note")
    return GatingDone(pops.get_column("sample_id").n_unique() if pops.height else 0,
                      len(files), pops.height, findings)


def compare(study: Study, **options: Any) -> Any:
    """`analysis.differential.compare(study, **options)` (DESeq2 on raw counts takes about a
    minute on the demo)."""
    from analysis.differential import compare as run

    progress(0.05, f"{options.get('method', 'rank')} test of {options.get('layer', '')}")
    out = run(study, **options)
    progress(1.0, "done")
    return out
