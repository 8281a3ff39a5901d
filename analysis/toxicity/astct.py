"""The ASTCT 2019 CRS grade derived per day from vitals (fever, hypotension with vasopressors,
hypoxia by oxygen flow), only where CRS can be (the CRS window, no documented infection), with
masked fever after tocilizumab or corticosteroids; compared with the recorded grade."""

from __future__ import annotations

import polars as pl

from analysis.rules import DEFAULT_RULES, Rules
from analysis.toxicity.episodes import toxicity_episodes

__all__ = ["VITALS", "FEVER_C", "HYPOTENSION_SBP", "LOW_FLOW_MAX_LPM", "astct_daily_grades",
           "astct_comparison", "masking_drugs", "MASKING_DRUGS"]


VITALS = ("TEMP", "SBP", "O2_LPM", "VASOPRESSORS")
FEVER_C = 38.0
HYPOTENSION_SBP = 90.0
LOW_FLOW_MAX_LPM = 6.0


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
    daily = with_recorded_daily(daily, events)

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


def with_recorded_daily(daily: pl.DataFrame, events: pl.DataFrame) -> pl.DataFrame:
    """Add recorded_grade (max grade of recorded CRS episodes covering the day, else 0)."""
    ep = toxicity_episodes(events, kinds=("crs",))
    if ep.height == 0:
        return daily.with_columns(recorded_grade=pl.lit(0, dtype=pl.Int64))
    cover = (daily.select("subject_id", "day").join(ep, on="subject_id", how="inner")
             .filter((pl.col("day") >= pl.col("start")) & (pl.col("day") <= pl.col("end")))
             .group_by(["subject_id", "day"]).agg(pl.col("grade").max().alias("recorded_grade")))
    return daily.join(cover, on=["subject_id", "day"], how="left").with_columns(
        pl.col("recorded_grade").fill_null(0).cast(pl.Int64))
