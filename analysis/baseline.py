"""Baseline per patient: the counts before lymphodepletion and the severity they give.

Baseline (DESIGN.md section 3) is, for each of ANC, PLT, RETIC and HGB, the last blood value
before lymphodepletion starts within the screening window (`screening_window` days;
`baseline_on_ld_day` decides whether a sample from the first lymphodepletion day counts).
Fludarabine and cyclophosphamide lower every count within days, so a count taken after
lymphodepletion started is never baseline. Without a recorded lymphodepletion the reference is
the infusion: the last counts up to day 0 (day-0 samples are drawn before the infusion).

Severity, modified Camitta (Camitta et al., Blood 1976;48:63; Bacigalupo et al., Br J Haematol
1988;70:177; BSH, Killick et al., Br J Haematol 2016;172:187): the marrow criterion is
cellularity < 25%, or 25-50% with < 30% residual haematopoietic cells
(`patients.marrow_residual_pct`); with it, at least two of ANC < `severe_anc`, PLT <
`severe_plt` and RETIC < `retic_threshold` make SAA, and ANC < `very_severe_anc` as well makes
vSAA; otherwise NSAA. Without a recorded cellularity the counts decide and the rule text says
so; cellularity 25-50% without a residual percentage leaves severity NE. The recorded
diagnosis is shown beside the derived severity with whether they agree.

A baseline ANC or PLT within a support window (analysis/support.py: after a platelet
transfusion, during or after G-CSF) cannot show the count above the severe level: it counts on
the severe side, and the rule text names it (transfusion-dependent thrombocytopenia is
severe). `transfusion_dependent`: any RBC or platelet transfusion in the `ti_window` days before the
reference day (null when transfusions are not recorded), for the BSH non-severe PR rule.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import polars as pl

from analysis.registry import derived_table
from analysis.rules import Rules, rules_for
from analysis.vocab import is_blood

if TYPE_CHECKING:
    from data_loaders import Study

__all__ = ["BASELINE_COUNTS", "reference_days", "baseline_values", "baseline",
           "severity_expr"]

BASELINE_COUNTS = ("ANC", "PLT", "RETIC", "HGB")


def _fmt(x: pl.Expr) -> pl.Expr:
    return (pl.when(x == x.round(0)).then(x.cast(pl.Int64).cast(pl.String))
            .otherwise(x.round(2).cast(pl.String)))


def reference_days(study: Study, *, rules: Rules | None = None) -> pl.DataFrame:
    """subject_id, reference_day (first lymphodepletion day, else 0), first_day, last_day
    (the days baseline counts may come from), reference (text)."""
    rules = rules if rules is not None else rules_for(study)
    ld = (study.events.filter(pl.col("category").str.to_lowercase() == "lymphodepletion")
          .group_by("subject_id").agg(pl.col("day").min().cast(pl.Int64).alias("_ld")))
    df = study.patients.select("subject_id").join(ld, on="subject_id", how="left")
    has_ld = pl.col("_ld").is_not_null()
    ref = pl.coalesce("_ld", pl.lit(0, dtype=pl.Int64))
    last = pl.when(has_ld & pl.lit(not rules.baseline_on_ld_day)).then(ref - 1).otherwise(ref)
    return df.select(
        "subject_id", ref.alias("reference_day"),
        (ref - rules.screening_window).alias("first_day"), last.alias("last_day"),
        pl.when(has_ld).then(pl.format(
            "last counts before lymphodepletion (starts day {}), within {} d", ref,
            pl.lit(rules.screening_window)))
        .otherwise(pl.format("no lymphodepletion recorded: last counts up to day 0, within {} d",
                             pl.lit(rules.screening_window))).alias("reference"))


def baseline_values(measurements: pl.DataFrame, refs: pl.DataFrame, *,
                    analytes: tuple[str, ...] = BASELINE_COUNTS) -> pl.DataFrame:
    """subject_id, analyte, value, day: the last blood value of each analyte inside each
    patient's [first_day, last_day] (same-day values averaged)."""
    m = measurements.filter(pl.col("analyte").is_in(list(analytes))
                            & pl.col("value").is_not_null())
    if "tissue" in m.columns:
        m = m.filter(is_blood())
    m = (m.select("subject_id", "analyte", pl.col("day").cast(pl.Int64), "value")
         .join(refs.select("subject_id", "first_day", "last_day"), on="subject_id")
         .filter((pl.col("day") >= pl.col("first_day")) & (pl.col("day") <= pl.col("last_day"))))
    return (m.group_by("subject_id", "analyte", "day").agg(pl.col("value").mean())
            .sort("day").group_by("subject_id", "analyte", maintain_order=True).last()
            .select("subject_id", "analyte", "value", "day"))


