"""Recipes of the Immune landscape's patient-level pseudobulk test: raw counts of the chosen
cells (a cell type, CAR+ or CAR- cells, or the current selection) summed per sample, the
patient as the replicate, DESeq2 (pydeseq2) between the response groups or post vs pre,
BH-FDR; its volcano and per-gene table, and the option lists and defaults the page's
`PseudobulkParams` come from.

The DESeq2 run itself is one function (`run_pseudobulk`), so it can be handed to a job runner;
its result is cached on disk, and the views read it from there. Computations are in
analysis.pseudobulk; figures in components.figures.landscape.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Literal

import polars as pl

from analysis import embedding as emb
from analysis import pseudobulk as pb
from analysis.cohort import Cohort, cohort_subjects, response_groups
from analysis.differential import WINDOWS
from components.figures import landscape as figs
from views.spec import FigureSpec, TableSpec, recipe

if TYPE_CHECKING:
    from analysis.cohort import Focus
    from data_loaders import Study

__all__ = ["pseudobulk_volcano", "pseudobulk_result_table", "cohort_params", "run_pseudobulk",
           "pseudobulk_cached", "pseudobulk_cells", "cell_types", "PSEUDOBULK_RULES",
           "PSEUDOBULK_NOTE", "CellSelection", "CAR_STATUSES", "cell_selection", "DESIGNS",
           "WINDOW_NAMES", "DEFAULT_WINDOW"]

WINDOW_NAMES: tuple[str, ...] = tuple(WINDOWS)
DEFAULT_WINDOW = "D28"          # the window the pseudobulk and signature tests open on
CellSelection = pb.CellSelection


# ---- pseudobulk ----------------------------------------------------------------------------
@recipe
def pseudobulk_volcano(study: Study, *, cohort: Cohort | None = None,
                       params: pb.PseudobulkParams, focus: Focus | None = None,
                       q_threshold: float = 0.1) -> FigureSpec:
    """Volcano of the pseudobulk DESeq2 test of `params` (from the disk cache when it was run
    before, else run now), titled with its contrast and n patients. The patients are those of
    `params.subjects` (the page fills it from the cohort with `cohort_params`)."""
    result = pb.pseudobulk_de(study, params=params)
    p = result.params
    t = result.table
    n_a = int(t.get_column("n_a")[0]) if t.height else 0
    n_b = int(t.get_column("n_b")[0]) if t.height else 0
    title = (f"{p.selection.describe()}: {p.contrast()}, "
             + (f"{n_a} patients" if p.design == "paired" else f"{n_a} vs {n_b} patients"))
    fig = figs.volcano_figure(t, q_threshold=q_threshold, title=title,
                              labels={"log2fc": f"log2 fold change ({'post / pre' if p.design == 'paired' else f'{p.group_a} / {p.group_b}'})"})
    hits = t.filter(pl.col("q_value") < q_threshold).height
    return FigureSpec("pseudobulk_volcano", "Pseudobulk DESeq2 volcano", fig, t, p,
                      f"{hits} of {result.n_genes_tested:,} tested genes with q < "
                      f"{q_threshold:g} (DESeq2 Wald test on counts summed per sample, patient "
                      "as the replicate; BH-FDR). " + "; ".join(result.notes))


def cohort_params(study: Study, *, cohort: Cohort | None, **fields: Any) -> pb.PseudobulkParams:
    """PseudobulkParams (rule-setting filters) limited to the cohort's patients (all patients
    when the cohort is the whole study)."""
    subjects: tuple[str, ...] = ()
    if cohort is not None and (cohort.subjects or cohort.groups):
        subjects = tuple(cohort_subjects(response_groups(study), cohort)) or ("",)
    return pb.params_for(study, subjects=subjects, **fields)


PSEUDOBULK_NOTE = ("Raw counts summed per sample over the chosen cells; the patient is the "
                   "replicate. Lowly expressed genes dropped by edgeR's filterByExpr rule; "
                   "DESeq2 Wald test (pydeseq2), BH-FDR.")
PSEUDOBULK_RULES = ("pseudobulk_min_cells", "pseudobulk_min_count", "pseudobulk_min_total_count")
PseudobulkCells = Literal["cell type", "the current selection", "CAR status"]


def cell_types(study: Study) -> list[str]:
    """The cell-type (or cluster) labels of the single-cell file, sorted."""
    cells = emb.cell_table(study)
    return sorted(cells.get_column("cell_type").drop_nulls().unique().to_list()) \
        if "cell_type" in cells.columns else []


def pseudobulk_cells(study: Study, *, has_selection: bool = False) -> list[PseudobulkCells]:
    """Which cells a pseudobulk test can sum: a cell type, the current selection (when there
    is one), CAR+ or CAR- cells (when the file says which cells carry the CAR)."""
    out: list[PseudobulkCells] = ["cell type"]
    if has_selection:
        out.append("the current selection")
    if "car_positive" in emb.cell_table(study).columns:
        out.append("CAR status")
    return out


CarStatus = Literal["CAR+", "CAR-"]
CAR_STATUSES: tuple[CarStatus, ...] = ("CAR+", "CAR-")
Design = Literal["groups", "paired"]
DESIGNS: dict[str, Design] = {"Responders vs non-responders": "groups",
                              "Post vs pre (paired)": "paired"}


def cell_selection(what: PseudobulkCells, choice: str | None = None, *,
                   cells: Sequence[int] = ()) -> pb.CellSelection:
    """The cells a pseudobulk test sums, from the page's choice: `what` (one of
    `pseudobulk_cells`) and `choice` (the cell type, or the CAR status); "the current
    selection" takes the selected `cells`."""
    if what == "cell type":
        return pb.CellSelection(cell_type=choice)
    if what == "CAR status":
        return pb.CellSelection(car_status=choice)
    return pb.CellSelection(cells=tuple(int(c) for c in cells),
                            label=f"{len(cells):,} selected cells")


def pseudobulk_cached(study: Study, *, params: pb.PseudobulkParams) -> bool:
    """Whether the test of `params` is in the disk cache (then the views read it at once)."""
    return pb.cached_result(study, params=params) is not None


def run_pseudobulk(study: Study, *, params: pb.PseudobulkParams,
                   progress: Callable[[float, str], None] | None = None) -> pb.PseudobulkResult:
    """Run the pseudobulk DESeq2 test of `params` (tens of seconds) and cache it on disk; the
    volcano and table views then read the cached result. Raises ValueError when the cells or
    groups do not allow the test (the message says why)."""
    return pb.pseudobulk_de(study, params=params, progress=progress)


@recipe
def pseudobulk_result_table(study: Study, *, cohort: Cohort | None = None,
                            params: pb.PseudobulkParams, focus: Focus | None = None) -> TableSpec:
    """The per-gene table of the pseudobulk test of `params` (cached as the volcano)."""
    result = pb.pseudobulk_de(study, params=params)
    return TableSpec("pseudobulk_table", "Pseudobulk DESeq2 per gene", result.table,
                     result.params, f"{result.params.contrast()}; samples: "
                     + ", ".join(f"{r['sample_id']} ({r['n_cells']} cells)"
                                 for r in result.samples.iter_rows(named=True)))
