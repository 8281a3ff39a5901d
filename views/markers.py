"""Marker genes of every cell type (or cluster) against all other cells, over the whole
single-cell store: the table the Immune landscape offers below the embedding and
`cli.py markers` writes.

The ranking reads every cell once (analysis.markers.rank_groups: Wilcoxon rank-sum per gene,
log2 fold change, BH-FDR per group; exploratory, cell-level; the pass split into pieces of
cells summed on every worker), which takes minutes at millions of cells, so it runs as a job (`run_group_markers`, jobs/): keyed by the study's files and
these Params, cached on disk, shared by every session, app process and the CLI. The table
view (`group_markers`) reads the job's stored result and never computes it on the script
thread.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

import polars as pl

import jobs
from analysis import embedding as emb
from analysis.markers import GroupCodes, GroupSums, group_codes, group_sums, groups_table
from data_loaders.single_cell.mapping import CLUSTER_COLUMNS, CLUSTER_PATTERN
from views.spec import TableSpec, recipe

if TYPE_CHECKING:
    from analysis.cohort import Cohort, Focus
    from data_loaders.study import Study

__all__ = ["GroupMarkersParams", "groupings", "run_group_markers", "group_markers_ready",
           "group_markers", "piece_sums", "CELL_TYPE", "NOT_COMPUTED", "PIECE_CELLS"]

CELL_TYPE = "cell_type"
NOT_COMPUTED = "The marker genes of every group have not been computed for this study yet."


@dataclass(frozen=True)
class GroupMarkersParams:
    """Which cell grouping (`cell_type`, or a cluster column of the file's obs) and how many
    genes per group to keep."""

    group_by: str = CELL_TYPE
    top: int = 25


def groupings(study: Study) -> list[str]:
    """The groupings to rank markers by: `cell_type` (the study's annotation, or clusters when
    the file has no annotation), then every other cluster column of the file's obs (leiden,
    seurat_clusters, ..._snn_res.0.8, ...)."""
    store = getattr(study, "single_cell", None)
    if store is None:
        return []
    resolved = getattr(store, "resolved", None)
    as_cell_type = getattr(resolved, "obs", {}).get(CELL_TYPE) if resolved is not None else None
    clusters = [c for c in store.obs_columns if c != as_cell_type and
                (c in CLUSTER_COLUMNS or CLUSTER_PATTERN.search(c))]
    return [CELL_TYPE, *clusters]


def _labels(study: Study, group_by: str) -> pl.Series:
    if group_by == CELL_TYPE:
        return emb.cell_table_cached(study).get_column(CELL_TYPE)
    if group_by not in groupings(study):
        raise ValueError(f"{group_by!r} is not a cell grouping of this study's single-cell "
                         f"file; use one of: {', '.join(groupings(study))}")
    return emb.obs_column(study, column=group_by).cast(pl.String)


PIECE_CELLS = 2_000_000     # cells per task when the job fans out over the workers


@lru_cache(maxsize=2)
def _codes(study: Study, group_by: str) -> GroupCodes:
    return group_codes(_labels(study, group_by).to_numpy())


def piece_sums(piece: tuple[Study, str, int, int]) -> GroupSums:
    """The marker sums of cells lo..hi of `piece` = (study, grouping, lo, hi): one task of
    `run_group_markers` on a worker (the study loaded there once per worker process)."""
    study, group_by, lo, hi = piece
    return group_sums(emb.read_marker_index(study), codes=_codes(study, group_by), lo=lo,
                      hi=hi)


def run_group_markers(study: Study, *, params: GroupMarkersParams,
                      progress: Callable[[float, str], None] | None = None) -> pl.DataFrame:
    """Marker genes of every group of `params.group_by` against all other cells (the job:
    minutes at millions of cells). One pass over the store, in pieces of PIECE_CELLS cells
    summed on every worker of the cluster (`jobs.parallel.parallel_map`; one after the other
    inline). ValueError when the grouping is not the study's or leaves no group with a
    rest."""
    from jobs.parallel import parallel_map

    report = progress or (lambda f, m: None)
    if params.top < 1:
        raise ValueError(f"top must be at least 1 gene per group, not {params.top}")
    report(0.0, "reading the marker arrays of the store")
    index = emb.read_marker_index(study)
    codes = _codes(study, params.group_by)
    n = index.n_cells
    if n < 2:
        raise ValueError("marker genes need at least two cells")
    pieces = [(study, params.group_by, lo, min(n, lo + PIECE_CELLS))
              for lo in range(0, n, PIECE_CELLS)]
    if len(pieces) == 1:    # here, with progress per block of cells read
        sums = group_sums(index, codes=codes, progress=lambda f, m: report(0.02 + 0.93 * f, m))
    else:                   # one task per piece on every worker; progress per piece done
        parts = parallel_map(piece_sums, pieces, label=f"pieces of {PIECE_CELLS:,} cells")
        sums = parts[0]
        for part in parts[1:]:
            sums = sums + part
    cells = emb.cell_table_cached(study)
    who = cells.get_column("subject_id").to_numpy() if cells.height == n else None
    out = groups_table(index, sums=sums, codes=codes, top=params.top, patients=who)
    if out.height == 0:
        raise ValueError(f"{params.group_by} gives no group with other cells to compare "
                         "with (every cell carries the same label)")
    report(1.0, f"markers of {out.get_column('group').n_unique()} groups")
    return out


def _handle(study: Study, params: GroupMarkersParams) -> jobs.JobHandle | None:
    # the arguments the page's jobs_panel.run and cli.py markers submit: the same key
    return jobs.find(run_group_markers, study, params=params, progress=jobs.progress,
                     study=study)


def group_markers_ready(study: Study, *, params: GroupMarkersParams) -> bool:
    """Whether the job's result is stored (in this or another session, process or CLI run)."""
    handle = _handle(study, params)
    return handle is not None and handle.status() == "done"


@recipe
def group_markers(study: Study, *, cohort: Cohort | None = None,
                  params: GroupMarkersParams, focus: Focus | None = None) -> TableSpec:
    """The stored marker table of every group (`run_group_markers`' result; ValueError with
    NOT_COMPUTED when the job has not run). The test is over every cell of the store, so the
    cohort does not narrow it (the caption says so)."""
    handle = _handle(study, params)
    if handle is None or handle.status() != "done":
        raise ValueError(NOT_COMPUTED)
    table: pl.DataFrame = handle.result()
    n_groups = table.get_column("group").n_unique()
    return TableSpec(
        "group-markers", f"Top {params.top} marker genes of each {params.group_by} vs all "
        "other cells (Wilcoxon rank-sum, BH-FDR)", table, params,
        f"{n_groups} groups, each against every other cell of the study (all patients and "
        "days: the sidebar filter does not narrow this table). Exploratory: a cell-level "
        "test treats cells as independent, so p-values are far smaller than the patients "
        "justify; n_patients_selected / n_patients_rest say how many patients stand behind "
        "each side. For a patient-level test use 'Pseudobulk by patient'.")