def severity_expr(*, rules: Rules, anc: str = "anc", plt: str = "plt", retic: str = "retic",
                  supported: bool = False) -> tuple[pl.Expr, pl.Expr]:
    """(number of count criteria met, number unknown) for modified Camitta. With `supported`,
    an ANC or PLT flagged in `<name>_supported` counts on the severe side."""
    def sup(c: str) -> pl.Expr:
        return pl.col(f"{c}_supported").fill_null(False) if supported else pl.lit(False)

    sev = [(pl.col(anc) < rules.severe_anc) | sup(anc), (pl.col(plt) < rules.severe_plt) | sup(plt),
           pl.col(retic) < rules.retic_threshold]
    return (pl.sum_horizontal([s.fill_null(False).cast(pl.Int8) for s in sev]),
            pl.sum_horizontal([s.is_null().cast(pl.Int8) for s in sev]))


@derived_table("baseline", "Baseline counts before lymphodepletion (with their days), marrow, "
               "derived severity vs recorded diagnosis, per patient")
def baseline(study: Study, *, rules: Rules | None = None) -> pl.DataFrame:
    """One row per patient: subject_id, reference_day, anc, anc_day, plt, plt_day, retic,
    retic_day, hgb, hgb_day, cellularity, residual_pct, severity (vSAA/SAA/NSAA/NE),
    diagnosis, agrees, transfusion_dependent, anc_supported, plt_supported, hgb_supported,
    rule."""
    from analysis.response import transfusion_events
    from analysis.support import mark_supported, support_intervals

    rules = rules if rules is not None else rules_for(study)
    refs = reference_days(study, rules=rules)
    tx = transfusion_events(study.events)
    vals = mark_supported(baseline_values(study.measurements, refs),
                          support_intervals(study.events, rules=rules, transfusions=tx))
    df = refs
    for a in BASELINE_COUNTS:
        c = a.lower()
        v = vals.filter(pl.col("analyte") == a).select(
            "subject_id", pl.col("value").alias(c), pl.col("day").alias(f"{c}_day"),
            pl.col("supported").alias(f"{c}_supported"), pl.col("support").alias(f"{c}_support"))
        df = df.join(v, on="subject_id", how="left")
    pts = study.patients
    cols = [pl.col("subject_id")]
    for name in ("marrow_cellularity_pct", "marrow_residual_pct", "diagnosis"):
        cols.append(pl.col(name) if name in pts.columns else pl.lit(None).alias(name))
    df = df.join(pts.select(cols).with_columns(
        pl.col("marrow_cellularity_pct").cast(pl.Float64).alias("cellularity"),
        pl.col("marrow_residual_pct").cast(pl.Float64).alias("residual_pct"),
        pl.col("diagnosis").cast(pl.String)), on="subject_id", how="left")

    if tx is None:
        df = df.with_columns(pl.lit(None, dtype=pl.Boolean).alias("transfusion_dependent"))
    else:
        from analysis.response import TI_PRODUCTS

        before = (tx.filter(pl.col("product").is_in(list(TI_PRODUCTS)))
                  .join(refs.select("subject_id", "reference_day"), on="subject_id")
                  .filter((pl.col("day") < pl.col("reference_day"))
                          & (pl.col("day") >= pl.col("reference_day") - rules.ti_window))
                  .group_by("subject_id").agg(pl.len().alias("_n_tx")))
        df = df.join(before, on="subject_id", how="left").with_columns(
            (pl.col("_n_tx").fill_null(0) > 0).alias("transfusion_dependent"))

    cell, resid = pl.col("cellularity"), pl.col("residual_pct")
    marrow_ok = (pl.when(cell.is_null()).then(pl.lit(True))
                 .when(cell < 25).then(pl.lit(True))
                 .when(cell <= 50).then(resid < 30)
                 .otherwise(pl.lit(False)))
    marrow_txt = (
        pl.when(cell.is_null()).then(pl.lit("marrow cellularity not recorded: counts only"))
        .when(cell < 25).then(pl.format("marrow cellularity {}% (< 25%)", _fmt(cell)))
        .when((cell <= 50) & resid.is_null()).then(pl.format(
            "marrow cellularity {}% (25-50%) but residual haematopoietic cells not recorded",
            _fmt(cell)))
        .when(cell <= 50).then(pl.format(
            "marrow cellularity {}% with {}% residual haematopoietic cells ({} 30%)",
            _fmt(cell), _fmt(resid), pl.when(resid < 30).then(pl.lit("<"))
            .otherwise(pl.lit(">="))))
        .otherwise(pl.format("marrow cellularity {}% (> 50%)", _fmt(cell))))
    # a transfusion- or G-CSF-supported count does not show a count above the severe level
    met, unknown = severity_expr(rules=rules, supported=True)
    severe = (met >= 2) & marrow_ok.fill_null(False)
    severity = (pl.when(severe & (pl.col("anc") < rules.very_severe_anc)).then(pl.lit("vSAA"))
                .when(severe).then(pl.lit("SAA"))
                .when((marrow_ok == False) | ((met + unknown) < 2))  # noqa: E712 - null = unknown
                .then(pl.lit("NSAA"))
                .otherwise(pl.lit("NE")))

    def shown(a: str) -> pl.Expr:
        c = a.lower()
        sup = pl.when(pl.col(f"{c}_supported").fill_null(False)).then(pl.format(
            ", supported: {}", pl.col(f"{c}_support"))).otherwise(pl.lit(""))
        return (pl.when(pl.col(c).is_null()).then(pl.lit(f"{a} -"))
                .otherwise(pl.format(f"{a} {{}} (day {{}}{{}})", _fmt(pl.col(c)),
                                     pl.col(f"{c}_day"), sup)))

    recorded = pl.col("diagnosis").str.strip_chars().str.to_uppercase()
    derived_up = severity.str.to_uppercase()
    agrees = (pl.when(recorded.is_in(["VSAA", "SAA", "NSAA"]) & (severity != "NE"))
              .then(recorded == derived_up).otherwise(None))
    return df.select(
        "subject_id", "reference_day", "anc", "anc_day", "plt", "plt_day", "retic",
        "retic_day", "hgb", "hgb_day", "cellularity", "residual_pct",
        severity.alias("severity"), "diagnosis", agrees.alias("agrees"),
        "transfusion_dependent",
        *[pl.col(f"{c}_supported").fill_null(False) for c in ("anc", "plt", "hgb")],
        pl.concat_str(severity, pl.lit(": "), shown("ANC"), pl.lit(", "), shown("PLT"),
                      pl.lit(", "), shown("RETIC"), pl.lit(f" (severe: ANC < {rules.severe_anc:g}"
                                                            f", PLT < {rules.severe_plt:g}, "
                                                            f"RETIC < {rules.retic_threshold:g})"
                                                            "; "),
                      shown("HGB"), pl.lit(" (not a criterion); "),
                      marrow_txt, pl.lit("; "), pl.col("reference")).alias("rule"),
    ).sort("subject_id")
