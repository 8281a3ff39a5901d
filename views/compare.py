"""Recipes of the Compare page (responders vs non-responders, or any two groups of patients):
the volcano, the ranked features, the top features per patient, one feature over time and its
tests per window, for any feature layer (patient-level tests; analysis.differential).

`CompareParams` (views/compare_options.py, with the option lists, defaults and focus rules the
page's choices come from; their names are importable from here too) is the page's whole choice
and the input of every view here: the layer, the day window, how the groups are made (the
response groups, a patients-table column and two of its values, or a custom split with its two
patient lists), the test and FDR options and the feature followed over time. The same Params
therefore rebuild the same volcano, and an exported file carries them (custom patient lists
included), so it can be made again from its provenance.

A focus set on another page (a sample clicked on the Patient page: one patient and the sample's
day) is honoured: the heatmap and the course mark the focus patients and days.

The comparison itself runs in one function (`_run_comparison`, which is also where DESeq2
runs); the volcano, table, heatmap and summary of one Params share its result (views.shared).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import polars as pl

import jobs
from analysis import differential as dif
from analysis.cohort import Cohort, Focus, apply_cohort, response_groups
from analysis.vocab import DayWindow
from components.figures import compare as cf
from views.compare_options import (  # the page's options (their old home is here)
    CMP_RULES,
    CUSTOM_DAYS,
    CUSTOM_SPLIT,
    CUSTOM_WINDOW,
    DEFAULT_WINDOW,
    EFFECT_LABELS,
    FDR_CHOICES,
    LAYER_LABELS,
    METHOD_LABELS,
    METHODS,
    MIN_N,
    WINDOW_CHOICES,
    WINDOWS,
    CompareParams,
    EffectMeasure,
    Layer,
    Method,
    clicked_feature,
    day_window_note,
    default_layer,
    feature_choice,
    file_stem,
    focus_defaults,
    focus_note,
    group_arguments,
    group_values,
    grouping_columns,
    grouping_label,
    layers,
    missing_layers,
    opening_choices,
    other_patients,
    other_values,
    panel_choices,
    panel_label,
    panels,
    patient_choices,
    patients_of,
    rules,
    window_of_day,
)
from views.shared import shared
from views.spec import FigureSpec, TableSpec, recipe

if TYPE_CHECKING:
    from data_loaders import Study

__all__ = ["CompareSummary", "summary", "volcano", "ranked", "heatmap", "course",
           "window_tests", "features", "comparison_params", "run_comparison", "CompareParams",
           "CUSTOM_SPLIT", "LAYER_LABELS", "WINDOWS", "CMP_RULES", "FDR_CHOICES", "MIN_N",
           "layers", "missing_layers", "default_layer", "grouping_columns", "group_values",
           "panels", "rules", "focus_defaults", "focus_note", "clicked_feature",
           "window_of_day", "group_arguments", "patients_of", "CUSTOM_WINDOW", "WINDOW_CHOICES",
           "DEFAULT_WINDOW", "CUSTOM_DAYS", "opening_choices", "grouping_label",
           "other_patients", "other_values", "patient_choices", "EFFECT_LABELS",
           "METHOD_LABELS", "panel_choices", "panel_label", "day_window_note", "file_stem",
           "feature_choice", "Layer", "Method", "METHODS", "EffectMeasure"]


# ---- the comparison -----------------------------------------------------------------------------
def comparison_params(params: CompareParams) -> CompareParams:
    """The part of `params` the comparison depends on (not the FDR level shown, not the
    feature followed): the key of its result, and of the DESeq2 job the page runs."""
    return replace(params, fdr=0.1, feature=None)


def run_comparison(study: Study, *, cohort: Cohort | None, params: CompareParams,
                   progress: Callable[[float, str], None] | None = None) -> pl.DataFrame:
    """analysis.differential.compare for `params` (DESeq2 takes about a minute: the page runs
    it as a job, keyed by `comparison_params(params)`, and the views read its result)."""
    report = progress or (lambda f, m: None)
    report(0.05, "DESeq2 on raw counts" if params.method == "deseq2" else "rank tests")
    res = dif.compare(study, layer=params.layer, window=params.window,
                      change_from_baseline=params.change_from_baseline, panel=params.panel,
                      subjects=patients_of(study, cohort), rules=rules(study, params=params),
                      effect_measure=params.effect_measure, method=params.method,
                      min_n=int(params.min_n), **group_arguments(params))
    report(1.0, "done")
    return res


def _comparison(study: Study, cohort: Cohort | None, params: CompareParams
                ) -> tuple[pl.DataFrame, str, str]:
    """(result table of analysis.differential.compare, label A, label B) of the comparison
    (the FDR level and the followed feature do not change it)."""
    return _run_comparison(study, cohort or Cohort(), comparison_params(params))


@shared
def _run_comparison(study: Study, cohort: Cohort, params: CompareParams
                    ) -> tuple[pl.DataFrame, str, str]:
    """The one place the comparison (rank tests or DESeq2) runs; the views of one Params share
    its result (views.shared), so a page showing four of them runs it once. A DESeq2 result
    the page's job computed is read from the jobs cache."""
    kw = group_arguments(params)
    _, label_a, label_b = dif.assign_groups(study, groups=kw["groups"],
                                            group_column=kw["group_column"],
                                            group_a=kw["group_a"], group_b=kw["group_b"])
    done = jobs.find(run_comparison, study, cohort=cohort, params=params,
                     progress=jobs.progress, study=study) if params.method == "deseq2" \
        else None
    res = done.result() if done is not None and done.status() == "done" else \
        run_comparison(study, cohort=cohort, params=params)
    return res, label_a, label_b


