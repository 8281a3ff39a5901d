"""Toxicity after CAR-T: CRS and ICANS (ASTCT 2019), cytokine peaks and adverse events.

Recorded grades come from `events` (categories crs and icans; grade per the ASTCT consensus of
Lee et al., Biol Blood Marrow Transplant 2019;25:625-638). Where daily vitals are given, the
CRS grade is derived per ASTCT and compared with the recorded one:

- fever: TEMP >= 38.0 C (the day's maximum) is required for any grade;
- hypotension: SBP < 90 mmHg without vasopressors = grade 2, one vasopressor (VASOPRESSORS ==
  1) = grade 3, two or more = grade 4;
- hypoxia: oxygen by low-flow nasal cannula (0 < O2_LPM <= 6 L/min) = grade 2, high-flow
  (O2_LPM > 6) = grade 3;
- grade = the worse of hypotension and hypoxia, given fever; fever alone = grade 1.

Only where CRS can be: vitals are graded inside the CRS window (infusion, day 0, to the rule
setting `crs_window_end`, default day 14, and `crs_episode_margin` days around each recorded CRS
episode) and never on a day of a documented infection (events category infection, day to
end_day) without a recorded CRS episode on that day; a fever then belongs to the infection
(febrile neutropenia, CMV). `crs_daily` says for each day why it was or was not graded.

Masked fever (ASTCT 2019): "in patients who have CRS then receive antipyretic or anticytokine
therapy such as tocilizumab or steroids, fever is no longer required to grade subsequent CRS
severity". With `crs_masked_fever` (on by default), once a patient has CRS (a febrile graded
day, or a recorded episode) and then gets tocilizumab or a corticosteroid (medication events:
`product` tocilizumab / corticosteroid, or the class derived from the term), the following
graded days are graded on hypotension and hypoxia without fever. `crs_fever_carry_days`
(default 0) lets a febrile day count for that many following days (antipyretics).

Not derivable from these vitals (documented, not guessed): positive-pressure ventilation
(CPAP, BiPAP, intubation = hypoxia grade 4) and vasopressin as a separate agent. Thresholds
(fever 38.0 C, SBP 90 mmHg, low-flow 6 L/min) are rule settings with these defaults.

Adverse events are summarised per term by each patient's worst grade (CTCAE v5 grades as
recorded), with counts and percentages of all patients in the study.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import polars as pl

from analysis.registry import Option, derived_table
from analysis.rules import DEFAULT_RULES, Rules, rules_for
from analysis.vocab import AE_CATEGORIES

if TYPE_CHECKING:
    from data_loaders import Study

__all__ = ["CYTOKINES", "INFLAMMATION_MARKERS", "VITALS", "FEVER_C", "HYPOTENSION_SBP",
           "LOW_FLOW_MAX_LPM", "AE_CATEGORIES", "toxicity_episodes", "crs_summary",
           "crs_table", "grade_incidence", "onset_duration", "astct_daily_grades", "astct_comparison",
           "cytokine_peaks", "cytokine_peaks_table", "adverse_event_summary",
           "adverse_events_table", "infections", "crs_daily_table", "astct_comparison_table",
           "masking_drugs", "MASKING_DRUGS"]

CYTOKINES = ("IL6", "IFNG", "IL10", "IL2", "TNFA", "IL2RA")
INFLAMMATION_MARKERS = ("FERRITIN", "CRP")
VITALS = ("TEMP", "SBP", "O2_LPM", "VASOPRESSORS")
FEVER_C = 38.0
HYPOTENSION_SBP = 90.0
LOW_FLOW_MAX_LPM = 6.0
_KIND = {"crs": "CRS", "icans": "ICANS"}


# ---- recorded CRS / ICANS --------------------------------------------------------------------
def toxicity_episodes(events: pl.DataFrame, *, kinds: Iterable[str] = ("crs", "icans")
                      ) -> pl.DataFrame:
    """CRS/ICANS episodes: subject_id, kind (CRS/ICANS), start, end (end_day, else start),
    grade, duration_days (inclusive; null when end_day is missing)."""
    cats = list(kinds)
    df = events.filter(pl.col("category").is_in(cats))
    return df.select(
        "subject_id",
        pl.col("category").replace_strict(_KIND, default=pl.col("category")).alias("kind"),
        pl.col("day").alias("start"),
        pl.coalesce(pl.col("end_day"), pl.col("day")).alias("end"),
        pl.col("grade").cast(pl.Int64),
        (pl.col("end_day") - pl.col("day") + 1).alias("duration_days"),
    ).sort(["subject_id", "start", "kind"])


def crs_summary(events: pl.DataFrame, *, subjects: Iterable[str],
                events_recorded: bool = True) -> pl.DataFrame:
    """Per patient: crs_max_grade, crs_onset_day, crs_duration_days, icans_max_grade,
    icans_onset_day, icans_duration_days, crs_episodes, icans_episodes.

    A patient without a recorded episode has grade 0 when `events_recorded` (the study has an
    events table), else null (unknown). Duration sums the episodes' inclusive day counts."""
    ids = pl.DataFrame({"subject_id": list(subjects)}, schema={"subject_id": pl.String})
    ep = toxicity_episodes(events)
    out = ids
    for kind in ("crs", "icans"):
        agg = (ep.filter(pl.col("kind") == _KIND[kind]).group_by("subject_id")
               .agg(pl.col("grade").max().alias(f"{kind}_max_grade"),
                    pl.col("start").min().alias(f"{kind}_onset_day"),
                    pl.when(pl.col("duration_days").is_null().any()).then(None)
                    .otherwise(pl.col("duration_days").sum()).alias(f"{kind}_duration_days"),
                    pl.len().cast(pl.Int64).alias(f"{kind}_episodes")))
        out = out.join(agg, on="subject_id", how="left")
        cols = pl.col(f"{kind}_max_grade", f"{kind}_episodes")
        out = out.with_columns((cols.fill_null(0) if events_recorded else cols).cast(pl.Int64))
    return out.select("subject_id", "crs_max_grade", "crs_onset_day", "crs_duration_days",
                      "icans_max_grade", "icans_onset_day", "icans_duration_days",
                      "crs_episodes", "icans_episodes")


