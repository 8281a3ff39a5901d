"""The Blood counts page's recipes: the counts figure, the responses per assessment and the
table views (baseline, recovery, CTCAE cytopenia grades and ICAHT), each table with the caption
that states its rule under the study's settings (analysis/rules.py).

Every view is `f(study, *, cohort, params, focus=None) -> TableSpec` with `TableParams` (the
`Rules` in force); the table holds the cohort's patients (these are per-patient tables, so the
cohort's day window does not cut them). The captions are built from the same settings the
tables were computed with, so what a page says is what it did.

One job, over 400 lines: the records of the Blood counts page and the option lists and
defaults its Params come from.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal, get_args

import polars as pl

from analysis import post_hsct
from analysis.baseline import baseline
from analysis.cohort import Cohort, cohort_subjects, response_groups
from analysis.haematotox import icaht_table
from analysis.recovery import count_summary, cytopenia_grades, recovery_table
from analysis.response import (
    CRITERIA,
    best_of,
    compare_recorded,
    comparison_summary,
    derived_responses,
    label_timepoints,
    reference_lines,
    transfusion_events,
)
from analysis.rules import Rules, rules_for
from analysis.vocab import DayWindow, ResponseCriteria
from components.figures.clinical import counts_by_group, counts_by_patient, response_heatmap
from views import common
from views.spec import FigureSpec, TableSpec, recipe

if TYPE_CHECKING:
    from analysis.cohort import Focus
    from data_loaders import Study

__all__ = ["RULES_SHOWN", "TableParams", "assessment_note", "baseline_view", "recovery_view",
           "ctcae_view", "ctcae_grid", "icaht_view"]

# the settings the Blood counts page depends on ("Rules used")
RULES_SHOWN = ("retic_threshold", "severe_anc", "severe_plt", "very_severe_anc", "ti_window",
               "count_window", "count_tie", "nonsevere_pr", "plt_support_days",
               "rbc_support_days", "gcsf_support_days", "screening_window",
               "baseline_on_ld_day", "anc_recovery", "plt_recovery", "recovery_runs",
               "lln_anc", "lln_plt", "lln_alc", "lln_hgb_female", "lln_hgb_male",
               "icaht_stable_recovery_days", "icaht_late_min_measurements")


@dataclass(frozen=True)
class TableParams:
    """The rule settings the tables are computed with."""

    rules: Rules


def _of_cohort(study: Study, frame: pl.DataFrame, cohort: Cohort | None) -> pl.DataFrame:
    if cohort is None or (not cohort.subjects and not cohort.groups):
        return frame
    keep = cohort_subjects(response_groups(study, rules=None), cohort)
    return frame.filter(pl.col("subject_id").is_in(keep))


def assessment_note(rules: Rules) -> str:
    """How each derived assessment chose its counts (under the response table)."""
    return ("Each assessment uses the count nearest its day within +/-"
            f"{rules.count_window} d (ties: the {rules.count_tie} one); a transfusion- or "
            "G-CSF-supported count (PLT within "
            f"{rules.plt_support_days} d of a platelet transfusion, HGB within "
            f"{rules.rbc_support_days} d of a red-cell transfusion, ANC during G-CSF and "
            f"{rules.gcsf_support_days} d after) never makes a criterion met: the nearest "
            "unsupported count is taken, else the criterion counts as not met, as the rule "
            "text says. Counts from an HSCT day on are the graft's and never decide an "
            "assessment. A patient not severe at baseline is judged by the BSH non-severe PR "
            f"rule (nonsevere_pr = {rules.nonsevere_pr!r}); unchanged counts are never PR.")


@recipe
def baseline_view(study: Study, *, cohort: Cohort | None = None, params: TableParams,
                  focus: Focus | None = None) -> TableSpec:
    rules = params.rules
    return TableSpec(
        "bc-baseline", "Baseline", _of_cohort(study, baseline(study, rules=rules), cohort),
        params=params,
        caption=("Baseline: the last ANC, PLT, RETIC and HGB before lymphodepletion starts, "
                 f"within {rules.screening_window} d (never a count after lymphodepletion "
                 "started; the first lymphodepletion day counts only with "
                 "baseline_on_ld_day); severity by modified Camitta (two of ANC < "
                 f"{rules.severe_anc:g}, PLT < {rules.severe_plt:g}, RETIC < "
                 f"{rules.retic_threshold:g}; vSAA with ANC < {rules.very_severe_anc:g}) with "
                 "the marrow criterion (cellularity < 25%, or 25-50% with < 30% residual "
                 "haematopoietic cells); a supported ANC or PLT counts on the severe side. "
                 "agrees: derived severity vs the recorded diagnosis. Also: python cli.py "
                 "table baseline."))


@recipe
def recovery_view(study: Study, *, cohort: Cohort | None = None, params: TableParams,
                  focus: Focus | None = None) -> TableSpec:
    rules = params.rules
    return TableSpec(
        "bc-recovery", "Recovery",
        _of_cohort(study, recovery_table(study, rules=rules), cohort), params=params,
        caption=(f"Neutrophil recovery: first of {rules.recovery_runs} consecutive ANC >= "
                 f"{rules.anc_recovery:g}, none under G-CSF support (the course + "
                 f"{rules.gcsf_support_days} d); platelet recovery: first of "
                 f"{rules.recovery_runs} consecutive PLT >= {rules.plt_recovery:g} without a "
                 f"platelet transfusion in the {rules.plt_support_days} d before; transfusion "
                 f"independence: no transfusion for >= {rules.ti_window} d. Follow-up stops at "
                 "an HSCT. Empty = not reached."))


@recipe
def ctcae_view(study: Study, *, cohort: Cohort | None = None, params: TableParams,
               focus: Focus | None = None) -> TableSpec:
    rules = params.rules
    grades = _of_cohort(study, cytopenia_grades(study, rules=rules), cohort)
    return TableSpec(
        "bc-grades", "CTCAE cytopenia grades", ctcae_grid(grades), params=params,
        caption=("One row per patient, one column per window: the worst CTCAE v5 grade of each "
                 "count in the window, highest first (G4 ANC, PLT = grade 4 neutrophil and "
                 "platelet count decreased; Hb = anaemia, Lym = lymphocyte count decreased; "
                 "none = every count within normal limits; LLN ANC "
                 f"{rules.lln_anc:g}, PLT {rules.lln_plt:g}, lymphocytes {rules.lln_alc:g}, "
                 f"HGB {rules.lln_hgb_female:g} women / {rules.lln_hgb_male:g} men), counted "
                 "from day 1 after infusion (the lymphodepletion nadir before infusion is not "
                 "the CAR-T's) and stopping the day before an HSCT; Baseline: the grade of the "
                 "baseline count (before lymphodepletion), shown apart. One row per patient, "
                 "count and window with the day of the worst value: python cli.py table "
                 "cytopenia_grades."))


_CTCAE_SHORT = {"Neutrophil count decreased": "ANC", "Platelet count decreased": "PLT",
                "Anemia": "Hb", "Lymphocyte count decreased": "Lym"}


def ctcae_grid(grades: pl.DataFrame) -> pl.DataFrame:
    """cytopenia_grades (subject_id, term, window, worst_grade) as a patient x window grid:
    each cell "G4 ANC, PLT; G3 Hb; G1 Lym" (the counts by worst grade, highest first), "none"
    when every count is grade 0, empty when the window has no count."""
    if grades.height == 0:
        return pl.DataFrame(schema={"subject_id": pl.String})
    windows = grades.get_column("window").unique(maintain_order=True).to_list()
    short = pl.col("term").replace(_CTCAE_SHORT)
    by_grade = (grades.filter(pl.col("worst_grade").is_not_null())
                .with_columns(short.alias("_t"))
                .group_by("subject_id", "window", "worst_grade", maintain_order=True)
                .agg(pl.col("_t").sort().str.join(", "))
                .sort("subject_id", "window", "worst_grade", descending=[False, False, True]))
    cells = (by_grade.group_by("subject_id", "window", maintain_order=True).agg(
        pl.when(pl.col("worst_grade").max() == 0).then(pl.lit("none"))
        .otherwise(pl.format("G{} {}", pl.col("worst_grade"), pl.col("_t"))
                   .filter(pl.col("worst_grade") > 0).str.join("; "))
        .first().alias("cell")))
    wide = cells.pivot(on="window", index="subject_id", values="cell")
    return wide.select("subject_id", *[w for w in windows if w in wide.columns]).sort(
        "subject_id")


@recipe
def icaht_view(study: Study, *, cohort: Cohort | None = None, params: TableParams,
               focus: Focus | None = None) -> TableSpec:
    rules = params.rules
    return TableSpec(
        "bc-icaht", "Haematotoxicity (ICAHT)",
        _of_cohort(study, icaht_table(study, rules=rules), cohort), params=params,
        caption=("EHA/EBMT ICAHT grade (Rejeski et al., Blood 2023;142:865): early (days 0-30) "
                 "from the days with ANC <= 0.5 and <= 0.1 (grade 1: 1-6 d; 2: 7-13 d; "
                 "3: 14-30 d, or <= 0.1 for >= 7 d; 4: never above 0.5, or <= 0.1 for "
                 ">= 14 d; spells above 0.5 shorter than "
                 f"{rules.icaht_stable_recovery_days} d count as neutropenic); late (after "
                 "day 30) from the nadir on at least "
                 f"{rules.icaht_late_min_measurements} measurements (1: <= 1.5, 2: <= 1.0, "
                 "3: <= 0.5, 4: <= 0.1). A count stands until the next; both stop at an HSCT. "
                 "In SAA these counts are both toxicity and efficacy: a patient neutropenic "
                 "before infusion (baseline_anc) who stays so is a non-responder and "
                 "high-grade ICAHT alike. Also: python cli.py table icaht."))


# the ICAHT table on screen: the rule columns restate the counts beside them at length, so the
# grid leaves them out (`icaht_rules` shows them as wrapped text; the CSV keeps them)
ICAHT_RULE_COLUMNS = {"early_rule": "Early ICAHT (days 0-30): rule",
                      "late_rule": "Late ICAHT (after day 30): rule"}
ICAHT_GRID: dict[str, None] = dict.fromkeys(ICAHT_RULE_COLUMNS)


def icaht_rules(spec: TableSpec) -> pl.DataFrame:
    """The rule that decided each patient's early and late ICAHT grade (`icaht_view`), one
    row per patient, with the column labels the page shows."""
    return spec.data.select("subject_id", *ICAHT_RULE_COLUMNS).rename(
        {"subject_id": "Patient", **ICAHT_RULE_COLUMNS})


# the Baseline and Derived vs recorded tables on screen, as the ICAHT one: the rule text in a
# wrapped table below the grid (the CSV keeps it). Baseline's grid also leaves out what its
# rule text restates: the days of ANC, PLT and RETIC, the reference day (lymphodepletion
# start) and the "supported" flags and day of HGB, which is not a severity criterion (each
# named in the rule text with the transfusion or G-CSF behind it; the CSV keeps every column).
BASELINE_RULE_COLUMNS = {"rule": "Baseline severity: rule"}
BASELINE_GRID: dict[str, None] = dict.fromkeys(
    (*BASELINE_RULE_COLUMNS, "reference_day", "anc_day", "plt_day", "retic_day", "hgb_day",
     "anc_supported", "plt_supported", "hgb_supported"))
COMPARE_RULE_COLUMNS = {"rule": "Derived response: rule"}


def rule_text(spec: TableSpec, columns: Mapping[str, str],
              keys: Mapping[str, str] = MappingProxyType({"subject_id": "Patient"})
              ) -> pl.DataFrame:
    """The rule text of a table (`columns`, its header on screen) with the `keys` that name
    its rows (Patient; Patient and Day for one row per assessment)."""
    return spec.data.select(*keys, *columns).rename({**keys, **columns})


def compare_rules(spec: TableSpec) -> pl.DataFrame:
    """The rule behind each derived response of `derived_vs_recorded`, by patient and day."""
    return rule_text(spec, COMPARE_RULE_COLUMNS, {"subject_id": "Patient", "day": "Day"})


def baseline_rules(spec: TableSpec) -> pl.DataFrame:
    """The rule behind each patient's baseline severity (`baseline_view`)."""
    return rule_text(spec, BASELINE_RULE_COLUMNS)


