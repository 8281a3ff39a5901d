"""The assessment engine: severity and response category at each assessment day from the counts
nearest to it and the transfusions before it, vectorised (one candidate join for the counts,
one for the transfusions), every row with the rule that decided it."""

from __future__ import annotations

import polars as pl

from analysis.response.criteria import (
    COUNT_ANALYTES,
    CR_RULES,
    CRITERIA,
    NEGATED_OP,
    TI_PRODUCTS,
    compare_expr,
    fmt_number,
    join_texts,
    normal_hgb,
    threshold_expr,
)
from analysis.rules import DEFAULT_RULES, Rules
from analysis.support import mark_supported
from analysis.vocab import (
    CR,
    NR,
    PR,
    is_blood,
)

__all__ = ["assess_responses"]


def _counts_at(measurements: pl.DataFrame, points: pl.DataFrame, window: int, *,
               support: pl.DataFrame | None = None, tie: str = "earlier") -> pl.DataFrame:
    """For each (subject_id, day) of `points` and each count: the value nearest the day within
    +/- window days, preferring an unsupported count (see analysis/support.py) to a nearer
    supported one; ties go to the earlier (or later) day. Adds <count>, <count>_day,
    <count>_supported and <count>_support (what held it up) for ANC, HGB, PLT and RETIC."""
    # only days that can fall in some window: keeps the de-duplicating group_by small
    near = sorted({d + k for d in points.get_column("day").unique().to_list()
                   for k in range(-window, window + 1)})
    cbc = measurements.filter(pl.col("analyte").is_in(COUNT_ANALYTES) & pl.col("value").is_not_null()
                              & pl.col("day").is_in(near))
    if "tissue" in cbc.columns:
        cbc = cbc.filter(is_blood())
    cbc = (cbc.group_by("subject_id", "analyte", "day")
           .agg(pl.col("value").mean())
           .with_columns(pl.col("day").cast(pl.Int64)))
    cbc = mark_supported(cbc, support)
    # each point with every day of its window, joined on (patient, day): no cross product
    keys = (points.select("subject_id", "day").unique()
            .with_columns(pl.int_ranges(pl.col("day") - window, pl.col("day") + window + 1)
                          .alias("_mday")).explode("_mday"))
    cand = (keys.join(cbc.rename({"day": "_mday"}), on=["subject_id", "_mday"], how="inner")
            .with_columns((pl.col("_mday") - pl.col("day")).abs().alias("_dist"))
            .sort("supported", "_dist", "_mday", descending=[False, False, tie == "later"])
            .group_by("subject_id", "day", "analyte", maintain_order=True).first())
    out = points
    for a in COUNT_ANALYTES:
        c = a.lower()
        right = cand.filter(pl.col("analyte") == a).select(
            "subject_id", "day", pl.col("value").alias(c), pl.col("_mday").alias(f"{c}_day"),
            pl.col("supported").alias(f"{c}_supported"), pl.col("support").alias(f"{c}_support"))
        out = out.join(right, on=["subject_id", "day"], how="left")
    return out.sort("day")


def _transfusions_at(points: pl.DataFrame, tx: pl.DataFrame | None, window: int
                     ) -> pl.DataFrame:
    """Per point: RBC / PLT transfusions in (day - window, day] and the last one up to day."""
    keys = points.select("subject_id", "day").unique()
    schema = {"rbc_transfusions": pl.UInt32, "plt_transfusions": pl.UInt32,
              "other_transfusions": pl.UInt32, "unspecified_transfusions": pl.UInt32,
              "last_transfusion_day": pl.Int64}
    if tx is None:
        return keys.with_columns([pl.lit(None, dtype=t).alias(c) for c, t in schema.items()])
    t = tx.select("subject_id", pl.col("day").cast(pl.Int64).alias("_tx"), "product")
    inside = pl.col("_tx") > pl.col("day") - window
    agg = (keys.join(t, on="subject_id", how="inner")
           .filter(pl.col("_tx") <= pl.col("day"))
           .group_by("subject_id", "day")
           .agg(*[(inside & (pl.col("product") == p)).sum().alias(f"{p.lower()}_transfusions")
                  for p in ("RBC", "PLT", "OTHER", "UNSPECIFIED")],
                pl.col("_tx").filter(pl.col("product").is_in(list(TI_PRODUCTS))).max()
                .alias("last_transfusion_day")))
    return keys.join(agg, on=["subject_id", "day"], how="left").with_columns(
        [pl.col(c).fill_null(0) for c in schema if c.endswith("_transfusions")])


