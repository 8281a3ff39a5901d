"""SAA severity and haematological response at each assessment day, derived from blood counts.

Rules (DESIGN.md section 3); every threshold and window is a rule setting (analysis/rules.py,
docs/rules.md), so a study states its own in study.toml [rules]:

- Severity, modified Camitta (Camitta 1976; Bacigalupo 1988; BSH, Killick et al. 2016): severe
  when at least two of ANC < 0.5, PLT < 20 and RETIC < `retic_threshold` x10^9/L (60 with an
  automated count, BSH; 20 with the classic manual count, Camitta and the Chinese consensus);
  very severe when ANC < 0.2 as well. Baseline severity comes from analysis.baseline (counts
  before lymphodepletion, marrow cellularity).
- NIH (Townsley et al., N Engl J Med 2017;376:1540): CR = ANC >= 1.0, HGB >= 100 g/L and
  PLT >= 100; PR = counts no longer meet the severe criteria, not CR; NR = still severe.
- BSH / Camitta (Killick et al., Br J Haematol 2016;172:187): CR = HGB normal for sex (>= 130 g/L
  men, >= 120 g/L women; 130 when sex is unknown), ANC > 1.5 and PLT > 150; PR = transfusion
  independent and no longer severe; NR = still severe, or not transfusion independent.
- Not severe at baseline (NSAA): "no longer severe" means nothing, so PR follows the BSH
  non-severe rule (transfusion independence gained, or a lineage doubled or normalised, or
  Hb +30 g/L from < 60, ANC +0.5 from < 0.5, PLT +20 from < 20); unchanged counts are NR.
  `nonsevere_pr = "ne"` makes such assessments NE instead. A patient whose baseline severity
  cannot be judged (and has no recorded diagnosis) gets NE rather than PR, with the reason.

Transfusion independence = no RBC or platelet transfusion in the `ti_window` days up to and
including the assessment day. Each count is the value nearest to the assessment day within
+/- `count_window` days (ties: `count_tie`); repeated values on one day are averaged. A
transfusion- or G-CSF-supported count (analysis/support.py) never makes a criterion met: the
nearest unsupported count in the window is taken instead, else the supported one is shown and
counted as not met, and the rule text names it and what supported it. HSCT ends the CAR-T's
account: assessments on or after an HSCT are NE, and counts from an HSCT day on never decide
an assessment (not even as the nearest count of an earlier one). A missing count makes the
category NE only when the decision needs it. Every row carries the rule that decided it, with
the counts used and their days when they differ from the assessment day, e.g. "PR: no longer
severe (ANC 0.9 >= 0.5, PLT 31 (day 30) >= 20); not CR (HGB 85 < 100); transfusion-free 63 d".

The engine is vectorised: one candidate join for the counts and one for the transfusions.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import polars as pl

from analysis.registry import Option, derived_table
from analysis.rules import DEFAULT_RULES, Rules, rules_for
from analysis.support import mark_supported
from analysis.vocab import (
    ASSESSED,
    CR,
    LANDMARKS,
    NR,
    PR,
    RESPONSE_CATEGORIES,
    RESPONSE_RANK,
    is_blood,
)

if TYPE_CHECKING:
    from data_loaders import Study

__all__ = ["CRITERIA", "LANDMARKS", "CATEGORIES", "TI_PRODUCTS", "assessment_days", "assess_responses",
           "derived_responses", "best_of", "best_response", "compare_recorded",
           "response_comparison", "comparison_summary", "criteria_name", "CRITERIA_ALIASES",
           "baseline_severity", "transfusion_events", "parse_days", "follow_up_end",
           "hsct_per_patient",
           "reference_lines", "label_timepoints", "recorded_responses", "counts_before_hsct"]

CRITERIA = ("NIH", "BSH")
CATEGORIES = RESPONSE_CATEGORIES
_COUNTS = ("ANC", "HGB", "PLT", "RETIC")
# transfusion products that break transfusion independence (analysis.response.transfusion_events)
TI_PRODUCTS = ("RBC", "PLT", "UNSPECIFIED")

# (analyte, operator, threshold); HGB for BSH is sex-specific (see _hgb_normal); the severity
# thresholds and normal haemoglobin are rule settings (analysis/rules.py)
_CR = {
    "NIH": (("ANC", ">=", 1.0), ("HGB", ">=", 100.0), ("PLT", ">=", 100.0)),
    "BSH": (("ANC", ">", 1.5), ("HGB", ">=", None), ("PLT", ">", 150.0)),
}

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


def _join(parts: list[pl.Expr]) -> pl.Expr:
    return pl.concat_str(parts, separator=", ", ignore_nulls=True)


def _hgb_normal(rules: Rules = DEFAULT_RULES) -> pl.Expr:
    """Normal haemoglobin for the patient's sex (the male value when sex is unknown)."""
    sex = pl.col("sex").cast(pl.String).str.to_uppercase().str.slice(0, 1)
    return (pl.when(sex == "F").then(pl.lit(rules.lln_hgb_female))
            .otherwise(pl.lit(rules.lln_hgb_male)))


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


