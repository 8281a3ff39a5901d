"""The standard deck's slides of the omics pages that no page draws at the deck's fixed
Params: the immune landscape by cell type, the top responder-vs-non-responder comparison and
the somatic clones (or, without mutations, TCR clonality). Each is a view like the pages' own, so
the deck, the Slides page and `cli.py export --view omics_slides.NAME` draw the same figure.
(The composition slide is the Immune landscape page's own view, views.landscape.composition.)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import polars as pl

from analysis.clones import vaf_tracks
from analysis.differential import available_layers, compare
from analysis.embedding import available_bases, cell_table, load_embedding, stratified_subsample
from analysis.repertoire import METRIC_LABELS, repertoire_table
from components.figures.clones import repertoire_lines, vaf_lines
from components.figures.compare import ranked_table, volcano
from components.figures.landscape import embedding_scatter
from views import common
from views.spec import FigureSpec, recipe

if TYPE_CHECKING:
    from analysis.cohort import Cohort, Focus
    from data_loaders import Study

__all__ = ["EmbeddingSlideParams", "embedding", "comparison", "clones"]


@dataclass(frozen=True)
class EmbeddingSlideParams:
    """The basis (None: the first the study has) and how many cells are drawn at most
    (stratified by sample and cell type, seeded)."""

    basis: str | None = None
    max_points: int = 50_000
    seed: int = 0


@recipe
def embedding(study: Study, *, cohort: Cohort | None = None,
              params: EmbeddingSlideParams = EmbeddingSlideParams(), focus: Focus | None = None
              ) -> FigureSpec | None:
    """Cells on the embedding coloured by cell type; None without single-cell data."""
    if not study.has("single_cell"):
        return None
    bases = available_bases(study)
    if not bases:
        return None
    basis = params.basis if params.basis in bases else bases[0]
    emb = load_embedding(study, basis=basis)
    cells = common.apply(study, cell_table(study), cohort)
    if cells.height == 0:
        return None
    pick = stratified_subsample(cells, max_points=params.max_points, seed=params.seed)
    rows = cells.get_column("cell").to_numpy()[pick]
    sub = cells[pick].with_columns(pl.Series("x", emb.coords[rows, 0]),
                                   pl.Series("y", emb.coords[rows, 1]))
    fig = embedding_scatter(sub, color="cell_type", basis=basis.removeprefix("X_").upper(),
                            title=f"Cells by type ({sub.height:,} of {cells.height:,} shown)")
    data = sub.group_by("cell_type").agg(pl.len().alias("n_cells_shown")).sort("cell_type")
    return FigureSpec("embedding", "Immune landscape by cell type", fig, data, params,
                      f"{cells.height:,} cells; {sub.height:,} drawn (stratified by sample "
                      "and cell type)")


@recipe
def comparison(study: Study, *, cohort: Cohort | None = None, params: None = None,
               focus: Focus | None = None) -> FigureSpec | None:
    """Responders vs non-responders on the first layer the study has (proteomics, RNA,
    measurements, TCR) at D28; None when no layer or no two groups can be compared."""
    missing = available_layers(study)
    choice = next(((layer, w) for layer, w in (("proteomics", "D28"), ("rna", "D28"),
                                               ("measurements", "D28"), ("tcr", "D28"))
                   if not missing[layer]), None)
    if choice is None:
        return None
    layer, window = choice
    try:
        res = compare(study, layer=layer, window=window,
                      subjects=common.subjects(study, cohort))
    except ValueError:
        return None
    if res.filter(pl.col("p_value").is_not_null()).height == 0:
        return None
    ga, gb = res.get_column("group_a")[0], res.get_column("group_b")[0]
    fig = volcano(res, group_a=ga, group_b=gb, x_title=res.get_column("effect_measure")[0],
                  title=f"{layer.capitalize()} at {window}: {ga} vs {gb}")
    top = res.head(1).row(0, named=True)
    return FigureSpec(
        "compare-volcano", f"{ga} vs {gb}: {layer} at {window}", fig, data=ranked_table(res),
        caption=f"{res.get_column('window_rule')[0]}. n = {top['n_group_a']} vs "
                f"{top['n_group_b']}; two-sided Mann-Whitney (exact/permutation), BH-FDR. "
                f"Top: {top['feature']} (p = {top['p_value']:.2g}).")


@recipe
def clones(study: Study, *, cohort: Cohort | None = None, params: None = None,
           focus: Focus | None = None) -> FigureSpec | None:
    """VAF per gene over time; without mutations, TCR clonality over time; None without
    either."""
    tracks = common.apply(study, vaf_tracks(study), cohort)
    if tracks.height:
        fig = vaf_lines(tracks, colors=common.colors(study, cohort),
                        title="Variant allele fraction per gene")
        return FigureSpec("clones", "Somatic clones: VAF over time", fig, data=tracks,
                          caption="Largest VAF of each gene per sequenced sample; open markers "
                                  "= not detected.")
    rep = repertoire_table(study)
    if rep.height == 0:
        return None
    groups = common.groups(study)
    rep = common.apply(study, rep, cohort).join(
        groups.select("subject_id", pl.col("response_group").alias("group")),
        on="subject_id", how="left")
    fig = repertoire_lines(rep, metric="clonality", y_title=METRIC_LABELS["clonality"],
                           title="TCR clonality over time")
    return FigureSpec("clones", "TCR repertoire clonality", fig, data=rep,
                      caption="Clonality = 1 - Shannon entropy / ln(richness), per sample.")
