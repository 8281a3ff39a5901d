"""Immune landscape: cells (single-cell RNA or flow cytometry events) on an embedding, coloured
by type, patient, day window, response or expression; box/lasso selections with marker genes;
cell-type composition over time and by response group (patient-level). The recipes are in
views/landscape.py and views/landscape_depth.py; this page reads widgets into their Params."""

from __future__ import annotations

import os

import streamlit as st

from components import access, jobs_panel, render, session, session_memory, sidebar
from components.safe import md
from views import car_cells as car
from views import landscape as lv
from views import landscape_depth as ld
from views import landscape_raster as lr
from views import markers as mk

ctx = session.context(applies="patients and the day window: the cells drawn, selected, "
                      "compared and counted")
study, cohort = ctx.study, ctx.cohort
st.title("Immune landscape")
if not (sources := lv.sources(study)):
    st.info(lv.NOTHING_TO_DRAW)
    st.stop()
source = st.segmented_control("Data", sources, default=sources[0],
                              key=sidebar.linked("il-source", options=sources)) or \
    sources[0]
unit, rna = lv.unit(source), source == lv.RNA
focus = session.get_focus(study)
c1, c2, c3 = st.columns([1, 1, 2])
colours = lv.colour_options(source, focus=focus is not None)
color_by = c1.selectbox("Colour by", colours, key=sidebar.linked("il-color", options=colours))
facet = c3.multiselect("Side by side (two day windows)", list(lv.FACET_WINDOWS),
                       max_selections=2, placeholder="One panel",
                       key=sidebar.linked("il-facet", options=list(lv.FACET_WINDOWS),
                                          shape="many"))


def _compute_button(n: int, params: lv.LandscapeParams) -> None:
    if n > lv.IN_APP_LIMIT:
        st.info(f"No embedding is stored for these {n:,} {unit}. Compute it once on the command "
                f"line (the app then reads it instantly):\n\n"
                f"`python cli.py embed --study {study.path}`")
    else:   # a job on the jobs cluster; the page reruns when it is done
        jobs_panel.run(lv.compute_umap, study, params=params, study=study, key="il-compute",
                       label=f"UMAP of {n:,} {unit}", start=f"Compute a UMAP for {n:,} {unit}")


if rna:
    if not (bases := lv.bases(study)):
        st.info("The single-cell file holds no embedding (obsm X_umap, umap, X_tsne, X_pca, "
                "...).")
        _compute_button(lv.n_cells(study), lv.LandscapeParams(source, ""))
        st.stop()
    basis = c2.selectbox("Embedding", bases, key=sidebar.linked("il-basis", options=bases))
    if note := lv.cell_type_note(study):
        st.caption(note)
    gene_choices = session.cached_view(lv.gene_choices, study)
    gene = st.selectbox("Gene (type to search)", gene_choices,
                        key=sidebar.linked("il-gene", options=gene_choices)) \
        if color_by == "Gene" else None
    if gene is not None and not lv.gene_store_ready(study):
        jobs_panel.run(lv.build_gene_store, study, study=study, key="il-genes",
                       label="Gene-column store (built once per study)")
        st.stop()
    sets = {g.name: g for g in (*lv.shipped_sets(), *st.session_state.get("il-user-sets", ()))}
    signature = sets[st.selectbox("Signature (shipped, or yours from 'Signatures per "
                                  "patient')", list(sets),
                                  key=sidebar.linked("il-sig-colour", options=list(sets)))] \
        if color_by == "Signature score" else None
    params = lv.LandscapeParams(source, basis, color_by, gene, tuple(facet), signature=signature,
                                label_types=c2.toggle(
                                    "Label cell types",
                                    key=sidebar.linked("il-labels", kind=bool)))