@derived_table("crs", "CRS and ICANS per patient (recorded ASTCT 2019 grades): max grade, "
               "onset day, duration; with the grade derived from vitals where given")
def crs_table(study: Study, *, rules: Rules | None = None) -> pl.DataFrame:
    """crs_summary of the study's events, plus crs_derived_max_grade and crs_grade_agrees when
    the study has vitals (graded per the CRS window rule settings)."""
    rules = rules if rules is not None else rules_for(study)
    out = crs_summary(study.events, subjects=study.subject_ids,
                      events_recorded=study.has("events"))
    comp = astct_comparison(study.measurements, events=study.events, rules=rules)
    if comp.height:
        out = out.join(comp.select("subject_id", "crs_derived_max_grade", "crs_grade_agrees"),
                       on="subject_id", how="left")
    return out


def grade_incidence(crs: pl.DataFrame, *, kinds: Iterable[str] = ("crs", "icans")
                    ) -> pl.DataFrame:
    """Incidence by max grade from a crs table: kind, grade (0-3 always, 4-5 when seen, then
    "any (>=1)" and ">=3"), n, n_patients (with a known grade), pct of those patients."""
    rows = []
    for kind in kinds:
        col = f"{kind}_max_grade"
        if col not in crs.columns:
            continue
        known = crs.filter(pl.col(col).is_not_null())
        total = known.height
        for g in range(0, 6):
            n = known.filter(pl.col(col) == g).height
            if n or g <= 3:
                rows.append({"kind": _KIND[kind], "grade": str(g), "n": n, "n_patients": total,
                             "pct": 100 * n / total if total else None})
        n_any = known.filter(pl.col(col) > 0).height
        rows.append({"kind": _KIND[kind], "grade": "any (>=1)", "n": n_any, "n_patients": total,
                     "pct": 100 * n_any / total if total else None})
        n_3 = known.filter(pl.col(col) >= 3).height
        rows.append({"kind": _KIND[kind], "grade": ">=3", "n": n_3, "n_patients": total,
                     "pct": 100 * n_3 / total if total else None})
    schema = {"kind": pl.String, "grade": pl.String, "n": pl.Int64, "n_patients": pl.Int64,
              "pct": pl.Float64}
    return pl.DataFrame(rows, schema=schema)


