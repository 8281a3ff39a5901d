"""Views of the Outcomes page: the overall response rate at the landmarks and Kaplan-Meier
survival (one endpoint or several, split by response at a landmark day or by best response).
`orr` and `survival` are also slides of the standard deck (OS and PFS together there).

Rule settings a Params field leaves at None are the study's (study.toml [rules]).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import polars as pl

from analysis.cohort import Cohort
from analysis.outcomes import ENDPOINTS, ORR_CAPTION, KMResult, kaplan_meier, orr, survival_data
from analysis.response import derived_responses, recorded_responses
from analysis.rules import Rules
from analysis.survival import landmark
from analysis.vocab import RESPONSE_CRITERIA
from components.figures.clinical import km_plot, orr_plot
from views import common
from views.spec import FigureSpec, TableSpec, recipe

if TYPE_CHECKING:
    from analysis.cohort import Focus
    from data_loaders import Study

__all__ = ["ORRParams", "SurvivalParams", "RULES_SHOWN", "ENDPOINT_LABELS", "sources",
           "rules_of", "orr_figure", "orr_table", "survival", "survival_medians",
           "survival_note", "orr_params", "endpoint_stem", "survival_params",
           "follow_up_note"]

Source = Literal["NIH", "BSH", "recorded"]
Split = Literal["none", "landmark", "best"]
RULES_SHOWN = ("retic_threshold", "ti_window", "count_window", "count_tie", "nonsevere_pr",
               "plt_support_days", "rbc_support_days", "gcsf_support_days",
               "screening_window", "baseline_on_ld_day", "landmark_tolerance",
               "survival_landmark_day")
ENDPOINT_LABELS = {e: {"OS_HSCT_CENSORED": "OS censored at HSCT"}.get(e, e) for e in ENDPOINTS}


@dataclass(frozen=True)
class ORRParams:
    """Responses from the counts (NIH, BSH) or as recorded; `ti_window` (days) overrides the
    study's transfusion-independence window."""

    criteria: Source = "NIH"
    ti_window: int | None = None


@dataclass(frozen=True)
class SurvivalParams:
    """Endpoints (several: one curve each), the split by response ("landmark": patients at
    risk at `landmark_day`, grouped by a CR or PR up to it, under `criteria`; "best": best
    response over the whole follow-up) and the rule overrides."""

    endpoints: tuple[str, ...] = ("OS",)
    split: Split = "none"
    criteria: Source = "NIH"
    landmark_day: int | None = None
    ti_window: int | None = None


def orr_params(rules: Rules, *, source: Source, ti_window: int) -> ORRParams:
    """The ORR Params the page's widgets make (the window recorded only where it differs
    from the study's setting)."""
    return ORRParams(criteria=source,
                     ti_window=None if ti_window == rules.ti_window else ti_window)


def endpoint_stem(endpoints: Sequence[str]) -> str:
    """The endpoints as they name a download file, e.g. "OS_PFS"."""
    return "_".join(endpoints)


def survival_params(rules: Rules, *, endpoints: Sequence[str], split: Split, source: Source,
                    landmark_day: int, ti_window: int) -> SurvivalParams:
    """The Survival Params the page's widgets make: the landmark day, the criteria and the
    transfusion window count only for a landmark split, and each is recorded only where it
    differs from the study's setting (so a link carries what the user changed)."""
    landmark = split == "landmark"
    return SurvivalParams(
        endpoints=tuple(endpoints), split=split, criteria=source if landmark else "NIH",
        landmark_day=landmark_day if landmark and landmark_day != rules.survival_landmark_day
        else None,
        ti_window=ti_window if landmark and ti_window != rules.ti_window else None)


def follow_up_note(study: Study) -> str | None:
    """What ends a surviving patient's follow-up when patients.csv gives no last contact;
    None when it does."""
    if study.patients.get_column("last_contact_day").drop_nulls().len():
        return None
    return ("patients.csv has no last_contact_day: follow-up of surviving patients ends at "
            "their last recorded measurement or event.")


_ADJECTIVE = {"OS": "overall", "OS_HSCT_CENSORED": "overall (censored at HSCT)",
              "EFS": "event-free", "PFS": "progression-free"}