def _name(params: CompareParams) -> str:
    return f"{params.layer}_{params.window}".replace(":", "-")


@dataclass(frozen=True)
class CompareSummary:
    """The figures above the volcano: group sizes, features tested, hits, and what to say."""

    label_a: str
    label_b: str
    n_a: int
    n_b: int
    n_features: int
    n_tested: int
    n_hits: int
    notes: tuple[str, ...]          # captions (window rule and FDR family, defining features)
    empty: str | None               # why there is nothing to show, or None
    untested: str | None            # why no test is possible, or None


def summary(study: Study, *, cohort: Cohort | None = None, params: CompareParams,
            focus: Focus | None = None) -> CompareSummary:
    """What the comparison found, for the page's metrics and captions. Raises ValueError when
    the groups cannot be made (the message says why)."""
    res, la, lb = _comparison(study, cohort, params)
    if res.height == 0:
        return CompareSummary(la, lb, 0, 0, 0, 0, 0, (), (
            f"No {dif.LAYER_LABELS[params.layer].lower()} values for {la} or {lb} in this "
            "window. Try another window or layer; the Data & quality page shows which samples "
            "exist."), None)
    tested = res.filter(pl.col("p_value").is_not_null())
    notes = [res.get_column("window_rule")[0] + ". FDR: " + (
        res.get_column("fdr_family").drop_nulls().first() or "no test in the family")]
    defining = res.filter(pl.col("defines_groups").fill_null(False))
    if defining.height:
        notes.append(f"Defines the groups: {', '.join(defining.get_column('feature').to_list())}"
                     " (the response groups are made from these counts; shown and tested, "
                     + ("in the FDR family on request" if rules(study, params=params)
                        .defining_in_fdr else "not in the FDR family: their q is empty") + ").")
    untested = None
    if tested.height == 0:
        untested = (res.get_column("reason").drop_nulls().first() or "no values")
    elif extra := res.get_column("note").drop_nulls().unique(maintain_order=True).to_list():
        notes.append("Note: " + extra[0])
    return CompareSummary(la, lb, int(res.get_column("n_group_a").max()),
                          int(res.get_column("n_group_b").max()), res.height, tested.height,
                          tested.filter(pl.col("q_value") <= params.fdr).height, tuple(notes),
                          None, untested)