def onset_duration(crs: pl.DataFrame, *, kinds: Iterable[str] = ("crs", "icans")
                   ) -> pl.DataFrame:
    """Onset day and duration among patients with the syndrome (max grade >= 1): kind,
    n_with, onset_median, onset_min, onset_max, duration_median, duration_min, duration_max."""
    frames = []
    for kind in kinds:
        if f"{kind}_max_grade" not in crs.columns:
            continue
        with_it = crs.filter(pl.col(f"{kind}_max_grade") >= 1)
        on, du = pl.col(f"{kind}_onset_day"), pl.col(f"{kind}_duration_days")
        frames.append(with_it.select(
            pl.lit(_KIND[kind]).alias("kind"), pl.len().cast(pl.Int64).alias("n_with"),
            on.median().alias("onset_median"), on.min().cast(pl.Int64).alias("onset_min"),
            on.max().cast(pl.Int64).alias("onset_max"), du.median().alias("duration_median"),
            du.min().cast(pl.Int64).alias("duration_min"),
            du.max().cast(pl.Int64).alias("duration_max")))
    schema = {"kind": pl.String, "n_with": pl.Int64, "onset_median": pl.Float64,
              "onset_min": pl.Int64, "onset_max": pl.Int64, "duration_median": pl.Float64,
              "duration_min": pl.Int64, "duration_max": pl.Int64}
    return pl.concat([f.cast(schema) for f in frames]) if frames else pl.DataFrame(schema=schema)


# ---- ASTCT grade from vitals -----------------------------------------------------------------
_DAILY_SCHEMA = {"subject_id": pl.String, "day": pl.Int64, "temp_max": pl.Float64,
                 "sbp_min": pl.Float64, "vasopressors": pl.Float64, "o2_lpm": pl.Float64,
                 "fever": pl.Boolean, "hypotension_grade": pl.Int64, "hypoxia_grade": pl.Int64,
                 "derived_grade": pl.Int64, "basis": pl.String, "graded": pl.Boolean,
                 "fever_masked": pl.Boolean, "reason": pl.String}
MASKING_DRUGS = ("tocilizumab", "corticosteroid")
_EVENT_SCHEMA = {"subject_id": pl.String, "day": pl.Int64, "category": pl.String,
                 "end_day": pl.Int64, "term": pl.String, "grade": pl.Int64,
                 "product": pl.String}


def _events_frame(events: pl.DataFrame | None) -> pl.DataFrame:
    if events is None or events.height == 0:
        return pl.DataFrame(schema=_EVENT_SCHEMA)
    missing = [pl.lit(None, t).alias(c) for c, t in _EVENT_SCHEMA.items()
               if c not in events.columns]
    return events.with_columns(missing).select(list(_EVENT_SCHEMA)).cast(_EVENT_SCHEMA)


def masking_drugs(events: pl.DataFrame | None) -> pl.DataFrame:
    """Tocilizumab and corticosteroid doses (medication events; the class from `product`, or
    from the term when it is empty): subject_id, day, end_day, drug (class), term."""
    from data_loaders.schema import medication_class_expr

    ev = _events_frame(events).filter(pl.col("category") == "medication")
    ev = ev.with_columns(drug=pl.coalesce(pl.col("product").str.to_lowercase(),
                                          medication_class_expr(pl.col("term").fill_null(""))))
    return (ev.filter(pl.col("drug").is_in(list(MASKING_DRUGS)))
            .select("subject_id", "day", pl.coalesce("end_day", "day").alias("end_day"),
                    "drug", "term").sort("subject_id", "day"))


def _covering(keys: pl.DataFrame, spans: pl.DataFrame, *, label: pl.Expr) -> pl.DataFrame:
    """For each (subject_id, day) of `keys` covered by a span (subject_id, lo, hi): the labels
    of the covering spans joined by '; ' (column `label`)."""
    if spans.height == 0:
        return keys.with_columns(label=pl.lit(None, pl.String))
    hit = (keys.join(spans, on="subject_id", how="inner")
           .filter((pl.col("day") >= pl.col("lo")) & (pl.col("day") <= pl.col("hi")))
           .group_by("subject_id", "day")
           .agg(label.unique(maintain_order=True).str.join("; ").alias("label")))
    return keys.join(hit, on=["subject_id", "day"], how="left")


