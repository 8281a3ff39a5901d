"""What the Compare page offers and how its choices become `CompareParams`: the layers a study
can compare (and why others are missing), the windows, the ways to make two groups, the test
options and their labels, the defaults the page opens on, and the focus rules (a sample
clicked on the Patient page opens the layer and window that hold it; `focus_note` says whether
the focus patients and days are in the comparison). No streamlit; the recipes that draw the
comparison are in views/compare.py (which re-exports these names).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, get_args

import polars as pl

from analysis import differential as dif
from analysis.cohort import Cohort, Focus, cohort_subjects, response_groups
from analysis.rules import Rules, rules_for

if TYPE_CHECKING:
    from data_loaders import Study

__all__ = ["CompareParams", "CUSTOM_SPLIT", "LAYER_LABELS", "WINDOWS", "CMP_RULES",
           "FDR_CHOICES", "MIN_N", "layers", "missing_layers", "default_layer",
           "grouping_columns", "group_values", "panels", "rules", "focus_defaults",
           "focus_note", "clicked_feature", "window_of_day", "group_arguments", "patients_of",
           "CUSTOM_WINDOW", "WINDOW_CHOICES", "DEFAULT_WINDOW", "CUSTOM_DAYS",
           "opening_choices", "grouping_label", "patient_choices", "other_patients",
           "other_values", "EFFECT_LABELS", "METHOD_LABELS", "panel_choices", "panel_label",
           "day_window_note", "file_stem", "feature_choice", "Layer", "Method", "METHODS",
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


# ---- the page's choices --------------------------------------------------------------------
CUSTOM_WINDOW = "custom"            # the window choice that asks for "start:end" days
WINDOW_CHOICES: tuple[str, ...] = (*WINDOWS, CUSTOM_WINDOW)
DEFAULT_WINDOW = "D28"
CUSTOM_DAYS = "21:35"               # the days a custom window starts with
EFFECT_LABELS: dict[EffectMeasure, str] = {"hedges_g": "Hedges' g",
                                           "cliffs_delta": "Cliff's delta"}
METHOD_LABELS: dict[Method, str] = {"rank": "Rank test on log-CPM",
                                    "deseq2": "DESeq2 on raw counts (about a minute)"}


def opening_choices(study: Study, *, layer: str | None = None, window: str | None = None,
                    focus: Focus | None = None) -> tuple[str, str]:
    """(layer, window) the page shows: those chosen (or linked) when the study has them, else
    the default layer and D28; a new `focus` (one not seen yet) overrides them with the layer
    and window that hold it (`focus_defaults`)."""
    wanted = focus_defaults(study, focus)
    layer = layer if layer in layers(study) else default_layer(study)
    return (wanted.get("layer", layer or ""),
            wanted.get("window", window if window is not None else DEFAULT_WINDOW))


def grouping_label(column: str) -> str:
    """How a grouping is named on the page."""
    return "Responders vs non-responders" if column == "response_group" else column


def patient_choices(study: Study) -> list[str]:
    """The patients group A of a custom split can take: every patient of the study."""
    return list(study.subject_ids)


def other_patients(study: Study, chosen: Sequence[str]) -> list[str]:
    """The patients group B of a custom split can take: those not in group A."""
    return [s for s in study.subject_ids if s not in set(chosen)]


def other_values(values: Sequence[str], a: str | None) -> list[str]:
    """The values group B can be, once group A is `a`."""
    return [v for v in values if v != a]


def panel_choices(study: Study) -> list[str | None]:
    """Measurement panels to narrow to, None (all panels) first."""
    return [None, *panels(study)]


def panel_label(panel: str | None) -> str:
    return "all panels" if panel is None else panel


def day_window_note(cohort: Cohort | None) -> str | None:
    """What the sidebar's day window does here, when it is set: only the course over time."""
    if cohort is None or cohort.days.is_everything:
        return None
    return ("The comparison uses its own window above; the sidebar's day window limits the "
            "trajectory below.")


def file_stem(study: Study, params: CompareParams) -> str:
    """The stem of the page's download names: study, layer and window."""
    return f"{study.name}_{params.layer}_{params.window}".replace(":", "-")


def feature_choice(features: Sequence[str], current: str | None) -> str:
    """The feature followed over time: the chosen one while it is ranked, else the top one."""
    return current if current in features else features[0]


# ---- groups ---------------------------------------------------------------------------------
def group_arguments(params: CompareParams) -> dict[str, Any]:
    """How `params` makes its two groups, as analysis.differential's keyword arguments."""
    if params.custom:
        return {"groups": (params.patients_a, params.patients_b),
                "group_column": "response_group", "group_a": None, "group_b": None}
    return {"groups": None, "group_column": params.group_by, "group_a": params.group_a,
            "group_b": params.group_b}


def patients_of(study: Study, cohort: Cohort | None) -> tuple[str, ...]:
    """The cohort's patients (every patient when there is no cohort)."""
    return tuple(cohort_subjects(response_groups(study), cohort or Cohort()))


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
    kw = group_arguments(params)
    try:
        assigned, _, _ = dif.assign_groups(study, groups=kw["groups"],
                                           group_column=kw["group_column"],
                                           group_a=kw["group_a"], group_b=kw["group_b"],
                                           subjects=patients_of(study, cohort))
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