# ---- the counts figure and the response tables (what the page composes) --------------------
__all__ += ["ICAHT_RULE_COLUMNS", "ICAHT_GRID", "icaht_rules", "BASELINE_RULE_COLUMNS",
            "BASELINE_GRID", "COMPARE_RULE_COLUMNS", "rule_text", "compare_rules",
            "baseline_rules"]
__all__ += ["CRITERIA", "study_rules", "transfusions", "course_marks", "hsct_days",
            "display_series", "group_summary", "count_reference_lines", "derived",
            "heatmap_cells", "best", "versus_recorded",
            "versus_recorded_summary"]


def study_rules(study: Study) -> Rules:
    """The study's rule settings (study.toml [rules] over the defaults)."""
    return rules_for(study)


def transfusions(study: Study) -> pl.DataFrame | None:
    """RBC and platelet transfusions (the rug under the counts), or None when none recorded."""
    return transfusion_events(study.events)


def hsct_days(study: Study) -> pl.DataFrame:
    return post_hsct.hsct_days(study)


def course_marks(study: Study, *, hsct: pl.DataFrame, subjects: Sequence[str]
                 ) -> list[tuple[int, int, str]]:
    """(start, end, label) spans on the time axis: lymphodepletion, infusion, each HSCT."""
    ld = study.events.filter(pl.col("category") == "lymphodepletion")
    marks: list[tuple[int, int, str]] = []
    if ld.height:
        marks.append((ld["day"].min(), ld.select(pl.coalesce("end_day", "day").max()).item(),
                      "lymphodepletion"))
    marks.append((0, 0, "infusion"))
    return marks + post_hsct.hsct_marks(hsct, subjects=subjects)


