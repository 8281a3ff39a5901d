"""Survival from infusion: the endpoints, their per-patient data and Kaplan-Meier estimates.

Endpoints (`ENDPOINTS`; definitions also in docs/rules.md, section Survival):
- OS: death from any cause is the event, whatever came before (HSCT included);
- OS censored at HSCT (`OS_HSCT_CENSORED`): a sensitivity analysis of the CAR-T's own account;
- EFS: the first of HSCT, progression or death;
- PFS: the first of progression or death. Progression comes only from
  patients.progression_day or events of category `progression`, never from another
  category's text (an infection "CMV relapse" is not progression); HSCT neither ends nor
  censors PFS follow-up.
Patients without the event are censored at last contact (or their last record).

Kaplan-Meier estimates come from lifelines (Davidson-Pilon, JOSS 2019): exponential Greenwood
95% bands, the median with its 95% interval as lifelines computes it, numbers at risk.
`survival_table` is the KM table `python cli.py table survival --endpoint ...` prints.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from analysis.registry import Option, derived_table
from analysis.response import follow_up_end
from analysis.vocab import RESPONDING

if TYPE_CHECKING:
    from data_loaders import Study

__all__ = ["ENDPOINTS", "survival_data", "survival_table", "KMResult", "kaplan_meier", "landmark",
           "LANDMARK_RESPONDER", "LANDMARK_NON_RESPONDER"]


ENDPOINTS: dict[str, tuple[str, str]] = {
    "OS": ("Overall survival",
           "OS: death from any cause is the event, whatever came before (HSCT included); "
           "patients alive are censored at last contact."),
    "OS_HSCT_CENSORED": ("Overall survival censored at HSCT (sensitivity analysis)",
                         "OS censored at HSCT, a sensitivity analysis: death before an HSCT is "
                         "the event; follow-up ends (censored) at HSCT, else at last contact."),
    "EFS": ("Event-free survival",
            "EFS: the first of HSCT, progression or death is the event; censored at last "
            "contact."),
    "PFS": ("Progression-free survival",
            "PFS: the first of progression (patients.progression_day or an event of category "
            "progression) or death is the event; HSCT neither ends nor censors follow-up; "
            "censored at last contact."),
}


def survival_data(study: Study, *, endpoint: str = "OS") -> pl.DataFrame:
    """subject_id, time (days from infusion), event (0/1), reason for one endpoint of
    `ENDPOINTS` (OS, OS_HSCT_CENSORED, EFS, PFS; definitions in `ENDPOINTS` and
    docs/rules.md). Progression comes only from patients.progression_day or events of
    category `progression`, never from another category's text."""
    endpoint = endpoint.upper()
    if endpoint not in ENDPOINTS:
        raise ValueError(f"endpoint must be one of {', '.join(ENDPOINTS)}, got {endpoint!r}")
    p = study.patients.select("subject_id", "death_day", "hsct_day", "progression_day")
    ev = study.events.with_columns(pl.col("category").str.to_lowercase().alias("_cat"))

    def first(cat: str, name: str) -> pl.DataFrame:
        return ev.filter(pl.col("_cat") == cat).group_by("subject_id") \
            .agg(pl.col("day").min().cast(pl.Int64).alias(name))

    df = (p.join(first("hsct", "_hsct_ev"), on="subject_id", how="left")
          .join(first("death", "_death_ev"), on="subject_id", how="left")
          .join(first("progression", "_prog_ev"), on="subject_id", how="left")
          .join(follow_up_end(study), on="subject_id", how="left")
          .with_columns(pl.min_horizontal("death_day", "_death_ev").alias("_death"),
                        pl.min_horizontal("hsct_day", "_hsct_ev").alias("_hsct"),
                        pl.min_horizontal("progression_day", "_prog_ev").alias("_prog")))
    death, hsct, prog = pl.col("_death"), pl.col("_hsct"), pl.col("_prog")
    # last day a patient was seen alive and event-free: last contact, or any later record
    seen = pl.max_horizontal("end", "_hsct", "_prog").fill_null(0)
    if endpoint == "OS":
        ev_day, reason = death, pl.lit("death")
        censor_day, censor_reason = seen, pl.lit("censored at last contact")
    elif endpoint == "OS_HSCT_CENSORED":
        hsct_first = hsct.is_not_null() & (death.is_null() | (hsct < death))
        ev_day = pl.when(hsct_first).then(None).otherwise(death)
        reason = pl.lit("death")
        censor_day = pl.when(hsct_first).then(hsct).otherwise(seen)
        censor_reason = pl.when(hsct_first).then(pl.lit("censored at HSCT")) \
            .otherwise(pl.lit("censored at last contact"))
    elif endpoint == "EFS":
        ev_day = pl.min_horizontal(hsct, prog, death)
        reason = (pl.when(death == ev_day).then(pl.lit("death"))
                  .when(prog == ev_day).then(pl.lit("progression"))
                  .otherwise(pl.lit("HSCT")))
        censor_day, censor_reason = seen, pl.lit("censored at last contact")
    else:  # PFS
        ev_day = pl.min_horizontal(prog, death)
        reason = pl.when(prog.is_not_null() & (prog <= ev_day)).then(pl.lit("progression")) \
            .otherwise(pl.lit("death"))
        censor_day, censor_reason = seen, pl.lit("censored at last contact")
    has_event = ev_day.is_not_null()
    out = df.select(
        "subject_id",
        pl.when(has_event).then(ev_day).otherwise(censor_day).cast(pl.Float64).alias("time"),
        has_event.cast(pl.Int64).alias("event"),
        pl.when(has_event).then(reason).otherwise(censor_reason).alias("reason"),
    )
    return out.with_columns(pl.col("time").clip(lower_bound=0.0))