def _sup(a: str) -> pl.Expr:
    return pl.col(f"{a.lower()}_supported").fill_null(False)


def _shown(a: str) -> pl.Expr:
    """"PLT 24" or, when the count is from another day than the assessment, "PLT 24 (day 30)"."""
    c = a.lower()
    return pl.concat_str(
        pl.lit(f"{a} "), fmt_number(pl.col(c)),
        pl.when(pl.col(f"{c}_day") != pl.col("day"))
        .then(pl.format(" (day {})", pl.col(f"{c}_day"))).otherwise(pl.lit("")))


def _text(col: str, op: str, t: float | pl.Expr) -> pl.Expr:
    return pl.concat_str(_shown(col), pl.lit(f" {op} "), threshold_expr(t))


def _supported_text(a: str) -> pl.Expr:
    return pl.concat_str(_shown(a), pl.lit(" supported"))


def assess_responses(measurements: pl.DataFrame, assessments: pl.DataFrame, *,
                     transfusions: pl.DataFrame | None = None, criteria: str = "NIH",
                     rules: Rules | None = None, ti_window: int | None = None,
                     value_window: int | None = None, retic_threshold: float | None = None,
                     support: pl.DataFrame | None = None, baseline: pl.DataFrame | None = None
                     ) -> pl.DataFrame:
    """The response category at each assessment and the rule that decided it.

    measurements: subject_id, day, analyte, value (ANC, PLT, RETIC in 10^9/L; HGB in g/L).
    assessments: subject_id, day, optionally sex (BSH CR, HGB LLN) and ne_reason (forces NE).
    transfusions: subject_id, day, product (RBC/PLT); None = not recorded (BSH PR then is NE).
    rules: the settings (default DEFAULT_RULES); ti_window, value_window (= count_window) and
    retic_threshold override them when given.
    support: supported days per count (analysis.support.support_intervals); None = none. When
    not given but transfusions are, platelet and red-cell support come from `transfusions`.
    baseline: subject_id, severity, anc, plt, hgb, transfusion_dependent (analysis.baseline);
    None = every patient is taken as severe at baseline.

    Returns subject_id, day, category (CR/PR/NR/NE), rule, criteria, anc, hgb, plt, retic
    (the counts used), their days and supported flags, severe, rbc_transfusions,
    plt_transfusions (in the window), last_transfusion_day, transfusion_independent.
    """
    criteria = criteria.upper()
    if criteria not in CRITERIA:
        raise ValueError(f"criteria must be one of {', '.join(CRITERIA)}, got {criteria!r}")
    rules = rules if rules is not None else DEFAULT_RULES
    ti_window = rules.ti_window if ti_window is None else ti_window
    value_window = rules.count_window if value_window is None else value_window
    retic_threshold = rules.retic_threshold if retic_threshold is None else retic_threshold
    if support is None and transfusions is not None:
        from analysis.support import support_intervals

        support = support_intervals(pl.DataFrame(schema={"subject_id": pl.String,
                                                          "day": pl.Int64,
                                                          "category": pl.String}),
                                    rules=rules, transfusions=transfusions)
    pts = assessments
    for col, dtype in (("sex", pl.String), ("ne_reason", pl.String)):
        if col not in pts.columns:
            pts = pts.with_columns(pl.lit(None, dtype=dtype).alias(col))
    pts = pts.select("subject_id", pl.col("day").cast(pl.Int64), "sex", "ne_reason") \
        .unique(["subject_id", "day"], keep="first")
    df = _counts_at(measurements, pts, value_window, support=support, tie=rules.count_tie) \
        .join(_transfusions_at(pts, transfusions, ti_window), on=["subject_id", "day"],
              how="left")
    bcols = {"severity": pl.String, "anc": pl.Float64, "plt": pl.Float64, "hgb": pl.Float64,
             "transfusion_dependent": pl.Boolean}
    if baseline is not None:
        b = baseline.select("subject_id", *[pl.col(c).cast(t).alias(f"b_{c}")
                                            for c, t in bcols.items()])
        df = df.join(b, on="subject_id", how="left")
    else:
        df = df.with_columns(pl.lit("SAA").alias("b_severity"),
                             *[pl.lit(None, dtype=t).alias(f"b_{c}") for c, t in bcols.items()
                               if c != "severity"])

    # severity: a supported count is never "recovered" (counted on the severe side)
    sev_rules = (("ANC", "<", rules.severe_anc), ("PLT", "<", rules.severe_plt),
                 ("RETIC", "<", float(retic_threshold)))
    sev = [compare_expr(a, op, t) | _sup(a) for a, op, t in sev_rules]
    met = pl.sum_horizontal([s.fill_null(False).cast(pl.Int8) for s in sev])
    unknown = pl.sum_horizontal([s.is_null().cast(pl.Int8) for s in sev])
    sev_list = join_texts([pl.when(_sup(a) & ~compare_expr(a, op, t).fill_null(False))
                      .then(_supported_text(a)).when(s).then(_text(a, op, t))
                      for s, (a, op, t) in zip(sev, sev_rules, strict=True)])
    ok_list = join_texts([pl.when(~s).then(_text(a, NEGATED_OP[op], t))
                     for s, (a, op, t) in zip(sev, sev_rules, strict=True)])
    missing_sev = join_texts([pl.when(s.is_null()).then(pl.lit(a)) for s, (a, _, _) in
                         zip(sev, sev_rules, strict=True)])

    hgb_normal = normal_hgb(rules)
    cr_rules = [(a, op, hgb_normal if t is None else t) for a, op, t in CR_RULES[criteria]]
    crs = [compare_expr(a, op, t) & ~_sup(a) for a, op, t in cr_rules]
    cr_met = pl.all_horizontal([c.fill_null(False) for c in crs])
    cr_failed = pl.any_horizontal([(~c).fill_null(False) for c in crs])
    cr_list = join_texts([_text(a, op, t) for a, op, t in cr_rules])
    cr_fail_list = join_texts([pl.when(_sup(a) & compare_expr(a, op, t).fill_null(False))
                          .then(_supported_text(a)).when(~c).then(_text(a, NEGATED_OP[op], t))
                          for c, (a, op, t) in zip(crs, cr_rules, strict=True)])
    cr_missing = join_texts([pl.when(c.is_null()).then(pl.lit(a)) for c, (a, _, _) in
                        zip(crs, cr_rules, strict=True)])
    support_list = join_texts([pl.when(_sup(a)).then(pl.concat_str(
        _shown(a), pl.lit(" ("), pl.col(f"{a.lower()}_support"), pl.lit(")")))
        for a in ("ANC", "HGB", "PLT")])
    support_text = pl.when(support_list != "").then(pl.concat_str(
        pl.lit("; supported, so not counted as met: "), support_list)).otherwise(pl.lit(""))

    # transfusion independence is about red cells and platelets (plasma etc. do not count)
    # (an unspecified product counts: in aplastic anaemia it is red cells or platelets)
    n_tx = pl.col("rbc_transfusions") + pl.col("plt_transfusions") \
        + pl.col("unspecified_transfusions")
    ti = n_tx == 0                               # null when transfusions are not recorded
    unspec = pl.when(pl.col("unspecified_transfusions") > 0).then(pl.format(
        ", product not recorded {}", "unspecified_transfusions")).otherwise(pl.lit(""))
    tx_text = (
        pl.when(n_tx.is_null()).then(pl.lit("; transfusions not recorded"))
        .when(n_tx > 0).then(pl.format(
            "; {} transfusion(s) in the {}-d window (RBC {}, PLT {}{}; last on day {})",
            n_tx, pl.lit(ti_window), "rbc_transfusions", "plt_transfusions", unspec,
            "last_transfusion_day"))
        .when(pl.col("last_transfusion_day").is_null())
        .then(pl.lit("; no transfusion up to this day"))
        .otherwise(pl.format("; transfusion-free {} d",
                             pl.col("day") - pl.col("last_transfusion_day"))))

    # PR for a patient not severe at baseline (BSH non-severe rule)
    b_sev = pl.col("b_severity")
    base_nonsevere = b_sev == "NSAA"
    base_unknown = b_sev.is_null() | (b_sev == "NE")
    lln = {"ANC": pl.lit(rules.lln_anc), "PLT": pl.lit(rules.lln_plt), "HGB": hgb_normal}
    incr = {"ANC": (0.5, 0.5), "PLT": (20.0, 20.0), "HGB": (60.0, 30.0)}
    ns_parts, ns_known = [], []
    for a in ("ANC", "PLT", "HGB"):
        v, b, ok = pl.col(a.lower()), pl.col(f"b_{a.lower()}"), ~_sup(a)
        below, step = incr[a]
        doubled = (b > 0) & (v >= 2 * b) & ok
        normal = (b < lln[a]) & (v >= lln[a]) & ok
        raised = (b < below) & (v - b > step) & ok
        bt = fmt_number(b)
        ns_parts += [
            pl.when(doubled.fill_null(False)).then(pl.concat_str(
                _shown(a), pl.lit(" >= 2 x baseline "), bt)),
            pl.when(normal.fill_null(False)).then(pl.concat_str(
                _shown(a), pl.lit(" normal (>= "), threshold_expr(lln[a]), pl.lit(") from "), bt)),
            pl.when(raised.fill_null(False)).then(pl.concat_str(
                _shown(a), pl.lit(" > baseline "), bt, pl.lit(f" + {step:g}")))]
        ns_known.append(pl.any_horizontal(doubled, normal, raised))
    ti_gain = (pl.col("b_transfusion_dependent") & ti).fill_null(False)
    ns_parts.append(pl.when(ti_gain).then(pl.lit(
        "transfusion independent (dependent at baseline)")))
    ns_reason = join_texts(ns_parts)
    ns_any = ti_gain | pl.any_horizontal([k.fill_null(False) for k in ns_known])
    ns_none = ~ns_any & pl.all_horizontal([k.is_not_null() for k in ns_known])
    vs_base = join_texts([pl.when(pl.col(a.lower()).is_not_null()).then(pl.concat_str(
        _shown(a), pl.lit(" vs "), fmt_number(pl.col(f"b_{a.lower()}")).fill_null("-")))
        for a in ("ANC", "PLT", "HGB")])
    nonsevere_rule = "bsh" if rules.nonsevere_pr == "bsh" else "ne"

    no_counts = pl.all_horizontal([pl.col(a.lower()).is_null() for a in COUNT_ANALYTES])
    severe = met >= 2
    not_severe = (met + unknown) < 2
    very = pl.when(pl.col("anc") < rules.very_severe_anc).then(pl.lit("very ")) \
        .otherwise(pl.lit(""))
    ns_text = pl.concat_str(pl.lit("no longer severe ("), ok_list, pl.lit(")"))
    still = pl.when(base_nonsevere).then(pl.lit("now ")).otherwise(pl.lit("still "))

    pr_ok = pl.lit(True) if criteria == "NIH" else ti   # BSH PR needs transfusion independence
    cat = (
        pl.when(pl.col("ne_reason").is_not_null()).then(pl.lit("NE"))
        .when(no_counts).then(pl.lit("NE"))
        .when(cr_met).then(pl.lit(CR))
        .when(severe).then(pl.lit(NR))
        .when(base_nonsevere & pl.lit(nonsevere_rule == "ne")).then(pl.lit("NE"))
        .when(base_nonsevere & ns_any).then(pl.lit(PR))
        .when(base_nonsevere & ns_none).then(pl.lit(NR))
        .when(base_nonsevere).then(pl.lit("NE"))
        .when(base_unknown & not_severe).then(pl.lit("NE"))
        .when(not_severe & pr_ok.is_null()).then(pl.lit("NE"))
        .when(not_severe & ~pr_ok.fill_null(True)).then(pl.lit(NR))
        .when(not_severe & cr_failed).then(pl.lit(PR))
        .otherwise(pl.lit("NE"))
    )
    rule = (
        pl.when(pl.col("ne_reason").is_not_null())
        .then(pl.concat_str(pl.lit("NE: "), pl.col("ne_reason")))
        .when(no_counts).then(pl.format("NE: no ANC, HGB, PLT or RETIC within +/-{} d of day {}",
                                        pl.lit(value_window), pl.col("day")))
        .when(cr_met).then(pl.concat_str(pl.lit("CR: "), cr_list, tx_text))
        .when(severe).then(pl.concat_str(pl.lit("NR: "), still, very, pl.lit("severe ("),
                                         sev_list, pl.lit(")"), tx_text))
        .when(base_nonsevere & pl.lit(nonsevere_rule == "ne")).then(pl.concat_str(
            pl.lit("NE: not severe at baseline (NSAA), and PR for a non-severe baseline is "
                   "set to not evaluable (nonsevere_pr = \"ne\"); not CR ("), cr_fail_list,
            pl.lit(")")))
        .when(base_nonsevere & ns_any).then(pl.concat_str(
            pl.lit("PR (non-severe baseline, BSH rule): "), ns_reason, pl.lit("; not CR ("),
            cr_fail_list, pl.lit(")"), tx_text))
        .when(base_nonsevere & ns_none).then(pl.concat_str(
            pl.lit("NR: not severe at baseline (NSAA) and no lineage doubled, normalised or "
                   "raised enough, no transfusion independence gained ("), vs_base,
            pl.lit(" at baseline)"), tx_text))
        .when(base_nonsevere).then(pl.concat_str(
            pl.lit("NE: not severe at baseline (NSAA); the BSH non-severe PR rule needs ANC, "
                   "PLT and HGB here and at baseline ("), vs_base, pl.lit(")")))
        .when(base_unknown & not_severe).then(pl.concat_str(
            pl.lit("NE: "), ns_text, pl.lit(", but baseline severity is not evaluable (no "
                                            "baseline counts before lymphodepletion), so PR "
                                            "cannot be judged")))
        .when(not_severe & pr_ok.is_null()).then(pl.concat_str(
            pl.lit("NE: "), ns_text,
            pl.lit(", but transfusions are not recorded (BSH PR needs transfusion independence)")))
        .when(not_severe & ~pr_ok.fill_null(True)).then(pl.concat_str(
            pl.lit("NR: "), ns_text, pl.lit(" but not transfusion independent"), tx_text))
        .when(not_severe & cr_failed).then(pl.concat_str(
            pl.lit("PR: "), ns_text, pl.lit("; not CR ("), cr_fail_list, pl.lit(")"), tx_text))
        .when(not_severe).then(pl.concat_str(
            pl.lit("NE: "), ns_text, pl.lit("; CR cannot be judged ("), cr_missing,
            pl.lit(" missing)")))
        .otherwise(pl.concat_str(
            pl.lit("NE: severity cannot be judged ("), missing_sev, pl.lit(" missing"),
            pl.when(met > 0).then(pl.concat_str(pl.lit("; "), sev_list)).otherwise(pl.lit("")),
            pl.lit(")")))
    )
    decided = pl.col("ne_reason").is_null() & ~no_counts
    # sex not recorded: where the two normal haemoglobins disagree, say which one was used
    sex_known = pl.col("sex").cast(pl.String).str.to_uppercase().str.slice(0, 1).is_in(["M", "F"])
    hgb_between = ((pl.col("hgb") >= rules.lln_hgb_female) & (pl.col("hgb") < rules.lln_hgb_male))
    uses_normal = pl.lit(criteria == "BSH") | base_nonsevere
    sex_text = pl.when(decided & ~sex_known.fill_null(False) & hgb_between.fill_null(False)
                       & uses_normal.fill_null(False)).then(pl.lit(
        f"; sex not recorded: HGB judged against the male normal ({rules.lln_hgb_male:g} g/L; "
        f"{rules.lln_hgb_female:g} for women)")).otherwise(pl.lit(""))
    return df.select(
        "subject_id", "day", cat.alias("category"),
        pl.concat_str(rule, pl.when(decided).then(support_text).otherwise(pl.lit("")),
                      sex_text).alias("rule"),
        pl.lit(criteria).alias("criteria"), "anc", "hgb", "plt", "retic",
        pl.when(severe).then(True).when(not_severe).then(False).alias("severe"),
        "rbc_transfusions", "plt_transfusions", "last_transfusion_day",
        ti.alias("transfusion_independent"),
        *[f"{a.lower()}_day" for a in COUNT_ANALYTES],
        *[_sup(a).alias(f"{a.lower()}_supported") for a in ("ANC", "HGB", "PLT")],
    ).sort("subject_id", "day")