def astct_daily_grades(measurements: pl.DataFrame, *, events: pl.DataFrame | None = None,
                       from_day: int = 0, fever_carry_days: int | None = None,
                       rules: Rules | None = None) -> pl.DataFrame:
    """ASTCT 2019 CRS grade per patient and day from vitals (TEMP, SBP, O2_LPM, VASOPRESSORS),
    graded only where CRS can be: subject_id, day, temp_max, sbp_min, vasopressors, o2_lpm,
    fever, hypotension_grade, hypoxia_grade, derived_grade (null when the day is not graded),
    basis (what the grade rests on), graded, fever_masked, reason (why the day was or was not
    graded).

    A day is graded when it lies in the CRS window (day 0 to `crs_window_end`, or within
    `crs_episode_margin` days of a recorded CRS episode) and is not a day of a documented
    infection without a recorded CRS episode (a fever then is the infection's, e.g. febrile
    neutropenia). With `crs_masked_fever`, once a patient has CRS (a febrile graded day or a
    recorded episode) and then receives tocilizumab or a corticosteroid (medication events,
    `events`), fever is no longer required for the rest of the window: hypotension and
    hypoxia grade on their own (ASTCT 2019). `fever_carry_days` (default the rule setting
    `crs_fever_carry_days`) lets a febrile day count for that many following days."""
    rules = rules if rules is not None else DEFAULT_RULES
    carry = rules.crs_fever_carry_days if fever_carry_days is None else int(fever_carry_days)
    fever_c, sbp_cut = rules.crs_fever_c, rules.crs_hypotension_sbp
    low_flow, margin, end = rules.crs_low_flow_max_lpm, rules.crs_episode_margin, \
        rules.crs_window_end
    v = measurements.filter(pl.col("analyte").is_in(list(VITALS)) & (pl.col("day") >= from_day)
                            & pl.col("value").is_not_null())
    if v.height == 0 or "TEMP" not in set(v.get_column("analyte").to_list()):
        return pl.DataFrame(schema=_DAILY_SCHEMA)
    ev = _events_frame(events)
    day = v.group_by(["subject_id", "day"]).agg(
        pl.col("value").filter(pl.col("analyte") == "TEMP").max().alias("temp_max"),
        pl.col("value").filter(pl.col("analyte") == "SBP").min().alias("sbp_min"),
        pl.col("value").filter(pl.col("analyte") == "VASOPRESSORS").max().alias("vasopressors"),
        pl.col("value").filter(pl.col("analyte") == "O2_LPM").max().alias("o2_lpm"),
    ).sort(["subject_id", "day"])
    keys = day.select("subject_id", "day")

    # where CRS can be: the window after infusion, recorded episodes (+/- margin), infections
    crs_ep = toxicity_episodes(ev, kinds=("crs",))
    around = _covering(keys, crs_ep.select(
        "subject_id", (pl.col("start") - margin).alias("lo"), (pl.col("end") + margin)
        .alias("hi"), "start", "end"), label=pl.format("recorded CRS days {}-{}", "start", "end"))
    on_episode = _covering(keys, crs_ep.select("subject_id", pl.col("start").alias("lo"),
                                               pl.col("end").alias("hi")),
                           label=pl.lit("recorded CRS"))
    inf = ev.filter(pl.col("category") == "infection").select(
        "subject_id", pl.col("day").alias("lo"), pl.coalesce("end_day", "day").alias("hi"),
        pl.coalesce("term", pl.lit("infection")).alias("term"))
    infection = _covering(keys, inf, label=pl.format("{} (days {}-{})", "term", "lo", "hi"))
    day = (day.join(around.rename({"label": "_episode"}), on=["subject_id", "day"], how="left")
           .join(on_episode.rename({"label": "_on_episode"}), on=["subject_id", "day"],
                 how="left")
           .join(infection.rename({"label": "_infection"}), on=["subject_id", "day"],
                 how="left"))
    in_window = ((pl.col("day") >= 0) & (pl.col("day") <= end)) | pl.col("_episode").is_not_null()
    infected = pl.col("_infection").is_not_null() & pl.col("_on_episode").is_null()
    day = day.with_columns(graded=in_window & ~infected, _in_window=in_window,
                           _infected=infected)

    febrile = (pl.col("temp_max") >= fever_c).fill_null(False)
    vaso = pl.col("vasopressors").fill_null(0)
    hypotension = (pl.when(vaso >= 2).then(4).when(vaso >= 1).then(3)
                   .when(pl.col("sbp_min") < sbp_cut).then(2).otherwise(0))
    o2 = pl.col("o2_lpm").fill_null(0)
    hypoxia = (pl.when(o2 > low_flow).then(3).when(o2 > 0).then(2).otherwise(0))
    last_fever = pl.when(febrile & pl.col("graded")).then(pl.col("day")).otherwise(None) \
        .forward_fill().over("subject_id")
    day = day.with_columns(
        fever=febrile,
        _carried=(~febrile) & last_fever.is_not_null()
        & (pl.col("day") - last_fever <= carry) & (carry > 0),
        hypotension_grade=hypotension.cast(pl.Int64),
        hypoxia_grade=hypoxia.cast(pl.Int64),
    )
    day = _with_masking(day, ev, enabled=rules.crs_masked_fever)
    organ = pl.max_horizontal("hypotension_grade", "hypoxia_grade")
    excused = pl.col("_carried") | pl.col("fever_masked")
    unknown = pl.col("temp_max").is_null() & ~excused
    grade = (pl.when(~pl.col("graded") | unknown).then(None)
             .when(pl.col("fever")).then(pl.max_horizontal(pl.lit(1), organ))
             .when(excused & (organ > 0)).then(organ).otherwise(0))
    day = day.with_columns(derived_grade=grade.cast(pl.Int64))
    window_text = f"in the CRS window (days 0-{end})"
    day = day.with_columns(
        basis=pl.when(pl.col("graded")).then(_basis(fever_c)).otherwise(None),
        reason=pl.when(~pl.col("_in_window"))
        .then(pl.lit(f"outside the CRS window (days 0-{end}, recorded CRS episodes "
                     f"+/- {margin} d)"))
        .when(pl.col("_infected"))
        .then(pl.format("documented infection without a CRS record: {}", pl.col("_infection")))
        .when(unknown).then(pl.lit("no temperature recorded"))
        .when((pl.col("day") >= 0) & (pl.col("day") <= end)).then(pl.lit(window_text))
        .otherwise(pl.format("around {}", pl.col("_episode"))),
    )
    return day.select(list(_DAILY_SCHEMA)).cast(_DAILY_SCHEMA)


