"""Study outcomes: response rates, survival, the baseline table and the swimmer-plot data.

- ORR (CR + PR) at landmarks D28, M3, M6, M12 and best response, with exact Clopper-Pearson
  95% intervals (Clopper & Pearson, Biometrika 1934), intent-to-treat (`orr_table`): every
  infused patient counts, NE and failures (death, HSCT or progression first) as not
  responding; at a landmark a patient takes the assessment within +/- `landmark_tolerance`
  days; a patient whose follow-up ended before the landmark without such an event has not
  reached it and is left out of that landmark (counted in `not_reached`), never counted as a
  non-responder. Recorded responses on or after an HSCT are NE.
- Kaplan-Meier survival from infusion (day 0), estimated with lifelines (Davidson-Pilon, JOSS
  2019); exponential Greenwood 95% bands, median with its 95% interval (as lifelines computes
  it). Endpoints (`ENDPOINTS`, docs/rules.md): OS (every death, HSCT ignored), OS censored at
  HSCT (sensitivity analysis), EFS (HSCT, progression or death), PFS (progression or death).
  Progression comes only from patients.progression_day or events of category progression,
  never from another category's text (an infection "CMV relapse" is not progression).
  `survival_table` is the KM table (`python cli.py table survival --endpoint ...`).
- Table 1 (baseline characteristics) by response group and overall, with the severity derived
  at baseline (analysis.baseline) and the recorded diagnosis as separate rows; the
  swimmer-plot lanes (infusion to last contact, HSCT shown) and their events.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

from analysis.registry import Option, derived_table
from analysis.response import (
    LANDMARKS,
    _follow_up_end,
    best_of,
    derived_responses,
    transfusion_events,
)
from analysis.rules import Rules, rules_for

__all__ = ["clopper_pearson", "orr_table", "orr", "failure_days", "survival_data",
           "KMResult", "kaplan_meier", "baseline_table", "swimmer_lanes", "swimmer_events",
           "StudySummary", "study_summary", "ENDPOINTS", "survival_table", "ORR_CAPTION"]



def clopper_pearson(k: int, n: int, *, alpha: float = 0.05) -> tuple[float, float]:
    """Exact two-sided (1 - alpha) interval of a binomial proportion k / n."""
    from scipy.stats import beta

    if n <= 0:
        return float("nan"), float("nan")
    lo = 0.0 if k == 0 else float(beta.ppf(alpha / 2, k, n - k + 1))
    hi = 1.0 if k == n else float(beta.ppf(1 - alpha / 2, k + 1, n - k))
    return lo, hi


def failure_days(study) -> pl.DataFrame:  # noqa: ANN001
    """subject_id, day: the first of death, HSCT or progression per patient (null when none)."""
    p = study.patients
    ev = study.events.filter(pl.col("category").is_in(["death", "hsct", "progression"])) \
        .group_by("subject_id").agg(pl.col("day").min().alias("_e"))
    return p.join(ev, on="subject_id", how="left").select(
        "subject_id",
        pl.min_horizontal("death_day", "hsct_day", "progression_day", "_e").alias("day"))


def orr_table(responses: pl.DataFrame, *, subjects: Sequence[str],
              follow_up: pl.DataFrame | None = None, failures: pl.DataFrame | None = None,
              landmarks: Mapping[str, int] = LANDMARKS, tolerance: int = 14,
              category: str = "category") -> pl.DataFrame:
    """ORR per landmark and for the best response, intent-to-treat: landmark, day, n,
    responders, cr, pr, orr, ci_low, ci_high, n_assessed, nr, ne, failures, not_reached.

    responses: subject_id, day, `category` (CR/PR/NR/NE). follow_up: subject_id, end (last day
    observed). failures: subject_id, day of death/HSCT/progression.

    At a landmark each patient takes the assessment nearest it within +/- `tolerance` days
    (earlier on ties). Without a CR/PR/NR there: "failure" (not responding) when death, HSCT
    or progression came by the end of the landmark window; NE (counted in n, not responding)
    when followed to the landmark day or assessed NE; otherwise the landmark is not reached
    (still in follow-up): left out of n and counted in `not_reached`. The best row counts every
    patient (NE when never assessed)."""
    ids = pl.DataFrame({"subject_id": list(subjects)}, schema={"subject_id": pl.String})
    resp = responses.filter(pl.col("subject_id").is_in(list(subjects))) \
        .select("subject_id", pl.col("day").cast(pl.Int64), pl.col(category).alias("_c"))
    base = ids
    if follow_up is not None:
        base = base.join(follow_up.select("subject_id", "end"), on="subject_id", how="left")
    else:
        base = base.with_columns(pl.lit(None, dtype=pl.Int64).alias("end"))
    if failures is not None:
        base = base.join(failures.select("subject_id", pl.col("day").alias("_fail")),
                         on="subject_id", how="left")
    else:
        base = base.with_columns(pl.lit(None, dtype=pl.Int64).alias("_fail"))
    rows = []
    for name, day in landmarks.items():
        near = (resp.filter((pl.col("day") - day).abs() <= tolerance)
                .with_columns((pl.col("day") - day).abs().alias("_d"))
                .sort("subject_id", "_d", "day").group_by("subject_id", maintain_order=True)
                .first().select("subject_id", "_c"))
        at = base.join(near, on="subject_id", how="left").with_columns(
            pl.when(pl.col("_c").is_in(["CR", "PR", "NR"])).then(pl.col("_c"))
            .when(pl.col("_fail").is_not_null() & (pl.col("_fail") <= day + tolerance))
            .then(pl.lit("failure"))
            .when(pl.col("_c").is_not_null()).then(pl.lit("NE"))
            .when(pl.col("end").is_null() | (pl.col("end") >= day)).then(pl.lit("NE"))
            .otherwise(pl.lit("not reached")).alias("_s"))
        status = at.get_column("_s")
        counted = status.filter(status != "not reached")
        rows.append(_orr_row(name, day, counted, not_reached=int((status == "not reached").sum())))
    best = ids.join(best_of(resp.rename({"_c": "category"})), on="subject_id", how="left")
    rows.append(_orr_row("Best", None, best.get_column("best_response").fill_null("NE"),
                         not_reached=0))
    return pl.DataFrame(rows, schema={
        "landmark": pl.String, "day": pl.Int64, "n": pl.Int64, "responders": pl.Int64,
        "cr": pl.Int64, "pr": pl.Int64, "orr": pl.Float64, "ci_low": pl.Float64,
        "ci_high": pl.Float64, "n_assessed": pl.Int64, "nr": pl.Int64, "ne": pl.Int64,
        "failures": pl.Int64, "not_reached": pl.Int64})


def _orr_row(name: str, day: int | None, status: pl.Series, *, not_reached: int) -> dict:
    n = status.len()
    cr = int((status == "CR").sum())
    pr = int((status == "PR").sum())
    nr = int((status == "NR").sum())
    lo, hi = clopper_pearson(cr + pr, n)
    return {"landmark": name, "day": day, "n": n, "responders": cr + pr, "cr": cr, "pr": pr,
            "orr": (cr + pr) / n if n else None, "ci_low": lo if n else None,
            "ci_high": hi if n else None, "n_assessed": cr + pr + nr, "nr": nr,
            "ne": int((status == "NE").sum()), "failures": int((status == "failure").sum()),
            "not_reached": not_reached}


ORR_CAPTION = ("Intent-to-treat: n is every infused patient in the cohort who reached the "
               "landmark; NE (not assessed, or not evaluable) and failures (death, HSCT or "
               "progression first) count in n as not responding and are shown; patients whose "
               "follow-up ended before the landmark without such an event have not reached it "
               "and are left out (column not_reached). Landmarks use the assessment within "
               "+/-{tol} d. 95% CI: exact Clopper-Pearson.")


@derived_table("orr", "Overall response rate (CR+PR) at D28, M3, M6, M12 and best, "
               "intent-to-treat, with exact 95% CI",
               options={"criteria": Option(str, "NIH", "response criteria",
                                           ("NIH", "BSH", "recorded")),
                        "ti_window": Option(int, 56, "transfusion-independence window (days); "
                                                     "same as --rule ti_window=N")})
def orr(study, *, criteria: str = "NIH", rules: Rules | None = None,  # noqa: ANN001
        subjects: Iterable[str] | None = None) -> pl.DataFrame:
    """orr_table over a study: derived responses at the landmark days (NIH or BSH) or the
    recorded responses (`criteria="recorded"`, NE on or after an HSCT)."""
    from analysis.response import recorded_responses

    rules = rules if rules is not None else rules_for(study)
    ids = list(subjects) if subjects is not None else study.subject_ids
    if criteria == "recorded":
        resp = recorded_responses(study).select("subject_id", "day", "category")
    else:
        days = sorted({*LANDMARKS.values(), *study.responses.get_column("day").to_list()})
        # a landmark is decided only by counts within its tolerance
        window = min(rules.count_window, rules.landmark_tolerance)
        resp = derived_responses(study, criteria=criteria, days=days,
                                 rules=rules.with_(count_window=window))
    return orr_table(resp, subjects=ids, follow_up=_follow_up_end(study),
                     failures=failure_days(study), tolerance=rules.landmark_tolerance)


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


def survival_data(study, *, endpoint: str = "OS") -> pl.DataFrame:  # noqa: ANN001
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
          .join(_follow_up_end(study), on="subject_id", how="left")
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
def survival_table(study, *, endpoint: str = "OS",  # noqa: ANN001
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


def _finite(x: float) -> float | None:
    x = float(x)
    return x if x == x and x not in (float("inf"), float("-inf")) else None


# ---- overview ------------------------------------------------------------------------------
def _median_range(s: pl.Series, *, scale: float = 1.0, digits: int = 0) -> str:
    s = s.drop_nulls().cast(pl.Float64) / scale
    if s.len() == 0:
        return "-"
    return f"{s.median():.{digits}f} ({s.min():.{digits}f}-{s.max():.{digits}f})"


def _count_pct(mask: pl.Series, n: int) -> str:
    k = int(mask.fill_null(False).sum())
    return f"{k} ({100 * k / n:.0f}%)" if n else "-"


def baseline_table(patients: pl.DataFrame, *, groups: pl.DataFrame,
                   severity: pl.DataFrame | None = None,
                   group_order: Sequence[str] = ("Responder", "Non-responder", "Not evaluable")
                   ) -> pl.DataFrame:
    """Table 1: characteristic, Overall (n=N), one column per response group present.

    Age and disease duration as median (range); sex, severity at baseline (derived by
    modified Camitta from the baseline counts, `severity` = analysis.baseline's table), the
    recorded diagnosis (patients.diagnosis), prior therapies and detectable PNH clone as n (%);
    dose in x10^6 cells/kg as median (range)."""
    df = patients.join(groups.select("subject_id", "response_group"), on="subject_id",
                       how="left")
    if severity is not None:
        df = df.join(severity.select("subject_id", pl.col("severity").alias("_sev")),
                     on="subject_id", how="left")
    else:
        df = df.with_columns(pl.lit(None, dtype=pl.String).alias("_sev"))
    if "diagnosis" not in df.columns:
        df = df.with_columns(pl.lit(None, dtype=pl.String).alias("diagnosis"))
    df = df.with_columns(pl.col("_sev").alias("_severity"),
                         pl.col("prior_therapy").str.split(";").list.eval(
                             pl.element().str.strip_chars()).alias("_prior"))
    present = [g for g in group_order if g in set(df.get_column("response_group").to_list())]
    cols = [("Overall", df)] + [(g, df.filter(pl.col("response_group") == g)) for g in present]

    rows: list[tuple[str, list[str]]] = []

    def add(label: str, fn) -> None:  # noqa: ANN001
        rows.append((label, [fn(d) for _, d in cols]))

    if "age_band" in df.columns and df.get_column("age").drop_nulls().len() == 0:
        # de-identified: exact ages are withheld, so only 5-year bands can be counted
        for band in sorted(df.get_column("age_band").drop_nulls().unique().to_list()):
            add(f"Age {band} years: n (%)", lambda d, b=band: _count_pct(
                d["age_band"] == b, d.height))
    else:
        add("Age, years: median (range)", lambda d: _median_range(d["age"]))
    for sex, label in (("M", "male"), ("F", "female")):
        add(f"Sex {label}: n (%)", lambda d, s=sex: _count_pct(
            d["sex"].str.to_uppercase().str.slice(0, 1) == s, d.height))
    for sev in [s for s in ("vSAA", "SAA", "NSAA", "NE") if s in df["_severity"].to_list()]:
        label = "not evaluable" if sev == "NE" else sev
        add(f"Severity at baseline (derived) {label}: n (%)",
            lambda d, s=sev: _count_pct(d["_severity"] == s, d.height))
    recorded = df["diagnosis"].cast(pl.String)
    for dx in sorted(recorded.drop_nulls().unique().to_list()):
        add(f"Severity recorded (diagnosis) {dx}: n (%)",
            lambda d, x=dx: _count_pct(d["diagnosis"].cast(pl.String) == x, d.height))
    add("Disease duration, months: median (range)",
        lambda d: _median_range(d["disease_duration_months"]))
    add("Prior therapy lines: median (range)", lambda d: _median_range(d["_prior"].list.len()))
    therapies = df.get_column("_prior").explode().drop_nulls().value_counts(sort=True)
    for th in therapies.get_column("_prior").to_list():
        if th:
            add(f"Prior {th}: n (%)", lambda d, t=th: _count_pct(
                d["_prior"].list.contains(t), d.height))
    add("PNH clone detectable (>0%): n (%)",
        lambda d: _count_pct(d["pnh_clone_pct"] > 0, d.height))
    add("PNH clone, %: median (range)", lambda d: _median_range(d["pnh_clone_pct"], digits=1))
    add("Dose, x10^6 CAR-T cells/kg: median (range)",
        lambda d: _median_range(d["dose_per_kg"], scale=1e6, digits=1))
    names = [f"{name} (n={d.height})" for name, d in cols]
    return pl.DataFrame(
        {"characteristic": [r[0] for r in rows],
         **{n: [r[1][i] for r in rows] for i, n in enumerate(names)}})


def swimmer_lanes(study, *, groups: pl.DataFrame) -> pl.DataFrame:  # noqa: ANN001
    """One lane per patient: subject_id, end (last day followed), status ("died", "died after
    HSCT", "alive after HSCT", "alive"), hsct_day, best_response, response_group."""
    from analysis.response import _hsct_days

    p = study.patients.select("subject_id", "death_day").join(
        _hsct_days(study).rename({"_hsct": "hsct_day"}), on="subject_id", how="left")
    died, hsct = pl.col("death_day").is_not_null(), pl.col("hsct_day").is_not_null()
    return (p.join(_follow_up_end(study), on="subject_id", how="left")
            .join(groups.select("subject_id", "best_response", "response_group"),
                  on="subject_id", how="left")
            .select("subject_id", pl.col("end").fill_null(0),
                    pl.when(died & hsct).then(pl.lit("died after HSCT"))
                    .when(died).then(pl.lit("died"))
                    .when(hsct).then(pl.lit("alive after HSCT"))
                    .otherwise(pl.lit("alive")).alias("status"),
                    "hsct_day", "best_response", "response_group"))


_EVENT_KINDS = {"crs": "CRS", "icans": "ICANS", "hsct": "HSCT", "progression": "Progression",
                "death": "Death"}


def swimmer_events(study, *, responses: pl.DataFrame) -> pl.DataFrame:  # noqa: ANN001
    """Marks on the lanes: subject_id, day, kind (CR/PR/NR/NE, CRS, ICANS, RBC transfusion,
    PLT transfusion, HSCT, Progression, Death), label (hover text)."""
    parts = [responses.select(
        "subject_id", pl.col("day").cast(pl.Int64), pl.col("category").alias("kind"),
        pl.concat_str(pl.lit("day "), pl.col("day").cast(pl.String), pl.lit(" · "),
                      pl.col("rule") if "rule" in responses.columns
                      else pl.col("category")).alias("label"))]
    ev = study.events.filter(pl.col("category").is_in(list(_EVENT_KINDS)))
    # HSCT, progression and death recorded only in patients.csv are marked too
    for col, cat, term in (("hsct_day", "hsct", "HSCT (patients.hsct_day)"),
                           ("progression_day", "progression", "Progression"),
                           ("death_day", "death", "Death")):
        if col not in study.patients.columns:
            continue
        have = ev.filter(pl.col("category") == cat).get_column("subject_id").unique()
        extra = study.patients.filter(pl.col(col).is_not_null()
                                      & ~pl.col("subject_id").is_in(have.implode()))
        if extra.height:
            ev = pl.concat([ev, extra.select(
                "subject_id", pl.col(col).cast(ev.schema["day"]).alias("day"),
                pl.lit(cat).alias("category"), pl.lit(term).alias("term"))],
                how="diagonal_relaxed")
    if ev.height:
        kind = pl.col("category").replace_strict(_EVENT_KINDS, return_dtype=pl.String)
        parts.append(ev.select(
            "subject_id", pl.col("day").cast(pl.Int64),
            pl.when(pl.col("grade").is_not_null() & pl.col("category").is_in(["crs", "icans"]))
            .then(pl.format("{} G{}", kind, pl.col("grade"))).otherwise(kind).alias("kind"),
            pl.format("day {} · {}{}", pl.col("day"), pl.coalesce("term", kind),
                      pl.when(pl.col("grade").is_not_null())
                      .then(pl.format(", grade {}", pl.col("grade"))).otherwise(pl.lit("")))
            .alias("label")))
    tx = transfusion_events(study.events)
    if tx is not None:
        parts.append(tx.filter(pl.col("product").is_in(["RBC", "PLT"])).select(
            "subject_id", pl.col("day").cast(pl.Int64),
            pl.format("{} transfusion", pl.col("product")).alias("kind"),
            pl.format("day {} · {} transfusion", pl.col("day"), pl.col("product"))
            .alias("label")))
    return pl.concat(parts).sort("subject_id", "day")


@dataclass(frozen=True)
class StudySummary:
    patients: int
    median_follow_up_days: float | None
    responders: int
    evaluable: int
    orr: float | None
    orr_ci: tuple[float, float] | None


def study_summary(study, *, groups: pl.DataFrame,  # noqa: ANN001
                  subjects: Sequence[str] | None = None) -> StudySummary:
    """Patients, median follow-up (days, infusion to last contact or death) and best ORR
    (responders / all patients) for the given subjects (default: all)."""
    ids = list(subjects) if subjects is not None else study.subject_ids
    fu = _follow_up_end(study).filter(pl.col("subject_id").is_in(ids)).get_column("end")
    g = groups.filter(pl.col("subject_id").is_in(ids))
    k = int(g.get_column("response_group").eq("Responder").sum())
    n = len(ids)
    ev = int(g.get_column("response_group").is_in(["Responder", "Non-responder"]).sum())
    return StudySummary(
        patients=n,
        median_follow_up_days=float(fu.median()) if fu.drop_nulls().len() else None,
        responders=k, evaluable=ev, orr=k / n if n else None,
        orr_ci=clopper_pearson(k, n) if n else None)
