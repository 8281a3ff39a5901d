"""Recipes of the Compare page (responders vs non-responders, or any two groups of patients):
the volcano, the ranked features, the top features per patient, one feature over time and its
tests per window, for any feature layer (patient-level tests; analysis.differential).

`CompareParams` is the page's whole choice and the input of every view here: the layer, the day
window, how the groups are made (the response groups, a patients-table column and two of its
values, or a custom split with its two patient lists), the test and FDR options and the feature
followed over time. The same Params therefore rebuild the same volcano, and an exported file
carries them (custom patient lists included), so it can be made again from its provenance.

A focus set on another page (a sample clicked on the Patient page: one patient and the sample's
day) is honoured: `focus_defaults` gives the layer and window that hold the sample, and the
heatmap and the course mark the focus patients and days.

The comparison itself runs in one function (`_run_comparison`, which is also where DESeq2
runs); the volcano, table, heatmap and summary of one Params share its result (views.shared).

One job, over 400 lines: the Compare page's records and the option lists and focus rules
their Params come from.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal, get_args

import polars as pl

import jobs
from analysis import differential as dif
from analysis.cohort import Cohort, Focus, apply_cohort, cohort_subjects, response_groups
from analysis.rules import Rules, rules_for
from analysis.vocab import DayWindow
from components.figures import compare as cf
from views.shared import shared
from views.spec import FigureSpec, TableSpec, recipe

if TYPE_CHECKING:
    from data_loaders import Study

__all__ = ["CompareParams", "CompareSummary", "CUSTOM_SPLIT", "LAYER_LABELS", "WINDOWS",
           "CMP_RULES", "FDR_CHOICES", "MIN_N", "layers", "missing_layers", "default_layer",
           "grouping_columns", "group_values", "panels", "rules", "summary", "volcano",
           "ranked", "heatmap", "course", "window_tests", "features", "focus_defaults",
           "focus_note", "clicked_feature", "window_of_day",
           "comparison_params", "run_comparison", "Layer", "Method", "METHODS",
           "EffectMeasure"]

Layer = Literal["measurements", "proteomics", "rna", "mutations", "tcr", "composition"]
Method = Literal["rank", "deseq2"]
METHODS: tuple[Method, ...] = get_args(Method)
EffectMeasure = Literal["hedges_g", "cliffs_delta"]
CUSTOM_SPLIT = "custom split"
LAYER_LABELS = dif.LAYER_LABELS
WINDOWS: tuple[str, ...] = tuple(dif.WINDOWS)
MIN_N = dif.MIN_N
FDR_CHOICES = (0.01, 0.05, 0.1, 0.2, 0.25)
CMP_RULES = ("group_defining_analytes", "defining_in_fdr", "fdr_across_windows", "exact_max_n")
# samples.assay of a clicked sample -> the layer that holds its values
_ASSAY_LAYERS = {"proteomics": "proteomics", "rna": "rna", "mutations": "mutations",
                 "tcr": "tcr", "scrna": "composition", "single_cell": "composition"}


@dataclass(frozen=True)
class CompareParams:
    """Two groups of patients compared in one day window on one feature layer.

    Groups: `group_by` "response_group" (responders vs non-responders), a column of the
    patients table (`group_a` / `group_b` pick two of its values when it has more than two; a
    numeric column splits at its median), or "custom split": `patients_a` vs `patients_b`,
    recorded here so the figure can be made again. `window` is a named window (baseline, D14,
    D28, M3, M6, M12) or "start:end" days. `fdr_across_windows` / `defining_in_fdr` None take the
    study's rule settings. `feature` is the one followed over time (None: the top-ranked)."""

    layer: Layer = "proteomics"
    window: str = "D28"
    group_by: str = "response_group"
    group_a: str | None = None
    group_b: str | None = None
    patients_a: tuple[str, ...] = ()
    patients_b: tuple[str, ...] = ()
    change_from_baseline: bool = False
    method: Method = "rank"
    effect_measure: EffectMeasure = "hedges_g"
    panel: str | None = None
    fdr: float = 0.1
    min_n: int = MIN_N
    fdr_across_windows: bool | None = None
    defining_in_fdr: bool | None = None
    feature: str | None = None

    @property
    def custom(self) -> bool:
        return self.group_by == CUSTOM_SPLIT


# ---- what the page offers ---------------------------------------------------------------------
def missing_layers(study: Study) -> dict[str, str]:
    """Layer -> why it is not available ("" when it is)."""
    return dif.available_layers(study)


def layers(study: Study) -> list[str]:
    """The feature layers this study can compare, in the package's order."""
    missing = missing_layers(study)
    return [la for la in dif.LAYERS if not missing[la]]


def default_layer(study: Study) -> str | None:
    """Proteomics when the study has it, else its first layer (None: nothing to compare)."""
    got = layers(study)
    return "proteomics" if "proteomics" in got else (got[0] if got else None)


def grouping_columns(study: Study) -> list[str]:
    """How the patients can be split: response groups, the patients-table columns that make
    two or more groups, or a custom split."""
    return ["response_group", *dif.grouping_columns(study), CUSTOM_SPLIT]


def group_values(study: Study, *, column: str) -> list[str]:
    """The values of a patients-table column (a page offers two as groups A and B when there
    are more than two); empty for the response groups, numeric columns and a custom split."""
    if column in ("response_group", CUSTOM_SPLIT):
        return []
    return dif.group_values(study, column=column)