_SHORT = {"OS": "every death counts (HSCT included)", "OS_HSCT_CENSORED": "censored at HSCT",
          "EFS": "HSCT, progression or death", "PFS": "progression or death"}


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _joined(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def sources(study: Study) -> list[str]:
    """Where responses can come from in this study."""
    return [*RESPONSE_CRITERIA, *(["recorded"] if study.has("responses") else [])]


def rules_of(study: Study, params: ORRParams | SurvivalParams) -> Rules:
    """The study's settings with the Params' overrides."""
    rules = common.rules(study)
    if params.ti_window is not None:
        rules = rules.with_(ti_window=params.ti_window)
    if getattr(params, "landmark_day", None) is not None:
        rules = rules.with_(survival_landmark_day=params.landmark_day)
    return rules


def _orr(study: Study, cohort: Cohort | None, params: ORRParams) -> pl.DataFrame:
    return orr(study, criteria=params.criteria, rules=rules_of(study, params),
               subjects=tuple(common.subjects(study, cohort)))


@recipe
def orr_figure(study: Study, *, cohort: Cohort | None = None, params: ORRParams = ORRParams(),
               focus: Focus | None = None) -> FigureSpec | None:
    """ORR per landmark with exact 95% CI; None when the study has neither counts nor
    recorded responses."""
    if not study.has("measurements") and not study.has("responses"):
        return None
    table = _orr(study, cohort, params)
    rules = rules_of(study, params)
    how = "recorded responses (NE on or after an HSCT)" if params.criteria == "recorded" \
        else f"{params.criteria} criteria from the counts"
    return FigureSpec(
        key="out-orr", title="Overall response rate",
        fig=orr_plot(table, title=f"Overall response rate (CR + PR), {params.criteria}"),
        data=table, params=params,
        caption=f"{how[0].upper()}{how[1:]}. "
                + ORR_CAPTION.format(tol=rules.landmark_tolerance))


@recipe
def orr_table(study: Study, *, cohort: Cohort | None = None, params: ORRParams = ORRParams(),
              focus: Focus | None = None) -> TableSpec:
    """The ORR table behind the figure (n, responders, exact CI per landmark)."""
    return TableSpec(key="out-orr-table", title="Overall response rate per landmark",
                     data=_orr(study, cohort, params), params=params)


def _survival(study: Study, cohort: Cohort | None, params: SurvivalParams
              ) -> tuple[pl.DataFrame, KMResult, str | None, str]:
    """(patients' survival rows, Kaplan-Meier, group column, note on who was left out)."""
    ids = common.subjects(study, cohort)
    if len(params.endpoints) > 1:
        surv = pl.concat([survival_data(study, endpoint=ep)
                          .filter(pl.col("subject_id").is_in(ids))
                          .with_columns(pl.lit(ep).alias("endpoint"))
                          for ep in params.endpoints])
        return surv, kaplan_meier(surv, group="endpoint"), "endpoint", ""
    surv = survival_data(study, endpoint=params.endpoints[0]) \
        .filter(pl.col("subject_id").is_in(ids))
    group_col, note = None, ""
    if params.split == "landmark":
        rules = rules_of(study, params)
        day = rules.survival_landmark_day
        resp = recorded_responses(study) if params.criteria == "recorded" else \
            derived_responses(study, criteria=params.criteria, rules=rules)
        lm = landmark(surv, resp, day=day)
        left_out = lm.filter(pl.col("landmark_group").is_null())
        surv, group_col = lm.filter(pl.col("landmark_group").is_not_null()), "landmark_group"
        note = (f"Landmark analysis at day {day} ({params.criteria} responses): {surv.height} "
                f"patients at risk at day {day}, grouped by a CR or PR on or before it; time "
                f"counts from day {day}. Left out: {left_out.height}"
                + (" (" + "; ".join(f"{r['subject_id']}: {r['landmark_note']}"
                                    for r in left_out.iter_rows(named=True)) + ")"
                   if left_out.height else "") + ".")
    elif params.split == "best":
        surv = surv.join(common.groups(study).select("subject_id", "response_group"),
                         on="subject_id")
        group_col = "response_group"
        note = ("Immortal-time bias: best response over the whole follow-up is known only at "
                "the end, and a patient must survive to respond, so this split favours "
                "responders from day 0. Use the landmark analysis for a comparison.")
    return surv, kaplan_meier(surv, group=group_col), group_col, note


@recipe
def survival(study: Study, *, cohort: Cohort | None = None,
             params: SurvivalParams = SurvivalParams(),
             focus: Focus | None = None) -> FigureSpec | None:
    """Kaplan-Meier curves with 95% bands and numbers at risk; None when the cohort has no
    patient."""
    if not common.subjects(study, cohort):
        return None
    surv, km, group_col, _ = _survival(study, cohort, params)
    if len(params.endpoints) > 1:
        eps = params.endpoints
        title = _cap(_joined([_ADJECTIVE[e] for e in eps])) + " survival"
        fig = km_plot(km.curve, km.at_risk, censored=km.censored,
                      note="; ".join(f"{e}: {_SHORT[e]}" for e in eps),
                      title=_cap(_joined([f"{_ADJECTIVE[e]} ({e})" for e in eps]))
                      + " survival")
        caption = "Kaplan-Meier with 95% bands. " + " ".join(ENDPOINTS[e][1] for e in eps)
        return FigureSpec(key="out-km", title=title, fig=fig, data=surv, params=params,
                          caption=caption)
    endpoint = params.endpoints[0]
    name, definition = ENDPOINTS[endpoint]
    day = rules_of(study, params).survival_landmark_day
    fig = km_plot(km.curve, km.at_risk, censored=km.censored,
                  note=definition.split(": ", 1)[1].split(";")[0],
                  title=f"{name} (Kaplan-Meier, 95% CI)"
                  + (f", landmark day {day}" if group_col == "landmark_group" else ""))
    if group_col == "landmark_group":
        fig.update_xaxes(title_text=f"Time (days after the day-{day} landmark)", row=2, col=1)
    return FigureSpec(key="out-km", title=name, fig=fig, data=surv, params=params,
                      caption=f"Definition. {definition}")


def survival_note(study: Study, *, cohort: Cohort | None = None,
                  params: SurvivalParams) -> str:
    """Who a split leaves out and why (landmark), or the bias of a best-response split."""
    return _survival(study, cohort, params)[3]


@recipe
def survival_medians(study: Study, *, cohort: Cohort | None = None,
                     params: SurvivalParams = SurvivalParams(),
                     focus: Focus | None = None) -> TableSpec:
    """Median survival (days, 95% CI; NR = not reached) per group."""
    _, km, _, _ = _survival(study, cohort, params)
    medians = km.summary.with_columns(
        pl.format("{} ({}-{})", *[pl.col(c).round(0).cast(pl.Int64).cast(pl.String)
                                  .fill_null("NR") for c in ("median", "median_ci_low",
                                                             "median_ci_high")])
        .alias("median days (95% CI)")).select("group", "n", "events", "median days (95% CI)")
    return TableSpec(key="out-km-summary", title="Median survival", data=medians,
                     params=params,
                     caption="NR = not reached. Numbers at risk under the plot share its time "
                             "axis. The full table: python cli.py table survival --endpoint "
                             + params.endpoints[0])