else:
    cofactor = c2.selectbox("arcsinh cofactor", lv.COFACTORS,
                            key=sidebar.linked("il-cof", options=lv.COFACTORS),
                            format_func=lambda c: f"{c:g} ({'flow' if c > 10 else 'mass'})")
    setup = session.cached_view(lv.flow_setup, study, params={"cofactor": cofactor})
    for msg in setup.messages:
        st.warning(md(msg))
    markers = st.multiselect("Markers to embed", list(setup.markers),
                             default=list(setup.markers),
                             key=sidebar.linked("il-markers", options=list(setup.markers),
                                                shape="many"))
    if len(markers) < 2:
        st.info("Choose at least two markers to embed.")
        st.stop()
    params = lv.flow_params(study, color_by=color_by, markers=markers, cofactor=cofactor,
                            facet_windows=facet, marker=st.selectbox(
                                "Marker", markers,
                                key=sidebar.linked("il-marker", options=markers))
                            if color_by == "Marker" else None)
    if params.basis.startswith("PCA"):
        st.caption("Showing PCA of the markers; a UMAP separates populations better.")
        _compute_button(setup.n_events, params)

def _raster_embedding() -> tuple[int, ...]:
    """Above a million cells: the raster of every cell; a box zooms in or selects, a lasso
    selects from every cell (views/landscape_raster.py)."""
    r1, r2 = st.columns([2, 1])
    modes = ["selects cells", "zooms in"]
    box = r1.segmented_control("A box", modes, default="selects cells",
                               key=sidebar.linked("il-box-mode", options=modes)) \
        or "selects cells"
    window = st.session_state.get("il-window")
    if window and r2.button("Show every cell", key="il-window-reset"):
        st.session_state.pop("il-window", None)
        st.rerun()
    rparams = lr.RasterParams(params, *(window or (None, None)))
    shown = session.cached_view(lr.raster, study, cohort=cohort, params=rparams, focus=focus)
    st.caption(shown.caption)
    event = render.show_figure(shown.fig, key="il-embedding", name=f"{study.name}_landscape",
                               data=shown.data, params=rparams, on_select="rerun",
                               selection_mode=("box", "lasso"))
    render.show_params(rparams)
    if box == "zooms in":
        if (zoom := lr.window_of(event)) and zoom != window:
            st.session_state["il-window"] = zoom
            st.rerun()
        return ()
    return lr.selected_in(study, cohort=cohort, params=rparams, event=event) if event else ()


if rna and lr.use_raster(study):
    picked = _raster_embedding()
else:
    spec = session.cached_view(lv.embedding, study, cohort=cohort, params=params, focus=focus)
    event = render.show(spec, key="il-embedding", name=f"{study.name}_landscape",
                        on_select="rerun", selection_mode=("box", "lasso"))
    render.show_params(params)
    picked = lv.selected_cells(event)

# ---- selection ----------------------------------------------------------------------------
sets = st.session_state.setdefault("il-sets", {})
if picked:      # within the session's memory cap (a selection can hold millions of cells)
    session_memory.keep("il-selection", (source, picked), droppable=True, study_dir=study.path,
                        what=f"the selection of {len(picked):,} {unit}")
current = st.session_state.get("il-selection")
current = current if current and current[0] == source and len(current[1]) else None
if current:
    sel = lv.SelectionParams(source, tuple(int(c) for c in current[1]),
                             embedding=None if rna else params)
    summary = session.cached_view(lv.selection_summary, study, params=sel)
    subjects, day_min, day_max = lv.selection_extent(summary.data)
    session.set_focus(session.Focus(subjects=subjects, day_min=day_min, day_max=day_max,
                                    label=f"{len(sel.cells):,} selected {unit}",
                                    study_key=study.cache_key))
    st.subheader(summary.title)
    if st.button("Clear selection", key="il-clear"):
        st.session_state.pop("il-selection", None)
        session.set_focus(None)
        st.rerun()
    st.caption(summary.caption)
    left, right = st.columns(2)
    with left:
        render.show_table(summary.data, key="il-sel-summary", name=f"{study.name}_selection")
        name = st.text_input("Keep this selection as", key="il-set-name",
                             placeholder="e.g. expanded CAR-T")
        if st.button("Keep cell set", key="il-keep", disabled=not name) and \
                session_memory.room_for(current, what=f"cell set '{name}'", study_dir=study.path):
            sets[name] = current
    if rna and not lv.gene_store_ready(study):
        with right:
            jobs_panel.run(lv.build_gene_store, study, study=study, key="il-genes",
                           label="Gene-column store for marker genes (built once per study)")
    elif rna:
        with right, st.spinner("Ranking marker genes over all cells ..."):
            try:
                top = session.cached_view(lv.selection_markers, study, params=sel)
                st.markdown(f"**{top.title}**")
                st.caption(top.caption)
                render.show_table(top.data, key="il-markers-table", name=f"{study.name}_markers")
            except ValueError as exc:
                st.info(str(exc))