def display_series(series: pl.DataFrame, *, hsct: pl.DataFrame, rules: Rules) -> pl.DataFrame:
    """Counts as drawn: post-HSCT values marked or dropped per `post_hsct_display`."""
    return post_hsct.for_display(series, hsct=hsct, rules=rules)


def group_summary(series: pl.DataFrame, *, groups: pl.DataFrame, bin_days: int) -> pl.DataFrame:
    """Median and IQR per response group and day bin, post-HSCT values left out."""
    return count_summary(post_hsct.for_summary(series), groups=groups, bin_days=bin_days)


def count_reference_lines(*, criteria: str, rules: Rules) -> Any:
    return reference_lines(criteria=criteria, rules=rules)


def derived(study: Study, *, criteria: str, rules: Rules) -> pl.DataFrame:
    """Derived responses per assessment under `criteria` with the rule that decided each."""
    return derived_responses(study, criteria=criteria, rules=rules)


def heatmap_cells(derived: pl.DataFrame) -> tuple[pl.DataFrame, list[str]]:
    """Assessments labelled by timepoint, and the timepoints in day order."""
    cells = label_timepoints(derived)
    return cells, cells.sort("day")["timepoint"].unique(maintain_order=True).to_list()


def best(derived: pl.DataFrame) -> pl.DataFrame:
    return best_of(derived)