def _with_masking(day: pl.DataFrame, events: pl.DataFrame, *, enabled: bool) -> pl.DataFrame:
    """fever_masked (and _mask_drug): the graded days from the first tocilizumab/steroid dose
    given once the patient had CRS (a febrile graded day up to the dose day, or a recorded
    CRS episode that began by then)."""
    drugs = masking_drugs(events)
    if not enabled or drugs.height == 0:
        return day.with_columns(fever_masked=pl.lit(False), _mask_drug=pl.lit(None, pl.String))
    first_fever = (day.filter(pl.col("fever") & pl.col("graded")).group_by("subject_id")
                   .agg(pl.col("day").min().alias("_ff")))
    first_ep = (toxicity_episodes(events, kinds=("crs",)).group_by("subject_id")
                .agg(pl.col("start").min().alias("_fe")))
    onset = first_fever.join(first_ep, on="subject_id", how="full", coalesce=True).select(
        "subject_id", pl.min_horizontal("_ff", "_fe").alias("_onset"))
    start = (drugs.join(onset, on="subject_id", how="inner")
             .filter(pl.col("day") >= pl.col("_onset"))
             .sort("subject_id", "day").group_by("subject_id", maintain_order=True)
             .agg(pl.col("day").first().alias("_mask_from"),
                  pl.format("{} day {}", pl.col("drug"), pl.col("day")).first()
                  .alias("_mask_drug")))
    out = day.join(start, on="subject_id", how="left")
    return out.with_columns(
        fever_masked=(pl.col("graded") & pl.col("_mask_from").is_not_null()
                      & (pl.col("day") >= pl.col("_mask_from")) & ~pl.col("fever"))
        .fill_null(False))