def panels(study: Study) -> list[str]:
    """The measurement panels (cbc, chemistry, cytokine, ...)."""
    return sorted(study.measurements.get_column("panel").drop_nulls().unique().to_list())


def rules(study: Study, *, params: CompareParams | None = None) -> Rules:
    """The study's rule settings with the comparison's FDR choices applied."""
    r = rules_for(study)
    if params is None:
        return r
    changes = {k: v for k, v in (("fdr_across_windows", params.fdr_across_windows),
                                 ("defining_in_fdr", params.defining_in_fdr)) if v is not None}
    return r.with_(**changes) if changes else r


def window_of_day(day: int) -> str | None:
    """The named window holding `day` (baseline for day <= 0), or None between windows."""
    for name, w in dif.WINDOWS.items():
        if (w.lo is None or day >= w.lo) and (w.hi is None or day <= w.hi):
            return name
    return None


# ---- the comparison -----------------------------------------------------------------------------
def _group_kwargs(params: CompareParams) -> dict[str, Any]:
    if params.custom:
        return {"groups": (params.patients_a, params.patients_b),
                "group_column": "response_group", "group_a": None, "group_b": None}
    return {"groups": None, "group_column": params.group_by, "group_a": params.group_a,
            "group_b": params.group_b}


def _subjects(study: Study, cohort: Cohort | None) -> tuple[str, ...]:
    return tuple(cohort_subjects(response_groups(study), cohort or Cohort()))


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
                      subjects=_subjects(study, cohort), rules=rules(study, params=params),
                      effect_measure=params.effect_measure, method=params.method,
                      min_n=int(params.min_n), **_group_kwargs(params))
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
    kw = _group_kwargs(params)
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
    elif extra := res.get_column("note").drop_nulls().unique().to_list():
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
    kw = _group_kwargs(params)
    vals = dif.patient_values(study, layer=params.layer, window=params.window,
                              change_from_baseline=params.change_from_baseline,
                              panel=params.panel, features=tuple(feats),
                              subjects=_subjects(study, cohort), **kw)
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
            "subjects": _subjects(study, cohort), **_group_kwargs(params)}


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


def clicked_feature(event: Mapping[str, Any] | None) -> str | None:
    """The feature of the volcano point a click selected (its customdata), or None."""
    points = (event or {}).get("selection", {}).get("points", []) if event else []
    clicked = points[0].get("customdata") if points else None
    return clicked[0] if isinstance(clicked, list) else clicked


# ---- the focus ----------------------------------------------------------------------------------
def _focus_samples(study: Study, focus: Focus) -> pl.DataFrame:
    subjects = list(getattr(focus, "subjects", ()) or ())
    s = study.samples
    if not subjects or s.height == 0 or "assay" not in s.columns:
        return s.head(0)
    s = s.filter(pl.col("subject_id").is_in(subjects))
    return s if focus.days.is_everything else s.filter(focus.days.contains("day"))


def focus_defaults(study: Study, focus: Focus | None) -> dict[str, str]:
    """What the page should show for a focus (e.g. a sample clicked on the Patient page): the
    layer of the focus samples' assay (when this study can compare it) and the named window
    holding the focus days. Keys are CompareParams fields; empty when the focus says neither."""
    if focus is None:
        return {}
    out: dict[str, str] = {}
    available = layers(study)
    samples = _focus_samples(study, focus)
    label = str(getattr(focus, "label", "") or "")
    # a focus made from one sample names it ("sample SAA-002_M3_RNA"): that sample's assay
    # first, then the other samples of the focus patients and days
    named = [re.search(rf"(?<![\w-]){re.escape(str(sid))}(?![\w-])", label) is not None
             for sid in samples.get_column("sample_id").to_list()] if samples.height else []
    ordered = samples.with_columns(pl.Series("_named", named, dtype=pl.Boolean)).sort(
        "_named", descending=True, maintain_order=True) if samples.height else samples
    for assay in ordered.get_column("assay").to_list() if "assay" in ordered.columns else []:
        layer = _ASSAY_LAYERS.get(str(assay or "").lower())
        if layer in available:
            out["layer"] = layer
            break
    lo, hi = focus.days.bounds
    if lo is not None and hi is not None:
        a, b = window_of_day(lo), window_of_day(hi)
        if a is not None and a == b:
            out["window"] = a
    return out


def focus_note(study: Study, *, cohort: Cohort | None = None, params: CompareParams,
               focus: Focus | None = None) -> str | None:
    """One line on the focus and this comparison: whether its patients are in the groups
    compared, and whether the window holds the focus days."""
    if focus is None:
        return None
    kw = _group_kwargs(params)
    try:
        assigned, _, _ = dif.assign_groups(study, groups=kw["groups"],
                                           group_column=kw["group_column"],
                                           group_a=kw["group_a"], group_b=kw["group_b"],
                                           subjects=_subjects(study, cohort))
    except ValueError:
        return None
    group_of = dict(assigned.select("subject_id", "group").iter_rows())
    parts = []
    for sid in focus.subjects:
        parts.append(f"{sid} is in group {group_of[sid]}" if sid in group_of else
                     f"{sid} is in neither group compared")
    lo, hi = focus.days.bounds
    w = dif.parse_window(params.window)
    if lo is not None and hi is not None and not (
            (w.lo is None or lo >= w.lo) and (w.hi is None or hi <= w.hi)):
        parts.append(f"the window {params.window} ({w.describe()}) does not hold the focus "
                     "days")
    return f"Focus: {focus.describe()}. " + "; ".join(parts) + "."