def versus_recorded(derived: pl.DataFrame, recorded: pl.DataFrame) -> pl.DataFrame:
    return compare_recorded(derived, recorded)


def versus_recorded_summary(cmp: pl.DataFrame) -> str:
    """The sentence above the derived-vs-recorded table: disagreements on the same criteria
    only; records of other or unknown criteria are counted apart, not as disagreements."""
    return comparison_summary(cmp)


# ---- the counts figure (page and deck) ------------------------------------------------------
__all__ += ["COUNTS", "COUNT_VIEWS", "BIN_DAYS", "CountParams", "present_counts", "default_counts", "retic_options",
            "retic_label", "medications_heading", "all_agree", "rules_of", "counts"]

COUNTS = ("ANC", "HGB", "PLT", "RETIC", "WBC", "ALC")
CountView = Literal["per patient", "group median + IQR"]
COUNT_VIEWS: tuple[CountView, ...] = get_args(CountView)
BIN_DAYS = (1, 7, 14, 28)         # the widths offered for the group medians' bins
_NAMES = {"ANC": "ANC", "PLT": "platelets", "HGB": "haemoglobin", "RETIC": "reticulocytes",
          "WBC": "WBC", "ALC": "lymphocytes"}


@dataclass(frozen=True)
class CountParams:
    """The counts drawn (empty: ANC, PLT and HGB where measured), per patient or as group
    median + IQR in `bin_days` bins, the criteria of the reference lines and response rules
    (None: the study's setting), and what a focus from another page highlights."""

    analytes: tuple[str, ...] = ()
    view: CountView = "per patient"
    log_y: bool = False
    bin_days: int = 7
    criteria: ResponseCriteria = "NIH"
    ti_window: int | None = None
    count_window: int | None = None
    retic_threshold: float | None = None
    highlight: tuple[str, ...] = ()
    shade: DayWindow | None = None


