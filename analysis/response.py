"""SAA severity and haematological response at each assessment day, derived from blood counts.

Rules (DESIGN.md section 3), every one a keyword option so a study can state its own:

- Severity, modified Camitta (Camitta 1976; Bacigalupo 1988; BSH, Killick et al. 2016): severe
  when at least two of ANC < 0.5, PLT < 20 and RETIC < 60 x10^9/L (automated count; the classic
  manual threshold is 20, `retic_threshold=20`); very severe when ANC < 0.2 as well. Baseline
  severity also needs marrow cellularity < 25% when `patients.marrow_cellularity_pct` is given.
- NIH (Townsley et al., N Engl J Med 2017;376:1540): CR = ANC >= 1.0, HGB >= 100 g/L and
  PLT >= 100; PR = counts no longer meet the severe criteria, not CR; NR = still severe.
- BSH / Camitta (Killick et al., Br J Haematol 2016;172:187): CR = HGB normal for sex (>= 130 g/L
  men, >= 120 g/L women; 130 when sex is unknown), ANC > 1.5 and PLT > 150; PR = transfusion
  independent and no longer severe; NR = still severe, or not transfusion independent.

Transfusion independence = no RBC or platelet transfusion in the `ti_window` days up to and
including the assessment day (default 56). Each count is the value nearest to the assessment
day within +/- `value_window` days (default 7; the day itself when measured, so a count taken
a week later never overrides the assessment-day count); repeated values on one day are averaged. Assessments after an HSCT are "NE" (the response is no longer the CAR-T's). A missing
count makes the category NE only when the decision needs it. Every row carries the rule that
decided it, e.g. "PR: no longer severe (ANC 0.9 >= 0.5, PLT 31 >= 20); not CR (HGB 85 < 100);
transfusion-free 63 d".

The engine is vectorised: one `join_asof` per count and one join for the transfusions.
"""

from __future__ import annotations

from collections.abc import Iterable

import polars as pl

from analysis.registry import Option, derived_table
from analysis.rules import Rules, rules_for

__all__ = ["CRITERIA", "LANDMARKS", "CATEGORIES", "assessment_days", "assess_responses",
           "derived_responses", "best_of", "best_response", "compare_recorded",
           "response_comparison", "baseline_severity", "transfusion_events", "parse_days",
           "reference_lines", "label_timepoints"]

CRITERIA = ("NIH", "BSH")
# Conventional landmarks: D28, M3, M6, M12 (days after infusion).
LANDMARKS: dict[str, int] = {"D28": 28, "M3": 90, "M6": 180, "M12": 365}
CATEGORIES = ("CR", "PR", "NR", "NE")
_RANK = {"CR": 3, "PR": 2, "NR": 1, "NE": 0}
_COUNTS = ("ANC", "HGB", "PLT", "RETIC")

_SEVERE = {"ANC": 0.5, "PLT": 20.0}   # plus RETIC < retic_threshold
_VERY_SEVERE_ANC = 0.2
# (analyte, operator, threshold); HGB for BSH is sex-specific (see _hgb_normal)
_CR = {
    "NIH": (("ANC", ">=", 1.0), ("HGB", ">=", 100.0), ("PLT", ">=", 100.0)),
    "BSH": (("ANC", ">", 1.5), ("HGB", ">=", None), ("PLT", ">", 150.0)),
}
_HGB_NORMAL = {"M": 130.0, "F": 120.0}
_HGB_NORMAL_UNKNOWN = 130.0

_OPS = {">=": "__ge__", ">": "__gt__", "<": "__lt__", "<=": "__le__"}
_NEGATE = {">=": "<", ">": "<=", "<": ">=", "<=": ">"}


# ---- small expression helpers ---------------------------------------------------------------
def _fmt(x: pl.Expr) -> pl.Expr:
    """A count as short text: 31 (not 31.0), 0.9, 0.42."""
    return (pl.when(x == x.round(0)).then(x.cast(pl.Int64).cast(pl.String))
            .otherwise(x.round(2).cast(pl.String)))


def _thr(t: float | pl.Expr) -> pl.Expr:
    return _fmt(t) if isinstance(t, pl.Expr) else pl.lit(f"{t:g}")


def _cmp(col: str, op: str, t: float | pl.Expr) -> pl.Expr:
    """col op t, null when the count is missing."""
    rhs = t if isinstance(t, pl.Expr) else pl.lit(t)
    return getattr(pl.col(col.lower()), _OPS[op])(rhs)


