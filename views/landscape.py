"""Recipes of the Immune landscape page: cells (single-cell RNA or flow cytometry events) on an
embedding, a box/lasso selection (where its cells come from, its marker genes), cell-type
and cell-type composition. The single-cell depth (pseudobulk tests, signatures, violins, two
selections compared) is in views/landscape_depth.py, the pseudobulk test in
views/landscape_pseudobulk.py.

Each view takes the Study, the cohort and a frozen Params (the page's whole choice: basis,
colour, gene or signature, facet windows, markers, cofactor, ...) and returns a FigureSpec or
TableSpec; pages/immune_landscape.py, the deck and `cli.py` call the same recipes. The option
lists and default rules the page offers (`sources`, `colour_options`, `gene_choices`,
`flow_params`, ...) live here too, so the page only reads widgets. Computations are in
analysis.embedding, analysis.composition, analysis.signatures and analysis.markers; figures in
components.figures.landscape.

One job, over 400 lines: the records of the Immune landscape's embedding, selection and
composition, with the option lists and defaults their Params come from (single-cell RNA and
flow events alike).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

import numpy as np
import polars as pl

from analysis import composition as comp
from analysis import embedding as emb
from analysis import signatures as sig
from analysis.cohort import Cohort, Focus, apply_cohort, response_groups
from analysis.composition import DEFAULT_WINDOWS, DayWindow
from analysis.kinetics import prepare_series
from analysis.markers import rank_markers
from analysis.rules import Rules, rules_for
from analysis.vocab import UNMAPPED
from components.figures import landscape as figs
from components.theme import GROUP_COLORS
from data_loaders.formats.fcs import FLOW_COFACTOR, MASS_COFACTOR, flow_events, flow_samples
from data_loaders.gene_sets import GeneSet, parse_gmt, shipped_gene_sets, typed_gene_set
from views import common
from views.spec import FigureSpec, TableSpec, recipe

if TYPE_CHECKING:
    from data_loaders import Study

__all__ = ["LandscapeParams", "SelectionParams", "CompositionParams", "FlowSetup", "RNA", "FLOW",
           "sources", "unit", "colour_options", "bases", "n_cells", "cell_type_note",
           "gene_choices", "shipped_sets", "user_gene_sets", "flow_setup", "flow_params",
           "per_file", "compute_umap", "embedding", "selected_cells", "selection_summary",
           "selection_extent", "selection_markers", "composition", "composition_per_sample",
           "COMPOSITION_VIEWS", "FACET_WINDOWS", "COFACTORS", "IN_APP_LIMIT", "NOTHING_TO_DRAW",
           "FLOW_ONLY_NOTE", "rules", "gene_store_ready", "build_gene_store", "NO_EMBEDDING",
           "colour_sets", "brought_gene_sets", "current_selection", "selection_focus",
           "comparable_sets", "COMPOSITION_KEYS"]

# ---- the embedding ---------------------------------------------------------------------------
Source = Literal["Single-cell RNA", "Flow cytometry"]
RNA: Source = "Single-cell RNA"
FLOW: Source = "Flow cytometry"
IN_APP_LIMIT = 50_000          # cells or events the app embeds itself; above: `cli.py embed`
MAX_POINTS = 150_000
PRESET_GENES = ("CD7", "CD3E", "NKG7", "GZMB", "IFNG")
COLOR_BY_CELLS = ("Cell type", "Patient", "Day window", "Response group", "CAR+ status", "Gene",
                  "Signature score")
COLOR_BY_EVENTS = ("Marker", "Patient", "Day window", "Response group")
FOCUS_COLOUR = "Shared focus"
COLUMNS = {"Cell type": "cell_type", "Patient": "subject_id", "Day window": "window",
           "Response group": "response_group", "CAR+ status": "car_status",
           FOCUS_COLOUR: "focus"}
FACET_WINDOWS: dict[str, DayWindow] = {w.label: w for w in (*DEFAULT_WINDOWS,
                                                            DayWindow(1, None, "Post-infusion"))}
COFACTORS = (FLOW_COFACTOR, MASS_COFACTOR)
NOTHING_TO_DRAW = ("Nothing to draw: this study has no single-cell file (.h5ad, .h5mu, .loom, "
                   "AnnData .zarr or 10x output whose cells name their patient and sample or "
                   "time; see docs/importing.md) and no flow cytometry samples (rows of the "
                   "samples table with assay `flow_fcs` and a `file` column naming .fcs "
                   "files). Add either to the study folder (see docs/data-format.md).")
NO_EMBEDDING = ("The single-cell file holds no embedding (obsm X_umap, umap, X_tsne, X_pca, "
                "...).")
_FIXED_COLORS = {"response_group": GROUP_COLORS,
                 "focus": {"in focus": "#D55E00", "other": "#CCCCCC"},
                 "car_status": {"CAR+": "#D55E00", "CAR-": "#BBBBBB"}}


def sources(study: Study) -> tuple[Source, ...]:
    """What the study can draw: single-cell RNA, flow cytometry events, both or none."""
    return ((RNA,) if study.has("single_cell") else ()) + \
        ((FLOW,) if flow_samples(study).height else ())


def unit(source: Source) -> str:
    """"cells" or "events"."""
    return "cells" if source == RNA else "events"


def colour_options(source: Source, *, focus: bool = False) -> tuple[str, ...]:
    """What the points can be coloured by; "Shared focus" when another page set a focus."""
    return (COLOR_BY_CELLS if source == RNA else COLOR_BY_EVENTS) + \
        ((FOCUS_COLOUR,) if focus else ())


def bases(study: Study) -> list[str]:
    """Embeddings of the single-cell file (and the computed UMAP once cached)."""
    return emb.available_bases(study)


def n_cells(study: Study) -> int:
    return emb.cell_table(study).height


def cell_type_note(study: Study) -> str | None:
    """Says so when the cells' types are the file's clusters (no annotation column)."""
    source = emb.cell_type_source(study)
    return (f"Cell types are the file's {source}: no annotation column was found (name one in "
            "study.toml [single_cell.obs] cell_type).") if source.startswith("clusters") \
        else None


def gene_choices(study: Study) -> list[str]:
    """Genes to colour by: the preset markers present first, then every other gene sorted."""
    genes = emb.var_names(study)
    present = set(genes)
    return [g for g in PRESET_GENES if g in present] + sorted(present - set(PRESET_GENES))


def shipped_sets() -> tuple[GeneSet, ...]:
    """The curated gene sets shipped with the project."""
    return shipped_gene_sets()


def user_gene_sets(*, gmt: bytes | None = None, gmt_name: str = "gene sets",
                   typed: str = "") -> tuple[GeneSet, ...]:
    """Gene sets a user brought: those of an uploaded GMT file and a typed gene list ("typed
    genes"). Raises ValueError (naming file and line) for a malformed file."""
    out: list[GeneSet] = []
    if gmt is not None:
        try:
            text = gmt.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise ValueError(f"{gmt_name}: not UTF-8 text ({exc.reason}); save it as "
                             "UTF-8") from exc
        out += parse_gmt(text, name=gmt_name)
    if typed.strip():
        out.append(typed_gene_set(typed, name="typed genes"))
    return tuple(out)


class Upload(Protocol):
    """A file a user uploaded (streamlit's UploadedFile has this shape)."""

    name: str

    def getvalue(self) -> bytes: ...


def brought_gene_sets(upload: Upload | None = None, *, typed: str = "") -> tuple[GeneSet, ...]:
    """`user_gene_sets` of an uploaded GMT file (or none) and a typed gene list."""
    return user_gene_sets(gmt=upload.getvalue() if upload is not None else None,
                          gmt_name=upload.name if upload is not None else "", typed=typed)


def colour_sets(brought: Sequence[GeneSet] = ()) -> dict[str, GeneSet]:
    """The gene sets whose score can colour the cells, by name: the shipped ones, then those a
    user brought (a brought set of the same name replaces a shipped one)."""
    return {g.name: g for g in (*shipped_sets(), *brought)}


@dataclass(frozen=True)
class LandscapeParams:
    """One embedding as the page draws it. `gene` is a gene (single-cell) or a marker (flow)
    whose values colour the points; `signature` a gene set whose per-cell score does;
    `facet_windows` two FACET_WINDOWS labels drawn side by side. Flow events: `cofactor`,
    `markers` embedded and `per_file` events read from each file (`flow_params` fills them);
    `basis` is then "UMAP (flow)" (cached) or "PCA (flow)"."""

    source: Source
    basis: str
    color_by: str = "Cell type"
    gene: str | None = None
    facet_windows: tuple[str, ...] = ()
    max_points: int = MAX_POINTS
    seed: int = 0
    cofactor: float | None = None
    markers: tuple[str, ...] = ()
    signature: GeneSet | None = None
    label_types: bool = False
    per_file: int = 0

    @property
    def facet(self) -> tuple[DayWindow, ...]:
        return tuple(FACET_WINDOWS[f] for f in self.facet_windows) \
            if len(self.facet_windows) == 2 else ()


def _flow_umap() -> emb.EmbeddingParams:
    return emb.EmbeddingParams()


def _flow_pca() -> emb.EmbeddingParams:
    return emb.EmbeddingParams(method="pca")


def per_file(study: Study) -> int:
    """Events read from each FCS file: MAX_POINTS over the files, between 200 and 5,000."""
    return max(200, min(5000, MAX_POINTS // max(flow_samples(study).height, 1)))


@dataclass(frozen=True)
class FlowSetup:
    """What the flow files offer at a cofactor: marker channels, events read, notes."""

    markers: tuple[str, ...]
    n_events: int
    messages: tuple[str, ...]
    per_file: int


def flow_setup(study: Study, *, cofactor: float = FLOW_COFACTOR) -> FlowSetup:
    """The markers common to the study's FCS files and what reading them noted."""
    n = per_file(study)
    events = flow_events(study, per_file=n, cofactor=cofactor)
    return FlowSetup(events.markers, events.frame.height, (*events.notes, *events.errors), n)


def flow_params(study: Study, *, color_by: str, marker: str | None, markers: Sequence[str],
                cofactor: float, facet_windows: Sequence[str] = ()) -> LandscapeParams:
    """LandscapeParams of a flow embedding: the cached UMAP of these markers when there is
    one, else their PCA (fast; the page offers to compute the UMAP)."""
    n = per_file(study)
    events = flow_events(study, per_file=n, cofactor=cofactor)
    umap = emb.cached_flow_embedding(study, digest=events.digest, markers=list(markers),
                                     params=_flow_umap())
    return LandscapeParams(FLOW, "UMAP (flow)" if umap is not None else "PCA (flow)", color_by,
                           marker, tuple(facet_windows), cofactor=cofactor,
                           markers=tuple(markers), per_file=n)


def compute_umap(study: Study, *, params: LandscapeParams,
                 progress: Callable[[float, str], None] | None = None) -> None:
    """Compute the UMAP of the single-cell matrix, or of the flow events on `params.markers`,
    and cache it on disk (the next `bases` / `flow_params` offer it)."""
    if params.source == RNA:
        emb.embed_study(study, progress=progress)
        return
    events = flow_events(study, per_file=params.per_file, cofactor=params.cofactor
                         or FLOW_COFACTOR)
    emb.embed_flow(study, events.frame, markers=list(params.markers), digest=events.digest,
                   params=_flow_umap(), progress=progress)


def gene_store_ready(study: Study) -> bool:
    """Whether one gene's values (colouring, violins) and the marker test over all cells read
    at once: a converted store holds its gene-major copy; a plain file needs the gene-column
    cache built once (`build_gene_store`, a job on the page)."""
    store = getattr(study, "single_cell", None)
    return store is None or bool(getattr(store, "gene_cache_ready", lambda: True)())


def build_gene_store(study: Study, *, progress: Callable[[float, str], None] | None = None
                     ) -> None:
    """Build the gene-column cache of the study's single-cell file (once; tens of seconds to
    minutes for a million cells)."""
    emb.expression_store(study, progress=progress)


@recipe
def embedding(study: Study, *, cohort: Cohort | None = None, params: LandscapeParams,
              focus: Focus | None = None) -> FigureSpec:
    """The embedding scatter of the cohort's cells (or flow events): a stratified, seeded
    subsample of at most `max_points` drawn, coloured as `params` say, with the drawn points
    (cell, subject_id, sample_id, day, cell_type) as data. Continuous colourbars say their
    units (the store's log-normalisation, the signature score, arcsinh intensity)."""
    windows = DEFAULT_WINDOWS
    color = COLUMNS.get(params.color_by, "cell_type" if params.source == RNA else "subject_id")
    gene, signature = params.gene, params.signature if params.color_by == "Signature score" \
        else None
    if params.source == RNA:
        drawn = emb.drawn_cells(study, basis=params.basis, cohort=cohort,
                                max_points=params.max_points)
        points, n_total, basis = drawn.frame, drawn.n_total, params.basis
        values = emb.gene_vector(study, gene=gene) if gene else None
        label = f"{gene}<br>{sig.expression_units(study)}" if gene else None
        if signature is not None:
            method = sig.DEFAULT_METHOD
            got = sig.cell_scores(study, gene_sets=[signature], method=method)  # type: ignore[arg-type]
            values = got.cells.get_column(signature.name).to_numpy()
            gene, label = signature.name, f"{signature.name}<br>{sig.SCORE_UNITS[method]}"
    else:
        cofactor = params.cofactor or FLOW_COFACTOR
        events = flow_events(study, per_file=params.per_file, cofactor=cofactor)
        got = emb.flow_landscape(study, markers=params.markers, per_file=params.per_file,
                                 cofactor=cofactor, params=_flow_umap()
                                 if params.basis.startswith("UMAP") else _flow_pca())
        groups = response_groups(study)
        points = events.frame.with_row_index("cell").with_columns(
            pl.col("cell").cast(pl.Int64), pl.Series("x", got.coords[:, 0]),
            pl.Series("y", got.coords[:, 1])).join(
            groups.select("subject_id", "response_group"), on="subject_id", how="left")
        if cohort is not None and cohort != Cohort():
            points = apply_cohort(points, cohort, groups=groups)
        n_total, basis = events.n_total, got.basis
        values = events.frame.get_column(gene).to_numpy() if gene else None
        label = f"{gene}<br>arcsinh intensity" if gene else None
    facet = params.facet
    points = emb.annotate_points(points, windows=windows, facet_windows=facet, focus=focus)
    if values is not None:
        color = ("score" if signature is not None else "expression") \
            if params.source == RNA else str(gene)
        points = points.with_columns(pl.Series(color, values[points.get_column("cell")
                                                           .to_numpy()]))
    colors = common.colors(study, cohort) if color == "subject_id" else \
        _FIXED_COLORS.get(color, {})
    fig = figs.embedding_scatter(points, color=color, continuous=values is not None,
                                 colors=colors, facet="facet" if facet else None,
                                 facet_order=[w.label for w in facet],
                                 basis=basis.removeprefix("X_").split(" ")[0].upper(),
                                 colorbar_title=label if values is not None else None,
                                 labels="cell_type" if params.label_types and "cell_type" in
                                 points.columns else None)
    keep = [c for c in ("cell", "subject_id", "sample_id", "day", "cell_type") if c in
            points.columns]
    u = unit(params.source)
    return FigureSpec("landscape", "Immune landscape", fig, points.select(keep), params,
                      f"Showing {points.height:,} of {n_total:,} {u} (stratified by sample"
                      f"{' and cell type' if u == 'cells' else ''}, seeded); composition and "
                      "statistics use all of them.")


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


# ---- composition --------------------------------------------------------------------------------
CompositionView = Literal["Per sample", "By response group", "CD7+ T and NK",
                          "CAR+ T cells vs qPCR"]
COMPOSITION_VIEWS: tuple[CompositionView, ...] = ("Per sample", "By response group",
                                                  "CD7+ T and NK", "CAR+ T cells vs qPCR")
COMPOSITION_KEYS: dict[CompositionView, str] = {   # the page's chart key of each view
    "Per sample": "il-comp", "By response group": "il-comp-win", "CD7+ T and NK": "il-cd7",
    "CAR+ T cells vs qPCR": "il-car"}
FLOW_ONLY_NOTE = ("Composition needs annotated single cells (obs cell_type in an .h5ad); this "
                  "study has flow cytometry events only.")


@dataclass(frozen=True)
class CompositionParams:
    """Which composition view: stacked bars per sample, patient-level fractions by response
    group and day window, CD7+ T and NK cells before and after infusion, or CAR+ T cells next
    to the qPCR curve."""

    view: CompositionView = "Per sample"


def _in_cohort(frame: pl.DataFrame, cohort: Cohort | None, groups: pl.DataFrame,
               day_col: str | None = "day") -> pl.DataFrame:
    if cohort is None or cohort == Cohort():
        return frame
    return apply_cohort(frame, cohort, groups=groups, day_col=day_col)


def composition_per_sample(study: Study, *, cohort: Cohort | None = None) -> pl.DataFrame:
    """Cell-type fractions of the cohort's samples with a `sample_label` (timepoint, else
    D<day>)."""
    data = _in_cohort(comp.cell_type_composition(study), cohort, response_groups(study))
    tp = study.samples.select("sample_id", "timepoint") if "timepoint" in study.samples.columns \
        else pl.DataFrame(schema={"sample_id": pl.String, "timepoint": pl.String})
    return data.join(tp, on="sample_id", how="left").with_columns(
        pl.coalesce("timepoint", pl.format("D{}", "day")).alias("sample_label"))


@recipe
def composition(study: Study, *, cohort: Cohort | None = None,
                params: CompositionParams = CompositionParams(), focus: Focus | None = None
                ) -> FigureSpec | None:
    """The composition view `params.view` of the cohort (all cells counted, never the drawn
    subsample; group comparisons one value per patient); None without single-cell data (the
    standard deck's composition slide is this view)."""
    if not study.has("single_cell"):
        return None
    groups = response_groups(study)
    data = composition_per_sample(study, cohort=cohort)
    if params.view == "Per sample":
        return FigureSpec("comp", "Cell-type composition per sample",
                          figs.composition_bars(data), data, params)
    if params.view == "By response group":
        by_win = comp.composition_by_window(data, groups=groups)
        fig = figs.composition_by_window_figure(by_win, window_order=[
            w.label for w in DEFAULT_WINDOWS])
        return FigureSpec("composition_by_group", "Composition by response group", fig,
                          by_win, params)
    rules = rules_for(study)
    if params.view == "CD7+ T and NK":
        change = comp.cd7_change(_in_cohort(comp.study_cd7_fractions(study), cohort, groups),
                                 groups=groups)
        lineages = comp.study_lineages(study)
        unmapped = lineages.filter(pl.col("lineage") == UNMAPPED).get_column(
            "cell_type").to_list()
        return FigureSpec(
            "cd7_change", "CD7+ T and NK cells", figs.cd7_change_figure(change), change,
            params, f"Fraction of all cells that are CD7+ (CD7 expression > "
            f"{rules.cd7_threshold:g}, rule cd7_threshold) T or NK cells; mean of each "
            "patient's samples before (day <= 0) and after infusion. T and NK cells by their "
            "cell-type names (docs/rules.md, Vocabulary)"
            + (f"; not counted, lineage unknown: {', '.join(unmapped)} (add them to "
               "cell_lineages in study.toml [rules])" if unmapped else "") + ".")
    car = _in_cohort(comp.study_car_fraction(study), cohort, groups)
    qpcr = _in_cohort(study.series(analytes=["CAR_QPCR"]), cohort, groups)
    qpcr = prepare_series(qpcr) if qpcr.height else qpcr   # below the LLOQ as on Kinetics
    return FigureSpec("car_vs_qpcr", "CAR+ T cells vs qPCR", figs.car_vs_qpcr_figure(
        car, qpcr, colors=common.colors(study, cohort)), car, params)


def rules(study: Study) -> Rules:
    """The study's rule settings (for the page's 'Rules used')."""
    return rules_for(study)