@recipe
def volcano(study: Study, *, cohort: Cohort | None = None, params: CompareParams,
            focus: Focus | None = None) -> FigureSpec:
    """Volcano of the tested features: effect (A vs B) against -log10 p, hits at the FDR
    marked; each point carries its feature (click to follow it over time). The data are the
    ranked features. Raises ValueError when no feature could be tested."""
    res, la, lb = _comparison(study, cohort, params)
    tested = res.filter(pl.col("p_value").is_not_null())
    if tested.height == 0:
        raise ValueError("no feature could be tested in this window")
    fig = cf.volcano(tested, fdr=params.fdr, group_a=la, group_b=lb,
                     x_title=tested.get_column("effect_measure")[0],
                     title=f"{la} vs {lb}: {params.layer} at {params.window}")
    split = (f" Groups: {', '.join(params.patients_a)} vs {', '.join(params.patients_b)}."
             if params.custom else "")
    return FigureSpec("volcano", f"{la} vs {lb}: {params.layer} at {params.window}", fig,
                      cf.ranked_table(res), params,
                      f"{res.get_column('window_rule')[0]}; two-sided Mann-Whitney "
                      "(exact/permutation), BH-FDR." + split)


@recipe
def ranked(study: Study, *, cohort: Cohort | None = None, params: CompareParams,
           focus: Focus | None = None) -> TableSpec:
    """Every feature of the layer, ranked by p (untested ones last, with the reason)."""
    res, la, lb = _comparison(study, cohort, params)
    return TableSpec("ranked", "Ranked features", cf.ranked_table(res), params,
                     f"{la} vs {lb}, {params.layer} at {params.window}.")


def _mark_focus_rows(fig: Any, focus: Focus | None) -> int:
    """Bold the heatmap rows of the focus patients ("SAA-002 (D28)" -> "<b>SAA-002 ...</b>")."""
    subjects = set(getattr(focus, "subjects", ()) or ())
    if not subjects:
        return 0
    marked = 0
    for trace in fig.data:
        if trace.y is None:
            continue
        ys = list(trace.y)
        new = [f"<b>▶ {y}</b>" if str(y).split(" (")[0] in subjects else y for y in ys]
        marked = max(marked, sum(a != b for a, b in zip(ys, new, strict=True)))
        trace.y = new
    return marked


@recipe
def heatmap(study: Study, *, cohort: Cohort | None = None, params: CompareParams,
            focus: Focus | None = None, top: int = 20) -> FigureSpec:
    """The top features (smallest p) per patient, z-scored per feature, patients grouped;
    the focus patients' rows are marked."""
    res, la, lb = _comparison(study, cohort, params)
    feats = cf.top_features(res, n=top)
    kw = group_arguments(params)
    vals = dif.patient_values(study, layer=params.layer, window=params.window,
                              change_from_baseline=params.change_from_baseline,
                              panel=params.panel, features=tuple(feats),
                              subjects=patients_of(study, cohort), **kw)
    fig = cf.zscore_heatmap(vals, features=feats, group_order=[la, lb],
                            title=f"Top {len(feats)} features, z-scored ({params.window})")
    n = _mark_focus_rows(fig, focus)
    return FigureSpec("heatmap", "Top features per patient", fig, vals, params,
                      f"Focus patient(s) marked ▶ ({focus.describe()})." if n else "")


def features(study: Study, *, cohort: Cohort | None = None, params: CompareParams) -> list[str]:
    """The features of the comparison, ranked (the first is followed over time by default)."""
    return _comparison(study, cohort, params)[0].get_column("feature").to_list()


def _feature(study: Study, cohort: Cohort | None, params: CompareParams) -> str:
    names = features(study, cohort=cohort, params=params)
    if not names:
        raise ValueError("the comparison has no feature")
    return params.feature if params.feature in names else names[0]