def _text(col: str, op: str, t: float | pl.Expr) -> pl.Expr:
    return pl.concat_str(pl.lit(f"{col} "), _fmt(pl.col(col.lower())), pl.lit(f" {op} "),
                         _thr(t))


def _join(parts: list[pl.Expr]) -> pl.Expr:
    return pl.concat_str(parts, separator=", ", ignore_nulls=True)


def _hgb_normal() -> pl.Expr:
    sex = pl.col("sex").cast(pl.String).str.to_uppercase().str.slice(0, 1)
    return sex.replace_strict(_HGB_NORMAL, default=_HGB_NORMAL_UNKNOWN, return_dtype=pl.Float64)


def parse_days(days: str | Iterable[int] | None) -> tuple[int, ...] | None:
    """"28,90" or [28, 90] -> (28, 90); None or "" -> None."""
    if days is None:
        return None
    if isinstance(days, str):
        items = [d.strip() for d in days.replace(";", ",").split(",") if d.strip()]
        try:
            return tuple(sorted({int(d) for d in items})) or None
        except ValueError as err:
            raise ValueError(f"assessment days must be whole numbers, got {days!r}") from err
    return tuple(sorted({int(d) for d in days})) or None


def reference_lines(*, criteria: str = "NIH", retic_threshold: float = 60.0
                    ) -> dict[str, list[tuple[float, str]]]:
    """analyte -> [(threshold, label)] that the criteria use, for reference lines on plots."""
    sev = [("ANC", _SEVERE["ANC"], "severe <0.5"), ("PLT", _SEVERE["PLT"], "severe <20"),
           ("RETIC", float(retic_threshold), f"severe <{retic_threshold:g}")]
    out: dict[str, list[tuple[float, str]]] = {a: [(t, lab)] for a, t, lab in sev}
    out["ANC"].append((_VERY_SEVERE_ANC, "very severe <0.2"))
    name = criteria.upper()
    for a, op, t in _CR.get(name, _CR["NIH"]):
        if t is None:   # BSH haemoglobin: normal for sex
            out.setdefault(a, []).extend([(_HGB_NORMAL["F"], f"{name} CR (women) >=120"),
                                          (_HGB_NORMAL["M"], f"{name} CR (men) >=130")])
        else:
            out.setdefault(a, []).append((t, f"{name} CR {op}{t:g}"))
    return out


# ---- inputs from a study --------------------------------------------------------------------
def transfusion_events(events: pl.DataFrame) -> pl.DataFrame | None:
    """subject_id, day, product (RBC, PLT or OTHER) of every transfusion; None when the events
    table records no transfusion at all (transfusion status then is unknown, not "none")."""
    tx = events.filter(pl.col("category").str.to_lowercase() == "transfusion")
    if tx.height == 0:
        return None
    prod = pl.coalesce(pl.col("product"), pl.col("term")).str.to_uppercase()
    return tx.select(
        "subject_id", "day",
        pl.when(prod.str.contains("PLT|PLATELET")).then(pl.lit("PLT"))
        .when(prod.str.contains("RBC|RED|ERYTHRO|PRBC")).then(pl.lit("RBC"))
        .otherwise(pl.lit("OTHER")).alias("product"),
    )


def _follow_up_end(study) -> pl.DataFrame:  # noqa: ANN001
    """subject_id, end: min(death, last contact), else the patient's last measurement day."""
    pts = study.patients
    last_meas = study.measurements.group_by("subject_id").agg(pl.col("day").max().alias("_m"))
    return pts.join(last_meas, on="subject_id", how="left").select(
        "subject_id",
        pl.coalesce(pl.min_horizontal("death_day", "last_contact_day"), pl.col("_m"))
        .alias("end"),
    )


