"""Haematological recovery after infusion and CTCAE v5 cytopenia grades.

Recovery (DESIGN.md section 3, after the CIBMTR engraftment definitions):
- neutrophil recovery: the first of 3 consecutive measurements with ANC >= 0.5 x10^9/L;
- platelet recovery: the first of 3 consecutive measurements with PLT >= 20 x10^9/L, each with
  no platelet transfusion in the 7 days before it (the day itself included);
- both are searched from the first post-infusion value below the threshold (the nadir phase),
  so counts still above it in the first days after infusion do not count as recovery; a patient
  who never falls below it recovers on the first post-infusion measurement;
- transfusion independence: the first day after the last RBC or platelet transfusion, reported
  when no transfusion follows for at least `ti_window` days up to the end of follow-up
  (day 0 when the last transfusion was before infusion);
- on a study, follow-up for recovery ends at an HSCT (the graft's recovery is not the CAR-T's);
- a supported count never makes recovery: an ANC under G-CSF support or a PLT within the
  platelet support window (analysis/support.py) does not qualify. Thresholds, the run length
  and the windows are rule settings (analysis/rules.py, docs/rules.md).

Grades (NCI CTCAE v5.0, 2017; lower limits of normal are rule settings), counted after the
infusion (day 1 on; the pre-infusion nadir of lymphodepletion is not the CAR-T's toxicity) in
the windows D1-28, D29-90 and >D90, each stopping the day before an HSCT; the grade of the
baseline count (before lymphodepletion, analysis.baseline) is shown apart as "Baseline":
- Neutrophil count decreased: 1 <LLN-1.5; 2 <1.5-1.0; 3 <1.0-0.5; 4 <0.5 x10^9/L
- Platelet count decreased: 1 <LLN-75; 2 <75-50; 3 <50-25; 4 <25 x10^9/L
- Anemia: 1 <LLN-100; 2 <100-80; 3 <80 g/L (grade 4 is a clinical judgement, not a count)
- Lymphocyte count decreased: 1 <LLN-0.8; 2 <0.8-0.5; 3 <0.5-0.2; 4 <0.2 x10^9/L
"<1.0-0.5" means 0.5 <= value < 1.0: a value exactly on a threshold takes the milder grade.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import polars as pl

from analysis.registry import Option, derived_table
from analysis.response import TI_PRODUCTS, follow_up_end, transfusion_events
from analysis.rules import DEFAULT_RULES, Rules, rules_for
from analysis.vocab import DayWindow, is_blood

if TYPE_CHECKING:
    from data_loaders import Study

__all__ = ["CTCAE_TERMS", "GRADE_WINDOWS", "first_sustained", "recovery_days",
           "recovery_table", "ctcae_grades", "worst_grades", "cytopenia_grades",
           "count_summary"]

# analyte -> (CTCAE term, LLN, thresholds for grades 2, 3, 4; None = not graded by count)
CTCAE_TERMS: dict[str, tuple[str, float, tuple[float | None, ...]]] = {
    "ANC": ("Neutrophil count decreased", 2.0, (1.5, 1.0, 0.5)),
    "PLT": ("Platelet count decreased", 150.0, (75.0, 50.0, 25.0)),
    "HGB": ("Anemia", 120.0, (100.0, 80.0, None)),
    "ALC": ("Lymphocyte count decreased", 1.0, (0.8, 0.5, 0.2)),
}
GRADE_WINDOWS: tuple[DayWindow, ...] = (
    DayWindow(1, 28, "D1-28"), DayWindow(29, 90, "D29-90"), DayWindow(91, None, ">D90"))


def _daily(measurements: pl.DataFrame, analyte: str) -> pl.DataFrame:
    df = measurements.filter((pl.col("analyte") == analyte) & pl.col("value").is_not_null())
    if "tissue" in df.columns:
        df = df.filter(is_blood())
    return (df.group_by("subject_id", "day").agg(pl.col("value").mean())
            .with_columns(pl.col("day").cast(pl.Int64)).sort("subject_id", "day"))


def first_sustained(series: pl.DataFrame, *, threshold: float, n: int = 3, start_day: int = 0,
                    qualifies: str | None = None) -> pl.DataFrame:
    """First day of `n` consecutive measurements >= threshold (and `qualifies` true, when
    given), searched from the first value below threshold on or after `start_day`.

    series: subject_id, day, value (one row per patient and day). Returns subject_id, day
    (null when never reached) for every patient in `series`."""
    ok = pl.col("value") >= threshold
    if qualifies is not None:
        ok = ok & pl.col(qualifies).fill_null(True)
    df = series.filter(pl.col("day") >= start_day).sort("subject_id", "day").with_columns(
        ok.alias("_ok"))
    # only from the nadir phase on: drop rows before the first value below threshold
    df = df.with_columns((~(pl.col("value") >= threshold)).cast(pl.Int32).cum_sum()
                         .over("subject_id").alias("_below"))
    has_below = df.group_by("subject_id").agg((pl.col("_below").max() > 0).alias("_any"))
    df = df.join(has_below, on="subject_id").filter(~pl.col("_any") | (pl.col("_below") > 0))
    run = pl.col("_ok")
    for k in range(1, n):
        run = run & pl.col("_ok").shift(-k).over("subject_id").fill_null(False)
    hits = (df.with_columns(run.alias("_run")).filter(pl.col("_run"))
            .group_by("subject_id").agg(pl.col("day").min()))
    return series.select("subject_id").unique().join(hits, on="subject_id", how="left")


def recovery_days(measurements: pl.DataFrame, *, transfusions: pl.DataFrame | None = None,
                  follow_up: pl.DataFrame | None = None, ti_window: int = 56,
                  anc_threshold: float = 0.5, plt_threshold: float = 20.0, n: int = 3,
                  plt_tx_free_days: int = 7, gcsf: pl.DataFrame | None = None
                  ) -> pl.DataFrame:
    """Per patient: anc_recovery_day, plt_recovery_day, transfusion_independence_day,
    last_rbc_transfusion_day, last_plt_transfusion_day.

    transfusions: subject_id, day, product (None = not recorded: platelet recovery then ignores
    transfusions and transfusion independence stays empty). follow_up: subject_id, end (last
    day observed); without it the last measurement day is used. gcsf: G-CSF support intervals
    (analysis.support.support_intervals rows with analyte ANC): an ANC inside one does not
    qualify for neutrophil recovery."""
    from analysis.support import mark_supported

    subjects = measurements.select("subject_id").unique()
    if follow_up is not None:
        subjects = pl.concat([subjects, follow_up.select("subject_id")]).unique()
    anc_series = mark_supported(_daily(measurements, "ANC").with_columns(
        pl.lit("ANC").alias("analyte")), gcsf).with_columns((~pl.col("supported")).alias("_free"))
    anc = first_sustained(anc_series.select("subject_id", "day", "value", "_free"),
                          threshold=anc_threshold, n=n, qualifies="_free") \
        .rename({"day": "anc_recovery_day"})
    plt_series = _daily(measurements, "PLT")
    tx = transfusions
    if tx is not None and plt_series.height:
        ptx = (tx.filter(pl.col("product") == "PLT")
               .select("subject_id", pl.col("day").cast(pl.Int64).alias("_tx"))
               .sort("_tx"))
        plt_series = (plt_series.sort("day")
                      .join_asof(ptx, left_on="day", right_on="_tx", by="subject_id",
                                 strategy="backward", check_sortedness=False)
                      .with_columns((pl.col("_tx").is_null()
                                     | (pl.col("day") - pl.col("_tx") > plt_tx_free_days))
                                    .alias("_free")))
    else:
        plt_series = plt_series.with_columns(pl.lit(True).alias("_free"))
    plt = first_sustained(plt_series, threshold=plt_threshold, n=n, qualifies="_free") \
        .rename({"day": "plt_recovery_day"})

    out = subjects.join(anc, on="subject_id", how="left").join(plt, on="subject_id", how="left")
    if follow_up is None:
        follow_up = measurements.group_by("subject_id").agg(pl.col("day").max().alias("end"))
    if tx is None:
        return out.with_columns(
            [pl.lit(None, dtype=pl.Int64).alias(c) for c in
             ("transfusion_independence_day", "last_rbc_transfusion_day",
              "last_plt_transfusion_day")]).sort("subject_id")
    last = tx.group_by("subject_id").agg(
        pl.col("day").filter(pl.col("product").is_in(list(TI_PRODUCTS))).max().alias("_last"),
        pl.col("day").filter(pl.col("product") == "RBC").max().alias("last_rbc_transfusion_day"),
        pl.col("day").filter(pl.col("product") == "PLT").max().alias("last_plt_transfusion_day"))
    out = (out.join(last, on="subject_id", how="left")
           .join(follow_up.select("subject_id", "end"), on="subject_id", how="left"))
    start = pl.max_horizontal(pl.col("_last").fill_null(-1) + 1, pl.lit(0))
    # days start..end inclusive are transfusion-free: end - start + 1 of them
    ti = pl.when(pl.col("end").is_not_null() & (pl.col("end") - start + 1 >= ti_window)) \
        .then(start).otherwise(None)
    return out.select(
        "subject_id", "anc_recovery_day", "plt_recovery_day",
        ti.cast(pl.Int64).alias("transfusion_independence_day"),
        pl.col("last_rbc_transfusion_day").cast(pl.Int64),
        pl.col("last_plt_transfusion_day").cast(pl.Int64),
    ).sort("subject_id")


@derived_table("recovery", "Neutrophil and platelet recovery and transfusion independence",
               options={"ti_window": Option(int, 56, "transfusion-free days needed for "
                                                     "transfusion independence; same as "
                                                     "--rule ti_window=N")})
def recovery_table(study: Study, *, rules: Rules | None = None) -> pl.DataFrame:
    """recovery_days for every patient of a study (empty where not reached). Follow-up for
    recovery stops at an HSCT: recovery after a transplant is the graft's, not the CAR-T's.
    The HSCT day is the first of patients.hsct_day and an `hsct` event."""
    from analysis.response import hsct_per_patient

    hsct = hsct_per_patient(study).rename({"_hsct": "hsct_day"})
    before = pl.col("hsct_day").is_null() | (pl.col("day") < pl.col("hsct_day"))
    meas = (study.measurements.filter(pl.col("day") >= 0)
            .join(hsct, on="subject_id", how="left").filter(before).drop("hsct_day"))
    tx = transfusion_events(study.events)
    if tx is not None:
        tx = tx.join(hsct, on="subject_id", how="left").filter(before).drop("hsct_day")
    end = follow_up_end(study).join(hsct, on="subject_id", how="left").select(
        "subject_id", pl.min_horizontal("end", pl.col("hsct_day") - 1).alias("end"))
    from analysis.support import support_intervals

    rules = rules if rules is not None else rules_for(study)
    gcsf = support_intervals(study.events, rules=rules, transfusions=tx) \
        .filter(pl.col("analyte") == "ANC")
    out = recovery_days(meas, transfusions=tx, follow_up=end, ti_window=rules.ti_window,
                        anc_threshold=rules.anc_recovery, plt_threshold=rules.plt_recovery,
                        n=rules.recovery_runs, plt_tx_free_days=rules.plt_support_days,
                        gcsf=gcsf)
    return study.patients.select("subject_id").join(out, on="subject_id", how="left")


def ctcae_grades(measurements: pl.DataFrame, *, lln: dict[str, float] | None = None,
                 sex: pl.DataFrame | None = None, rules: Rules | None = None) -> pl.DataFrame:
    """CTCAE v5 grade per measurement of ANC, PLT, HGB and ALC: subject_id, day, analyte,
    value, term, grade (0 = at or above the lower limit of normal).

    The lower limits of normal come from `rules` (lln_anc, lln_plt, lln_alc, lln_hgb_female);
    lln overrides them per analyte; sex (subject_id, sex) sets the haemoglobin LLN to
    lln_hgb_male for men (lln_hgb_female for women and unknown sex) unless `lln["HGB"]` is
    given."""
    r = rules if rules is not None else DEFAULT_RULES
    limits = {"ANC": r.lln_anc, "PLT": r.lln_plt, "HGB": r.lln_hgb_female,
              "ALC": r.lln_alc} | dict(lln or {})
    table = pl.DataFrame(
        [(a, term, float(limits[a]), *t) for a, (term, _, t) in CTCAE_TERMS.items()],
        schema={"analyte": pl.String, "term": pl.String, "_lln": pl.Float64,
                "_g2": pl.Float64, "_g3": pl.Float64, "_g4": pl.Float64}, orient="row")
    df = measurements.filter(pl.col("analyte").is_in(list(CTCAE_TERMS))
                             & pl.col("value").is_not_null())
    if "tissue" in df.columns:
        df = df.filter(is_blood())
    df = df.select("subject_id", pl.col("day").cast(pl.Int64), "analyte", "value") \
        .join(table, on="analyte", how="left")
    if sex is not None and "HGB" not in (lln or {}):
        s = sex.select("subject_id", pl.col("sex").cast(pl.String).str.to_uppercase()
                       .str.slice(0, 1).alias("_sex"))
        df = df.join(s, on="subject_id", how="left").with_columns(
            pl.when((pl.col("analyte") == "HGB") & (pl.col("_sex") == "M"))
            .then(pl.lit(r.lln_hgb_male)).otherwise(pl.col("_lln")).alias("_lln"))
    v = pl.col("value")
    grade = (pl.when(v >= pl.col("_lln")).then(pl.lit(0))
             .when(pl.col("_g4").is_not_null() & (v < pl.col("_g4"))).then(pl.lit(4))
             .when(v < pl.col("_g3")).then(pl.lit(3))
             .when(v < pl.col("_g2")).then(pl.lit(2))
             .otherwise(pl.lit(1)))
    return df.select("subject_id", "day", "analyte", "value", "term",
                     grade.cast(pl.Int64).alias("grade")).sort("subject_id", "analyte", "day")


def worst_grades(graded: pl.DataFrame, *,
                 windows: Sequence[DayWindow] = GRADE_WINDOWS
                 ) -> pl.DataFrame:
    """Worst grade per patient, term and window: subject_id, term, window, worst_grade,
    worst_day, n_measurements."""
    parts = []
    for w in windows:
        parts.append(
            graded.filter(w.contains("day")).sort("grade", "day", descending=[True, False])
            .group_by("subject_id", "term", maintain_order=True)
            .agg(pl.col("grade").first().alias("worst_grade"),
                 pl.col("day").first().alias("worst_day"),
                 pl.len().alias("n_measurements"))
            .with_columns(pl.lit(w.label).alias("window")))
    if not parts:
        return pl.DataFrame(schema={"subject_id": pl.String, "term": pl.String,
                                    "window": pl.String, "worst_grade": pl.Int64,
                                    "worst_day": pl.Int64, "n_measurements": pl.UInt32})
    order = {w.label: i for i, w in enumerate(windows)}
    return (pl.concat(parts)
            .select("subject_id", "term", "window", "worst_grade", "worst_day", "n_measurements")
            .with_columns(pl.col("window").replace_strict(order, return_dtype=pl.Int32)
                          .alias("_o"))
            .sort("subject_id", "term", "_o").drop("_o"))


@derived_table("cytopenia_grades", "Worst CTCAE v5 cytopenia grade per patient and window "
               "(Baseline, D1-28, D29-90, >D90; stopping at HSCT)")
def cytopenia_grades(study: Study, *, rules: Rules | None = None) -> pl.DataFrame:
    """worst_grades(ctcae_grades(...)) over a study's counts from day 1 after infusion up to
    the day before an HSCT, plus a "Baseline" window: the grade of the baseline count (the
    last before lymphodepletion, analysis.baseline), shown apart from the toxicity windows."""
    from analysis.baseline import baseline_values, reference_days
    from analysis.response import counts_before_hsct

    rules = rules if rules is not None else rules_for(study)
    after = counts_before_hsct(study).filter(pl.col("day") >= 1)
    graded = ctcae_grades(after, sex=study.patients, rules=rules)
    worst = worst_grades(graded)
    base = baseline_values(study.measurements, reference_days(study, rules=rules),
                           analytes=tuple(CTCAE_TERMS))
    bg = ctcae_grades(base.select("subject_id", "day", "analyte", "value"),
                      sex=study.patients, rules=rules)
    base_rows = bg.select("subject_id", "term", pl.lit("Baseline").alias("window"),
                          pl.col("grade").alias("worst_grade"), pl.col("day").alias("worst_day"),
                          pl.lit(1, dtype=pl.UInt32).alias("n_measurements"))
    order = {"Baseline": 0} | {w.label: i + 1 for i, w in enumerate(GRADE_WINDOWS)}
    return (pl.concat([base_rows, worst.cast(base_rows.schema)])
            .with_columns(pl.col("window").replace_strict(order, return_dtype=pl.Int32)
                          .alias("_o"))
            .sort("subject_id", "term", "_o").drop("_o"))


def count_summary(series: pl.DataFrame, *, groups: pl.DataFrame, by: str = "response_group",
                  bin_days: int = 7) -> pl.DataFrame:
    """Counts over time per group, patient-level: one value per patient per `bin_days` window
    (the patient's median), then the median, quartiles and number of patients per group and
    window. Returns analyte, <by>, day (window start), median, q1, q3, n."""
    w = max(int(bin_days), 1)
    df = series.join(groups.select("subject_id", by), on="subject_id", how="inner") \
        .filter(pl.col("value").is_not_null()) \
        .with_columns((pl.col("day").cast(pl.Int64) // w * w).alias("_bin"))
    per_patient = df.group_by("analyte", by, "subject_id", "_bin").agg(pl.col("value").median())
    return (per_patient.group_by("analyte", by, "_bin")
            .agg(pl.col("value").median().alias("median"),
                 pl.col("value").quantile(0.25, "linear").alias("q1"),
                 pl.col("value").quantile(0.75, "linear").alias("q3"),
                 pl.len().alias("n"))
            .rename({"_bin": "day"}).sort("analyte", by, "day"))