@derived_table("survival", "Kaplan-Meier table of one endpoint (OS, OS_HSCT_CENSORED, EFS, "
               "PFS): one row per time with an event or a censoring",
               options={"endpoint": Option(str, "OS", "survival endpoint", tuple(ENDPOINTS))})
def survival_table(study: Study, *, endpoint: str = "OS",
                   subjects: Iterable[str] | None = None, alpha: float = 0.05
                   ) -> pl.DataFrame:
    """day, n_at_risk, events, censored, survival, ci_low, ci_high: the Kaplan-Meier estimate
    (lifelines) at every time where an event or a censoring happened, with the exponential
    Greenwood 95% band."""
    from lifelines import KaplanMeierFitter

    surv = survival_data(study, endpoint=endpoint)
    if subjects is not None:
        surv = surv.filter(pl.col("subject_id").is_in(list(subjects)))
    schema = {"day": pl.Float64, "n_at_risk": pl.Int64, "events": pl.Int64,
              "censored": pl.Int64, "survival": pl.Float64, "ci_low": pl.Float64,
              "ci_high": pl.Float64}
    if surv.height == 0:
        return pl.DataFrame(schema=schema)
    kmf = KaplanMeierFitter(alpha=alpha).fit(surv["time"].to_numpy(), surv["event"].to_numpy(),
                                             label="S")
    et = kmf.event_table
    times = et.index.to_numpy().astype(float)
    sf = kmf.survival_function_.loc[times, "S"].to_numpy()
    ci = kmf.confidence_interval_.loc[times]
    out = pl.DataFrame({
        "day": times, "n_at_risk": et["at_risk"].to_numpy().astype(int),
        "events": et["observed"].to_numpy().astype(int),
        "censored": et["censored"].to_numpy().astype(int), "survival": sf,
        "ci_low": ci.iloc[:, 0].to_numpy(), "ci_high": ci.iloc[:, 1].to_numpy()},
        schema=schema)
    return out.filter((pl.col("events") > 0) | (pl.col("censored") > 0))


@dataclass(frozen=True)
class KMResult:
    """Kaplan-Meier estimates: `curve` (group, time, survival, ci_low, ci_high), `summary`
    (group, n, events, median, median_ci_low, median_ci_high), `at_risk` (group, time,
    at_risk), `censored` (group, time, survival: where a patient was censored)."""

    curve: pl.DataFrame
    summary: pl.DataFrame
    at_risk: pl.DataFrame
    censored: pl.DataFrame