def assessment_days(study, *, days: Iterable[int] | str | None = None  # noqa: ANN001
                    ) -> pl.DataFrame:
    """subject_id, day, sex, ne_reason: the days to assess each patient.

    `days` given: those days for everyone. Else each patient's recorded assessment days, and the
    landmarks (28, 90, 180, 365) for patients without recorded responses. Days after the end of
    follow-up are dropped; days on or after an HSCT get ne_reason "after HSCT on day N"."""
    chosen = parse_days(days)
    pts = study.patients.select("subject_id", "sex", "hsct_day")
    landmark = pl.DataFrame({"day": list(chosen or LANDMARKS.values())}, schema={"day": pl.Int64})
    base = pts.select("subject_id").join(landmark, how="cross")
    if chosen is None and study.has("responses"):
        rec = study.responses.select("subject_id", pl.col("day").cast(pl.Int64)).unique()
        rec = rec.filter(pl.col("subject_id").is_in(pts.get_column("subject_id").implode()))
        base = pl.concat([rec, base.filter(~pl.col("subject_id").is_in(
            rec.get_column("subject_id").unique().implode()))])
    out = (base.join(pts, on="subject_id", how="left")
           .join(_follow_up_end(study), on="subject_id", how="left")
           .filter(pl.col("end").is_null() | (pl.col("day") <= pl.col("end"))))
    return out.select(
        "subject_id", "day", "sex",
        pl.when(pl.col("hsct_day").is_not_null() & (pl.col("day") >= pl.col("hsct_day")))
        .then(pl.format("after HSCT on day {}", pl.col("hsct_day")))
        .otherwise(pl.lit(None, dtype=pl.String)).alias("ne_reason"),
    ).sort("subject_id", "day")


# ---- the engine -----------------------------------------------------------------------------
def _counts_at(measurements: pl.DataFrame, points: pl.DataFrame, window: int) -> pl.DataFrame:
    """The value of each count nearest to each (subject_id, day), within +/- window days."""
    # only days that can fall in some window: keeps the de-duplicating group_by small
    near = sorted({d + k for d in points.get_column("day").unique().to_list()
                   for k in range(-window, window + 1)})
    cbc = measurements.filter(pl.col("analyte").is_in(_COUNTS) & pl.col("value").is_not_null()
                              & pl.col("day").is_in(near))
    if "tissue" in cbc.columns:
        cbc = cbc.filter(pl.col("tissue").is_null() | (pl.col("tissue") == "blood"))
    cbc = (cbc.group_by("subject_id", "analyte", "day")
           .agg(pl.col("value").mean())
           .with_columns(pl.col("day").cast(pl.Int64)))
    out = points.sort("day")
    for a in _COUNTS:
        right = (cbc.filter(pl.col("analyte") == a)
                 .select("subject_id", "day", pl.col("value").alias(a.lower()))
                 .sort("day"))
        out = out.join_asof(right, on="day", by="subject_id", strategy="nearest",
                            tolerance=window, check_sortedness=False)
    return out


def _transfusions_at(points: pl.DataFrame, tx: pl.DataFrame | None, window: int
                     ) -> pl.DataFrame:
    """Per point: RBC / PLT transfusions in (day - window, day] and the last one up to day."""
    keys = points.select("subject_id", "day").unique()
    schema = {"rbc_transfusions": pl.UInt32, "plt_transfusions": pl.UInt32,
              "other_transfusions": pl.UInt32, "last_transfusion_day": pl.Int64}
    if tx is None:
        return keys.with_columns([pl.lit(None, dtype=t).alias(c) for c, t in schema.items()])
    t = tx.select("subject_id", pl.col("day").cast(pl.Int64).alias("_tx"), "product")
    inside = pl.col("_tx") > pl.col("day") - window
    agg = (keys.join(t, on="subject_id", how="inner")
           .filter(pl.col("_tx") <= pl.col("day"))
           .group_by("subject_id", "day")
           .agg(*[(inside & (pl.col("product") == p)).sum().alias(f"{p.lower()}_transfusions")
                  for p in ("RBC", "PLT", "OTHER")],
                pl.col("_tx").filter(pl.col("product").is_in(["RBC", "PLT"])).max()
                .alias("last_transfusion_day")))
    return keys.join(agg, on=["subject_id", "day"], how="left").with_columns(
        [pl.col(c).fill_null(0) for c in schema if c.endswith("_transfusions")])


