"""Immune landscape: cells (single-cell RNA or flow cytometry events) on an embedding, coloured
by type, patient, day window, response or expression; box/lasso selections with marker genes;
cell-type composition over time and by response group (patient-level)."""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import polars as pl
import streamlit as st

from analysis import composition as comp
from analysis import embedding as emb
from analysis.markers import rank_markers
from analysis.rules import rules_for
from analysis.vocab import UNMAPPED
from components import access, filters, render
from components.figures import landscape as figs
from components.safe import md
from data_loaders.formats.fcs import FLOW_COFACTOR, MASS_COFACTOR, flow_events, flow_samples
from data_loaders.gene_sets import parse_gmt, shipped_gene_sets, typed_gene_set
from views import clones as vc
from views import landscape as lv

IN_APP_LIMIT = 50_000
MAX_POINTS = 150_000
PRESET_GENES = ("CD7", "CD3E", "NKG7", "GZMB", "IFNG")
COLOR_BY = ("Cell type", "Patient", "Day window", "Response group", "CAR+ status", "Gene",
            "Signature score")
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
    st.info("Nothing to draw: this study has no single-cell file (.h5ad, .h5mu, .loom, "
            "AnnData .zarr or 10x output whose cells name their patient and sample or time; "
            "see docs/importing.md) and no flow cytometry samples (rows of the "
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
common = {"cohort": ctx.cohort, "focus": focus, "windows": comp.DEFAULT_WINDOWS,
          "facet": tuple(WINDOWS[f] for f in facet) if len(facet) == 2 else ()}


def _selected(event: object) -> np.ndarray:
    points = (event or {}).get("selection", {}).get("points", []) if event else []
    ids = [p.get("customdata") for p in points]
    ids = [i[0] if isinstance(i, list) else i for i in ids if i is not None]
    return np.unique(np.asarray(ids, dtype=np.int64))


def _draw(view: figs.LandscapeView, params: LandscapeParams) -> np.ndarray:
    st.caption(f"Showing {view.points.height:,} of {view.n_total:,} {unit} (stratified by "
               f"sample{' and cell type' if unit == 'cells' else ''}, seeded); composition "
               "and statistics use all of them.")
    event = render.show_figure(view.fig, key="il-embedding", name=f"{study.name}_landscape",
                               data=view.points, on_select="rerun",
                               selection_mode=("box", "lasso"))
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
        st.info("The single-cell file holds no embedding (obsm X_umap, umap, X_tsne, X_pca, "
                "...).")
        _compute_button(n_cells, "a UMAP", lambda p: emb.embed_study(study, progress=p))
        st.stop()
    basis = c2.selectbox("Embedding", bases, key="il-basis")
    if (source_of_types := emb.cell_type_source(study)).startswith("clusters"):
        st.caption(f"Cell types are the file's {source_of_types}: no annotation column was "
                   "found (name one in study.toml [single_cell.obs] cell_type).")
    genes = filters.compute(emb.var_names, study) if color_by == "Gene" else []
    gene = st.selectbox("Gene (type to search)", [g for g in PRESET_GENES if g in genes] +
                        sorted(set(genes) - set(PRESET_GENES)), key="il-gene") \
        if genes else None
    shipped = {g.name: g for g in (*shipped_gene_sets(),
                                   *st.session_state.get("il-user-sets", ()))}
    signature = shipped[st.selectbox("Signature (shipped, or yours from 'Signatures per "
                                     "patient')", list(shipped), key="il-sig-colour")] \
        if color_by == "Signature score" else None
    label_types = c2.toggle("Label cell types", key="il-labels")
    params = LandscapeParams(source, basis, color_by, gene or (signature and signature.name),
                             tuple(facet))
    view = filters.compute(figs.landscape_view, study, basis=basis, gene=gene,
                           color=COLUMNS.get(color_by, "cell_type"), max_points=MAX_POINTS,
                           signature=signature, label_types=label_types, **common)
    picked = _draw(view, params)
else:
    n_files = flow_samples(study).height
    cofactor = c2.selectbox("arcsinh cofactor", [FLOW_COFACTOR, MASS_COFACTOR], key="il-cof",
                            format_func=lambda c: f"{c:g} ({'flow' if c > 10 else 'mass'})")
    per_file = max(200, min(5000, MAX_POINTS // n_files))
    events = filters.compute(flow_events, study, per_file=per_file, cofactor=cofactor)
    for msg in (*events.notes, *events.errors):
        st.warning(md(msg))
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
    flow = {**kw, "params": umap_p if got.basis.startswith("UMAP") else pca_p}
    view = filters.compute(figs.landscape_view, study, basis=got.basis, gene=marker,
                           color=COLUMNS.get(color_by, "subject_id"), flow=flow, **common)
    params = LandscapeParams(source, got.basis, color_by, marker, tuple(facet),
                             cofactor=cofactor, markers=tuple(markers))
    picked = _draw(view, params)

# ---- selection ----------------------------------------------------------------------------
sets = st.session_state.setdefault("il-sets", {})
if picked.size:
    st.session_state["il-selection"] = (source, picked)
current = st.session_state.get("il-selection")
if current and current[0] == source and current[1].size:
    cells = filters.compute(emb.cell_table, study) if unit == "cells" else view.points
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
    st.caption(f"From patients {md(', '.join(subjects))}; days {days.min()} to {days.max()}. "
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
                who = cells.get_column("subject_id").to_numpy() \
                    if cells.height == index.n_cells else None
                markers = rank_markers(index, selected=mask, top=25, patients=who)
                st.markdown("**Top 25 marker genes, selection vs all other cells** "
                            "(Wilcoxon rank-sum, BH-FDR)")
                n_sel = markers.get_column("n_patients_selected")[0] if markers.height else None
                st.caption("Exploratory: a cell-level test treats cells as independent, so "
                           "p-values are far smaller than the patients justify"
                           + (f" ({n_sel} patient(s) in the selection, "
                              f"{markers.get_column('n_patients_rest')[0]} in the rest)"
                              if n_sel is not None else "")
                           + ". For a patient-level test of these cells use "
                           "'Pseudobulk by patient' below with 'the current selection'.")
                render.show_table(markers, key="il-markers-table", name=f"{study.name}_markers")
if sets:
    chosen = st.selectbox("Kept cell sets", ["-"] + list(sets), key="il-sets-pick")
    if chosen != "-" and st.button("Use as selection", key="il-set-use"):
        st.session_state["il-selection"] = sets[chosen]
        st.rerun()
rna_sets = {k: v[1] for k, v in sets.items() if v[0] == "Single-cell RNA"}
if source == "Single-cell RNA" and current and current[0] == source:
    rna_sets.setdefault("current selection", current[1])
if source == "Single-cell RNA" and len(rna_sets) >= 2:
    with st.expander("Compare two selections (A vs B, not vs the rest)"):
        ca, cb = st.columns(2)
        a = ca.selectbox("A", list(rna_sets), key="il-two-a")
        b = cb.selectbox("B", [k for k in rna_sets if k != a], key="il-two-b")
        try:
            spec = lv.two_selections(study, cohort=ctx.cohort, params=lv.SelectionPair(
                tuple(int(c) for c in rna_sets[a]), tuple(int(c) for c in rna_sets[b]),
                (a, b)))
            st.caption(spec.caption)
            render.show_table(spec.data, key="il-two-table", name=f"{study.name}_{a}_vs_{b}")
        except ValueError as exc:
            st.warning(str(exc))

# ---- single-cell depth: distributions, pseudobulk, signatures ----------------------------------
if source == "Single-cell RNA":
    _depth_cells = filters.compute(emb.cell_table, study)
    _types = sorted(_depth_cells.get_column("cell_type").drop_nulls().unique().to_list()) \
        if "cell_type" in _depth_cells.columns else []

    st.header("Genes and scores by cell type")
    d1, d2, d3 = st.columns([2, 1, 1])
    kind = d2.segmented_control("Show", ["Genes", "Signatures"], default="Genes",
                                key="il-dist-kind") or "Genes"
    split = d3.selectbox("Split by", list(lv.SPLITS), key="il-dist-split")
    shipped_sets = tuple(shipped_gene_sets())
    names = [g.name for g in shipped_sets] if kind == "Signatures" else \
        filters.compute(emb.var_names, study)
    default = names[:2] if kind == "Signatures" else [g for g in PRESET_GENES if g in names][:3]
    feats = d1.multiselect("Genes" if kind == "Genes" else "Signatures", names,
                           default=default, key=f"il-dist-{kind}", max_selections=8)
    if feats:
        dparams = lv.DistributionParams(tuple(feats), "gene" if kind == "Genes" else "signature",
                                        lv.SPLITS[split], gene_sets=shipped_sets)
        violin, dots = filters.compute(lv.distribution, study, params=dparams,
                                       cohort=ctx.cohort)
        render.show(violin, key="il-violin")
        render.show(dots, key="il-dots")

    st.header("Pseudobulk by patient (DESeq2)")
    st.caption("Raw counts summed per sample over the chosen cells; the patient is the "
               "replicate. Lowly expressed genes dropped by edgeR's filterByExpr rule; "
               "DESeq2 Wald test (pydeseq2), BH-FDR.")
    p1, p2, p3, p4 = st.columns(4)
    choices = ["cell type"] + (["the current selection"] if current and current[0] == source
                               else []) + (["CAR status"] if "car_positive" in
                                           _depth_cells.columns else [])
    what = p1.selectbox("Cells", choices, key="il-pb-what")
    if what == "cell type":
        selection = lv.pb.CellSelection(cell_type=p2.selectbox("Cell type", _types,
                                                                key="il-pb-type"))
    elif what == "CAR status":
        selection = lv.pb.CellSelection(car_status=p2.selectbox("CAR status", ["CAR+", "CAR-"],
                                                                 key="il-pb-car"))
    else:
        selection = lv.pb.CellSelection(cells=tuple(int(c) for c in current[1]),
                                        label=f"{current[1].size:,} selected cells")
    design = p3.selectbox("Test", ["Responders vs non-responders", "Post vs pre (paired)"],
                          key="il-pb-design")
    window = p4.selectbox("Window", lv.WINDOW_NAMES, index=lv.WINDOW_NAMES.index("D28"),
                          key="il-pb-window")
    pparams = lv.cohort_params(study, cohort=ctx.cohort, selection=selection, window=window,
                               design="paired" if design.startswith("Post") else "groups")
    result = lv.pb.cached_result(study, params=pparams)
    if result is None and st.button("Run the pseudobulk test", key="il-pb-run",
                                    help="Tens of seconds; the result is cached on disk."):
        bar = st.progress(0.0, "starting")
        try:
            result = lv.pb.pseudobulk_de(study, params=pparams, progress=lambda f, m: bar
                                         .progress(min(max(f, 0.0), 1.0), m))
        except ValueError as exc:
            st.warning(str(exc))
        bar.empty()
    if result is not None:
        render.show(lv.pseudobulk_volcano(study, cohort=ctx.cohort, params=pparams), key="il-pb-volcano")
        render.show_rules(rules_for(study), names=["pseudobulk_min_cells",
                                                   "pseudobulk_min_count",
                                                   "pseudobulk_min_total_count"], key="il-pb-rules")
        spec = lv.pseudobulk_result_table(study, cohort=ctx.cohort, params=pparams)
        st.caption(spec.caption)
        render.show_table(spec.data, key="il-pb-table", name=f"{study.name}_pseudobulk")

    st.header("Signatures per patient")
    s1, s2, s3 = st.columns(3)
    methods = ["mean_z", "aucell", "pseudobulk"]
    method = s1.selectbox("Score", methods, key="il-sig-method",
                          index=methods.index(rules_for(study).signature_method),
                          format_func=lambda m: lv.sig.SCORE_UNITS[m])
    sig_window = s2.selectbox("Test window", lv.WINDOW_NAMES,
                              index=lv.WINDOW_NAMES.index("D28"), key="il-sig-window")
    gene_sets = list(shipped_sets)
    upload = s3.file_uploader("Your gene sets (GMT)", type=["gmt", "txt"], key="il-sig-gmt")
    typed = st.text_input("Or type a gene list (commas or spaces)", key="il-sig-typed")
    try:
        if upload is not None:
            gene_sets += parse_gmt(upload.getvalue().decode("utf-8-sig"), name=upload.name)
        if typed.strip():
            gene_sets.append(typed_gene_set(typed, name="typed genes"))
    except (ValueError, UnicodeDecodeError) as exc:
        st.warning(str(exc))
    st.session_state["il-user-sets"] = tuple(gene_sets[len(shipped_sets):])
    try:
        fig_spec, table_spec = filters.compute(lv.signature_comparison, study,
                                               gene_sets=tuple(gene_sets), method=method,
                                               window=sig_window)
        render.show(fig_spec, key="il-sig-fig")
        st.caption(table_spec.caption)
        render.show_table(table_spec.data, key="il-sig-table", name=f"{study.name}_signatures")
    except ValueError as exc:
        st.warning(str(exc))

# ---- composition ------------------------------------------------------------------------------
st.header("Composition")
if not has_sc:
    st.info("Composition needs annotated single cells (obs cell_type in an .h5ad); this study "
            "has flow cytometry events only.")
    st.stop()
comp_fig, data = filters.compute(figs.composition_view, study, cohort=ctx.cohort)
view_name = st.segmented_control("View", ["Per sample", "By response group", "CD7+ T and NK",
                                           "CAR+ T cells vs qPCR"], default="Per sample",
                                  key="il-comp-view") or "Per sample"
if view_name == "Per sample":
    render.show_figure(comp_fig, key="il-comp", name=f"{study.name}_comp", data=data)
elif view_name == "By response group":
    by_win = comp.composition_by_window(data, groups=ctx.groups)
    render.show_figure(figs.composition_by_window_figure(
        by_win, window_order=[w.label for w in comp.DEFAULT_WINDOWS]), key="il-comp-win",
        name=f"{study.name}_composition_by_group", data=by_win)
elif view_name == "CD7+ T and NK":
    change = comp.cd7_change(ctx.apply(filters.compute(comp.study_cd7_fractions, study)),
                             groups=ctx.groups)
    lineages = filters.compute(comp.study_lineages, study)
    unmapped = lineages.filter(pl.col("lineage") == UNMAPPED).get_column("cell_type").to_list()
    st.caption(f"Fraction of all cells that are CD7+ (CD7 expression > "
               f"{rules_for(study).cd7_threshold:g}, rule cd7_threshold) T or NK cells; mean "
               "of each patient's samples before (day <= 0) and after infusion. T and NK "
               "cells by their cell-type names (docs/rules.md, Vocabulary)"
               + (f"; not counted, lineage unknown: {', '.join(unmapped)} (add them to "
                  "cell_lineages in study.toml [rules])" if unmapped else "") + ".")
    render.show_figure(figs.cd7_change_figure(change), key="il-cd7",
                       name=f"{study.name}_cd7_change", data=change)
else:
    car = ctx.apply(filters.compute(comp.study_car_fraction, study))
    qpcr = ctx.apply(study.series(analytes=["CAR_QPCR"]))
    render.show_figure(figs.car_vs_qpcr_figure(car, qpcr, colors=ctx.colors), key="il-car",
                       name=f"{study.name}_car_vs_qpcr", data=car)


# ---- CAR+ cells, CD7 groups, composition with uncertainty (views/clones.py) -------------------


st.header("CAR+ cells")
base, _ = filters.compute(vc.car_cut, study, params=vc.CarParams())
if base.feature is None:
    st.info(base.note)
else:
    c1, c2 = st.columns(2)
    cut_at = c1.number_input("CAR+ above (CAR counts)", min_value=0.0, step=0.5,
                             value=float(round(base.threshold, 3)), key="il-car-cut",
                             help="Starts at the study's cut; change it to see the effect")
    window = c2.selectbox("Window", list(vc.WINDOWS), index=1, key="il-car-window")
    adjusted = abs(cut_at - round(base.threshold, 3)) > 1e-9
    car_params = vc.CarParams(threshold=cut_at if adjusted else None, window=window)
    _, hist = filters.compute(vc.car_cut, study, params=car_params)
    render.show(hist, key="il-car-hist")
    if adjusted:
        may_save = not os.environ.get("STUDIES_ROOT") or access.may_create_studies(
            render.current_viewer())
        if st.button(f"Save {cut_at:g} as this study's CAR+ cut (study.toml [rules])",
                     key="il-car-save", disabled=not may_save,
                     help="Writes car_threshold_method = \"fixed\" and car_threshold; "
                     "comments in study.toml are not kept"):
            written = vc.save_car_threshold(study, cut_at)
            filters.reload_study()
            st.success(f"Saved in {written.name}.")
    render.show(filters.compute(vc.car_fraction, study, cohort=ctx.cohort, params=car_params),
          key="il-car-qpcr")
    for k, spec in enumerate(filters.compute(vc.car_phenotype, study, cohort=ctx.cohort,
                                             params=car_params)):
        render.show(spec, key=f"il-car-pheno-{k}")
    for k, spec in enumerate(filters.compute(vc.cd7_view, study, cohort=ctx.cohort,
                                             params=car_params)):
        render.show(spec, key=f"il-car-cd7-{k}")

st.header("Composition with uncertainty")
c1, c2, c3 = st.columns(3)
comp_window = c1.selectbox("Window", list(vc.WINDOWS), index=1, key="il-ct-window")
against = c2.selectbox("Compare", ["Responders vs non-responders"]
                       + [f"with {w}" for w in vc.WINDOWS if w != comp_window],
                       key="il-ct-against")
transform = c3.selectbox("Transform", ["clr", "logit"], key="il-ct-transform",
                         format_func={"clr": "centred log-ratio", "logit": "logit"}.get)
comp_params = vc.CompositionParams(
    window=comp_window, transform=transform,
    window_b=None if against.startswith("Responders") else against.removeprefix("with "))
for k, spec in enumerate(filters.compute(vc.composition_test, study, cohort=ctx.cohort,
                                         params=comp_params)):
    render.show(spec, key=f"il-ct-{k}")
