"""Study outcomes: response rates, survival, the baseline table and the swimmer-plot data.

- ORR (CR + PR) at landmarks D28, M3, M6, M12 and best response, with exact Clopper-Pearson
  95% intervals (Clopper & Pearson, Biometrika 1934), intent-to-treat (`orr_table`): every
  infused patient counts, NE and failures (death, HSCT or progression first) as not
  responding; at a landmark a patient takes the assessment within +/- `landmark_tolerance`
  days; a patient whose follow-up ended before the landmark without such an event has not
  reached it and is left out of that landmark (counted in `not_reached`), never counted as a
  non-responder. Recorded responses on or after an HSCT are NE.
- Survival endpoints (OS, OS censored at HSCT, EFS, PFS) and Kaplan-Meier estimates live in
  analysis.survival and are re-exported here.
- Table 1 (baseline characteristics) by response group and overall, with the severity derived
  at baseline (analysis.baseline) and the recorded diagnosis as separate rows; the
  swimmer-plot lanes (infusion to last contact, HSCT shown) and their events.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import polars as pl

from analysis.registry import Option, derived_table
from analysis.response import (
    best_of,
    derived_responses,
    follow_up_end,
    transfusion_events,
)
from analysis.rules import Rules, rules_for
from analysis.survival import ENDPOINTS, KMResult, kaplan_meier, survival_data, survival_table
from analysis.vocab import (
    ASSESSED,
    CR,
    LANDMARKS,
    NON_RESPONDER,
    NR,
    PR,
    RESPONDER,
    RESPONSE_GROUPS,
    RESPONSE_RANK,
)

if TYPE_CHECKING:
    from data_loaders import Study

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


def failure_days(study: Study) -> pl.DataFrame:
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
    patient (NE when never assessed). Two assessments of a patient on the same day that
    disagree count as the worse decided one (NE only when neither is decided)."""
    ids = pl.DataFrame({"subject_id": list(subjects)}, schema={"subject_id": pl.String})
    # two assessments of one patient on one day that disagree: the worse counts (a disputed
    # assessment does not make a responder), whatever the order of the rows
    resp = (responses.filter(pl.col("subject_id").is_in(list(subjects)))
            .select("subject_id", pl.col("day").cast(pl.Int64), pl.col(category).alias("_c"))
            .with_columns(pl.col("_c").replace_strict(RESPONSE_RANK, default=0, return_dtype=pl.Int8)
                          .alias("_rank"))
            .with_columns((pl.col("_rank") > 0).alias("_decided"))
            .sort("subject_id", "day", "_decided", "_rank", descending=[False, False, True,
                                                                        False])
            .unique(["subject_id", "day"], keep="first", maintain_order=True)
            .drop("_rank", "_decided"))
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
                .first().select("subject_id", "_c", pl.col("day").alias("_aday")))
        at = base.join(near, on="subject_id", how="left").with_columns(
            pl.when(pl.col("_c").is_in(ASSESSED)).then(pl.col("_c"))
            .when(pl.col("_fail").is_not_null() & (pl.col("_fail") <= day + tolerance))
            .then(pl.lit("failure"))
            # an NE dated after the end of follow-up is no assessment: the landmark decides
            .when(pl.col("_c").is_not_null()
                  & (pl.col("end").is_null() | (pl.col("_aday") <= pl.col("end"))))
            .then(pl.lit("NE"))
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
    cr = int((status == CR).sum())
    pr = int((status == PR).sum())
    nr = int((status == NR).sum())
    lo, hi = clopper_pearson(cr + pr, n)
    return {"landmark": name, "day": day, "n": n, "responders": cr + pr, "cr": cr, "pr": pr,
            "orr": (cr + pr) / n if n else None, "ci_low": lo if n else None,
            "ci_high": hi if n else None, "n_assessed": cr + pr + nr, "nr": nr,
            "ne": int((status == "NE").sum()), "failures": int((status == "failure").sum()),
            "not_reached": not_reached}


ORR_CAPTION = ("Intent-to-treat: n is every infused patient in the cohort who reached the "
               "landmark; NE (not assessed, or not evaluable) and failures (death, HSCT or "
               "progression first) count in n as not responding and are shown; patients whose "
               "follow-up ended before the landmark without such an event and without an "
               "assessment in its window have not reached it and are left out (column "
               "not_reached). Landmarks use the assessment within +/-{tol} d; two assessments "
               "on one day count as the worse. 95% CI: exact Clopper-Pearson.")


@derived_table("orr", "Overall response rate (CR+PR) at D28, M3, M6, M12 and best, "
               "intent-to-treat, with exact 95% CI",
               options={"criteria": Option(str, "NIH", "response criteria",
                                           ("NIH", "BSH", "recorded")),
                        "ti_window": Option(int, 56, "transfusion-independence window (days); "
                                                     "same as --rule ti_window=N")})
def orr(study: Study, *, criteria: str = "NIH", rules: Rules | None = None,
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
    return orr_table(resp, subjects=ids, follow_up=follow_up_end(study),
                     failures=failure_days(study), tolerance=rules.landmark_tolerance)


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
                   group_order: Sequence[str] = RESPONSE_GROUPS
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

    def add(label: str, fn: Callable[[pl.DataFrame], str]) -> None:
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


def swimmer_lanes(study: Study, *, groups: pl.DataFrame) -> pl.DataFrame:
    """One lane per patient: subject_id, end (last day followed), status ("died", "died after
    HSCT", "alive after HSCT", "alive"), hsct_day, best_response, response_group."""
    from analysis.response import hsct_per_patient

    p = study.patients.select("subject_id", "death_day").join(
        hsct_per_patient(study).rename({"_hsct": "hsct_day"}), on="subject_id", how="left")
    died, hsct = pl.col("death_day").is_not_null(), pl.col("hsct_day").is_not_null()
    return (p.join(follow_up_end(study), on="subject_id", how="left")
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


def swimmer_events(study: Study, *, responses: pl.DataFrame) -> pl.DataFrame:
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


def study_summary(study: Study, *, groups: pl.DataFrame,
                  subjects: Sequence[str] | None = None) -> StudySummary:
    """Patients, median follow-up (days, infusion to last contact or death) and best ORR
    (responders / all patients) for the given subjects (default: all)."""
    ids = list(subjects) if subjects is not None else study.subject_ids
    fu = follow_up_end(study).filter(pl.col("subject_id").is_in(ids)).get_column("end")
    g = groups.filter(pl.col("subject_id").is_in(ids))
    k = int(g.get_column("response_group").eq(RESPONDER).sum())
    n = len(ids)
    ev = int(g.get_column("response_group").is_in([RESPONDER, NON_RESPONDER]).sum())
    return StudySummary(
        patients=n,
        median_follow_up_days=float(fu.median()) if fu.drop_nulls().len() else None,
        responders=k, evaluable=ev, orr=k / n if n else None,
        orr_ci=clopper_pearson(k, n) if n else None)
