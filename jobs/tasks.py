"""The long computations of the app as job functions: module-level (a worker imports them by
name), taking the `Study` first, reporting progress through `jobs.progress`, returning small
results (what is large is already cached by the computation itself: embedding coordinates,
the gene-column store, gating results).

Pages and the CLI submit these:

    handle = jobs.submit(tasks.embedding, study, params=params, study=study)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from jobs.core import progress, step_progress

if TYPE_CHECKING:
    from analysis.embedding import EmbeddingParams
    from analysis.pseudobulk import PseudobulkParams, PseudobulkResult
    from data_loaders.study import Study

__all__ = ["EmbeddingDone", "embedding", "flow_embedding", "gene_store", "pseudobulk",
           "regate", "compare"]


@dataclass(frozen=True)
class EmbeddingDone:
    """What an embedding job leaves: the coordinates are in `cache_file` (read back with
    `analysis.embedding.load_embedding`)."""

    n: int
    basis: str
    source: str
    cache_file: str
    note: str = ""


def embedding(study: Study, *, params: EmbeddingParams, force: bool = False) -> EmbeddingDone:
    """The single-cell embedding (HVG, PCA, UMAP), computed once and cached on disk."""
    from analysis.embedding import embed_study

    emb = embed_study(study, params=params, force=force, progress=progress)
    return EmbeddingDone(emb.n, emb.basis, emb.source, str(emb.cache_file), emb.note)


def flow_embedding(study: Study, *, per_file: int, params: EmbeddingParams,
                   force: bool = False) -> tuple[EmbeddingDone, tuple[str, ...]]:
    """The embedding of the study's flow events (FCS files, subsampled per file) and the
    notes about files that could not be read."""
    from analysis.embedding import embed_flow
    from data_loaders.formats.fcs import flow_events

    progress(0.0, "reading the FCS events")
    events = flow_events(study, per_file=per_file)
    emb = embed_flow(study, events.frame, markers=events.markers, digest=events.digest,
                     params=params, force=force, progress=progress)
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


def regate(study: Study, *, force: bool = True) -> tuple[int, tuple[str, ...]]:
    """Gate every FCS file of the study again, one file per task on the cluster; the number of
    samples gated and the problems found (each naming its file)."""
    from data_loaders.flow import regate_study
    from jobs.parallel import executor

    with executor() as pool:
        pops, report = regate_study(study, progress=step_progress, force=force,
                                    executor=pool)
    problems = tuple(f"{f.file}: {f.problem}" for f in report.findings
                     if f.severity != "note")
    return (pops.get_column("sample_id").n_unique() if pops.height else 0), problems


def compare(study: Study, **options: Any) -> Any:
    """`analysis.differential.compare(study, **options)` (DESeq2 on raw counts takes about a
    minute on the demo)."""
    from analysis.differential import compare as run

    progress(0.05, f"{options.get('method', 'rank')} test of {options.get('layer', '')}")
    out = run(study, **options)
    progress(1.0, "done")
    return out