def assess_responses(measurements: pl.DataFrame, assessments: pl.DataFrame, *,
                     transfusions: pl.DataFrame | None = None, criteria: str = "NIH",
                     ti_window: int = 56, value_window: int = 7, retic_threshold: float = 60.0
                     ) -> pl.DataFrame:
    """The response category at each assessment and the rule that decided it.

    measurements: subject_id, day, analyte, value (ANC, PLT, RETIC in 10^9/L; HGB in g/L).
    assessments: subject_id, day, optionally sex (BSH CR) and ne_reason (forces NE).
    transfusions: subject_id, day, product (RBC/PLT); None = not recorded (BSH PR then is NE).

    Returns subject_id, day, category (CR/PR/NR/NE), rule, criteria, anc, hgb, plt, retic
    (the counts used), severe, rbc_transfusions, plt_transfusions (in the window),
    last_transfusion_day, transfusion_independent.
    """
    criteria = criteria.upper()
    if criteria not in CRITERIA:
        raise ValueError(f"criteria must be one of {', '.join(CRITERIA)}, got {criteria!r}")
    pts = assessments
    for col, dtype in (("sex", pl.String), ("ne_reason", pl.String)):
        if col not in pts.columns:
            pts = pts.with_columns(pl.lit(None, dtype=dtype).alias(col))
    pts = pts.select("subject_id", pl.col("day").cast(pl.Int64), "sex", "ne_reason") \
        .unique(["subject_id", "day"], keep="first")
    df = _counts_at(measurements, pts, value_window).join(
        _transfusions_at(pts, transfusions, ti_window), on=["subject_id", "day"], how="left")

    sev_rules = (("ANC", "<", _SEVERE["ANC"]), ("PLT", "<", _SEVERE["PLT"]),
                 ("RETIC", "<", float(retic_threshold)))
    sev = [_cmp(a, op, t) for a, op, t in sev_rules]
    met = pl.sum_horizontal([s.fill_null(False).cast(pl.Int8) for s in sev])
    unknown = pl.sum_horizontal([s.is_null().cast(pl.Int8) for s in sev])
    sev_list = _join([pl.when(s).then(_text(a, op, t)) for s, (a, op, t) in zip(sev, sev_rules, strict=True)])
    ok_list = _join([pl.when(~s).then(_text(a, _NEGATE[op], t))
                     for s, (a, op, t) in zip(sev, sev_rules, strict=True)])
    missing_sev = _join([pl.when(s.is_null()).then(pl.lit(a)) for s, (a, _, _) in
                         zip(sev, sev_rules, strict=True)])

    cr_rules = [(a, op, _hgb_normal() if t is None else t) for a, op, t in _CR[criteria]]
    crs = [_cmp(a, op, t) for a, op, t in cr_rules]
    cr_met = pl.all_horizontal([c.fill_null(False) for c in crs])
    cr_failed = pl.any_horizontal([(~c).fill_null(False) for c in crs])
    cr_list = _join([_text(a, op, t) for a, op, t in cr_rules])
    cr_fail_list = _join([pl.when(~c).then(_text(a, _NEGATE[op], t))
                          for c, (a, op, t) in zip(crs, cr_rules, strict=True)])
    cr_missing = _join([pl.when(c.is_null()).then(pl.lit(a)) for c, (a, _, _) in
                        zip(crs, cr_rules, strict=True)])

    # transfusion independence is about red cells and platelets (plasma etc. do not count)
    n_tx = pl.col("rbc_transfusions") + pl.col("plt_transfusions")
    ti = n_tx == 0                               # null when transfusions are not recorded
    tx_text = (
        pl.when(n_tx.is_null()).then(pl.lit("; transfusions not recorded"))
        .when(n_tx > 0).then(pl.format(
            "; {} transfusion(s) in the {}-d window (RBC {}, PLT {}; last on day {})",
            n_tx, pl.lit(ti_window), "rbc_transfusions", "plt_transfusions",
            "last_transfusion_day"))
        .when(pl.col("last_transfusion_day").is_null())
        .then(pl.lit("; no transfusion up to this day"))
        .otherwise(pl.format("; transfusion-free {} d",
                             pl.col("day") - pl.col("last_transfusion_day"))))

    no_counts = pl.all_horizontal([pl.col(a.lower()).is_null() for a in _COUNTS])
    severe = met >= 2
    not_severe = (met + unknown) < 2
    very = pl.when(pl.col("anc") < _VERY_SEVERE_ANC).then(pl.lit("very ")).otherwise(pl.lit(""))
    ns_text = pl.concat_str(pl.lit("no longer severe ("), ok_list, pl.lit(")"))

    pr_ok = pl.lit(True) if criteria == "NIH" else ti   # BSH PR needs transfusion independence
    cat = (
        pl.when(pl.col("ne_reason").is_not_null()).then(pl.lit("NE"))
        .when(no_counts).then(pl.lit("NE"))
        .when(cr_met).then(pl.lit("CR"))
        .when(severe).then(pl.lit("NR"))
        .when(not_severe & pr_ok.is_null()).then(pl.lit("NE"))
        .when(not_severe & ~pr_ok.fill_null(True)).then(pl.lit("NR"))
        .when(not_severe & cr_failed).then(pl.lit("PR"))
        .otherwise(pl.lit("NE"))
    )
    rule = (
        pl.when(pl.col("ne_reason").is_not_null())
        .then(pl.concat_str(pl.lit("NE: "), pl.col("ne_reason")))
        .when(no_counts).then(pl.format("NE: no ANC, HGB, PLT or RETIC within +/-{} d of day {}",
                                        pl.lit(value_window), pl.col("day")))
        .when(cr_met).then(pl.concat_str(pl.lit("CR: "), cr_list, tx_text))
        .when(severe).then(pl.concat_str(pl.lit("NR: still "), very, pl.lit("severe ("), sev_list,
                                         pl.lit(")"), tx_text))
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
    return df.select(
        "subject_id", "day", cat.alias("category"), rule.alias("rule"),
        pl.lit(criteria).alias("criteria"), "anc", "hgb", "plt", "retic",
        pl.when(severe).then(True).when(not_severe).then(False).alias("severe"),
        "rbc_transfusions", "plt_transfusions", "last_transfusion_day",
        ti.alias("transfusion_independent"),
    ).sort("subject_id", "day")


# ---- study-level tables ---------------------------------------------------------------------
_OPTIONS = {
    "criteria": Option(str, "NIH", "response criteria", CRITERIA),
    "ti_window": Option(int, 56, "transfusion-independence window (days); same as --rule "
                                 "ti_window=N"),
    "count_window": Option(int, 7, "use the count nearest the assessment day within +/- this "
                                   "many days; same as --rule count_window=N"),
    "days": Option(str, None, "comma-separated assessment days (default: the recorded "
                              "assessment days, else 28,90,180,365)"),
}


@derived_table("derived_responses", "Response per assessment derived from blood counts "
               "(also: table responses --criteria NIH|BSH)", options=_OPTIONS)
def derived_responses(study, *, criteria: str = "NIH",  # noqa: ANN001
                      days: str | Iterable[int] | None = None,
                      rules: Rules | None = None) -> pl.DataFrame:
    """assess_responses over a study: subject_id, day, category, rule, then the details."""
    rules = rules if rules is not None else rules_for(study)
    return assess_responses(
        study.measurements, assessment_days(study, days=days),
        transfusions=transfusion_events(study.events), criteria=criteria,
        ti_window=rules.ti_window, value_window=rules.count_window,
        retic_threshold=rules.retic_threshold)


def best_of(responses: pl.DataFrame, *, category: str = "category") -> pl.DataFrame:
    """Best category per patient (CR > PR > NR > NE) and the first day it was reached:
    subject_id, best_response, best_response_day (and rule, the rule of that assessment, when
    `responses` has one)."""
    extra = ["rule"] if "rule" in responses.columns else []
    return (
        responses.with_columns(pl.col(category).replace_strict(_RANK, default=0).alias("_r"))
        .sort("subject_id", "_r", "day", descending=[False, True, False])
        .group_by("subject_id", maintain_order=True).first()
        .select("subject_id", pl.col(category).alias("best_response"),
                pl.col("day").alias("best_response_day"), *extra)
    )


def label_timepoints(frame: pl.DataFrame, *, day: str = "day") -> pl.DataFrame:
    """Adds `timepoint`: the landmark name (D28, M3, M6, M12) on a landmark day, else "D<day>"."""
    names = {v: k for k, v in LANDMARKS.items()}
    return frame.with_columns(
        pl.col(day).replace_strict(names, default=None, return_dtype=pl.String)
        .fill_null(pl.format("D{}", pl.col(day))).alias("timepoint"))


@derived_table("best_response", "Best derived response per patient (CR > PR > NR > NE)",
               options={k: _OPTIONS[k] for k in ("criteria", "ti_window")})
def best_response(study, *, criteria: str = "NIH",  # noqa: ANN001
                  rules: Rules | None = None) -> pl.DataFrame:
    """subject_id, best_response, best_response_day, criteria for every patient (NE and no day
    when the patient has no evaluable assessment)."""
    derived = derived_responses(study, criteria=criteria, rules=rules)
    best = best_of(derived).select("subject_id", "best_response", "best_response_day")
    return (study.patients.select("subject_id")
            .join(best, on="subject_id", how="left")
            .with_columns(pl.col("best_response").fill_null("NE"))
            .with_columns(pl.when(pl.col("best_response") == "NE").then(None)
                          .otherwise(pl.col("best_response_day")).alias("best_response_day"),
                          pl.lit(criteria.upper()).alias("criteria")))


def compare_recorded(derived: pl.DataFrame, recorded: pl.DataFrame) -> pl.DataFrame:
    """Derived next to recorded responses on the same patient and day:
    subject_id, day, derived, recorded, recorded_criteria, agree (null when one side is
    missing or NE), rule."""
    rec = recorded
    if "criteria" not in rec.columns:
        rec = rec.with_columns(pl.lit(None, dtype=pl.String).alias("criteria"))
    rec = (rec.sort("subject_id", "day").group_by("subject_id", "day", maintain_order=True)
           .agg(pl.col("response").first().str.to_uppercase().alias("recorded"),
                pl.col("criteria").first().alias("recorded_criteria"))
           .with_columns(pl.col("day").cast(pl.Int64)))
    der = derived.select("subject_id", "day", pl.col("category").alias("derived"), "rule")
    both = der.join(rec, on=["subject_id", "day"], how="full", coalesce=True)
    decided = pl.col("derived").is_in(["CR", "PR", "NR"]) & \
        pl.col("recorded").is_in(["CR", "PR", "NR"])
    return both.select(
        "subject_id", "day", "derived", "recorded", "recorded_criteria",
        pl.when(decided).then(pl.col("derived") == pl.col("recorded")).alias("agree"), "rule",
    ).sort("subject_id", "day")


@derived_table("response_comparison", "Derived vs recorded response per assessment",
               options={k: _OPTIONS[k] for k in ("criteria", "ti_window")})
def response_comparison(study, *, criteria: str = "NIH",  # noqa: ANN001
                        rules: Rules | None = None) -> pl.DataFrame:
    """compare_recorded over a study's derived and recorded responses."""
    return compare_recorded(derived_responses(study, criteria=criteria, rules=rules),
                            study.responses)


def baseline_severity(study, *, retic_threshold: float = 60.0,  # noqa: ANN001
                      value_window: int = 14) -> pl.DataFrame:
    """Modified Camitta severity from the last counts up to day 0 (infusion):
    subject_id, anc, plt, retic, cellularity, severity (vSAA/SAA/NSAA/NE), rule."""
    last_day = (study.measurements.filter(pl.col("analyte").is_in(_COUNTS)
                                          & (pl.col("day") <= 0))
                .group_by("subject_id").agg(pl.col("day").max()))
    pts = study.patients.select("subject_id", pl.col("marrow_cellularity_pct").alias("cell"))
    points = pts.select("subject_id").join(last_day, on="subject_id", how="inner")
    # baseline is before infusion: a nearest value from after day 0 must never stand in
    df = pts.join(_counts_at(study.measurements.filter(pl.col("day") <= 0), points,
                             value_window), on="subject_id", how="left")
    sev = [pl.col("anc") < 0.5, pl.col("plt") < 20, pl.col("retic") < retic_threshold]
    met = pl.sum_horizontal([s.fill_null(False).cast(pl.Int8) for s in sev])
    unknown = pl.sum_horizontal([s.is_null().cast(pl.Int8) for s in sev])
    marrow_ok = pl.col("cell").is_null() | (pl.col("cell") < 25)
    severe = (met >= 2) & marrow_ok
    counts_txt = pl.format("ANC {}, PLT {}, RETIC {}", _fmt(pl.col("anc")).fill_null("-"),
                           _fmt(pl.col("plt")).fill_null("-"), _fmt(pl.col("retic")).fill_null("-"))
    severity = (pl.when(severe & (pl.col("anc") < _VERY_SEVERE_ANC)).then(pl.lit("vSAA"))
                .when(severe).then(pl.lit("SAA"))
                .when((met + unknown < 2) | ~marrow_ok).then(pl.lit("NSAA"))
                .otherwise(pl.lit("NE")))
    return df.select(
        "subject_id", "anc", "plt", "retic", pl.col("cell").alias("cellularity"),
        severity.alias("severity"),
        pl.concat_str(severity, pl.lit(": "), counts_txt, pl.lit(" on day "),
                      pl.col("day").cast(pl.String).fill_null("-"),
                      pl.when(pl.col("cell").is_not_null())
                      .then(pl.format("; marrow cellularity {}%", _fmt(pl.col("cell"))))
                      .otherwise(pl.lit(""))).alias("rule"),
    )