def _course_kwargs(study: Study, cohort: Cohort | None, params: CompareParams
                   ) -> dict[str, Any]:
    return {"layer": params.layer, "panel": params.panel,
            "subjects": patients_of(study, cohort), **group_arguments(params)}


def _tests(study: Study, cohort: Cohort | None, params: CompareParams, feature: str
           ) -> pl.DataFrame:
    return dif.feature_windows(study, feature=feature, min_n=int(params.min_n),
                               change_from_baseline=params.change_from_baseline,
                               effect_measure=params.effect_measure,
                               rules=rules(study, params=params),
                               **_course_kwargs(study, cohort, params))


def _mark_focus_course(fig: Any, data: pl.DataFrame, focus: Focus | None) -> bool:
    """The focus patients' values drawn over the groups' lines (black ring) and the focus days
    shaded; True when the focus touches this figure."""
    subjects = tuple(getattr(focus, "subjects", ()) or ())
    mine = data.filter(pl.col("subject_id").is_in(list(subjects))) if subjects else data.head(0)
    if mine.height == 0:
        return False
    import plotly.graph_objects as go

    for (sid,), sub in mine.sort("subject_id", "day").group_by(["subject_id"],
                                                               maintain_order=True):
        fig.add_trace(go.Scatter(
            x=sub.get_column("day").to_list(), y=sub.get_column("value").to_list(),
            mode="lines+markers", name=f"focus: {sid}", legendgroup="focus",
            line={"color": "#000000", "width": 3, "dash": "dot"},
            marker={"size": 11, "symbol": "circle-open", "color": "#000000",
                    "line": {"width": 2}},
            hovertemplate=f"{sid} (focus)<br>day %{{x}}: %{{y:.3g}}<extra></extra>"))
    window = focus.days if focus is not None else DayWindow()
    if not window.is_everything:
        days = mine.get_column("day")
        lo, hi = window.within(days.min(), days.max())
        fig.add_vrect(x0=lo - 1.5, x1=hi + 1.5, fillcolor="#000000", opacity=0.12,
                      line_width=0, annotation_text=getattr(focus, "label", "") or "focus",
                      annotation_position="bottom left", annotation_font_size=10)
    return True


@recipe
def course(study: Study, *, cohort: Cohort | None = None, params: CompareParams,
           focus: Focus | None = None) -> FigureSpec:
    """One feature (`params.feature`, else the top-ranked) for every patient at every
    timepoint, coloured by group, each window shaded with its test; the cohort's day window
    limits the days drawn; the focus patients and days are marked."""
    feature = _feature(study, cohort, params)
    data = dif.feature_course(study, feature=feature, **_course_kwargs(study, cohort, params))
    if cohort is not None:
        data = apply_cohort(data, cohort, groups=response_groups(study))
    fig = cf.feature_trajectory(data, tests=_tests(study, cohort, params, feature),
                                y_title=dif.value_label(study, layer=params.layer,
                                                        feature=feature),
                                title=f"{feature}: every patient, every timepoint")
    marked = _mark_focus_course(fig, data, focus)
    return FigureSpec("course", f"{feature} over time", fig, data,
                      replace(params, feature=feature),
                      f"Focus drawn in black ({focus.describe()})." if marked else "")


@recipe
def window_tests(study: Study, *, cohort: Cohort | None = None, params: CompareParams,
                 focus: Focus | None = None) -> TableSpec:
    """The followed feature tested in every window (n, effect, p, q, medians)."""
    feature = _feature(study, cohort, params)
    tests = _tests(study, cohort, params, feature)
    return TableSpec("by_window", f"{feature} by window", tests.select(
        "window", "days", "n_group_a", "n_group_b", "effect", "effect_measure", "p_value",
        "q_value", "median_a", "median_b", "test", "reason"), replace(params, feature=feature))



