"""Recipes of a selection on the Immune landscape's embedding (box or lasso, single cells or
flow events): which cells the chart's selection holds, where they come from (patient, day, cell
type), the shared focus they set for other pages (their patients and days), their marker genes
against every other cell (Wilcoxon rank-sum over all cells, BH-FDR; exploratory), and the
selections a session keeps and compares. Computations are in analysis.composition and
analysis.markers; the cells come from the single-cell store (analysis.embedding) or the flow
events (data_loaders.formats.fcs). Every name is importable from views.landscape too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from analysis import composition as comp
from analysis import embedding as emb
from analysis.cohort import Cohort, Focus
from analysis.markers import rank_markers
from analysis.vocab import DayWindow
from data_loaders.formats.fcs import FLOW_COFACTOR, flow_events
from views.landscape import RNA, LandscapeParams, Source, unit
from views.spec import TableSpec, recipe

if TYPE_CHECKING:
    from data_loaders import Study

__all__ = ["SelectionParams", "selected_cells", "selection_summary", "selection_extent",
           "selection_markers", "Kept", "current_selection", "selection_focus",
           "comparable_sets"]


def selected_cells(event: Mapping[str, Any] | None) -> tuple[int, ...]:
    """Row numbers (`cell`) of the points a box or lasso selection on the embedding holds
    (the chart's selection state; empty when nothing is selected)."""
    points = (event or {}).get("selection", {}).get("points", []) if event else []
    ids = [p.get("customdata") for p in points]
    ids = [i[0] if isinstance(i, list) else i for i in ids if i is not None]
    return tuple(int(i) for i in np.unique(np.asarray(ids, dtype=np.int64)))


# ---- a selection of cells ---------------------------------------------------------------------
@dataclass(frozen=True)
class SelectionParams:
    """Cells picked on the embedding: their row numbers (`cell`) in the single-cell file, or
    in the flow events `embedding` (whose cofactor and per_file read them) drew."""

    source: Source
    cells: tuple[int, ...]
    embedding: LandscapeParams | None = None
    top: int = 25


def _selection_cells(study: Study, params: SelectionParams) -> pl.DataFrame:
    if params.source == RNA:
        return emb.cell_table(study)
    e = params.embedding
    if e is None:
        raise ValueError("a selection of flow events needs the embedding it was made on")
    return flow_events(study, per_file=e.per_file, cofactor=e.cofactor or FLOW_COFACTOR
                       ).frame.with_row_index("cell").with_columns(pl.col("cell")
                                                                    .cast(pl.Int64))


@recipe
def selection_summary(study: Study, *, cohort: Cohort | None = None, params: SelectionParams,
                      focus: Focus | None = None) -> TableSpec:
    """Where the selected cells come from: patient, day (and cell type), n and share of the
    selection. The selection was made on screen, so the cohort does not narrow it."""
    summary = comp.selection_summary(_selection_cells(study, params),
                                     selected=np.asarray(params.cells, dtype=np.int64))
    subjects, days = selection_extent(summary)
    return TableSpec("selection", f"Selection: {len(params.cells):,} {unit(params.source)}",
                     summary, params,
                     f"From patients {', '.join(subjects)}; days {days.lo} to {days.hi}. "
                     "Blood counts and kinetics highlight these patients and days.")


Kept = tuple[str, tuple[int, ...]]       # (source, cells) of a selection the session keeps


def current_selection(kept: Kept | None, params: LandscapeParams) -> SelectionParams | None:
    """The session's selection as SelectionParams when it was made on this source's embedding
    and holds cells (None otherwise); flow events carry the embedding that read them."""
    if not kept or kept[0] != params.source or not len(kept[1]):
        return None
    return SelectionParams(params.source, tuple(int(c) for c in kept[1]),
                           embedding=None if params.source == RNA else params)


def selection_focus(study: Study, summary: TableSpec) -> Focus:
    """The shared focus a selection sets (its patients and days), from its
    `selection_summary`: Blood counts and Kinetics highlight them."""
    sel: SelectionParams = summary.params
    subjects, days = selection_extent(summary.data)
    return Focus(subjects=subjects, days=days,
                 label=f"{len(sel.cells):,} selected {unit(sel.source)}",
                 study_key=study.cache_key)


def comparable_sets(kept: Mapping[str, Kept], current: SelectionParams | None = None
                    ) -> dict[str, tuple[int, ...]]:
    """Single-cell selections that can be compared with each other, by name: the kept cell
    sets of single cells, and the current selection when it is one."""
    out = {name: cells for name, (source, cells) in kept.items() if source == RNA}
    if current is not None and current.source == RNA:
        out.setdefault("current selection", current.cells)
    return out


def selection_extent(summary: pl.DataFrame) -> tuple[tuple[str, ...], DayWindow]:
    """(patients, their days from first to last) of a selection summary: the focus it sets."""
    days = summary.get_column("day").drop_nulls()
    return (tuple(sorted(summary.get_column("subject_id").unique().to_list())),
            DayWindow(days.min(), days.max()) if days.len() else DayWindow())


@recipe
def selection_markers(study: Study, *, cohort: Cohort | None = None, params: SelectionParams,
                      focus: Focus | None = None) -> TableSpec:
    """Top marker genes of the selected cells against all other cells (Wilcoxon rank-sum over
    all cells, BH-FDR): exploratory, cells are not independent replicates. Raises ValueError
    when the selection holds no cell or every cell."""
    index = emb.read_marker_index(study)
    mask = np.zeros(index.n_cells, dtype=bool)
    mask[np.asarray(params.cells, dtype=np.int64)] = True
    if not 0 < mask.sum() < index.n_cells:
        raise ValueError("marker genes need a selection that leaves other cells to compare "
                         "with")
    cells = emb.cell_table_cached(study)
    who = cells.get_column("subject_id").to_numpy() if cells.height == index.n_cells else None
    out = rank_markers(index, selected=mask, top=params.top, patients=who)
    n_sel = out.get_column("n_patients_selected")[0] if out.height else None
    return TableSpec("markers", f"Top {params.top} marker genes, selection vs all other cells "
                     "(Wilcoxon rank-sum, BH-FDR)", out, params,
                     "Exploratory: a cell-level test treats cells as independent, so p-values "
                     "are far smaller than the patients justify"
                     + (f" ({n_sel} patient(s) in the selection, "
                        f"{out.get_column('n_patients_rest')[0]} in the rest)"
                        if n_sel is not None else "")
                     + ". For a patient-level test of these cells use 'Pseudobulk by patient' "
                     "below with 'the current selection'.")
