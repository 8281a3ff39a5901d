"""Views of the Overview page: the study summary, the baseline table (table 1), the swimmer
plot and the sample-availability matrix. `swimmer` is also the deck's first slide."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, get_args

import polars as pl

from analysis.baseline import baseline
from analysis.cohort import Cohort
from analysis.outcomes import (
    StudySummary,
    baseline_table,
    study_summary,
    swimmer_events,
    swimmer_lanes,
)
from analysis.quality import ASSAY_PAGES, sample_availability
from analysis.response import derived_responses
from analysis.vocab import ResponseCriteria
from components.figures.clinical import swimmer_plot
from components.figures.quality import availability_matrix
from views import common
from views.spec import FigureSpec, TableSpec, recipe

if TYPE_CHECKING:
    from analysis.cohort import Focus
    from data_loaders import Study

__all__ = ["SwimmerParams", "SORT_ORDERS", "RULES_SHOWN", "summary", "group_sources", "table1", "swimmer",
           "not_drawn", "not_drawn_note", "availability", "assay_pages"]

SortBy = Literal["follow-up", "response"]
SORT_ORDERS: tuple[SortBy, ...] = get_args(SortBy)
RULES_SHOWN = ("retic_threshold", "ti_window", "count_window", "nonsevere_pr",
               "plt_support_days", "rbc_support_days", "gcsf_support_days",
               "screening_window", "baseline_on_ld_day")


@dataclass(frozen=True)
class SwimmerParams:
    """Lane order and the criteria of the response marks (derived from the counts)."""

    sort_by: SortBy = "follow-up"
    criteria: ResponseCriteria = "NIH"


def summary(study: Study, *, cohort: Cohort | None = None) -> StudySummary:
    """Patients, median follow-up and best ORR of the cohort."""
    return study_summary(study, groups=common.groups(study),
                         subjects=common.subjects(study, cohort))


def group_sources(study: Study, *, cohort: Cohort | None = None) -> str:
    """Where the cohort's response groups come from, e.g. "derived NIH (4), override (1)"."""
    ids = common.subjects(study, cohort)
    counts = common.groups(study).filter(pl.col("subject_id").is_in(ids)) \
        .get_column("group_source").value_counts(sort=True)
    return ", ".join(f"{r['group_source']} ({r['count']})" for r in counts.iter_rows(named=True))


@recipe
def table1(study: Study, *, cohort: Cohort | None = None, params: None = None,
           focus: Focus | None = None) -> TableSpec:
    """Baseline characteristics by response group, with the derived severity."""
    rules = common.rules(study)
    ids = common.subjects(study, cohort)
    patients = study.patients.filter(pl.col("subject_id").is_in(ids))
    table = baseline_table(patients, groups=common.groups(study),
                           severity=baseline(study, rules=rules))
    return TableSpec(
        key="ov-table1", title="Baseline characteristics", data=table,
        caption="Severity at baseline (derived): modified Camitta from the last counts before "
                f"lymphodepletion (within {rules.screening_window} d, never after it) and the "
                "marrow cellularity; the recorded diagnosis (patients.diagnosis) is shown "
                "apart. Per patient, with the counts and days used: the Baseline table on the "
                "Blood counts page.")


@recipe
def swimmer(study: Study, *, cohort: Cohort | None = None,
            params: SwimmerParams = SwimmerParams(),
            focus: Focus | None = None) -> FigureSpec | None:
    """One lane per patient from infusion to last contact, with responses and events; None
    when the cohort has no patient."""
    ids = common.subjects(study, cohort)
    responses = derived_responses(study, criteria=params.criteria, rules=common.rules(study))
    lanes = swimmer_lanes(study, groups=common.groups(study)) \
        .filter(pl.col("subject_id").is_in(ids))
    if lanes.height == 0:
        return None
    events = swimmer_events(study, responses=responses).filter(pl.col("subject_id").is_in(ids))
    return FigureSpec(
        key="ov-swimmer", title="Follow-up, responses and events per patient",
        fig=swimmer_plot(lanes, events, sort_by=params.sort_by), data=events, params=params,
        caption="Lanes run from infusion to last contact; squares are response assessments "
                f"derived from blood counts ({params.criteria}); HSCT, progression and death "
                "are marked (from events or patients.csv); assessments on or after an HSCT are "
                "NE for the CAR-T.")


def not_drawn(study: Study, spec: FigureSpec) -> list[str]:
    """What the swimmer plot cannot show because the study lacks it."""
    kinds = spec.data.get_column("kind").unique().to_list() if spec.data is not None else []
    checks = (("transfusions", any(str(k).endswith("transfusion") for k in kinds)),
              ("CRS/ICANS episodes",
               study.events.filter(pl.col("category").is_in(["crs", "icans"])).height > 0),
              ("last contact days",
               study.patients.get_column("last_contact_day").drop_nulls().len() > 0))
    return [what for what, ok in checks if not ok]


def not_drawn_note(study: Study, spec: FigureSpec) -> str | None:
    """What the swimmer plot lacks and where to add it; None when it lacks nothing."""
    missing = not_drawn(study, spec)
    if not missing:
        return None
    return ("Not in this study, so not drawn: " + ", ".join(missing) + ". Add them to "
            "events.csv (category transfusion/crs/icans) or patients.csv (last_contact_day).")


@recipe
def availability(study: Study, *, cohort: Cohort | None = None, params: None = None,
                 focus: Focus | None = None) -> FigureSpec | None:
    """Samples per patient, timepoint and assay; None when nothing was sampled."""
    avail = common.apply(study, sample_availability(study), cohort)
    if avail.height == 0:
        return None
    return FigureSpec(key="ov-availability", title="Sample availability",
                      fig=availability_matrix(avail), data=avail)


def assay_pages(spec: FigureSpec) -> dict[str, str]:
    """Assay -> the page that shows it, for the assays in the availability matrix."""
    assays = spec.data.get_column("assay").unique().sort().to_list() \
        if spec.data is not None else []
    return {a: ASSAY_PAGES[a] for a in assays if a in ASSAY_PAGES}