def reference_lines(*, criteria: str = "NIH", retic_threshold: float | None = None,
                    rules: Rules | None = None) -> dict[str, list[tuple[float, str]]]:
    """analyte -> [(threshold, label)] that the criteria use, for reference lines on plots."""
    r = rules if rules is not None else DEFAULT_RULES
    retic = float(r.retic_threshold if retic_threshold is None else retic_threshold)
    sev = [("ANC", r.severe_anc, f"severe <{r.severe_anc:g}"),
           ("PLT", r.severe_plt, f"severe <{r.severe_plt:g}"),
           ("RETIC", retic, f"severe <{retic:g}")]
    out: dict[str, list[tuple[float, str]]] = {a: [(t, lab)] for a, t, lab in sev}
    out["ANC"].append((r.very_severe_anc, f"very severe <{r.very_severe_anc:g}"))
    name = criteria.upper()
    for a, op, t in _CR.get(name, _CR["NIH"]):
        if t is None:   # BSH haemoglobin: normal for sex
            out.setdefault(a, []).extend([
                (r.lln_hgb_female, f"{name} CR (women) >={r.lln_hgb_female:g}"),
                (r.lln_hgb_male, f"{name} CR (men) >={r.lln_hgb_male:g}")])
        else:
            out.setdefault(a, []).append((t, f"{name} CR {op}{t:g}"))
    return out


# ---- inputs from a study --------------------------------------------------------------------
def transfusion_events(events: pl.DataFrame) -> pl.DataFrame | None:
    """subject_id, day, product (RBC, PLT, OTHER or UNSPECIFIED) of every transfusion; None when
    the events table records no transfusion at all (transfusion status then is unknown, not
    "none").

    The product is read from `product`, else from `term` when `product` names neither red
    cells nor platelets: platelets (PLT, platelet, thrombocyte concentrate) and red cells
    (RBC, PRBC, PRC, RCC, red cells, packed cells, erythrocytes, whole blood); anything else
    (plasma, cryoprecipitate, albumin, granulocytes) is OTHER and does not break transfusion
    independence. A transfusion whose product is not recorded at all ("Transfusion", or empty)
    is UNSPECIFIED: it breaks transfusion independence (in aplastic anaemia it is red cells or
    platelets) but supports no count."""
    tx = events.filter(pl.col("category").str.to_lowercase() == "transfusion")
    if tx.height == 0:
        return None

    def kind(col: str) -> pl.Expr:
        text = (pl.col(col) if col in tx.columns else pl.lit(None, dtype=pl.String)) \
            .cast(pl.String).str.to_uppercase()
        return (pl.when(text.str.contains(r"PLT|PLATELET|THROMBOCYT")).then(pl.lit("PLT"))
                .when(text.str.contains(r"RBC|RED|ERYTHRO|\bPRC\b|\bRCC\b|PACKED|WHOLE BLOOD"))
                .then(pl.lit("RBC")))

    named = pl.concat_str([pl.col(c).cast(pl.String) for c in ("product", "term")
                           if c in tx.columns] or [pl.lit("")], separator=" ",
                          ignore_nulls=True).str.to_uppercase() \
        .str.replace_all(r"\b(BLOOD|TRANSFUSIONS?|UNITS?|PRODUCTS?|\d+)\b|[^A-Z]", "")
    return tx.select(
        "subject_id", "day",
        pl.coalesce(kind("product"), kind("term"),
                    pl.when(named.fill_null("") == "").then(pl.lit("UNSPECIFIED")),
                    pl.lit("OTHER")).alias("product"),
    )


