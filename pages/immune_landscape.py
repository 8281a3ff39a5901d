"""Immune landscape: cells (single-cell RNA or flow cytometry events) on an embedding, coloured
by type, patient, day window, response or expression; box/lasso selections with marker genes;
cell-type composition over time and by response group (patient-level). The recipes, their
option lists and default rules are in views/landscape.py, views/landscape_depth.py and
views/car_cells.py (and the selection, composition and pseudobulk modules beside them); this page
reads widgets into their Params and shows what they return."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from components import access, chart_events, jobs_panel, render, session, session_memory, sidebar
from components.safe import md
from views import car_cells as car
from views import landscape as lv
from views import landscape_composition as lc
from views import landscape_depth as ld
from views import landscape_pseudobulk as lp
from views import landscape_raster as lr
from views import landscape_selection as lsel
from views import markers as mk


def _choose(where: DeltaGenerator, label: str, options: Sequence[Any], key: str,
            study_default: bool = False, **kwargs: Any) -> Any:
    """A selectbox whose choice is part of the page's link (sidebar.linked; `study_default`:
    its default is computed from the study)."""
    return where.selectbox(label, options, key=sidebar.linked(key, options=options,
                                                               study_default=study_default),
                           **kwargs)


ctx = session.context(applies="patients and the day window: the cells drawn, selected, "
                      "compared and counted")
study, cohort = ctx.study, ctx.cohort
st.title("Immune landscape")
if not (sources := lv.sources(study)):
    st.info(lv.NOTHING_TO_DRAW)
    st.stop()
source = st.segmented_control("Data", sources, default=sources[0],
                              key=sidebar.linked("il-source", study_default=True, options=sources)) or sources[0]
unit, rna = lv.unit(source), source == lv.RNA
focus = session.get_focus(study)
c1, c2, c3 = st.columns([1, 1, 2])
color_by = _choose(c1, "Colour by", lv.colour_options(source, focus=focus is not None),
                   "il-color")
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
        job = lv.umap_job(study, params=params)     # the job `cli.py embed` submits
        jobs_panel.run(job.fn, study, study=study, key="il-compute", **job.kwargs,
                       label=f"UMAP of {n:,} {unit}", start=f"Compute a UMAP for {n:,} {unit}")


if rna:
    if not (bases := lv.bases(study)):
        st.info(lv.NO_EMBEDDING)
        _compute_button(lv.n_cells(study), lv.LandscapeParams(source, ""))
        st.stop()
    basis = _choose(c2, "Embedding", bases, "il-basis")
    if note := lv.cell_type_note(study):
        st.caption(note)
    gene = _choose(st, "Gene (type to search)", session.cached_view(lv.gene_choices, study),
                   "il-gene") if color_by == "Gene" else None
    if gene is not None and not lv.gene_store_ready(study):
        jobs_panel.run(lv.build_gene_store, study, study=study, key="il-genes",
                       label="Gene-column store (built once per study)")
        st.stop()
    sets = lv.colour_sets(st.session_state.get("il-user-sets", ()))
    signature = sets[_choose(st, "Signature (shipped, or yours from 'Signatures per patient')",
                             list(sets), "il-sig-colour")] \
        if color_by == "Signature score" else None
    labels = c2.toggle("Label cell types", key=sidebar.linked("il-labels", kind=bool))
    params = lv.LandscapeParams(source, basis, color_by, gene, tuple(facet), signature=signature,
                                label_types=labels)
else:
    cofactor = _choose(c2, "arcsinh cofactor", lv.COFACTORS, "il-cof",
                       format_func=lambda c: f"{c:g} ({'flow' if c > 10 else 'mass'})")
    setup = session.cached_view(lv.flow_setup, study, params={"cofactor": cofactor})
    for msg in setup.messages:
        st.warning(md(msg))
    markers = st.multiselect("Markers to embed", setup.markers, default=setup.markers,
                             key=sidebar.linked("il-markers", study_default=True, options=setup.markers,
                                                shape="many"))
    if len(markers) < 2:
        st.info("Choose at least two markers to embed.")
        st.stop()
    marker = _choose(st, "Marker", markers, "il-marker") if color_by == "Marker" else None
    params = lv.flow_params(study, color_by=color_by, markers=markers, cofactor=cofactor,
                            facet_windows=facet, marker=marker)
    if params.basis.startswith("PCA"):
        st.caption("Showing PCA of the markers; a UMAP separates populations better.")
        _compute_button(setup.n_events, params)

def _raster_embedding() -> tuple[int, ...]:
    """Above a million cells (the study's raster_above): the raster of every cell, drawn
    again for the window the user zooms or pans to (components/chart_events.py reports it);
    double-click or "Show every cell" returns to all of them; box and lasso select from every
    cell (views/landscape_raster.py)."""
    moved = chart_events.axis_window("il-embedding", key="il-embedding-window")
    window = lr.next_window(moved, current=st.session_state.get("il-window"))
    if window is None:
        st.session_state.pop("il-window", None)
    else:
        st.session_state["il-window"] = window
    # always drawn (disabled at every cell), so zooming does not move the chart
    if st.button("Show every cell", key="il-window-reset", disabled=window is None):
        st.session_state.pop("il-window", None)
        st.rerun()
    tool = lr.dragmode_after(moved, current=st.session_state.get("il-dragmode", "zoom"))
    st.session_state["il-dragmode"] = tool
    rparams = lr.RasterParams(params, *(window or (None, None)), dragmode=tool)
    shown = session.cached_view(lr.raster, study, cohort=cohort, params=rparams, focus=focus)
    st.caption(shown.caption)
    event = render.show_figure(shown.fig, key="il-embedding", name=f"{study.name}_landscape",
                               data=shown.data, params=rparams, on_select="rerun",
                               selection_mode=("box", "lasso"), spec=shown)
    render.show_params(rparams)
    return lr.selected_in(study, cohort=cohort, params=rparams, event=event) if event else ()


if rna and lr.use_raster(study):
    picked = _raster_embedding()
else:
    spec = session.cached_view(lv.embedding, study, cohort=cohort, params=params, focus=focus)
    event = render.show(spec, key="il-embedding", name=f"{study.name}_landscape",
                        on_select="rerun", selection_mode=("box", "lasso"))
    render.show_params(params)
    picked = lsel.selected_cells(event)

# ---- selection ----------------------------------------------------------------------------
kept = st.session_state.setdefault("il-sets", {})
if picked and not session_memory.keep(  # within the session's memory cap (a selection can
        "il-selection", (source, picked), droppable=True, study_dir=study.path,  # hold millions)
        what=f"the selection of {len(picked):,} {unit}", on_refusal="clear"):
    session.set_focus(None)
    st.info("No selection is active now: the previous one was cleared too, so no summary, "
            "marker genes or focus on other pages describe cells other than those the chart "
            "shows selected. Select fewer cells, or forget kept cell sets, and select again.")
if sel := lsel.current_selection(st.session_state.get("il-selection"), params):
    summary = session.cached_view(lsel.selection_summary, study, params=sel)
    session.set_focus(lsel.selection_focus(study, summary))
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
                session_memory.room_for((sel.source, sel.cells), what=f"cell set '{name}'",
                                        study_dir=study.path, replacing=("il-sets", name)):
            kept[name] = (sel.source, sel.cells)
    if rna and not lv.gene_store_ready(study):
        with right:
            jobs_panel.run(lv.build_gene_store, study, study=study, key="il-genes",
                           label="Gene-column store for marker genes (built once per study)")
    elif rna:
        with right, st.spinner("Ranking marker genes over all cells ..."):
            try:
                top = session.cached_view(lsel.selection_markers, study, params=sel)
                st.markdown(f"**{top.title}**")
                st.caption(top.caption)
                render.show_table(top.data, key="il-markers-table", name=f"{study.name}_markers")
            except ValueError as exc:
                st.info(str(exc))
if kept:
    chosen = st.selectbox("Kept cell sets", ["-", *kept], key="il-sets-pick")
    use, forget = st.columns(2)
    if chosen != "-" and use.button("Use as selection", key="il-set-use"):
        st.session_state["il-selection"] = kept[chosen]
        st.rerun()
    if chosen != "-" and forget.button("Forget this set", key="il-set-forget",
                                       help="Frees the memory it holds in this session"):
        kept.pop(chosen, None)
        for pick in ("il-sets-pick", "il-two-a", "il-two-b"):
            if st.session_state.get(pick) == chosen:
                del st.session_state[pick]
        st.rerun()
if rna and len(two := lsel.comparable_sets(kept, sel)) >= 2:
    with st.expander("Compare two selections (A vs B, not vs the rest)"):
        ca, cb = st.columns(2)
        a = ca.selectbox("A", list(two), key="il-two-a")
        b = cb.selectbox("B", ld.other_names(list(two), a), key="il-two-b")
        try:
            pair = ld.two_selections(study, cohort=cohort, params=ld.selection_pair(two, a, b))
            st.caption(pair.caption)
            render.show_table(pair.data, key="il-two-table", name=f"{study.name}_{a}_vs_{b}")
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
    kind = d2.segmented_control("Show", ld.DISTRIBUTION_KINDS, default="Genes",
                                key=sidebar.linked("il-dist-kind",
                                                   options=ld.DISTRIBUTION_KINDS)) or "Genes"
    split = _choose(d3, "Split by", list(ld.SPLITS), "il-dist-split")
    names, first = session.cached_view(ld.feature_choices, study, params={"kind": kind})
    if feats := d1.multiselect(kind, names, default=first, max_selections=8,
                               key=sidebar.linked(f"il-dist-{kind}", study_default=True, options=names,
                                                  shape="many")):
        dparams = ld.distribution_params(feats, kind=kind, split=split)
        for key, view in (("il-violin", ld.violins), ("il-dots", ld.dot_plot)):
            render.show(session.cached_view(view, study, cohort=cohort, params=dparams), key=key)

    st.header("Pseudobulk by patient (DESeq2)")
    st.caption(lp.PSEUDOBULK_NOTE)
    p1, p2, p3, p4 = st.columns(4)
    what = _choose(p1, "Cells", lp.pseudobulk_cells(study, has_selection=sel is not None),
                   "il-pb-what")
    choice = _choose(p2, "Cell type", session.cached_view(lp.cell_types, study), "il-pb-type") \
        if what == "cell type" else _choose(p2, "CAR status", lp.CAR_STATUSES, "il-pb-car") \
        if what == "CAR status" else None
    design = _choose(p3, "Test", list(lp.DESIGNS), "il-pb-design")
    window = _choose(p4, "Window", lp.WINDOW_NAMES, "il-pb-window",
                     index=lp.WINDOW_NAMES.index(lp.DEFAULT_WINDOW))
    pparams = lp.cohort_params(study, cohort=cohort, window=window, design=lp.DESIGNS[design],
                               selection=lp.cell_selection(what, choice,
                                                           cells=sel.cells if sel else ()))
    if lp.pseudobulk_cached(study, params=pparams) or jobs_panel.run(
            lp.run_pseudobulk, study, params=pparams, study=study, key="il-pb",
            label="Pseudobulk test", start="Run the pseudobulk test",
            start_help="Tens of seconds; the result is cached on disk.") is not None:
        render.show(lp.pseudobulk_volcano(study, cohort=cohort, params=pparams),
                    key="il-pb-volcano")
        render.show_rules(lv.rules(study), names=lp.PSEUDOBULK_RULES, key="il-pb-rules")
        table = lp.pseudobulk_result_table(study, cohort=cohort, params=pparams)
        st.caption(table.caption)
        render.show_table(table.data, key="il-pb-table", name=f"{study.name}_pseudobulk")

    st.header("Signatures per patient")
    s1, s2, s3 = st.columns(3)
    method = _choose(s1, "Score", ld.SIGNATURE_METHODS, "il-sig-method", study_default=True,
                     index=ld.SIGNATURE_METHODS.index(ld.signature_method(study)),
                     format_func=lambda m: ld.SCORE_UNITS[m])
    sig_window = _choose(s2, "Test window", lp.WINDOW_NAMES, "il-sig-window",
                         index=lp.WINDOW_NAMES.index(lp.DEFAULT_WINDOW))
    upload = s3.file_uploader("Your gene sets (GMT)", type=["gmt", "txt"], key="il-sig-gmt")
    typed = st.text_input("Or type a gene list (commas or spaces)",
                          key=sidebar.linked("il-sig-typed"))
    try:
        mine = lv.brought_gene_sets(upload, typed=typed)
    except ValueError as exc:
        st.warning(str(exc))
        mine = ()
    st.session_state["il-user-sets"] = mine
    sparams = ld.SignatureParams((*lv.shipped_sets(), *mine), method, sig_window)
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
    st.info(lc.FLOW_ONLY_NOTE)
    st.stop()
view_name = st.segmented_control("View", lc.COMPOSITION_VIEWS, default="Per sample",
                                 key=sidebar.linked("il-comp-view",
                                                    options=lc.COMPOSITION_VIEWS)) \
    or "Per sample"
render.show(session.cached_view(lc.composition, study, cohort=cohort,
                                params=lc.CompositionParams(view_name)),
            key=lc.COMPOSITION_KEYS[view_name])

# ---- CAR+ cells, CD7 groups, composition with uncertainty (views/car_cells.py) ----------------
st.header("CAR+ cells")
base = session.cached_view(car.car_cut, study, params=car.CarParams())
if base.feature is None:
    st.info(base.note)
else:
    c1, c2 = st.columns(2)
    cut_at = c1.number_input("CAR+ above (CAR counts)", min_value=0.0, step=0.5,
                             value=car.cut_value(base),
                             key=sidebar.linked("il-car-cut", kind=float, study_default=True),
                             help="Starts at the study's cut; change it to see the effect")
    window = _choose(c2, "Window", car.WINDOW_LABELS, "il-car-window",
                     index=car.WINDOW_LABELS.index(car.DEFAULT_WINDOW))
    car_params = car.car_params(base, cut_at=cut_at, window=window)
    render.show(session.cached_view(car.car_histogram, study, params=car_params),
                key="il-car-hist")
    if car_params.threshold is not None:
        may_save = not os.environ.get("STUDIES_ROOT") or access.may_create_studies(
            render.current_viewer())
        if st.button(f"Save {cut_at:g} as this study's CAR+ cut (study.toml [rules])",
                     key="il-car-save", disabled=not may_save, help=car.SAVE_HELP):
            written = car.save_car_threshold(study, cut_at)
            session.reload_study()
            st.success(f"Saved in {written.name}.")
    for key, view in (("il-car-qpcr", car.car_fraction), ("il-car-pheno-0", car.car_phenotype),
                      ("il-car-pheno-1", car.car_markers), ("il-car-cd7-0", car.cd7_groups),
                      ("il-car-cd7-1", car.cd7_test)):
        render.show(session.cached_view(view, study, cohort=cohort, params=car_params), key=key)

st.header("Composition with uncertainty")
c1, c2, c3 = st.columns(3)
comp_window = _choose(c1, "Window", car.WINDOW_LABELS, "il-ct-window",
                      index=car.WINDOW_LABELS.index(car.DEFAULT_WINDOW))
against = _choose(c2, "Compare", car.comparisons(comp_window), "il-ct-against")
transform = _choose(c3, "Transform", list(car.TRANSFORMS), "il-ct-transform",
                    format_func=car.TRANSFORMS.get)
comp_params = car.composition_params(window=comp_window, against=against, transform=transform)
for key, view in (("il-ct-0", car.composition_test), ("il-ct-1", car.composition_table)):
    render.show(session.cached_view(view, study, cohort=cohort, params=comp_params), key=key)
