"""Immune landscape: cells (single-cell RNA or flow cytometry events) on an embedding, coloured
by type, patient, day window, response or expression; box/lasso selections with marker genes;
cell-type composition over time and by response group (patient-level)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl
import streamlit as st

from analysis import composition as comp
from analysis import embedding as emb
from analysis.markers import rank_markers
from components import filters, render
from components.figures import landscape as figs
from components.theme import GROUP_COLORS
from data_loaders.formats.fcs import FLOW_COFACTOR, MASS_COFACTOR, flow_events, flow_samples

IN_APP_LIMIT = 50_000
MAX_POINTS = 150_000
PRESET_GENES = ("CD7", "CD3E", "NKG7", "GZMB", "IFNG")
COLOR_BY = ("Cell type", "Patient", "Day window", "Response group", "CAR+ status", "Gene")
COLUMNS = {"Cell type": "cell_type", "Patient": "subject_id", "Day window": "window",
           "Response group": "response_group", "CAR+ status": "car_status",
           "Shared focus": "focus"}
WINDOWS = {w.label: w for w in (*comp.DEFAULT_WINDOWS, comp.DayWindow("Post-infusion", 1))}


@dataclass(frozen=True)
class LandscapeParams:
    source: str
    basis: str
    color_by: str
    gene: str | None
    facet_windows: tuple[str, ...]
    max_points: int = MAX_POINTS
    seed: int = 0
    cofactor: float | None = None
    markers: tuple[str, ...] = ()


ctx = filters.context()
study = ctx.study
st.title("Immune landscape")
has_sc, has_flow = study.has("single_cell"), flow_samples(study).height > 0
if not has_sc and not has_flow:
    st.info("Nothing to draw: this study has no single-cell file (an .h5ad whose obs has "
            "subject_id and sample_id or day) and no flow cytometry samples (rows of the "
            "samples table with assay `flow_fcs` and a `file` column naming .fcs files). Add "
            "either to the study folder (see docs/data-format.md).")
    st.stop()
sources = (["Single-cell RNA"] if has_sc else []) + (["Flow cytometry"] if has_flow else [])
source = st.segmented_control("Data", sources, default=sources[0], key="il-source") or \
    sources[0]
unit = "cells" if source == "Single-cell RNA" else "events"
focus = filters.get_focus(study)
c1, c2, c3 = st.columns([1, 1, 2])
options = COLOR_BY if unit == "cells" else ("Marker", "Patient", "Day window", "Response group")
color_by = c1.selectbox("Colour by", options + (("Shared focus",) if focus else ()),
                        key="il-color")
facet = c3.multiselect("Side by side (two day windows)", list(WINDOWS), max_selections=2,
                       key="il-facet", placeholder="One panel")


def _selected(event: object) -> np.ndarray:
    points = (event or {}).get("selection", {}).get("points", []) if event else []
    ids = [p.get("customdata") for p in points]
    ids = [i[0] if isinstance(i, list) else i for i in ids if i is not None]
    return np.unique(np.asarray(ids, dtype=np.int64))


def _draw(points: pl.DataFrame, n_total: int, basis: str, values: np.ndarray | None,
          params: LandscapeParams) -> np.ndarray:
    points = emb.annotate_points(points, windows=comp.DEFAULT_WINDOWS, focus=focus,
                                 facet_windows=[WINDOWS[f] for f in facet if len(facet) == 2])
    column = "expression" if values is not None else COLUMNS.get(color_by, "cell_type")
    colors = {"Patient": ctx.colors, "Response group": GROUP_COLORS, "Shared focus":
              {"in focus": "#D55E00", "other": "#CCCCCC"},
              "CAR+ status": {"CAR+": "#D55E00", "CAR-": "#BBBBBB"}}.get(color_by, {})
    if values is not None:
        points = points.with_columns(pl.Series(column, values[points.get_column("_k")]))
    st.caption(f"Showing {points.height:,} of {n_total:,} {unit} (stratified by sample"
               f"{' and cell type' if unit == 'cells' else ''}, seeded); composition and "
               "statistics use all of them.")
    fig = figs.embedding_scatter(points, color=column, continuous=values is not None,
                                 colors=colors, facet="facet" if len(facet) == 2 else None,
                                 facet_order=facet, basis=basis.removeprefix("X_").upper())
    event = render.show_figure(fig, key="il-embedding", name=f"{study.name}_landscape",
                               on_select="rerun", selection_mode=("box", "lasso"))
    render.show_params(params)
    return _selected(event)


def _compute_button(n: int, label: str, run) -> None:  # noqa: ANN001 - a callable
    if n > IN_APP_LIMIT:
        st.info(f"No embedding is stored for these {n:,} {unit}. Compute it once on the command "
                f"line (the app then reads it instantly):\n\n"
                f"`python cli.py embed --study {study.path}`")
        return
    if st.button(f"Compute {label} for {n:,} {unit}", key="il-compute"):
        bar = st.progress(0.0, "starting")
        run(lambda f, m: bar.progress(min(max(f, 0.0), 1.0), m))
        st.rerun()


if source == "Single-cell RNA":
    bases = emb.available_bases(study)
    n_cells = filters.compute(emb.cell_table, study).height
    if not bases:
        st.info("The single-cell file holds no embedding (obsm X_umap, X_tsne or X_pca).")
        _compute_button(n_cells, "a UMAP", lambda p: emb.embed_study(study, progress=p))
        st.stop()
    basis = c2.selectbox("Embedding", bases, key="il-basis")
    genes = filters.compute(emb.var_names, study) if color_by == "Gene" else []
    gene = st.selectbox("Gene (type to search)", [g for g in PRESET_GENES if g in genes] +
                        sorted(set(genes) - set(PRESET_GENES)), key="il-gene") \
        if genes else None
    drawn = filters.compute(emb.drawn_cells, study, basis=basis, cohort=ctx.cohort,
                            max_points=MAX_POINTS)
    values = filters.compute(emb.gene_vector, study, gene=gene) if gene else None
    params = LandscapeParams(source, basis, color_by, gene, tuple(facet))
    picked = _draw(drawn.frame.with_columns(pl.col("cell").alias("_k")), drawn.n_total, basis,
                   values, params)
else:
    n_files = flow_samples(study).height
    cofactor = c2.selectbox("arcsinh cofactor", [FLOW_COFACTOR, MASS_COFACTOR], key="il-cof",
                            format_func=lambda c: f"{c:g} ({'flow' if c > 10 else 'mass'})")
    per_file = max(200, min(5000, MAX_POINTS // n_files))
    events = filters.compute(flow_events, study, per_file=per_file, cofactor=cofactor)
    for msg in (*events.notes, *events.errors):
        st.warning(msg)
    markers = st.multiselect("Markers to embed", list(events.markers),
                             default=list(events.markers), key="il-markers")
    if len(markers) < 2:
        st.info("Choose at least two markers to embed.")
        st.stop()
    umap_p, pca_p = emb.EmbeddingParams(), emb.EmbeddingParams(method="pca")
    kw = {"per_file": per_file, "cofactor": cofactor, "markers": tuple(markers)}
    got = emb.cached_flow_embedding(study, digest=events.digest, markers=markers,
                                    params=umap_p) or \
        filters.compute(emb.flow_landscape, study, params=pca_p, **kw)
    if got.basis.startswith("PCA"):
        st.caption("Showing PCA of the markers; a UMAP separates populations better.")
        _compute_button(events.frame.height, "a UMAP", lambda p: emb.embed_flow(
            study, events.frame, markers=markers, digest=events.digest, params=umap_p,
            progress=p))
    marker = st.selectbox("Marker", markers, key="il-marker") if color_by == "Marker" else None
    points = events.frame.with_row_index("cell").with_columns(
        pl.col("cell").cast(pl.Int64), pl.col("cell").cast(pl.Int64).alias("_k"),
        pl.Series("x", got.coords[:, 0]), pl.Series("y", got.coords[:, 1])).join(
        ctx.groups.select("subject_id", "response_group"), on="subject_id", how="left")
    points = ctx.apply(points)
    values = events.frame.get_column(marker).to_numpy() if marker else None
    params = LandscapeParams(source, got.basis, color_by, marker, tuple(facet),
                             cofactor=cofactor, markers=tuple(markers))
    picked = _draw(points, events.n_total, got.basis, values, params)

# ---- selection ----------------------------------------------------------------------------
sets = st.session_state.setdefault("il-sets", {})
if picked.size:
    st.session_state["il-selection"] = (source, picked)
current = st.session_state.get("il-selection")
if current and current[0] == source and current[1].size:
    cells = filters.compute(emb.cell_table, study) if unit == "cells" else points
    summary = comp.selection_summary(cells, selected=current[1])
    days = summary.get_column("day").drop_nulls()
    subjects = tuple(sorted(summary.get_column("subject_id").unique().to_list()))
    filters.set_focus(filters.Focus(subjects=subjects, day_min=days.min(), day_max=days.max(),
                                    label=f"{current[1].size:,} selected {unit}",
                                    study_key=study.cache_key))
    st.subheader(f"Selection: {current[1].size:,} {unit}")
    if st.button("Clear selection", key="il-clear"):
        st.session_state.pop("il-selection", None)
        filters.set_focus(None)
        st.rerun()
    st.caption(f"From patients {', '.join(subjects)}; days {days.min()} to {days.max()}. "
               "Blood counts and kinetics highlight these patients and days.")
    left, right = st.columns(2)
    with left:
        render.show_table(summary, key="il-sel-summary", name=f"{study.name}_selection")
        name = st.text_input("Keep this selection as", key="il-set-name",
                             placeholder="e.g. expanded CAR-T")
        if st.button("Keep cell set", key="il-keep", disabled=not name):
            sets[name] = current
    if source == "Single-cell RNA":
        with right, st.spinner("Ranking marker genes over all cells ..."):
            index = filters.compute(emb.read_marker_index, study)
            mask = np.zeros(index.n_cells, dtype=bool)
            mask[current[1]] = True
            if 0 < mask.sum() < index.n_cells:
                st.markdown("**Top 25 marker genes, selection vs all other cells** "
                            "(Wilcoxon rank-sum, BH-FDR)")
                render.show_table(rank_markers(index, selected=mask, top=25),
                                  key="il-markers-table", name=f"{study.name}_markers")
if sets:
    chosen = st.selectbox("Kept cell sets", ["-"] + list(sets), key="il-sets-pick")
    if chosen != "-" and st.button("Use as selection", key="il-set-use"):
        st.session_state["il-selection"] = sets[chosen]
        st.rerun()

# ---- composition ------------------------------------------------------------------------------
st.header("Composition")
if not has_sc:
    st.info("Composition needs annotated single cells (obs cell_type in an .h5ad); this study "
            "has flow cytometry events only.")
    st.stop()
data = ctx.apply(filters.compute(comp.cell_type_composition, study))
data = data.join(study.samples.select("sample_id", "timepoint"), on="sample_id", how="left")
data = data.with_columns(pl.coalesce("timepoint", pl.format("D{}", "day")).alias("sample_label"))
tabs = st.tabs(["Per sample", "By response group", "CD7+ T and NK", "CAR+ T cells vs qPCR"])
with tabs[0]:
    render.show_figure(figs.composition_bars(data), key="il-comp", name=f"{study.name}_comp",
                       data=data)
with tabs[1]:
    by_win = comp.composition_by_window(data, groups=ctx.groups)
    render.show_figure(figs.composition_by_window_figure(
        by_win, window_order=[w.label for w in comp.DEFAULT_WINDOWS]), key="il-comp-win",
        name=f"{study.name}_composition_by_group", data=by_win)
with tabs[2]:
    change = comp.cd7_change(ctx.apply(filters.compute(comp.study_cd7_fractions, study)),
                             groups=ctx.groups)
    render.show_figure(figs.cd7_change_figure(change), key="il-cd7",
                       name=f"{study.name}_cd7_change", data=change)
with tabs[3]:
    car = ctx.apply(filters.compute(comp.study_car_fraction, study))
    qpcr = ctx.apply(study.series(analytes=["CAR_QPCR"]))
    render.show_figure(figs.car_vs_qpcr_figure(car, qpcr, colors=ctx.colors), key="il-car",
                       name=f"{study.name}_car_vs_qpcr", data=car)