if sets:
    chosen = st.selectbox("Kept cell sets", ["-"] + list(sets), key="il-sets-pick")
    if chosen != "-" and st.button("Use as selection", key="il-set-use"):
        st.session_state["il-selection"] = sets[chosen]
        st.rerun()
rna_sets = {k: v[1] for k, v in sets.items() if v[0] == lv.RNA}
if rna and current:
    rna_sets.setdefault("current selection", current[1])
if rna and len(rna_sets) >= 2:
    with st.expander("Compare two selections (A vs B, not vs the rest)"):
        ca, cb = st.columns(2)
        a = ca.selectbox("A", list(rna_sets), key="il-two-a")
        b = cb.selectbox("B", [k for k in rna_sets if k != a], key="il-two-b")
        try:
            two = ld.two_selections(study, cohort=cohort, params=ld.SelectionPair(
                tuple(int(c) for c in rna_sets[a]), tuple(int(c) for c in rna_sets[b]), (a, b)))
            st.caption(two.caption)
            render.show_table(two.data, key="il-two-table", name=f"{study.name}_{a}_vs_{b}")
        except ValueError as exc:
            st.warning(str(exc))

# ---- marker genes of every group over all cells: a job (views/markers.py) ----------------------
if rna and (groupings := mk.groupings(study)):
    st.header("Marker genes of every cell type")
    mparams = mk.GroupMarkersParams(st.selectbox(
        "Group cells by", groupings, key=sidebar.linked("il-gm-by", options=groupings)))
    if jobs_panel.run(mk.run_group_markers, study, params=mparams, study=study, key="il-gm",
                      label=f"Marker genes of every {mparams.group_by}",
                      start=f"Rank the marker genes of every {mparams.group_by}",
                      start_help="One pass over every cell (minutes at millions of cells); "
                      "the table is stored for every session") is not None:
        table = session.cached_view(mk.group_markers, study, params=mparams)
        st.caption(table.caption)
        render.show_table(table.data, key="il-gm-table",
                          name=f"{study.name}_markers_{mparams.group_by}")

