"""Recipes of the Immune landscape page's embedding: cells (single-cell RNA or flow cytometry
events) drawn on an embedding, coloured by type, patient, day window, response, a gene, a marker
or a signature score, side by side for two day windows. The rest of the page has its own
modules: a box/lasso selection in views/landscape_selection.py, the composition in
views/landscape_composition.py (both importable from here, as before), the single-cell depth
(signatures, violins, two selections compared) in views/landscape_depth.py, the pseudobulk test
in views/landscape_pseudobulk.py, the raster of millions of cells in views/landscape_raster.py.

Each view takes the Study, the cohort and a frozen Params (the page's whole choice: basis,
colour, gene or signature, facet windows, markers, cofactor, ...) and returns a FigureSpec or
TableSpec; pages/immune_landscape.py, the deck and `cli.py` call the same recipes. The option
lists and default rules the page offers (`sources`, `colour_options`, `gene_choices`,
`flow_params`, ...) live here too, so the page only reads widgets. Computations are in
analysis.embedding and analysis.signatures; figures in components.figures.landscape.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

import polars as pl

from analysis import embedding as emb
from analysis import signatures as sig
from analysis.cohort import Cohort, Focus, apply_cohort, response_groups
from analysis.composition import DEFAULT_WINDOWS, DayWindow
from analysis.rules import Rules, rules_for
from components.figures import landscape as figs
from components.theme import GROUP_COLORS
from data_loaders.formats.fcs import FLOW_COFACTOR, MASS_COFACTOR, flow_events, flow_samples
from data_loaders.gene_sets import GeneSet, parse_gmt, shipped_gene_sets, typed_gene_set
from views import common
from views.landscape_composition import (  # the composition recipes' old home
    COMPOSITION_KEYS,
    COMPOSITION_VIEWS,
    FLOW_ONLY_NOTE,
    CompositionParams,
    CompositionView,
    composition,
    composition_per_sample,
)
from views.spec import FigureSpec, recipe

if TYPE_CHECKING:
    from data_loaders import Study

__all__ = ["LandscapeParams", "CompositionParams", "FlowSetup", "RNA", "FLOW", "sources",
           "unit", "colour_options", "bases", "n_cells", "cell_type_note", "gene_choices",
           "shipped_sets", "user_gene_sets", "flow_setup", "flow_params", "per_file",
           "umap_job", "UmapJob", "embedding", "composition", "composition_per_sample",
           "COMPOSITION_VIEWS", "FACET_WINDOWS", "COFACTORS", "IN_APP_LIMIT", "NOTHING_TO_DRAW",
           "FLOW_ONLY_NOTE", "rules", "gene_store_ready", "build_gene_store", "NO_EMBEDDING",
           "colour_sets", "brought_gene_sets", "COMPOSITION_KEYS", "CompositionView"]

# the selection's names (not in __all__), importable from here as before:
# views/landscape_selection.py builds on this module, so they are looked up when first asked
# for (PEP 562)
_SELECTION = frozenset({"SelectionParams", "selected_cells", "selection_summary",
                        "selection_extent", "selection_markers", "Kept", "current_selection",
                        "selection_focus", "comparable_sets"})


def __getattr__(name: str) -> Any:
    if name in _SELECTION:
        from views import landscape_selection

        return getattr(landscape_selection, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

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


@dataclass(frozen=True)
class UmapJob:
    """The job that computes the UMAP the page offers: `jobs.tasks.embedding` (cells) or
    `jobs.tasks.flow_embedding` (flow events) with `kwargs`. `cli.py embed` submits the same
    function with the same arguments for the study's defaults, so the page and the command
    line share one key: either joins the other's running job and reads its stored result."""

    fn: Callable[..., Any]
    kwargs: dict[str, Any]


def umap_job(study: Study, *, params: LandscapeParams) -> UmapJob:
    """The UMAP job of `params` (its source; for flow its markers, events per file and
    cofactor; every other field, such as the colouring, leaves the key alone)."""
    from jobs import tasks

    if params.source == RNA:
        return UmapJob(tasks.embedding, {"params": emb.EmbeddingParams()})
    cofactor = float(params.cofactor or FLOW_COFACTOR)
    return UmapJob(tasks.flow_embedding, {"per_file": params.per_file, "params": _flow_umap(),
                                          "markers": tuple(params.markers),
                                          "cofactor": cofactor})


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


def rules(study: Study) -> Rules:
    """The study's rule settings (for the page's 'Rules used')."""
    return rules_for(study)