def present_counts(study: Study) -> list[str]:
    """The blood counts this study measured, in display order."""
    measured = set(study.analytes_present())
    return [a for a in COUNTS if a in measured]


def default_counts(present: Sequence[str]) -> list[str]:
    """The counts drawn when none is chosen: ANC, PLT and HGB where measured."""
    return [a for a in ("ANC", "PLT", "HGB") if a in present]


_RETIC_SOURCES = {20.0: " (manual, Camitta / Chinese consensus)", 60.0: " (automated, BSH)"}


def retic_options(rules: Rules) -> list[float]:
    """The reticulocyte cut-offs offered: the manual (20) and automated (60) counts' and the
    study's setting, ascending."""
    return sorted({*_RETIC_SOURCES, float(rules.retic_threshold)})


def retic_label(value: float) -> str:
    """A reticulocyte cut-off with the count method it belongs to."""
    return f"< {value:g}" + _RETIC_SOURCES.get(value, "")


def medications_heading(meds: TableSpec) -> str:
    """The Blood counts page's heading of the count-acting medications, with their number."""
    return f"G-CSF, TPO-RA, ciclosporin and steroids ({meds.data.height} course(s))"


def all_agree(cmp: TableSpec) -> bool:
    """Whether every derived response agrees with the recorded one (`derived_vs_recorded`)."""
    return cmp.data.filter(pl.col("agree").not_()).height == 0


def rules_of(study: Study, params: CountParams) -> Rules:
    """The study's settings with the Params' overrides."""
    changes = {k: getattr(params, k) for k in ("ti_window", "count_window", "retic_threshold")
               if getattr(params, k) is not None}
    return rules_for(study).with_(**changes) if changes else rules_for(study)


def _analytes(study: Study, params: CountParams) -> list[str]:
    present = present_counts(study)
    if params.analytes:
        return [a for a in params.analytes if a in present]
    return default_counts(present)