def _basis(fever_c: float = FEVER_C) -> pl.Expr:
    parts = pl.concat_str([
        pl.when(pl.col("fever")).then(pl.format("fever {} C", pl.col("temp_max")))
        .when(pl.col("fever_masked")).then(pl.format("fever not required after {}",
                                                     pl.col("_mask_drug")))
        .when(pl.col("_carried")).then(pl.lit("fever masked (carried)")).otherwise(None),
        pl.when(pl.col("hypotension_grade") == 4)
        .then(pl.format("{} vasopressors", pl.col("vasopressors").cast(pl.Int64)))
        .when(pl.col("hypotension_grade") == 3).then(pl.lit("1 vasopressor"))
        .when(pl.col("hypotension_grade") == 2).then(pl.format("SBP {}", pl.col("sbp_min")))
        .otherwise(None),
        pl.when(pl.col("hypoxia_grade") == 3).then(pl.format("O2 {} L/min (high-flow)",
                                                            pl.col("o2_lpm")))
        .when(pl.col("hypoxia_grade") == 2).then(pl.format("O2 {} L/min (low-flow)",
                                                          pl.col("o2_lpm")))
        .otherwise(None),
    ], separator="; ", ignore_nulls=True)
    return (pl.when(pl.col("derived_grade").is_null())
            .then(pl.lit("no temperature recorded"))
            .when((pl.col("derived_grade") == 0) & pl.col("fever_masked"))
            .then(pl.format("fever not required after {}; no hypotension or hypoxia",
                            pl.col("_mask_drug")))
            .when(pl.col("derived_grade") == 0).then(pl.lit(f"no fever (< {fever_c:g} C)"))
            .otherwise(parts))


def astct_comparison(measurements: pl.DataFrame, *, events: pl.DataFrame,
                     fever_carry_days: int | None = None, rules: Rules | None = None
                     ) -> pl.DataFrame:
    """Per patient with vitals: crs_derived_max_grade (ASTCT from vitals), crs_recorded_max_grade
    (from events), crs_grade_agrees, derived_days (days with derived grade >= 1),
    recorded_days (days inside recorded CRS episodes), disagreement_days (days with CRS by one
    and not the other; the recorded grade is per episode, so grades are compared as maxima)
    and note. Only graded days count (astct_daily_grades: the CRS window, infections)."""
    daily = astct_daily_grades(measurements, events=events, fever_carry_days=fever_carry_days,
                               rules=rules)
    schema = {"subject_id": pl.String, "crs_derived_max_grade": pl.Int64,
              "crs_recorded_max_grade": pl.Int64, "crs_grade_agrees": pl.Boolean,
              "derived_days": pl.String, "recorded_days": pl.String,
              "disagreement_days": pl.String, "note": pl.String}
    if daily.height == 0:
        return pl.DataFrame(schema=schema)
    daily = _with_recorded_daily(daily, events)

    def days(cond: pl.Expr) -> pl.Expr:
        return pl.col("day").filter(cond).cast(pl.String).str.join(", ")

    per = daily.group_by("subject_id").agg(
        pl.col("derived_grade").max().alias("crs_derived_max_grade"),
        days(pl.col("derived_grade") >= 1).alias("derived_days"),
        days(pl.col("recorded_grade") >= 1).alias("recorded_days"),
        days(pl.col("derived_grade").is_not_null()
             & ((pl.col("derived_grade") >= 1) != (pl.col("recorded_grade") >= 1)))
        .alias("disagreement_days"),
        pl.col("day").min().alias("_first"), pl.col("day").max().alias("_last"),
    )
    recorded = (toxicity_episodes(events, kinds=("crs",)).group_by("subject_id")
                .agg(pl.col("grade").max().alias("crs_recorded_max_grade")))
    out = per.join(recorded, on="subject_id", how="left").with_columns(
        pl.col("crs_recorded_max_grade").fill_null(0))
    agrees = pl.col("crs_derived_max_grade") == pl.col("crs_recorded_max_grade")
    out = out.with_columns(crs_grade_agrees=agrees).with_columns(
        note=pl.when(pl.col("crs_derived_max_grade").is_null())
        .then(pl.lit("no graded day: outside the CRS window, infection days or no "
                     "temperature"))
        .when(pl.col("crs_grade_agrees")).then(pl.format("vitals days {}..{}: agrees",
                                                        pl.col("_first"), pl.col("_last")))
        .when(pl.col("crs_derived_max_grade") < pl.col("crs_recorded_max_grade"))
        .then(pl.lit("recorded grade higher: masked fever, positive-pressure O2, vitals "
                     "outside the days recorded, or a grading difference"))
        .otherwise(pl.lit("derived grade higher: check the recorded grade")))
    return out.select(list(schema)).cast(schema).sort("subject_id")