def follow_up_end(study: Study) -> pl.DataFrame:
    """subject_id, end: min(death, last contact), else the patient's last measurement day."""
    pts = study.patients
    last_meas = study.measurements.group_by("subject_id").agg(pl.col("day").max().alias("_m"))
    return pts.join(last_meas, on="subject_id", how="left").select(
        "subject_id",
        pl.coalesce(pl.min_horizontal("death_day", "last_contact_day"), pl.col("_m"))
        .alias("end"),
    )


def assessment_days(study: Study, *, days: Iterable[int] | str | None = None,
                    window: int = 0) -> pl.DataFrame:
    """subject_id, day, sex, ne_reason: the days to assess each patient.

    `days` given: those days for everyone. Else each patient's recorded assessment days, and the
    landmarks (28, 90, 180, 365) for patients without recorded responses. Days after the end of
    follow-up are dropped, except that a day up to `window` days (the count window) after the
    last contact is kept for a patient not known to have died before it: its visit may have
    been done early, within the window (a count on day 84 assesses day 90). Days on or after
    an HSCT get ne_reason "after HSCT on day N"."""
    chosen = parse_days(days)
    pts = study.patients.select("subject_id", "sex").join(
        hsct_per_patient(study).rename({"_hsct": "hsct_day"}), on="subject_id", how="left")
    landmark = pl.DataFrame({"day": list(chosen or LANDMARKS.values())}, schema={"day": pl.Int64})
    base = pts.select("subject_id").join(landmark, how="cross")
    if chosen is None and study.has("responses"):
        rec = study.responses.select("subject_id", pl.col("day").cast(pl.Int64)).unique()
        rec = rec.filter(pl.col("subject_id").is_in(pts.get_column("subject_id").implode()))
        base = pl.concat([rec, base.filter(~pl.col("subject_id").is_in(
            rec.get_column("subject_id").unique().implode()))])
    death = study.patients.select("subject_id", pl.col("death_day").cast(pl.Int64)
                                  .alias("_death"))
    out = (base.join(pts, on="subject_id", how="left")
           .join(follow_up_end(study), on="subject_id", how="left")
           .join(death, on="subject_id", how="left")
           .filter(pl.col("end").is_null() | (pl.col("day") <= pl.col("end"))
                   | ((pl.col("day") - window <= pl.col("end"))
                      & (pl.col("_death").is_null() | (pl.col("_death") >= pl.col("day"))))))
    return out.select(
        "subject_id", "day", "sex",
        pl.when(pl.col("hsct_day").is_not_null() & (pl.col("day") >= pl.col("hsct_day")))
        .then(pl.format("after HSCT on day {}", pl.col("hsct_day")))
        .otherwise(pl.lit(None, dtype=pl.String)).alias("ne_reason"),
    ).sort("subject_id", "day")


