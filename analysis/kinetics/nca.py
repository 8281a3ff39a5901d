"""Non-compartmental parameters per patient and assay (Cmax, Tmax, AUC0-28 by linear-up/log-down
trapezoids, Tlast, fold expansion, detectability at the landmarks), with the BLQ policies and
the series cut at HSCT."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import polars as pl

from analysis.post_hsct import hsct_days
from analysis.registry import Option, derived_table
from analysis.rules import Rules, rules_for
from analysis.vocab import LANDMARKS

if TYPE_CHECKING:
    from data_loaders import Study
from analysis.kinetics.series import (
    ASSAYS,
    BLQ_POLICIES,
    SERIES_KEY,
    BlqPolicy,
    auc_column,
    kinetic_series,
    prepare_series,
)

__all__ = ["kinetic_parameters", "before_hsct", "kinetics_table"]


def _policy_value(policy: BlqPolicy) -> pl.Expr:
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
    first_q = pl.col("day").filter(qpost).min().over(SERIES_KEY)
    last_q = pl.col("day").filter(qpost).max().over(SERIES_KEY)
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
        *SERIES_KEY, "day", "conc")
    end = float(auc_end)
    # a window end between two samples gets an interpolated point
    before = (pts.filter(pl.col("day") <= end).group_by(SERIES_KEY)
              .agg(pl.col("day").last().alias("t1"), pl.col("conc").last().alias("c1")))
    after = (pts.filter(pl.col("day") > end).group_by(SERIES_KEY)
             .agg(pl.col("day").first().alias("t2"), pl.col("conc").first().alias("c2")))
    edge = (before.join(after, on=SERIES_KEY, how="inner").filter(pl.col("t1") < end)
            .select(*SERIES_KEY, pl.lit(end).alias("day"),
                    _log_interp(pl.col("t1").cast(pl.Float64), pl.col("c1"),
                                pl.col("t2").cast(pl.Float64), pl.col("c2"),
                                pl.lit(end)).alias("conc")))
    inside = pts.filter(pl.col("day") <= end).with_columns(pl.col("day").cast(pl.Float64))
    pts = pl.concat([inside, edge]).sort([*SERIES_KEY, "day"])
    # sorted by key: the previous row belongs to the same series unless the key changed
    same = (pl.col("subject_id") == pl.col("subject_id").shift(1)) & \
        (pl.col("assay") == pl.col("assay").shift(1))
    prev_t = pl.when(same).then(pl.col("day").shift(1))
    prev_c = pl.when(same).then(pl.col("conc").shift(1))
    c, dt = pl.col("conc"), pl.col("day") - prev_t
    log_down = (c < prev_c) & (c > 0) & (prev_c > 0)
    area = (pl.when(log_down).then((prev_c - c) / (prev_c / c).log() * dt)
            .otherwise((prev_c + c) / 2 * dt))
    return (pts.with_columns(area=area).group_by(SERIES_KEY)
            .agg(auc=pl.col("area").sum(), auc_points=pl.len(),
                 auc_start=pl.col("day").min(), auc_stop=pl.col("day").max()))


def kinetic_parameters(series: pl.DataFrame, *, auc_end: int = 28, blq_leading: BlqPolicy = "zero",
                       blq_middle: BlqPolicy = "drop", blq_trailing: BlqPolicy = "zero",
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
        s.group_by(SERIES_KEY, maintain_order=True).agg(
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
    imputed = out.filter(~pl.col("_day0") & (pl.col("_n_post") > 0)).select(SERIES_KEY)
    if auc_impute_day0 and imputed.height:
        zero = imputed.with_columns(day=pl.lit(0, pl.Int64), conc=pl.lit(0.0))
        s = pl.concat([s.select(*SERIES_KEY, "day", "conc"), zero.select(*SERIES_KEY, "day", "conc")])
    auc = _auc(s, auc_end)
    no_day0 = ~pl.col("_day0") & ~pl.lit(auc_impute_day0)
    out = out.join(auc, on=SERIES_KEY, how="left").with_columns(
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
    out = out.join(cut, on=SERIES_KEY, how="left").with_columns(
        pl.col("hsct_note").fill_null(""))
    return out.select(cols).with_columns(
        pl.col("tmax", "tlast").cast(pl.Int64), pl.col("n_samples", "n_blq").cast(pl.Int64),
    ).sort(SERIES_KEY)


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
             .group_by(SERIES_KEY).agg(pl.col("_hsct").first(), pl.col("_after").sum().alias("_n"))
             .select(*SERIES_KEY, pl.when(pl.col("_n") > 0)
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
def kinetics_table(study: Study, *, auc_end: int = 28, blq_leading: BlqPolicy = "zero",
                   blq_middle: BlqPolicy = "drop", blq_trailing: BlqPolicy = "zero",
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