@recipe
def counts(study: Study, *, cohort: Cohort | None = None, params: CountParams = CountParams(),
           focus: Focus | None = None) -> FigureSpec | None:
    """Counts over time with the course marked (lymphodepletion, infusion, each HSCT), the
    transfusion rug and the criteria's reference lines; None when none of the counts is
    measured."""
    analytes = _analytes(study, params)
    if not analytes:
        return None
    rules = rules_of(study, params)
    hsct = post_hsct.hsct_days(study)
    tx = transfusions(study)
    tx = common.apply(study, tx, cohort) if tx is not None else None
    ids = common.subjects(study, cohort)
    common_args = {"analytes": analytes, "log_y": params.log_y, "transfusions": tx,
                   "marks": course_marks(study, hsct=hsct, subjects=ids),
                   "ref_lines": reference_lines(criteria=params.criteria, rules=rules),
                   "labels": {a: study.analyte_label(a) for a in analytes},
                   "shade": params.shade}
    series = display_series(common.apply(study, study.series(analytes=analytes), cohort),
                            hsct=hsct, rules=rules)
    title = "Blood counts: " + ", ".join(_NAMES.get(a, a) for a in analytes)
    caption = (f"Dotted lines: {params.criteria} severity and CR thresholds. "
               + ("" if not hsct.height else
                  "A vertical line marks each HSCT; counts after it are the graft's: "
                  + ("not drawn" if rules.post_hsct_display == "stop" else "dashed and faded")
                  + " (setting post_hsct_display), and never in the group medians and IQRs."))
    if params.view == "per patient":
        fig = counts_by_patient(series, colors=common.colors(study, cohort),
                                highlight=params.highlight, **common_args)
        return FigureSpec(key="bc-counts", title=title, fig=fig, data=series, params=params,
                          caption=caption.strip())
    summary = group_summary(series, groups=common.groups(study), bin_days=params.bin_days)
    return FigureSpec(key="bc-counts", title=title + " (group median, IQR)",
                      fig=counts_by_group(summary, **common_args), data=summary,
                      params=params, caption=caption.strip())


# ---- derived responses per assessment -------------------------------------------------------
__all__ += ["responses_heatmap", "best_responses", "derived_vs_recorded"]


def _derived(study: Study, cohort: Cohort | None, params: CountParams) -> pl.DataFrame:
    return common.apply(study, derived(study, criteria=params.criteria,
                                       rules=rules_of(study, params)), cohort)


@recipe
def responses_heatmap(study: Study, *, cohort: Cohort | None = None,
                      params: CountParams = CountParams(), focus: Focus | None = None
                      ) -> FigureSpec | None:
    """The response derived at each assessment (patients x timepoints), with the rule that
    decided it on hover; None when the cohort and day window hold no assessment."""
    table = _derived(study, cohort, params)
    if table.height == 0:
        return None
    cells, timepoints = heatmap_cells(table)
    fig = response_heatmap(cells, subjects=common.subjects(study, cohort),
                           timepoints=timepoints,
                           title=f"Response over time ({params.criteria}, derived)")
    return FigureSpec(key="bc-heatmap", title="Response per assessment", fig=fig, data=table,
                      params=params, caption=assessment_note(rules_of(study, params)))


@recipe
def best_responses(study: Study, *, cohort: Cohort | None = None,
                   params: CountParams = CountParams(), focus: Focus | None = None) -> TableSpec:
    """Best derived response per patient and the assessment that decided it."""
    return TableSpec(key="bc-best", title="Best response and why",
                     data=best(_derived(study, cohort, params)), params=params)


@recipe
def derived_vs_recorded(study: Study, *, cohort: Cohort | None = None,
                        params: CountParams = CountParams(), focus: Focus | None = None
                        ) -> TableSpec | None:
    """Derived against recorded responses, assessment by assessment (disagreements first);
    None without recorded responses."""
    if not study.has("responses"):
        return None
    cmp = common.apply(study, versus_recorded(_derived(study, cohort, params),
                                              study.responses), cohort)
    return TableSpec(key="bc-compare", title="Derived vs recorded",
                     data=cmp.sort(pl.col("agree").fill_null(True), "subject_id", "day"),
                     params=params, caption=versus_recorded_summary(cmp))