# ---- the engine -----------------------------------------------------------------------------
def _counts_at(measurements: pl.DataFrame, points: pl.DataFrame, window: int, *,
               support: pl.DataFrame | None = None, tie: str = "earlier") -> pl.DataFrame:
    """For each (subject_id, day) of `points` and each count: the value nearest the day within
    +/- window days, preferring an unsupported count (see analysis/support.py) to a nearer
    supported one; ties go to the earlier (or later) day. Adds <count>, <count>_day,
    <count>_supported and <count>_support (what held it up) for ANC, HGB, PLT and RETIC."""
    # only days that can fall in some window: keeps the de-duplicating group_by small
    near = sorted({d + k for d in points.get_column("day").unique().to_list()
                   for k in range(-window, window + 1)})
    cbc = measurements.filter(pl.col("analyte").is_in(_COUNTS) & pl.col("value").is_not_null()
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
    for a in _COUNTS:
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
        pl.lit(f"{a} "), _fmt(pl.col(c)),
        pl.when(pl.col(f"{c}_day") != pl.col("day"))
        .then(pl.format(" (day {})", pl.col(f"{c}_day"))).otherwise(pl.lit("")))


def _text(col: str, op: str, t: float | pl.Expr) -> pl.Expr:
    return pl.concat_str(_shown(col), pl.lit(f" {op} "), _thr(t))


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
    sev = [_cmp(a, op, t) | _sup(a) for a, op, t in sev_rules]
    met = pl.sum_horizontal([s.fill_null(False).cast(pl.Int8) for s in sev])
    unknown = pl.sum_horizontal([s.is_null().cast(pl.Int8) for s in sev])
    sev_list = _join([pl.when(_sup(a) & ~_cmp(a, op, t).fill_null(False))
                      .then(_supported_text(a)).when(s).then(_text(a, op, t))
                      for s, (a, op, t) in zip(sev, sev_rules, strict=True)])
    ok_list = _join([pl.when(~s).then(_text(a, _NEGATE[op], t))
                     for s, (a, op, t) in zip(sev, sev_rules, strict=True)])
    missing_sev = _join([pl.when(s.is_null()).then(pl.lit(a)) for s, (a, _, _) in
                         zip(sev, sev_rules, strict=True)])

    hgb_normal = _hgb_normal(rules)
    cr_rules = [(a, op, hgb_normal if t is None else t) for a, op, t in _CR[criteria]]
    crs = [_cmp(a, op, t) & ~_sup(a) for a, op, t in cr_rules]
    cr_met = pl.all_horizontal([c.fill_null(False) for c in crs])
    cr_failed = pl.any_horizontal([(~c).fill_null(False) for c in crs])
    cr_list = _join([_text(a, op, t) for a, op, t in cr_rules])
    cr_fail_list = _join([pl.when(_sup(a) & _cmp(a, op, t).fill_null(False))
                          .then(_supported_text(a)).when(~c).then(_text(a, _NEGATE[op], t))
                          for c, (a, op, t) in zip(crs, cr_rules, strict=True)])
    cr_missing = _join([pl.when(c.is_null()).then(pl.lit(a)) for c, (a, _, _) in
                        zip(crs, cr_rules, strict=True)])
    support_list = _join([pl.when(_sup(a)).then(pl.concat_str(
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
        bt = _fmt(b)
        ns_parts += [
            pl.when(doubled.fill_null(False)).then(pl.concat_str(
                _shown(a), pl.lit(" >= 2 x baseline "), bt)),
            pl.when(normal.fill_null(False)).then(pl.concat_str(
                _shown(a), pl.lit(" normal (>= "), _thr(lln[a]), pl.lit(") from "), bt)),
            pl.when(raised.fill_null(False)).then(pl.concat_str(
                _shown(a), pl.lit(" > baseline "), bt, pl.lit(f" + {step:g}")))]
        ns_known.append(pl.any_horizontal(doubled, normal, raised))
    ti_gain = (pl.col("b_transfusion_dependent") & ti).fill_null(False)
    ns_parts.append(pl.when(ti_gain).then(pl.lit(
        "transfusion independent (dependent at baseline)")))
    ns_reason = _join(ns_parts)
    ns_any = ti_gain | pl.any_horizontal([k.fill_null(False) for k in ns_known])
    ns_none = ~ns_any & pl.all_horizontal([k.is_not_null() for k in ns_known])
    vs_base = _join([pl.when(pl.col(a.lower()).is_not_null()).then(pl.concat_str(
        _shown(a), pl.lit(" vs "), _fmt(pl.col(f"b_{a.lower()}")).fill_null("-")))
        for a in ("ANC", "PLT", "HGB")])
    nonsevere_rule = "bsh" if rules.nonsevere_pr == "bsh" else "ne"

    no_counts = pl.all_horizontal([pl.col(a.lower()).is_null() for a in _COUNTS])
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
        *[f"{a.lower()}_day" for a in _COUNTS],
        *[_sup(a).alias(f"{a.lower()}_supported") for a in ("ANC", "HGB", "PLT")],
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


def counts_before_hsct(study: Study) -> pl.DataFrame:
    """The study's measurements without anything from an HSCT day on: counts after a
    transplant are the graft's and never decide an assessment of the CAR-T."""
    hsct = hsct_per_patient(study)
    return (study.measurements.join(hsct, on="subject_id", how="left")
            .filter(pl.col("_hsct").is_null() | (pl.col("day") < pl.col("_hsct")))
            .drop("_hsct"))


def hsct_per_patient(study: Study) -> pl.DataFrame:
    """subject_id, _hsct: every patient with the first HSCT day (patients.hsct_day or an hsct
    event), null without one (analysis.post_hsct.hsct_days: the transplanted patients)."""
    ev = (study.events.filter(pl.col("category").str.to_lowercase() == "hsct")
          .group_by("subject_id").agg(pl.col("day").min().cast(pl.Int64).alias("_ev")))
    return (study.patients.select("subject_id", pl.col("hsct_day").cast(pl.Int64))
            .join(ev, on="subject_id", how="left")
            .select("subject_id", pl.min_horizontal("hsct_day", "_ev").alias("_hsct")))


@derived_table("derived_responses", "Response per assessment derived from blood counts "
               "(also: table responses --criteria NIH|BSH)", options=_OPTIONS)
def derived_responses(study: Study, *, criteria: str = "NIH",
                      days: str | Iterable[int] | None = None,
                      rules: Rules | None = None) -> pl.DataFrame:
    """assess_responses over a study: subject_id, day, category, rule, then the details.
    Baseline severity comes from analysis.baseline; support windows from the transfusions and
    G-CSF events; counts from an HSCT day on are left out."""
    from analysis.baseline import baseline
    from analysis.support import support_intervals

    rules = rules if rules is not None else rules_for(study)
    tx = transfusion_events(study.events)
    base = baseline(study, rules=rules)
    # a derived severity that cannot be judged falls back on the recorded diagnosis
    recorded = pl.col("diagnosis").str.strip_chars().str.to_uppercase().replace(
        {"VSAA": "vSAA"})
    base = base.with_columns(
        pl.when(pl.col("severity").is_in(["vSAA", "SAA", "NSAA"])).then(pl.col("severity"))
        .when(recorded.is_in(["vSAA", "SAA", "NSAA"])).then(recorded)
        .otherwise(pl.col("severity")).alias("severity"))
    return assess_responses(
        counts_before_hsct(study), assessment_days(study, days=days, window=rules.count_window),
        transfusions=tx, criteria=criteria, rules=rules,
        support=support_intervals(study.events, rules=rules, transfusions=tx),
        baseline=base)


def best_of(responses: pl.DataFrame, *, category: str = "category") -> pl.DataFrame:
    """Best category per patient (CR > PR > NR > NE) and the first day it was reached:
    subject_id, best_response, best_response_day (and rule, the rule of that assessment, when
    `responses` has one)."""
    extra = ["rule"] if "rule" in responses.columns else []
    return (
        responses.with_columns(pl.col(category).replace_strict(RESPONSE_RANK, default=0).alias("_r"))
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
def best_response(study: Study, *, criteria: str = "NIH",
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


# Names under which recorded responses state their criteria, for like-with-like comparison.
CRITERIA_ALIASES: dict[str, str] = {
    "NIH": "NIH", "TOWNSLEY": "NIH", "NIH (TOWNSLEY)": "NIH", "NIH/TOWNSLEY": "NIH",
    "BSH": "BSH", "CAMITTA": "BSH", "MODIFIED CAMITTA": "BSH", "BSH/CAMITTA": "BSH",
    "BSH 2016": "BSH", "BSH 2024": "BSH",
}


def criteria_name(expr: pl.Expr) -> pl.Expr:
    """The canonical criteria (NIH/BSH) of a recorded `criteria` text; null when blank or
    not one of CRITERIA_ALIASES (a local scheme the derived rules do not implement)."""
    key = expr.cast(pl.String).str.strip_chars().str.to_uppercase()
    return key.replace_strict(CRITERIA_ALIASES, default=None, return_dtype=pl.String)


def compare_recorded(derived: pl.DataFrame, recorded: pl.DataFrame) -> pl.DataFrame:
    """Derived next to recorded responses on the same patient and day:
    subject_id, day, derived, recorded, recorded_criteria, agree, compared, rule.

    Only like is compared with like (DESIGN.md section 3: NIH and BSH/Camitta define PR and CR
    differently, so an NIH-recorded PR beside a BSH-derived NR is not a disagreement): `agree`
    is True/False only when both sides are decided (CR/PR/NR) and the record names the
    derived criteria (aliases: CRITERIA_ALIASES). It is null otherwise, and `compared` says
    why: "same criteria (NIH)", "criteria not recorded", "different criteria (BSH recorded,
    NIH derived)", "no derived assessment", "no recorded assessment", "not decided (NE)".
    Several records on one day: the one with the derived criteria (`derived.criteria`), else
    the worse decided one (whatever the order of the rows)."""
    rec = recorded
    if "criteria" not in rec.columns:
        rec = rec.with_columns(pl.lit(None, dtype=pl.String).alias("criteria"))
    crit = (derived.get_column("criteria").drop_nulls().unique().to_list()
            if "criteria" in derived.columns else [])
    want = str(crit[0]).upper() if len(crit) == 1 else None
    resp = pl.col("response").cast(pl.String).str.strip_chars().str.to_uppercase()
    rank = resp.replace_strict(RESPONSE_RANK, default=0, return_dtype=pl.Int8)
    rec = (rec.with_columns(
               (criteria_name(pl.col("criteria")) == pl.lit(want))
               .fill_null(False).alias("_same"),
               (rank > 0).alias("_decided"), rank.alias("_rank"))
           .sort("subject_id", "day", "_same", "_decided", "_rank",
                 descending=[False, False, True, True, False])
           .group_by("subject_id", "day", maintain_order=True)
           .agg(resp.first().alias("recorded"),
                pl.col("criteria").cast(pl.String).first().alias("recorded_criteria"),
                pl.col("_same").first().alias("_same"))
           .with_columns(pl.col("day").cast(pl.Int64)))
    der = derived.select("subject_id", "day", pl.col("category").alias("derived"), "rule")
    both = der.join(rec, on=["subject_id", "day"], how="full", coalesce=True)
    decided = pl.col("derived").is_in(ASSESSED) & \
        pl.col("recorded").is_in(ASSESSED)
    same = pl.col("_same").fill_null(False)
    blank = pl.col("recorded_criteria").str.strip_chars().fill_null("") == ""
    compared = (
        pl.when(pl.col("recorded").is_null()).then(pl.lit("no recorded assessment"))
        .when(pl.col("derived").is_null()).then(pl.lit("no derived assessment"))
        .when(~decided).then(pl.lit("not decided (NE)"))
        .when(same).then(pl.lit(f"same criteria ({want})"))
        .when(blank).then(pl.lit("criteria not recorded: not compared"))
        .otherwise(pl.format("different criteria ({} recorded, {} derived): not compared",
                             pl.col("recorded_criteria"), pl.lit(want or "unknown"))))
    return both.select(
        "subject_id", "day", "derived", "recorded", "recorded_criteria",
        pl.when(decided & same).then(pl.col("derived") == pl.col("recorded")).alias("agree"),
        compared.alias("compared"), "rule",
    ).sort("subject_id", "day")


def comparison_summary(cmp: pl.DataFrame) -> str:
    """One sentence over a compare_recorded frame: disagreements among the like-with-like
    comparisons, and how many decided records were not compared because their criteria are
    unknown or different."""
    n_same = cmp.filter(pl.col("agree").is_not_null()).height
    n_dis = cmp.filter(pl.col("agree").not_()).height
    text = (f"Derived vs recorded: {n_dis} disagreement(s) over {n_same} assessment(s) "
            "compared on the same criteria.")
    other = cmp.filter(pl.col("compared").str.ends_with("not compared"))
    if other.height:
        n_blank = other.filter(pl.col("compared").str.starts_with("criteria not")).height
        text += (f" {other.height} recorded assessment(s) not compared: "
                 f"{n_blank} without recorded criteria, {other.height - n_blank} recorded with "
                 "other criteria (a different rule is not a disagreement).")
    return text


@derived_table("response_comparison", "Derived vs recorded response per assessment",
               options={k: _OPTIONS[k] for k in ("criteria", "ti_window")})
def response_comparison(study: Study, *, criteria: str = "NIH",
                        rules: Rules | None = None) -> pl.DataFrame:
    """compare_recorded over a study's derived and recorded responses."""
    return compare_recorded(derived_responses(study, criteria=criteria, rules=rules),
                            study.responses)


def baseline_severity(study: Study, *, rules: Rules | None = None,
                      retic_threshold: float | None = None) -> pl.DataFrame:
    """Modified Camitta severity at baseline (analysis.baseline: the last counts before
    lymphodepletion): subject_id, anc, plt, retic, cellularity, severity (vSAA/SAA/NSAA/NE),
    rule. `retic_threshold` overrides the rules' cut-off when given."""
    from analysis.baseline import baseline

    rules = rules if rules is not None else rules_for(study)
    if retic_threshold is not None:
        rules = rules.with_(retic_threshold=retic_threshold)
    return baseline(study, rules=rules).select("subject_id", "anc", "plt", "retic",
                                               "cellularity", "severity", "rule")


def recorded_responses(study: Study) -> pl.DataFrame:
    """The study's recorded responses as the CAR-T's account: subject_id, day, category
    (CR/PR/NR/NE), criteria, rule. A response recorded on or after an HSCT is NE for the CAR-T
    (the transplant's, not the CAR-T's), whatever the assessor wrote."""
    rec = study.responses
    if "criteria" not in rec.columns:
        rec = rec.with_columns(pl.lit(None, dtype=pl.String).alias("criteria"))
    resp = pl.col("response").cast(pl.String).str.strip_chars().str.to_uppercase()
    after = pl.col("_hsct").is_not_null() & (pl.col("day") >= pl.col("_hsct"))
    return (rec.select("subject_id", pl.col("day").cast(pl.Int64), resp.alias("_resp"),
                       pl.col("criteria").cast(pl.String))
            .join(hsct_per_patient(study), on="subject_id", how="left")
            .select("subject_id", "day",
                    pl.when(after).then(pl.lit("NE")).otherwise(pl.col("_resp"))
                    .alias("category"), "criteria",
                    pl.when(after).then(pl.format(
                        "NE: recorded {} on or after HSCT on day {} (not the CAR-T's)",
                        pl.col("_resp"), pl.col("_hsct")))
                    .otherwise(pl.format("recorded {}", pl.col("_resp"))).alias("rule"))
            .sort("subject_id", "day"))