# ---- single-cell depth: distributions, pseudobulk, signatures ----------------------------------
if rna:
    st.header("Genes and scores by cell type")
    d1, d2, d3 = st.columns([2, 1, 1])
    kinds = ["Genes", "Signatures"]
    kind = d2.segmented_control("Show", kinds, default="Genes",
                                key=sidebar.linked("il-dist-kind", options=kinds)) or "Genes"
    split = d3.selectbox("Split by", list(ld.SPLITS),
                         key=sidebar.linked("il-dist-split", options=list(ld.SPLITS)))
    shipped = lv.shipped_sets()
    names = [g.name for g in shipped] if kind == "Signatures" else \
        session.cached_view(lv.gene_choices, study)
    feats = d1.multiselect(kind, names, default=names[:2] if kind == "Signatures" else
                           [g for g in lv.PRESET_GENES if g in names][:3],
                           key=sidebar.linked(f"il-dist-{kind}", options=names, shape="many"),
                           max_selections=8)
    if feats:
        dparams = ld.DistributionParams(tuple(feats), "gene" if kind == "Genes" else
                                        "signature", ld.SPLITS[split], gene_sets=shipped)
        render.show(session.cached_view(ld.violins, study, cohort=cohort, params=dparams),
                    key="il-violin")
        render.show(session.cached_view(ld.dot_plot, study, cohort=cohort, params=dparams),
                    key="il-dots")

    st.header("Pseudobulk by patient (DESeq2)")
    st.caption("Raw counts summed per sample over the chosen cells; the patient is the "
               "replicate. Lowly expressed genes dropped by edgeR's filterByExpr rule; "
               "DESeq2 Wald test (pydeseq2), BH-FDR.")
    p1, p2, p3, p4 = st.columns(4)
    pb_cells = ld.pseudobulk_cells(study, has_selection=bool(current))
    what = p1.selectbox("Cells", pb_cells, key=sidebar.linked("il-pb-what", options=pb_cells))
    if what == "cell type":
        types = session.cached_view(ld.cell_types, study)
        selection = ld.CellSelection(cell_type=p2.selectbox(
            "Cell type", types, key=sidebar.linked("il-pb-type", options=types)))
    elif what == "CAR status":
        selection = ld.CellSelection(car_status=p2.selectbox(
            "CAR status", ["CAR+", "CAR-"],
            key=sidebar.linked("il-pb-car", options=["CAR+", "CAR-"])))
    else:
        selection = ld.CellSelection(cells=tuple(int(c) for c in current[1]),
                                        label=f"{len(current[1]):,} selected cells")
    designs = ["Responders vs non-responders", "Post vs pre (paired)"]
    design = p3.selectbox("Test", designs, key=sidebar.linked("il-pb-design", options=designs))
    window = p4.selectbox("Window", ld.WINDOW_NAMES, index=ld.WINDOW_NAMES.index("D28"),
                          key=sidebar.linked("il-pb-window", options=ld.WINDOW_NAMES))
    pparams = ld.cohort_params(study, cohort=cohort, selection=selection, window=window,
                               design="paired" if design.startswith("Post") else "groups")
    done = ld.pseudobulk_cached(study, params=pparams)
    if not done:
        done = jobs_panel.run(ld.run_pseudobulk, study, params=pparams, study=study,
                              key="il-pb", label="Pseudobulk test",
                              start="Run the pseudobulk test",
                              start_help="Tens of seconds; the result is cached on disk."
                              ) is not None
    if done:
        render.show(ld.pseudobulk_volcano(study, cohort=cohort, params=pparams),
                    key="il-pb-volcano")
        render.show_rules(lv.rules(study), names=ld.PSEUDOBULK_RULES, key="il-pb-rules")
        table = ld.pseudobulk_result_table(study, cohort=cohort, params=pparams)
        st.caption(table.caption)
        render.show_table(table.data, key="il-pb-table", name=f"{study.name}_pseudobulk")

    st.header("Signatures per patient")
    s1, s2, s3 = st.columns(3)
    method = s1.selectbox("Score", ld.SIGNATURE_METHODS,
                          key=sidebar.linked("il-sig-method", options=ld.SIGNATURE_METHODS),
                          index=ld.SIGNATURE_METHODS.index(lv.rules(study).signature_method),
                          format_func=lambda m: ld.SCORE_UNITS[m])
    sig_window = s2.selectbox("Test window", ld.WINDOW_NAMES,
                              index=ld.WINDOW_NAMES.index("D28"),
                              key=sidebar.linked("il-sig-window", options=ld.WINDOW_NAMES))
    upload = s3.file_uploader("Your gene sets (GMT)", type=["gmt", "txt"], key="il-sig-gmt")
    typed = st.text_input("Or type a gene list (commas or spaces)",
                          key=sidebar.linked("il-sig-typed"))
    try:
        mine = lv.user_gene_sets(gmt=upload.getvalue() if upload else None,
                                 gmt_name=upload.name if upload else "", typed=typed)
    except ValueError as exc:
        st.warning(str(exc))
        mine = ()
    st.session_state["il-user-sets"] = mine
    sparams = ld.SignatureParams((*shipped, *mine), method, sig_window)
    try:
        render.show(session.cached_view(ld.signature_scores, study, params=sparams),
                    key="il-sig-fig")
        table = session.cached_view(ld.signature_table, study, params=sparams)
        st.caption(table.caption)
        render.show_table(table.data, key="il-sig-table", name=f"{study.name}_signatures")
    except ValueError as exc:
        st.warning(str(exc))