def _with_recorded_daily(daily: pl.DataFrame, events: pl.DataFrame) -> pl.DataFrame:
    """Add recorded_grade (max grade of recorded CRS episodes covering the day, else 0)."""
    ep = toxicity_episodes(events, kinds=("crs",))
    if ep.height == 0:
        return daily.with_columns(recorded_grade=pl.lit(0, dtype=pl.Int64))
    cover = (daily.select("subject_id", "day").join(ep, on="subject_id", how="inner")
             .filter((pl.col("day") >= pl.col("start")) & (pl.col("day") <= pl.col("end")))
             .group_by(["subject_id", "day"]).agg(pl.col("grade").max().alias("recorded_grade")))
    return daily.join(cover, on=["subject_id", "day"], how="left").with_columns(
        pl.col("recorded_grade").fill_null(0).cast(pl.Int64))


# ---- cytokines -------------------------------------------------------------------------------
def cytokine_peaks(measurements: pl.DataFrame, *,
                   analytes: Iterable[str] = (*CYTOKINES, *INFLAMMATION_MARKERS),
                   from_day: int = 0, to_day: int = 28) -> pl.DataFrame:
    """Peak per patient and analyte in days [from_day, to_day]: subject_id, analyte, peak_value,
    peak_day, baseline (last value before from_day), fold_over_baseline, unit, n."""
    m = measurements.filter(pl.col("analyte").is_in(list(analytes))
                            & pl.col("value").is_not_null())
    win = (pl.col("day") >= from_day) & (pl.col("day") <= to_day)
    pre = pl.col("day") < from_day
    schema = {"subject_id": pl.String, "analyte": pl.String, "peak_value": pl.Float64,
              "peak_day": pl.Int64, "baseline": pl.Float64, "fold_over_baseline": pl.Float64,
              "unit": pl.String, "n": pl.Int64}
    if m.height == 0:
        return pl.DataFrame(schema=schema)
    out = m.sort(["subject_id", "analyte", "day"]).group_by(["subject_id", "analyte"]).agg(
        peak_value=pl.col("value").filter(win).max(),
        peak_day=pl.col("day").filter(win).sort_by(pl.col("value").filter(win),
                                                   descending=True).first(),
        baseline=pl.col("value").filter(pre).last(),
        unit=pl.col("unit").first(),
        n=win.sum(),
    ).filter(pl.col("n") > 0).with_columns(
        fold_over_baseline=pl.when(pl.col("baseline") > 0)
        .then(pl.col("peak_value") / pl.col("baseline")).otherwise(None))
    order = {a: i for i, a in enumerate(analytes)}
    return (out.with_columns(_o=pl.col("analyte").replace_strict(order, default=len(order)))
            .sort(["subject_id", "_o"]).select(list(schema)).cast(schema))


@derived_table("cytokine_peaks", "Peak cytokine, ferritin and CRP per patient after infusion",
               options={"to_day": Option(int, 28, "last day of the peak window")})
def cytokine_peaks_table(study: Study, *, to_day: int = 28) -> pl.DataFrame:
    """cytokine_peaks of the study's measurements, with crs_max_grade."""
    peaks = cytokine_peaks(study.measurements, to_day=to_day)
    crs = crs_summary(study.events, subjects=study.subject_ids,
                      events_recorded=study.has("events"))
    return peaks.join(crs.select("subject_id", "crs_max_grade", "icans_max_grade"),
                      on="subject_id", how="left")