def kaplan_meier(surv: pl.DataFrame, *, time: str = "time", event: str = "event",
                 group: str | None = None, at_times: Sequence[float] | None = None,
                 alpha: float = 0.05) -> KMResult:
    """Kaplan-Meier per group (lifelines), with numbers at risk at `at_times` (default every
    90 days up to the longest time)."""
    from lifelines import KaplanMeierFitter
    from lifelines.utils import median_survival_times

    if surv.height == 0:
        return KMResult(
            pl.DataFrame(schema={"group": pl.String, "time": pl.Float64, "survival": pl.Float64,
                                 "ci_low": pl.Float64, "ci_high": pl.Float64}),
            pl.DataFrame(schema={"group": pl.String, "n": pl.Int64, "events": pl.Int64,
                                 "median": pl.Float64, "median_ci_low": pl.Float64,
                                 "median_ci_high": pl.Float64}),
            pl.DataFrame(schema={"group": pl.String, "time": pl.Float64, "at_risk": pl.Int64}),
            pl.DataFrame(schema={"group": pl.String, "time": pl.Float64,
                                 "survival": pl.Float64}))
    tmax = float(surv.get_column(time).max())
    if at_times is None:
        step = 90.0 if tmax > 180 else 30.0
        at_times = [i * step for i in range(int(tmax // step) + 1)]
    groups = [("All", surv)] if group is None else [
        (str(k[0]), g) for k, g in surv.sort(group).group_by(group, maintain_order=True)]
    curves, summaries, risks, cens = [], [], [], []
    for name, g in groups:
        t = g.get_column(time).to_numpy()
        e = g.get_column(event).to_numpy()
        kmf = KaplanMeierFitter(alpha=alpha).fit(t, e, label="S")
        sf = kmf.survival_function_
        ci = kmf.confidence_interval_
        curves.append(pl.DataFrame({
            "group": name, "time": sf.index.to_numpy().astype(float),
            "survival": sf["S"].to_numpy(), "ci_low": ci.iloc[:, 0].to_numpy(),
            "ci_high": ci.iloc[:, 1].to_numpy()}))
        med = kmf.median_survival_time_
        mci = median_survival_times(ci)
        summaries.append({
            "group": name, "n": len(t), "events": int(e.sum()), "median": _finite(med),
            "median_ci_low": _finite(mci.iloc[0, 0]), "median_ci_high": _finite(mci.iloc[0, 1])})
        ct = sorted({float(x) for x in t[e == 0]})
        cens.append(pl.DataFrame({"group": [name] * len(ct), "time": ct,
                                  "survival": np.atleast_1d(kmf.predict(ct)).astype(float)
                                  if ct else []},
                                 schema={"group": pl.String, "time": pl.Float64,
                                         "survival": pl.Float64}))
        risks.append(pl.DataFrame({
            "group": name, "time": [float(x) for x in at_times],
            "at_risk": [int((t >= x).sum()) for x in at_times]}))
    return KMResult(
        pl.concat(curves),
        pl.DataFrame(summaries, schema={"group": pl.String, "n": pl.Int64, "events": pl.Int64,
                                        "median": pl.Float64, "median_ci_low": pl.Float64,
                                        "median_ci_high": pl.Float64}),
        pl.concat(risks).with_columns(pl.col("at_risk").cast(pl.Int64)),
        pl.concat(cens))


LANDMARK_RESPONDER = "Response by day {day}"
LANDMARK_NON_RESPONDER = "No response by day {day}"


def landmark(surv: pl.DataFrame, responses: pl.DataFrame, *, day: int,
             time: str = "time", event: str = "event", category: str = "category"
             ) -> pl.DataFrame:
    """Landmark analysis (Anderson, Cain & Gelber, J Clin Oncol 1983;1:710-9): splitting OS or
    PFS from infusion by best response over the whole follow-up credits responders with the
    time they had to survive to respond (immortal-time bias). Here only patients still at risk
    at `day` (event-free after it; censored on it) are kept, each is grouped by the response (CR or PR) reached on or
    before `day` in `responses` (subject_id, day, category), and time counts from `day`.

    Returns every patient of `surv` with `landmark_group` (null when left out) and
    `landmark_note` (why left out), `time` reset to time - day for those kept."""
    resp = (responses.filter((pl.col("day") <= day) & pl.col(category).is_in(RESPONDING))
            .select("subject_id").unique().with_columns(_resp=pl.lit(True)))
    out = surv.join(resp, on="subject_id", how="left")
    # at risk at the landmark: event-free past it (an event on the landmark day itself is
    # before the at-risk set starts: it would be an event at time 0 of the landmark curve)
    kept = (pl.col(time) > day) | ((pl.col(time) == day) & (pl.col(event) == 0))
    return out.with_columns(
        pl.when(kept & pl.col("_resp").fill_null(False))
        .then(pl.lit(LANDMARK_RESPONDER.format(day=day)))
        .when(kept).then(pl.lit(LANDMARK_NON_RESPONDER.format(day=day)))
        .otherwise(None).alias("landmark_group"),
        pl.when(kept).then(None)
        .when(pl.col(event) == 1).then(pl.lit(f"event on or before day {day}"))
        .otherwise(pl.lit(f"follow-up ended before day {day}")).alias("landmark_note"),
        pl.when(kept).then(pl.col(time) - day).otherwise(pl.col(time)).alias(time),
    ).drop("_resp")


def _finite(x: float) -> float | None:
    x = float(x)
    return x if x == x and x not in (float("inf"), float("-inf")) else None
