"""Study outcomes: response rates, survival, the baseline table and the swimmer-plot data.

- ORR (CR + PR) at landmarks D28, M3, M6, M12 and best response, with exact Clopper-Pearson
  95% intervals (Clopper & Pearson, Biometrika 1934). At a landmark a patient counts when
  assessed within +/- `tolerance` days (NE counts as not responding), or as not responding when
  death, HSCT or progression came first; patients not yet followed to the landmark are left out.
- Kaplan-Meier overall and progression-free survival from infusion (day 0), estimated with
  lifelines (Davidson-Pilon, JOSS 2019); Greenwood / exponential log-log 95% bands, median with
  its 95% interval (Brookmeyer-Crowley as lifelines computes it). PFS events: progression
  (patients.progression_day, events "progression" or a term naming relapse) or death. HSCT is
  either a censoring time or an event (`hsct="censor"|"event"`).
- Table 1 (baseline characteristics) by response group and overall; the swimmer-plot lanes
  (infusion to last contact) and their events.
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
from analysis.rules import Rules

__all__ = ["clopper_pearson", "orr_table", "orr", "failure_days", "survival_data",
           "KMResult", "kaplan_meier", "baseline_table", "swimmer_lanes", "swimmer_events",
           "StudySummary", "study_summary", "HSCT_MODES", "ENDPOINTS"]

HSCT_MODES = ("censor", "event")
ENDPOINTS = ("OS", "PFS")


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
    """ORR per landmark and for the best response: landmark, day, n, responders, cr, pr,
    orr, ci_low, ci_high, n_assessed.

    responses: subject_id, day, `category` (CR/PR/NR/NE). follow_up: subject_id, end (last day
    observed). failures: subject_id, day of death/HSCT/progression (not responding after it)."""
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
            pl.when(pl.col("_c").is_not_null()).then(pl.col("_c"))
            .when(pl.col("_fail").is_not_null() & (pl.col("_fail") <= day + tolerance))
            .then(pl.lit("failure"))
            .when(pl.col("end").is_null() | (pl.col("end") >= day - tolerance))
            .then(pl.lit("NE"))
            .otherwise(None).alias("_s")).filter(pl.col("_s").is_not_null())
        rows.append(_orr_row(name, day, at.get_column("_s"), assessed=at.filter(
            pl.col("_s").is_in(["CR", "PR", "NR"])).height))
    best = ids.join(best_of(resp.rename({"_c": "category"})), on="subject_id", how="left")
    s = best.get_column("best_response").fill_null("NE")
    rows.append(_orr_row("Best", None, s, assessed=int(s.is_in(["CR", "PR", "NR"]).sum())))
    return pl.DataFrame(rows, schema={
        "landmark": pl.String, "day": pl.Int64, "n": pl.Int64, "responders": pl.Int64,
        "cr": pl.Int64, "pr": pl.Int64, "orr": pl.Float64, "ci_low": pl.Float64,
        "ci_high": pl.Float64, "n_assessed": pl.Int64})


def _orr_row(name: str, day: int | None, status: pl.Series, *, assessed: int) -> dict:
    n = status.len()
    cr = int((status == "CR").sum())
    pr = int((status == "PR").sum())
    lo, hi = clopper_pearson(cr + pr, n)
    return {"landmark": name, "day": day, "n": n, "responders": cr + pr, "cr": cr, "pr": pr,
            "orr": (cr + pr) / n if n else None, "ci_low": lo if n else None,
            "ci_high": hi if n else None, "n_assessed": assessed}


@derived_table("orr", "Overall response rate (CR+PR) at D28, M3, M6, M12 and best, with exact "
               "95% CI", options={"criteria": Option(str, "NIH", "response criteria",
                                                     ("NIH", "BSH", "recorded")),
                                  "ti_window": Option(int, 56, "transfusion-independence "
                                                               "window (days)")})
def orr(study, *, criteria: str = "NIH", rules: Rules | None = None,  # noqa: ANN001
        subjects: Iterable[str] | None = None) -> pl.DataFrame:
    """orr_table over a study: derived responses at the landmark days (NIH or BSH) or the
    recorded responses (`criteria="recorded"`)."""
    ids = list(subjects) if subjects is not None else study.subject_ids
    if criteria == "recorded":
        resp = study.responses.select("subject_id", "day",
                                      pl.col("response").str.to_uppercase().alias("category"))
    else:
        days = sorted({*LANDMARKS.values(), *study.responses.get_column("day").to_list()})
        resp = derived_responses(study, criteria=criteria, rules=rules, days=days)
    return orr_table(resp, subjects=ids, follow_up=_follow_up_end(study),
                     failures=failure_days(study))


def survival_data(study, *, endpoint: str = "OS", hsct: str = "censor"  # noqa: ANN001
                  ) -> pl.DataFrame:
    """subject_id, time (days from infusion), event (0/1), reason for OS or PFS.

    OS: death is the event. PFS: progression, relapse or death. HSCT censors (`hsct="censor"`)
    or is an event (`hsct="event"`) when it comes before the endpoint's event."""
    endpoint, hsct = endpoint.upper(), hsct.lower()
    if endpoint not in ENDPOINTS or hsct not in HSCT_MODES:
        raise ValueError(f"endpoint must be one of {ENDPOINTS} and hsct one of {HSCT_MODES}")
    p = study.patients.select("subject_id", "death_day", "hsct_day", "progression_day")
    ev = study.events
    hs = ev.filter(pl.col("category") == "hsct").group_by("subject_id") \
        .agg(pl.col("day").min().alias("_hsct_ev"))
    death = ev.filter(pl.col("category") == "death").group_by("subject_id") \
        .agg(pl.col("day").min().alias("_death_ev"))
    prog = ev.filter((pl.col("category") == "progression")
                     | pl.col("term").str.to_lowercase().str.contains("relapse").fill_null(False)) \
        .group_by("subject_id").agg(pl.col("day").min().alias("_prog_ev"))
    df = (p.join(hs, on="subject_id", how="left").join(death, on="subject_id", how="left")
          .join(prog, on="subject_id", how="left")
          .join(_follow_up_end(study), on="subject_id", how="left")
          .with_columns(pl.min_horizontal("death_day", "_death_ev").alias("_death"),
                        pl.min_horizontal("hsct_day", "_hsct_ev").alias("_hsct"),
                        pl.min_horizontal("progression_day", "_prog_ev").alias("_prog")))
    if endpoint == "OS":
        ev_day, ev_name = pl.col("_death"), pl.lit("death")
    else:
        ev_day = pl.min_horizontal("_prog", "_death")
        ev_name = pl.when(pl.col("_prog").is_not_null() & (pl.col("_prog") <= ev_day)) \
            .then(pl.lit("progression")).otherwise(pl.lit("death"))
    end = pl.max_horizontal(pl.col("end"), ev_day, pl.col("_hsct")).fill_null(0)
    hsct_first = pl.col("_hsct").is_not_null() & (ev_day.is_null() | (pl.col("_hsct") < ev_day))
    out = df.select(
        "subject_id",
        pl.when(hsct_first).then(pl.col("_hsct")).when(ev_day.is_not_null()).then(ev_day)
        .otherwise(end).cast(pl.Float64).alias("time"),
        pl.when(hsct_first).then(pl.lit(1 if hsct == "event" else 0))
        .when(ev_day.is_not_null()).then(pl.lit(1)).otherwise(pl.lit(0)).cast(pl.Int64)
        .alias("event"),
        pl.when(hsct_first).then(pl.lit("HSCT (event)" if hsct == "event" else
                                        "censored at HSCT"))
        .when(ev_day.is_not_null()).then(ev_name)
        .otherwise(pl.lit("censored at last contact")).alias("reason"),
    )
    return out.with_columns(pl.col("time").clip(lower_bound=0.0))


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

    Age and disease duration as median (range); sex, severity (patients.diagnosis, else the
    derived `severity`), prior therapies and detectable PNH clone as n (%); dose in
    x10^6 cells/kg as median (range)."""
    df = patients.join(groups.select("subject_id", "response_group"), on="subject_id",
                       how="left")
    if severity is not None:
        df = df.join(severity.select("subject_id", pl.col("severity").alias("_sev")),
                     on="subject_id", how="left")
    else:
        df = df.with_columns(pl.lit(None, dtype=pl.String).alias("_sev"))
    df = df.with_columns(pl.coalesce("diagnosis", "_sev").alias("_severity"),
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
    for sev in [s for s in ("vSAA", "SAA", "NSAA") if s in df["_severity"].to_list()]:
        add(f"Severity {sev}: n (%)", lambda d, s=sev: _count_pct(d["_severity"] == s, d.height))
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
    """One lane per patient: subject_id, end (last day followed), status (alive / died / HSCT),
    best_response, response_group."""
    p = study.patients.select("subject_id", "death_day", "hsct_day")
    return (p.join(_follow_up_end(study), on="subject_id", how="left")
            .join(groups.select("subject_id", "best_response", "response_group"),
                  on="subject_id", how="left")
            .select("subject_id", pl.col("end").fill_null(0),
                    pl.when(pl.col("death_day").is_not_null()).then(pl.lit("died"))
                    .otherwise(pl.lit("alive")).alias("status"),
                    "best_response", "response_group"))


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