# ---- adverse events --------------------------------------------------------------------------
def adverse_event_summary(events: pl.DataFrame, *, n_patients: int,
                          categories: Iterable[str] = AE_CATEGORIES,
                          min_grade: int = 0, term_contains: str = "") -> pl.DataFrame:
    """Per category and term, patients by their worst grade: category, term, n_patients (any
    grade), pct, grade_1..grade_5, grade_unknown, grade_3plus, grade_3plus_pct. Percentages are
    of `n_patients` (all patients in the study or cohort). `term_contains` keeps terms holding
    that text (case-insensitive); `min_grade` keeps patients whose worst grade reaches it."""
    ev = events.filter(pl.col("category").is_in(list(categories)))
    ev = ev.with_columns(pl.coalesce(pl.col("term"), pl.col("category")).alias("term"))
    if term_contains.strip():
        ev = ev.filter(pl.col("term").str.to_lowercase()
                       .str.contains(term_contains.strip().lower(), literal=True))
    worst = (ev.group_by(["category", "term", "subject_id"])
             .agg(pl.col("grade").max().alias("worst")))
    if min_grade > 0:
        worst = worst.filter(pl.col("worst") >= min_grade)
    denom = max(int(n_patients), 1)
    grade_cols = [(pl.col("worst") == g).sum().cast(pl.Int64).alias(f"grade_{g}")
                  for g in range(1, 6)]
    out = worst.group_by(["category", "term"]).agg(
        pl.len().cast(pl.Int64).alias("n_patients"), *grade_cols,
        pl.col("worst").is_null().sum().cast(pl.Int64).alias("grade_unknown"),
        (pl.col("worst") >= 3).sum().cast(pl.Int64).alias("grade_3plus"),
    ).with_columns(pct=100 * pl.col("n_patients") / denom,
                   grade_3plus_pct=100 * pl.col("grade_3plus") / denom)
    cols = ["category", "term", "n_patients", "pct", *[f"grade_{g}" for g in range(1, 6)],
            "grade_unknown", "grade_3plus", "grade_3plus_pct"]
    if out.height == 0:
        schema = {c: (pl.String if c in ("category", "term") else
                      pl.Float64 if c.endswith("pct") else pl.Int64) for c in cols}
        return pl.DataFrame(schema=schema)
    return out.select(cols).sort(["n_patients", "grade_3plus", "term"],
                                 descending=[True, True, False])


@derived_table("adverse_events", "Adverse events, infections, CRS and ICANS by term: patients "
               "by worst grade, % of all patients",
               options={"min_grade": Option(int, 0, "keep patients whose worst grade is at "
                                                    "least this")})
def adverse_events_table(study: Study, *, min_grade: int = 0) -> pl.DataFrame:
    """adverse_event_summary over every patient of the study."""
    return adverse_event_summary(study.events, n_patients=len(study.subject_ids),
                                 min_grade=min_grade)


def infections(events: pl.DataFrame) -> pl.DataFrame:
    """Infections as recorded: subject_id, day, end_day, term, grade."""
    return (events.filter(pl.col("category") == "infection")
            .select("subject_id", "day", "end_day", "term", pl.col("grade").cast(pl.Int64))
            .sort(["subject_id", "day"]))


@derived_table("crs_daily", "ASTCT 2019 CRS grade derived from vitals per patient and day, "
               "graded only in the CRS window and never on infection days without a CRS "
               "record (column reason says why), with the recorded grade covering the day",
               options={"crs_fever_carry_days": Option(
                   int, 0, "days a fever still counts when masked by antipyretics")})
def crs_daily_table(study: Study, *, rules: Rules | None = None) -> pl.DataFrame:
    """astct_daily_grades of the study's vitals and events plus recorded_grade from its CRS
    events."""
    rules = rules if rules is not None else rules_for(study)
    daily = astct_daily_grades(study.measurements, events=study.events, rules=rules)
    return _with_recorded_daily(daily, study.events)


def astct_comparison_table(study: Study, *, rules: Rules | None = None) -> pl.DataFrame:
    """astct_comparison of the study's vitals and events."""
    rules = rules if rules is not None else rules_for(study)
    return astct_comparison(study.measurements, events=study.events, rules=rules)