# ---- composition ------------------------------------------------------------------------------
st.header("Composition")
if not study.has("single_cell"):
    st.info(lv.FLOW_ONLY_NOTE)
    st.stop()
view_name = st.segmented_control("View", lv.COMPOSITION_VIEWS, default="Per sample",
                                 key=sidebar.linked("il-comp-view",
                                                    options=lv.COMPOSITION_VIEWS)) \
    or "Per sample"
render.show(session.cached_view(lv.composition, study, cohort=cohort,
                            params=lv.CompositionParams(view_name)),
            key={"Per sample": "il-comp", "By response group": "il-comp-win",
                 "CD7+ T and NK": "il-cd7"}.get(view_name, "il-car"))

# ---- CAR+ cells, CD7 groups, composition with uncertainty (views/car_cells.py) ----------------
st.header("CAR+ cells")
base = session.cached_view(car.car_cut, study, params=car.CarParams())
if base.feature is None:
    st.info(base.note)
else:
    c1, c2 = st.columns(2)
    cut_at = c1.number_input("CAR+ above (CAR counts)", min_value=0.0, step=0.5,
                             value=float(round(base.threshold, 3)),
                             key=sidebar.linked("il-car-cut", kind=float),
                             help="Starts at the study's cut; change it to see the effect")
    window = c2.selectbox("Window", list(car.WINDOWS), index=1,
                          key=sidebar.linked("il-car-window", options=list(car.WINDOWS)))
    adjusted = abs(cut_at - round(base.threshold, 3)) > 1e-9
    car_params = car.CarParams(threshold=cut_at if adjusted else None, window=window)
    render.show(session.cached_view(car.car_histogram, study, params=car_params), key="il-car-hist")
    if adjusted:
        may_save = not os.environ.get("STUDIES_ROOT") or access.may_create_studies(
            render.current_viewer())
        if st.button(f"Save {cut_at:g} as this study's CAR+ cut (study.toml [rules])",
                     key="il-car-save", disabled=not may_save,
                     help="Writes car_threshold_method = \"fixed\" and car_threshold; "
                     "comments in study.toml are not kept"):
            written = car.save_car_threshold(study, cut_at)
            session.reload_study()
            st.success(f"Saved in {written.name}.")
    render.show(session.cached_view(car.car_fraction, study, cohort=cohort, params=car_params),
                key="il-car-qpcr")
    for k, view in enumerate((car.car_phenotype, car.car_markers)):
        render.show(session.cached_view(view, study, cohort=cohort, params=car_params),
                    key=f"il-car-pheno-{k}")
    for k, view in enumerate((car.cd7_groups, car.cd7_test)):
        render.show(session.cached_view(view, study, cohort=cohort, params=car_params),
                    key=f"il-car-cd7-{k}")

st.header("Composition with uncertainty")
c1, c2, c3 = st.columns(3)
comp_window = c1.selectbox("Window", list(car.WINDOWS), index=1,
                           key=sidebar.linked("il-ct-window", options=list(car.WINDOWS)))
comparisons = car.comparisons(comp_window)
against = c2.selectbox("Compare", comparisons,
                       key=sidebar.linked("il-ct-against", options=comparisons))
transform = c3.selectbox("Transform", list(car.TRANSFORMS),
                         key=sidebar.linked("il-ct-transform", options=list(car.TRANSFORMS)),
                         format_func=car.TRANSFORMS.get)
comp_params = car.CompositionParams(
    window=comp_window, transform=transform,
    window_b=None if against.startswith("Responders") else against.removeprefix("with "))
for k, view in enumerate((car.composition_test, car.composition_table)):
    render.show(session.cached_view(view, study, cohort=cohort, params=comp_params),
                key=f"il-ct-{k}")
