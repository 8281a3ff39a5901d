"""CAR-T cellular kinetics: expansion, persistence and exposure-response (DESIGN.md section 3).

Non-compartmental parameters per patient and assay (CAR transgene qPCR, CAR+ cells by flow):
Cmax and Tmax (highest quantifiable value on or after day 0), AUC0-28 by the linear-up/log-down
trapezoidal rule (log trapezoids where the level falls between two positive values, linear
otherwise; a window end between two samples is interpolated the same way), Tlast (last day
after infusion with a value >= LLOQ), fold expansion over baseline (last value on or before day
0) and detectability at the landmarks D28, M3, M6 and M12. This follows the usual NCA
conventions (e.g. Gabrielsson & Weiner, Pharmacokinetic and Pharmacodynamic Data Analysis, 5th
ed., ch. 2) as applied to CAR-T cellular kinetics (Stein et al., CPT Pharmacometrics Syst
Pharmacol 2019;8:285). Edges, each a rule setting or said in a note column:

- below the LLOQ is decided per replicate before replicates are averaged
  (`replicate_quantifiable_share`);
- fold expansion is not defined when the baseline is below the LLOQ (`fold_note`);
- the AUC starts at day 0: without a usable day-0 value it is not computed unless
  `auc_impute_day0` sets day 0 to 0 (PKNCA's impute = "start_conc0");
- group summaries count non-expanders and say how they enter the geometric mean
  (`kinetics_nonexpanders`).

Values below the lower limit of quantification (BLQ: value < lloq, or value <= 0) are handled by
position in the series after infusion: before the first quantifiable value ("leading"), between
quantifiable values ("middle"), after the last one ("trailing"). Each position has a policy:
"zero", "drop" or "half_lloq". The default (leading 0, middle dropped, trailing 0) is the common
NCA convention. Summaries use the geometric mean and geometric CV% = sqrt(exp(sd_log^2) - 1) *
100. Tests are patient-level and come from analysis.stats (the Compare page uses the same):
Mann-Whitney for response groups (exact, or exact permutation with ties, up to
`MWU_EXACT_MAX_N` patients; normal approximation above), Spearman with a permutation p for
ordinal CRS grade (t approximation above `SPEARMAN_PERMUTATION_MAX_N` pairs).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from analysis import stats as st
from analysis.post_hsct import hsct_days
from analysis.registry import Option, derived_table
from analysis.rules import Rules, rules_for
from analysis.vocab import BLOOD, LANDMARKS, NON_RESPONDER, NOT_EVALUABLE, RESPONDER, is_blood

if TYPE_CHECKING:
    from data_loaders import Study

__all__ = ["ASSAYS", "CD7_READOUTS", "LANDMARKS", "BLQ_POLICIES", "KINETICS_COLUMNS",
           "MWU_EXACT_MAX_N", "SPEARMAN_PERMUTATION_MAX_N",
           "Correlation", "auc_column", "kinetic_series", "prepare_series", "with_groups",
           "kinetic_parameters", "before_hsct", "kinetics_table", "group_summary", "group_curve",
           "geometric_summary", "NONEXPANDER_POLICIES", "concordance", "spearman",
           "repeated_correlation", "RepeatedConcordance",
           "exposure_response",
           "exposure_tests"]

ASSAYS = ("CAR_QPCR", "CAR_PCT", "CAR_ABS")
CD7_READOUTS = ("CD7NEG_T_PCT", "NK_ABS")
BLQ_POLICIES = ("zero", "drop", "half_lloq")
KINETICS_COLUMNS = ("subject_id", "assay", "cmax", "tmax", "auc_0_28", "tlast", "fold_expansion")
MWU_EXACT_MAX_N = st.EXACT_MAX_N   # patients in both groups (analysis.stats)
SPEARMAN_PERMUTATION_MAX_N = st.SPEARMAN_PERMUTATION_MAX_N   # pairs (analysis.stats)

_KEY = ["subject_id", "assay"]
_SERIES_SCHEMA = {"subject_id": pl.String, "assay": pl.String, "day": pl.Int64,
                  "value": pl.Float64, "lloq": pl.Float64, "unit": pl.String,
                  "blq": pl.Boolean, "plot_value": pl.Float64, "n_replicates": pl.Int64,
                  "n_replicates_blq": pl.Int64}


def auc_column(auc_end: int = 28) -> str:
    """Name of the AUC column for a window ending at `auc_end` (auc_0_28 by default)."""
    return f"auc_0_{int(auc_end)}"


# ---- series ----------------------------------------------------------------------------------
def kinetic_series(study: Study, *, analytes: Iterable[str] = ASSAYS,
                   tissue: str | None = "blood", groups: pl.DataFrame | None = None,
                   rules: Rules | None = None) -> pl.DataFrame:
    """Long CAR-T (or any) readouts for plotting and NCA: subject_id, assay, day, value, lloq,
    unit, blq, plot_value (BLQ drawn at LLOQ/2), n_replicates, n_replicates_blq, and
    best_response, response_group when `groups` (analysis.cohort.response_groups) is given.

    Replicates on a day (several times, same tissue) are judged BLQ one by one and then
    averaged (`prepare_series`). `tissue=None` keeps all; "blood" keeps blood and rows
    without a tissue (tissues are folded once by the loader, analysis.vocab)."""
    rules = rules if rules is not None else rules_for(study)
    df = study.series(analytes=list(analytes))
    if tissue is not None and "tissue" in df.columns:
        df = df.filter(is_blood() if tissue == BLOOD else pl.col("tissue") == tissue)
    out = prepare_series(df, replicate_share=rules.replicate_quantifiable_share)
    return out if groups is None else with_groups(out, groups=groups)


def with_groups(frame: pl.DataFrame, *, groups: pl.DataFrame) -> pl.DataFrame:
    """`frame` with best_response and response_group of each patient (from `groups`)."""
    cols = [c for c in ("best_response", "response_group") if c in groups.columns]
    return frame.drop([c for c in cols if c in frame.columns]).join(
        groups.select("subject_id", *cols), on="subject_id", how="left")


def prepare_series(frame: pl.DataFrame, *, replicate_share: float = 0.5) -> pl.DataFrame:
    """Flag BLQ per replicate, then average replicates of a day; accepts `analyte` or `assay`
    as the assay column.

    A replicate is BLQ when its value is <= 0 or below its LLOQ. A day is quantifiable when at
    least `replicate_share` of its replicates are (and at least one is); its value is then the
    mean of the quantifiable replicates. Otherwise the day is BLQ and its value the mean of
    all replicates (shown, never used as a level). Example: replicates 5, 5, 25 with LLOQ 10
    average to 11.7 (>= LLOQ), but two of three are BLQ: the day is BLQ."""
    if "assay" not in frame.columns:
        frame = frame.rename({"analyte": "assay"})
    if "lloq" not in frame.columns:
        frame = frame.with_columns(lloq=pl.lit(None, dtype=pl.Float64))
    if "unit" not in frame.columns:
        frame = frame.with_columns(unit=pl.lit(None, dtype=pl.String))
    if frame.height == 0:
        return pl.DataFrame(schema=_SERIES_SCHEMA)
    rep_blq = (pl.col("value") <= 0) | (pl.col("lloq").is_not_null()
                                        & (pl.col("value") < pl.col("lloq")))
    out = (
        frame.filter(pl.col("value").is_not_null() & pl.col("day").is_not_null()
                     & pl.col("value").is_finite())
        .with_columns(_rep_blq=rep_blq)
        .group_by(["subject_id", "assay", "day"])
        .agg(pl.col("value").filter(~pl.col("_rep_blq")).mean().alias("_q_mean"),
             pl.col("value").mean().alias("_all_mean"),
             pl.col("lloq").max(), pl.col("unit").first(),
             pl.len().cast(pl.Int64).alias("n_replicates"),
             pl.col("_rep_blq").sum().cast(pl.Int64).alias("n_replicates_blq"))
        .with_columns(
            blq=~((pl.col("n_replicates") > pl.col("n_replicates_blq"))
                  & ((pl.col("n_replicates") - pl.col("n_replicates_blq"))
                     >= replicate_share * pl.col("n_replicates") - 1e-9)))
        .with_columns(value=pl.when(pl.col("blq")).then(pl.col("_all_mean"))
                      .otherwise(pl.col("_q_mean")))
        .with_columns(
            plot_value=pl.when(~pl.col("blq")).then(pl.col("value"))
            .when(pl.col("lloq").is_not_null()).then(pl.col("lloq") / 2)
            .otherwise(None))
        .sort(["subject_id", "assay", "day"])
    )
    return out.select(list(_SERIES_SCHEMA)).cast(_SERIES_SCHEMA)


# ---- NCA parameters --------------------------------------------------------------------------
def _policy_value(policy: str) -> pl.Expr:
    if policy not in BLQ_POLICIES:
        raise ValueError(f"BLQ policy {policy!r} is not one of {', '.join(BLQ_POLICIES)}")
    if policy == "zero":
        return pl.lit(0.0)
    if policy == "drop":
        return pl.lit(None, dtype=pl.Float64)
    return pl.when(pl.col("lloq").is_not_null()).then(pl.col("lloq") / 2).otherwise(0.0)


def _with_positions(s: pl.DataFrame, leading: str, middle: str, trailing: str) -> pl.DataFrame:
    # positions relative to the quantifiable values after infusion (the AUC's samples)
    quant = ~pl.col("blq")
    qpost = quant & (pl.col("day") >= 0)
    first_q = pl.col("day").filter(qpost).min().over(_KEY)
    last_q = pl.col("day").filter(qpost).max().over(_KEY)
    position = (pl.when(quant).then(pl.lit("quantifiable"))
                .when(first_q.is_null() | (pl.col("day") < first_q)).then(pl.lit("leading"))
                .when(pl.col("day") > last_q).then(pl.lit("trailing"))
                .otherwise(pl.lit("middle")))
    s = s.with_columns(position=position)
    conc = (pl.when(pl.col("position") == "quantifiable").then(pl.col("value"))
            .when(pl.col("position") == "leading").then(_policy_value(leading))
            .when(pl.col("position") == "trailing").then(_policy_value(trailing))
            .otherwise(_policy_value(middle)))
    return s.with_columns(conc=conc)


def _log_interp(t1: pl.Expr, c1: pl.Expr, t2: pl.Expr, c2: pl.Expr, t: pl.Expr) -> pl.Expr:
    """Level at `t` between two samples: log-linear when falling between positive values."""
    frac = (t - t1) / (t2 - t1)
    log_down = (c2 < c1) & (c1 > 0) & (c2 > 0)
    return (pl.when(log_down).then((c1.log() + (c2.log() - c1.log()) * frac).exp())
            .otherwise(c1 + (c2 - c1) * frac))


def _auc(s: pl.DataFrame, auc_end: int) -> pl.DataFrame:
    """AUC over [0, auc_end] per patient and assay by linear-up/log-down trapezoids."""
    pts = s.filter(pl.col("conc").is_not_null() & (pl.col("day") >= 0)).select(
        *_KEY, "day", "conc")
    end = float(auc_end)
    # a window end between two samples gets an interpolated point
    before = (pts.filter(pl.col("day") <= end).group_by(_KEY)
              .agg(pl.col("day").last().alias("t1"), pl.col("conc").last().alias("c1")))
    after = (pts.filter(pl.col("day") > end).group_by(_KEY)
             .agg(pl.col("day").first().alias("t2"), pl.col("conc").first().alias("c2")))
    edge = (before.join(after, on=_KEY, how="inner").filter(pl.col("t1") < end)
            .select(*_KEY, pl.lit(end).alias("day"),
                    _log_interp(pl.col("t1").cast(pl.Float64), pl.col("c1"),
                                pl.col("t2").cast(pl.Float64), pl.col("c2"),
                                pl.lit(end)).alias("conc")))
    inside = pts.filter(pl.col("day") <= end).with_columns(pl.col("day").cast(pl.Float64))
    pts = pl.concat([inside, edge]).sort([*_KEY, "day"])
    # sorted by key: the previous row belongs to the same series unless the key changed
    same = (pl.col("subject_id") == pl.col("subject_id").shift(1)) & \
        (pl.col("assay") == pl.col("assay").shift(1))
    prev_t = pl.when(same).then(pl.col("day").shift(1))
    prev_c = pl.when(same).then(pl.col("conc").shift(1))
    c, dt = pl.col("conc"), pl.col("day") - prev_t
    log_down = (c < prev_c) & (c > 0) & (prev_c > 0)
    area = (pl.when(log_down).then((prev_c - c) / (prev_c / c).log() * dt)
            .otherwise((prev_c + c) / 2 * dt))
    return (pts.with_columns(area=area).group_by(_KEY)
            .agg(auc=pl.col("area").sum(), auc_points=pl.len(),
                 auc_start=pl.col("day").min(), auc_stop=pl.col("day").max()))


def kinetic_parameters(series: pl.DataFrame, *, auc_end: int = 28, blq_leading: str = "zero",
                       blq_middle: str = "drop", blq_trailing: str = "zero",
                       landmark_tolerance: int = 7,
                       landmarks: Mapping[str, int] = LANDMARKS,
                       auc_impute_day0: bool = False, replicate_share: float = 0.5,
                       hsct: pl.DataFrame | None = None) -> pl.DataFrame:
    """NCA parameters per patient and assay from a long frame (subject_id, analyte or assay,
    day, value, lloq). Columns: subject_id, assay, cmax, tmax, auc_0_<end>, tlast,
    fold_expansion, then clast, baseline, baseline_note, fold_note, unit, lloq, n_samples,
    n_blq, auc_start, auc_stop, auc_note, detect_<landmark>..., reason (why Cmax is undefined),
    hsct_note.

    `hsct` (subject_id, hsct_day; analysis.post_hsct.hsct_days) cuts each patient's series at
    the HSCT day: samples on or after it are the graft's course, not the CAR-T's (the rule
    that makes assessments after an HSCT NE, DESIGN.md section 3), so they never set Cmax,
    Tlast, the AUC or a landmark's detectability. `hsct_note` says where a series was cut and
    how many samples that left out.

    Cmax, Tmax, Tlast and Clast use samples from day 0 (the infusion) on: a quantifiable
    pre-infusion value is never Tlast. Fold expansion is Cmax over the baseline (the last
    value on or before day 0) and is not defined (null, `fold_note` says why) when the
    baseline is below the LLOQ or zero: dividing by LLOQ/2 would make the fold a property of
    the assay, not of the patient. The AUC starts at day 0: without a usable day-0 value it is
    not computed, unless `auc_impute_day0` sets the level on day 0 to 0 (PKNCA's
    impute = "start_conc0"; right for CAR transgene copies, which are absent before the
    infusion)."""
    s = prepare_series(series, replicate_share=replicate_share) \
        if "blq" not in series.columns else series
    s, cut = before_hsct(s, hsct=hsct)
    auc_name = auc_column(auc_end)
    s = _with_positions(s, blq_leading, blq_middle, blq_trailing)
    quant = ~pl.col("blq")
    post = pl.col("day") >= 0
    on_or_before_0 = pl.col("day") <= 0
    detect = []
    for label, day in landmarks.items():
        dist = (pl.col("day") - day).abs()
        near = dist <= landmark_tolerance
        detect.append(pl.col("blq").filter(near).sort_by(dist.filter(near)).first()
                      .alias(f"_d_{label}"))
    base = (
        s.group_by(_KEY, maintain_order=True).agg(
            *detect,
            cmax=pl.col("value").filter(quant & post).max(),
            tmax=pl.col("day").filter(quant & post)
            .sort_by(pl.col("value").filter(quant & post), descending=True).first(),
            tlast=pl.col("day").filter(quant & post).max(),
            clast=pl.col("value").filter(quant & post)
            .sort_by(pl.col("day").filter(quant & post)).last(),
            _day0=(pl.col("conc").is_not_null() & (pl.col("day") == 0)).any(),
            _b_value=pl.col("value").filter(on_or_before_0).last(),
            _b_blq=pl.col("blq").filter(on_or_before_0).last(),
            _b_lloq=pl.col("lloq").filter(on_or_before_0).last(),
            _b_day=pl.col("day").filter(on_or_before_0).last(),
            unit=pl.col("unit").drop_nulls().first(),
            lloq=pl.col("lloq").max(),
            n_samples=pl.len(),
            n_blq=pl.col("blq").sum(),
            _n_post=post.sum(),
        )
    )
    baseline = pl.col("_b_value")
    detect_text = [pl.when(pl.col(f"_d_{lab}").is_null()).then(pl.lit("not sampled"))
                   .when(pl.col(f"_d_{lab}")).then(pl.lit("no")).otherwise(pl.lit("yes"))
                   .alias(f"detect_{lab.lower()}") for lab in landmarks]
    out = base.with_columns(baseline=baseline).with_columns(
        *detect_text,
        fold_expansion=pl.when(~pl.col("_b_blq").fill_null(True) & (pl.col("baseline") > 0))
        .then(pl.col("cmax") / pl.col("baseline")).otherwise(None),
        baseline_note=pl.when(pl.col("_b_value").is_null()).then(pl.lit("no sample on/before day 0"))
        .when(pl.col("_b_blq") & pl.col("_b_lloq").is_not_null())
        .then(pl.format("day {} below LLOQ ({})", pl.col("_b_day"), pl.col("_b_lloq")))
        .when(pl.col("_b_blq")).then(pl.format("day {} not detected, no LLOQ", pl.col("_b_day")))
        .otherwise(pl.format("day {}", pl.col("_b_day"))),
        fold_note=pl.when(pl.col("cmax").is_null()).then(pl.lit("no Cmax"))
        .when(pl.col("_b_value").is_null())
        .then(pl.lit("not defined: no baseline sample on or before day 0"))
        .when(pl.col("_b_blq") & pl.col("_b_lloq").is_not_null())
        .then(pl.format("not defined: baseline (day {}) below LLOQ; Cmax is {}x the LLOQ",
                        pl.col("_b_day"),
                        (pl.col("cmax") / pl.col("_b_lloq")).round_sig_figs(3)))
        .when(pl.col("_b_blq"))
        .then(pl.format("not defined: baseline (day {}) not detected", pl.col("_b_day")))
        .otherwise(pl.lit("")),
        reason=pl.when(pl.col("_n_post") == 0).then(pl.lit("no samples on or after day 0"))
        .when(pl.col("cmax").is_null())
        .then(pl.format("all {} samples on or after day 0 below LLOQ", pl.col("_n_post")))
        .otherwise(pl.lit("")),
    )
    imputed = out.filter(~pl.col("_day0") & (pl.col("_n_post") > 0)).select(_KEY)
    if auc_impute_day0 and imputed.height:
        zero = imputed.with_columns(day=pl.lit(0, pl.Int64), conc=pl.lit(0.0))
        s = pl.concat([s.select(*_KEY, "day", "conc"), zero.select(*_KEY, "day", "conc")])
    auc = _auc(s, auc_end)
    no_day0 = ~pl.col("_day0") & ~pl.lit(auc_impute_day0)
    out = out.join(auc, on=_KEY, how="left").with_columns(
        pl.when((pl.col("auc_points") >= 2) & ~no_day0).then(pl.col("auc")).otherwise(None)
        .alias(auc_name),
        auc_note=pl.when(pl.col("_n_post") == 0).then(pl.lit("no samples on or after day 0"))
        .when(no_day0)
        .then(pl.lit("no day-0 value: AUC not computed (rule auc_impute_day0 = true starts "
                     "it at 0 on day 0)"))
        .when(pl.col("auc_points").is_null() | (pl.col("auc_points") < 2))
        .then(pl.format("fewer than 2 usable samples in days 0-{}", pl.lit(auc_end)))
        .when(~pl.col("_day0"))
        .then(pl.lit("no day-0 value: level 0 on day 0 imputed (auc_impute_day0)"))
        .when(pl.col("auc_stop") < auc_end)
        .then(pl.format("last sample day {}: AUC to that day",
                        pl.col("auc_stop").cast(pl.Int64)))
        .otherwise(pl.lit("")),
    )
    cols = ["subject_id", "assay", "cmax", "tmax", auc_name, "tlast", "fold_expansion", "clast",
            "baseline", "baseline_note", "fold_note", "unit", "lloq", "n_samples", "n_blq", "auc_start",
            "auc_stop", "auc_note", *[f"detect_{lab.lower()}" for lab in landmarks], "reason",
            "hsct_note"]
    out = out.join(cut, on=_KEY, how="left").with_columns(
        pl.col("hsct_note").fill_null(""))
    return out.select(cols).with_columns(
        pl.col("tmax", "tlast").cast(pl.Int64), pl.col("n_samples", "n_blq").cast(pl.Int64),
    ).sort(_KEY)


def before_hsct(series: pl.DataFrame, *, hsct: pl.DataFrame | None
                ) -> tuple[pl.DataFrame, pl.DataFrame]:
    """`series` (subject_id, assay, day, ...) without the samples on or after each patient's
    HSCT day, and per (subject_id, assay) cut at an HSCT: hsct_note ("cut at HSCT on day 121:
    3 later sample(s) not used", or "HSCT on day 121: no later sample")."""
    empty = pl.DataFrame(schema={"subject_id": pl.String, "assay": pl.String,
                                 "hsct_note": pl.String})
    if hsct is None or hsct.height == 0 or series.height == 0:
        return series, empty
    days = hsct.select("subject_id", pl.col("hsct_day").cast(pl.Int64).alias("_hsct"))
    flagged = series.join(days, on="subject_id", how="left").with_columns(
        _after=pl.col("_hsct").is_not_null() & (pl.col("day") >= pl.col("_hsct")))
    notes = (flagged.filter(pl.col("_hsct").is_not_null())
             .group_by(_KEY).agg(pl.col("_hsct").first(), pl.col("_after").sum().alias("_n"))
             .select(*_KEY, pl.when(pl.col("_n") > 0)
                     .then(pl.format("cut at HSCT on day {}: {} later sample(s) not used",
                                     pl.col("_hsct"), pl.col("_n")))
                     .otherwise(pl.format("HSCT on day {}: no later sample", pl.col("_hsct")))
                     .alias("hsct_note")))
    return flagged.filter(~pl.col("_after")).drop("_hsct", "_after"), notes


@derived_table(
    "kinetics", "CAR-T kinetics per patient and assay: Cmax, Tmax, AUC, Tlast, fold expansion, "
    "detectability at D28/M3/M6/M12",
    options={
        "auc_end": Option(int, 28, "end of the AUC window (study day)"),
        "blq_leading": Option(str, "zero", "below-LLOQ values before the first quantifiable",
                              BLQ_POLICIES),
        "blq_middle": Option(str, "drop", "below-LLOQ values between quantifiable values",
                             BLQ_POLICIES),
        "blq_trailing": Option(str, "zero", "below-LLOQ values after the last quantifiable",
                               BLQ_POLICIES),
        "landmark_tolerance": Option(int, 7, "days either side of a landmark a sample may fall"),
    })
def kinetics_table(study: Study, *, auc_end: int = 28, blq_leading: str = "zero",
                   blq_middle: str = "drop", blq_trailing: str = "zero",
                   landmark_tolerance: int = 7, rules: Rules | None = None) -> pl.DataFrame:
    """kinetic_parameters of CAR_QPCR, CAR_PCT and CAR_ABS in blood for every patient (rule
    settings auc_impute_day0 and replicate_quantifiable_share), each series cut at the
    patient's HSCT (hsct_note)."""
    rules = rules if rules is not None else rules_for(study)
    series = kinetic_series(study, analytes=ASSAYS, rules=rules)
    return kinetic_parameters(series, auc_end=auc_end, blq_leading=blq_leading,
                              blq_middle=blq_middle, blq_trailing=blq_trailing,
                              landmark_tolerance=landmark_tolerance,
                              auc_impute_day0=rules.auc_impute_day0,
                              replicate_share=rules.replicate_quantifiable_share,
                              hsct=hsct_days(study))


# ---- summaries -------------------------------------------------------------------------------
def geometric_summary(values: pl.Expr) -> list[pl.Expr]:
    """n, geometric mean and geometric CV% of the positive values of `values` (agg context)."""
    pos = values.filter(values > 0)
    sd_log = pos.log().std(ddof=1)
    return [pos.count().alias("n"), pos.log().mean().exp().alias("geo_mean"),
            ((sd_log.pow(2).exp() - 1).sqrt() * 100).alias("geo_cv_pct"),
            pos.min().alias("min"), pos.max().alias("max")]


NONEXPANDER_POLICIES = ("exclude", "half_lloq")


def group_summary(params: pl.DataFrame, *, groups: pl.DataFrame,
                  parameters: Iterable[str] = ("cmax", "auc_0_28"),
                  by: str = "response_group", nonexpanders: str = "exclude") -> pl.DataFrame:
    """Per assay, group and parameter: n_patients (in the group with a kinetics row),
    n_nonexpanders (no quantifiable value after infusion), n (values in the geometric mean),
    geometric mean, geometric CV%, min, max and a note saying who is in the mean.

    Non-expanders are never dropped silently. `nonexpanders`: "exclude" (counted, stated, not
    in the mean: the log of zero is undefined) or "half_lloq" (their Cmax enters at LLOQ/2,
    the level they are drawn at; an AUC of zero cannot enter a geometric mean and stays
    out, said so). Patients without samples after infusion are not evaluable and counted in
    the note. `groups` is analysis.cohort.response_groups (subject_id, response_group)."""
    if nonexpanders not in NONEXPANDER_POLICIES:
        raise ValueError(f"non-expander policy {nonexpanders!r} is not one of "
                         f"{', '.join(NONEXPANDER_POLICIES)}")
    params_present = [p for p in parameters if p in params.columns]
    schema = {"assay": pl.String, by: pl.String, "parameter": pl.String,
              "n_patients": pl.Int64, "n_nonexpanders": pl.Int64, "n": pl.Int64,
              "geo_mean": pl.Float64, "geo_cv_pct": pl.Float64, "min": pl.Float64,
              "max": pl.Float64, "note": pl.String}
    if params.height == 0 or not params_present:
        return pl.DataFrame(schema=schema)
    p = params
    for col, default in (("reason", ""), ("lloq", None)):
        if col not in p.columns:
            p = p.with_columns(pl.lit(default).alias(col))
    # a non-expander has samples after infusion, none of them quantifiable
    nonexp = pl.col("reason").fill_null("").str.starts_with("all ")
    unevaluable = pl.col("reason").fill_null("").str.starts_with("no samples")
    long = (p.join(groups.select("subject_id", by), on="subject_id", how="left")
            .with_columns(pl.col(by).fill_null(NOT_EVALUABLE), _nonexp=nonexp,
                          _uneval=unevaluable, _lloq=pl.col("lloq").cast(pl.Float64))
            .unpivot(index=["subject_id", "assay", by, "_nonexp", "_uneval", "_lloq"],
                     on=params_present, variable_name="parameter", value_name="v")
            .with_columns(pl.col("v").cast(pl.Float64)))
    if nonexpanders == "half_lloq":
        long = long.with_columns(
            v=pl.when(pl.col("_nonexp") & (pl.col("parameter") == "cmax"))
            .then(pl.col("_lloq") / 2).otherwise(pl.col("v")))
    v = pl.col("v")
    in_mean = v.is_not_null() & (v > 0)
    out = (long.group_by(["assay", by, "parameter"])
           .agg(pl.len().cast(pl.Int64).alias("n_patients"),
                pl.col("_nonexp").sum().cast(pl.Int64).alias("n_nonexpanders"),
                pl.col("_uneval").sum().cast(pl.Int64).alias("_n_uneval"),
                (in_mean & pl.col("_nonexp")).sum().cast(pl.Int64).alias("_n_ne_in"),
                *geometric_summary(v))
           .with_columns(pl.col("n").cast(pl.Int64)))
    ne, ne_in = pl.col("n_nonexpanders"), pl.col("_n_ne_in")
    other_out = pl.col("n_patients") - pl.col("n") - (ne - ne_in) - pl.col("_n_uneval")
    note = pl.concat_str([
        pl.format("geometric mean of {} of {} patients", pl.col("n"), pl.col("n_patients")),
        pl.when((ne > 0) & (ne_in > 0))
        .then(pl.format("{} non-expander(s) in it at LLOQ/2", ne_in)),
        pl.when(ne - ne_in > 0)
        .then(pl.format("{} non-expander(s) (no quantifiable value after infusion) not in "
                        "it", ne - ne_in)),
        pl.when(pl.col("_n_uneval") > 0)
        .then(pl.format("{} without samples after infusion", pl.col("_n_uneval"))),
        pl.when(other_out > 0).then(pl.format("{} without a positive value", other_out)),
    ], separator="; ", ignore_nulls=True)
    return (out.with_columns(note=note).sort(["assay", "parameter", by])
            .select(list(schema)).cast(schema))


def group_curve(series: pl.DataFrame, *, by: str = "response_group") -> pl.DataFrame:
    """Geometric-mean curve per group, assay and day (BLQ values at LLOQ/2): by, assay, day,
    geo_mean, n, n_blq, lloq."""
    schema = {by: pl.String, "assay": pl.String, "day": pl.Int64, "geo_mean": pl.Float64,
              "n": pl.UInt32, "n_blq": pl.UInt32, "lloq": pl.Float64}
    df = series.filter(pl.col("plot_value").is_not_null() & (pl.col("plot_value") > 0))
    if df.height == 0 or by not in df.columns:
        return pl.DataFrame(schema=schema)
    return (df.with_columns(pl.col(by).fill_null(NOT_EVALUABLE))
            .group_by([by, "assay", "day"])
            .agg(geo_mean=pl.col("plot_value").log().mean().exp(), n=pl.len(),
                 n_blq=pl.col("blq").sum(), lloq=pl.col("lloq").max())
            .sort([by, "assay", "day"]).select(list(schema)).cast(schema))


# ---- qPCR vs flow ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Correlation:
    """Spearman rho with a permutation p (exact enumeration for n <= 8; asymptotic p above
    SPEARMAN_PERMUTATION_MAX_N pairs, `method` says which)."""

    rho: float | None
    p_value: float | None
    n: int
    method: str = "Spearman rho, permutation p"

    def describe(self) -> str:
        if self.rho is None:
            return f"n = {self.n}: too few pairs for a correlation"
        return f"Spearman rho = {self.rho:.2f}, p = {self.p_value:.3g}, n = {self.n}"


def concordance(series: pl.DataFrame, *, x: str = "CAR_QPCR", y: str = "CAR_PCT"
                ) -> pl.DataFrame:
    """Paired samples (same patient and day) of two assays: subject_id, day, x, y (plot values,
    BLQ at LLOQ/2), x_blq, y_blq, response_group when present."""
    extra = [c for c in ("response_group",) if c in series.columns]
    a = series.filter(pl.col("assay") == x).select(
        "subject_id", "day", *extra, pl.col("plot_value").alias("x"), pl.col("blq").alias("x_blq"))
    b = series.filter(pl.col("assay") == y).select(
        "subject_id", "day", pl.col("plot_value").alias("y"), pl.col("blq").alias("y_blq"))
    return (a.join(b, on=["subject_id", "day"], how="inner")
            .filter(pl.col("x").is_not_null() & pl.col("y").is_not_null())
            .sort(["subject_id", "day"]))


def spearman(frame: pl.DataFrame, *, x: str = "x", y: str = "y") -> Correlation:
    """Spearman rho of two columns (nulls dropped) with a permutation p value (asymptotic
    above SPEARMAN_PERMUTATION_MAX_N pairs)."""
    df = frame.select(x, y).drop_nulls()
    n = df.height
    if n < 3:
        return Correlation(None, None, n)
    xv, yv = df.get_column(x).to_numpy(), df.get_column(y).to_numpy()
    if np.ptp(xv) == 0 or np.ptp(yv) == 0:
        return Correlation(None, None, n, "constant values")
    rho, p, method = st.spearman(xv, yv, permutation_max_n=SPEARMAN_PERMUTATION_MAX_N)
    return Correlation(rho, p, n, method)


@dataclass(frozen=True)
class RepeatedConcordance:
    """Correlation of two assays over repeated samples of the same patients: rmcorr on log10
    values (analysis.stats.rmcorr) and one Spearman rho per patient with >= 3 samples. A
    Spearman over all samples pooled treats 57 samples of 5 patients as 57 independent
    patients and gives p values that invite over-reading."""

    rm: st.RepeatedCorrelation
    per_patient: tuple[tuple[str, float | None, int], ...]
    n_blq_excluded: int

    def short(self) -> str:
        """A figure title: the within-patient r with its sample and patient counts."""
        rm = self.rm
        if rm.r is None:
            return f"rmcorr not defined ({rm.n} samples, {rm.n_subjects} patients)"
        return (f"Repeated-measures r = {rm.r:.2f}, p = {rm.p_value:.2g} "
                f"({rm.n} samples, {rm.n_subjects} patients)")

    def describe(self) -> str:
        rm = self.rm
        if rm.r is None:
            head = f"{rm.method}: {rm.n} samples of {rm.n_subjects} patients"
        else:
            head = (f"Repeated-measures r = {rm.r:.2f} (rmcorr, log10 values), p = "
                    f"{rm.p_value:.3g}, {rm.n} samples of {rm.n_subjects} patients, "
                    f"df = {rm.dof}")
        rhos = [r for _, r, _ in self.per_patient if r is not None]
        if rhos:
            head += (f"; per-patient Spearman rho {min(rhos):.2f} to {max(rhos):.2f} "
                     f"(median {float(np.median(rhos)):.2f}, {len(rhos)} patients with >= 3 "
                     "samples)")
        if self.n_blq_excluded:
            head += f"; {self.n_blq_excluded} samples below the LLOQ left out"
        return head


def repeated_correlation(frame: pl.DataFrame, *, x: str = "x", y: str = "y",
                         subject: str = "subject_id") -> RepeatedConcordance:
    """rmcorr (Bakdash & Marusich 2017) of log10 `x` vs log10 `y` over the paired samples of
    `frame` (concordance output), plus a Spearman rho per patient. Samples below the LLOQ on
    either assay (x_blq / y_blq) are left out: their LLOQ/2 is imputed, not measured."""
    df = frame.select(subject, x, y, *[c for c in ("x_blq", "y_blq") if c in frame.columns]
                      ).drop_nulls([subject, x, y])
    blq = pl.lit(False)
    for c in ("x_blq", "y_blq"):
        if c in df.columns:
            blq = blq | pl.col(c).fill_null(False)
    n_all = df.height
    df = df.filter(~blq & (pl.col(x) > 0) & (pl.col(y) > 0))
    lx, ly = np.log10(df.get_column(x).to_numpy()), np.log10(df.get_column(y).to_numpy())
    subj = df.get_column(subject).cast(pl.String).to_numpy()
    rm = st.rmcorr(lx, ly, subject=subj)
    per = []
    for sid in sorted(set(subj.tolist())):
        m = subj == sid
        if m.sum() >= 3:
            rho, _, _ = st.spearman(lx[m], ly[m])
            per.append((sid, rho, int(m.sum())))
    return RepeatedConcordance(rm, tuple(per), n_all - df.height)


# ---- exposure-response -----------------------------------------------------------------------
def exposure_response(params: pl.DataFrame, *, groups: pl.DataFrame, crs: pl.DataFrame,
                      assay: str = "CAR_QPCR") -> pl.DataFrame:
    """One row per patient for one assay: exposure columns of `params` with best_response,
    response_group (from `groups`) and crs_max_grade (from toxicity.crs_table)."""
    p = params.filter(pl.col("assay") == assay)
    g = groups.select("subject_id", "best_response", "response_group")
    c = crs.select("subject_id", "crs_max_grade") if "crs_max_grade" in crs.columns else \
        pl.DataFrame(schema={"subject_id": pl.String, "crs_max_grade": pl.Int64})
    return (p.join(g, on="subject_id", how="left").join(c, on="subject_id", how="left")
            .sort("subject_id"))


_P_KIND = {"Mann-Whitney exact": "exact p", "permutation (all splits)":
           "exact permutation p (ties)",
           f"permutation ({st.N_PERMUTATIONS} random splits)":
           f"permutation p ({st.N_PERMUTATIONS} random splits, ties)",
           "Mann-Whitney (normal approx.)": "asymptotic p"}


def exposure_tests(frame: pl.DataFrame, *, parameters: Iterable[str] = ("cmax", "auc_0_28"),
                   exact_max_n: int = st.EXACT_MAX_N) -> pl.DataFrame:
    """Per exposure parameter: Responder vs Non-responder (Mann-Whitney, exact or permutation
    p; asymptotic above MWU_EXACT_MAX_N patients) and against CRS max grade (Spearman,
    permutation p; asymptotic above SPEARMAN_PERMUTATION_MAX_N). Columns: parameter, versus, test,
    statistic, p_value, n, detail."""
    rows = []
    for par in parameters:
        if par not in frame.columns:
            continue
        df = frame.filter(pl.col(par).is_not_null() & pl.col(par).is_finite())
        a = df.filter(pl.col("response_group") == RESPONDER).get_column(par).to_numpy()
        b = df.filter(pl.col("response_group") == NON_RESPONDER).get_column(par).to_numpy()
        detail = f"{RESPONDER} n={len(a)} vs {NON_RESPONDER} n={len(b)}"
        if len(a) and len(b):
            mw = st.mann_whitney(a, b, exact_max_n=exact_max_n)
            stat, p, test = mw.u, mw.p_value, f"Mann-Whitney U, {_P_KIND[mw.test]}"
            detail += f": U = {stat:g}, p = {p:.3g}"
        else:
            stat, p, test = None, None, "Mann-Whitney U: needs both groups"
        rows.append({"parameter": par, "versus": "response_group", "test": test,
                     "statistic": stat, "p_value": p, "n": len(a) + len(b), "detail": detail})
        if "crs_max_grade" in df.columns:
            corr = spearman(df, x=par, y="crs_max_grade")
            rows.append({"parameter": par, "versus": "crs_max_grade",
                         "test": corr.method if corr.rho is not None
                         else f"Spearman: {corr.method if corr.n >= 3 else 'n < 3'}",
                         "statistic": corr.rho, "p_value": corr.p_value, "n": corr.n,
                         "detail": corr.describe()})
    schema = {"parameter": pl.String, "versus": pl.String, "test": pl.String,
              "statistic": pl.Float64, "p_value": pl.Float64, "n": pl.Int64,
              "detail": pl.String}
    out = pl.DataFrame(rows, schema=schema)
    return out.with_columns(pl.col("statistic", "p_value").fill_nan(None))
