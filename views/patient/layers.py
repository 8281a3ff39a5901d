"""The Patient view's lanes: one frame per lane of components.figures.patient.patient_timeline
(course, derived responses, counts, transfusion and medication support, toxicity, CAR-T qPCR
and flow, cytokines, inflammation, samples, somatic VAF, the largest baseline TCR clones), the
x range and everything drawn as one long frame. The analyses are those of the other pages, run
on the one patient: derived responses (analysis.response, NIH or BSH), CRS/ICANS episodes
(analysis.toxicity), somatic VAF tracks (analysis.clones) and the largest baseline TCR clones
followed over time (analysis.repertoire)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import polars as pl

from analysis import clones, kinetics, repertoire, response, toxicity
from analysis.cohort import Cohort
from analysis.rules import rules_for
from analysis.vocab import is_blood
from views.patient.base import SAMPLE_VIEWS, PatientParams, patient_study

if TYPE_CHECKING:
    from data_loaders import Study

__all__ = ["CYTOKINES", "INFLAMMATION", "lanes", "x_range", "long_data", "thresholds"]

CYTOKINES = ("IL6", "IFNG", "IL10", "IL2", "TNFA", "IL2RA")
INFLAMMATION = ("CRP", "FERRITIN")
_ASSAY_LABELS = {"scrna": "single-cell RNA", "flow_fcs": "flow cytometry", "rna": "bulk RNA",
                 "tcr": "TCR repertoire", "mutations": "somatic variants",
                 "proteomics": "proteomics"}
_MED_LABELS = {"tocilizumab": "Tocilizumab", "corticosteroid": "Corticosteroids",
               "ciclosporin": "Ciclosporin", "tpo_ra": "TPO-RA", "g_csf": "G-CSF",
               "anti_infective": "Anti-infectives", "other": "Other medications"}



def _course(one: Study) -> pl.DataFrame:
    rows: list[tuple[str, int, int | None, str, str]] = []
    ev = one.events
    pat = one.patients.row(0, named=True)
    for r in ev.filter(pl.col("category") == "lymphodepletion").iter_rows(named=True):
        rows.append(("Lymphodepletion", r["day"], r["end_day"], "lymphodepletion",
                     f"{r['term'] or 'Lymphodepletion'}: days {r['day']} to "
                     f"{r['end_day'] if r['end_day'] is not None else r['day']}"))
    infusions = ev.filter(pl.col("category") == "infusion")
    for r in infusions.iter_rows(named=True):
        rows.append(("CAR-T infusion", r["day"], None, "infusion",
                     f"{r['term'] or 'CAR-T infusion'}, day {r['day']}"))
    if not infusions.height:
        rows.append(("CAR-T infusion", 0, None, "infusion", "CAR-T infusion, day 0"))
    seen = {("hsct", r["day"]) for r in ev.filter(pl.col("category") == "hsct")
            .iter_rows(named=True)}
    for r in ev.filter(pl.col("category").is_in(["hsct", "progression", "death"])) \
            .iter_rows(named=True):
        label = {"hsct": "HSCT", "progression": "Progression", "death": "Death"}[r["category"]]
        rows.append((label, r["day"], None, r["category"],
                     f"{label}: {r['term'] or ''} (day {r['day']})"))
    for col, cat, label in (("hsct_day", "hsct", "HSCT"),
                            ("progression_day", "progression", "Progression"),
                            ("death_day", "death", "Death")):
        day = pat.get(col)
        if day is not None and not any(r[3] == cat and r[1] == day for r in rows) \
                and (cat, day) not in seen:
            rows.append((label, int(day), None, cat, f"{label} (day {day})"))
    if pat.get("last_contact_day") is not None:
        rows.append(("Last contact", int(pat["last_contact_day"]), None, "last_contact",
                     f"Last contact, day {pat['last_contact_day']}"))
    order = ["Lymphodepletion", "CAR-T infusion", "HSCT", "Progression", "Death",
             "Last contact"]
    return (pl.DataFrame(rows, schema={"row": pl.String, "day": pl.Int64, "end_day": pl.Int64,
                                       "kind": pl.String, "text": pl.String}, orient="row")
            .with_columns(pl.col("row").replace_strict({k: i for i, k in enumerate(order)},
                                                       return_dtype=pl.Int32).alias("_o"))
            .sort("_o", "day").drop("_o"))


def _responses(one: Study, derived: pl.DataFrame, criteria: str) -> pl.DataFrame:
    schema = {"row": pl.String, "day": pl.Int64, "response": pl.String, "text": pl.String}
    d = derived.select(pl.lit(f"Derived ({criteria})").alias("row"), "day",
                       pl.col("category").alias("response"),
                       pl.format("day {}: {}", pl.col("day"), pl.col("rule")).alias("text"))
    rec = one.responses
    r = rec.select(pl.lit("Recorded").alias("row"), "day", "response",
                   pl.format("day {}: recorded {}{}", pl.col("day"), pl.col("response"),
                             pl.when(pl.col("criteria").is_not_null())
                             .then(pl.format(" ({})", pl.col("criteria"))).otherwise(pl.lit("")))
                   .alias("text") if "criteria" in rec.columns else
                   pl.format("day {}: recorded {}", pl.col("day"), pl.col("response"))
                   .alias("text"))
    return pl.concat([d.cast(schema), r.cast(schema)])


def _labelled(one: Study, frame: pl.DataFrame) -> pl.DataFrame:
    labels = {a: one.analyte_label(a) for a in frame.get_column("analyte").unique().to_list()}
    return frame.with_columns(pl.col("analyte").replace_strict(labels, return_dtype=pl.String)
                              .alias("label"))


def _blood(one: Study, analytes: Sequence[str]) -> pl.DataFrame:
    m = one.series(analytes=list(analytes))
    if "tissue" in m.columns:
        m = m.filter(is_blood())
    m = (m.group_by("analyte", "day").agg(pl.col("value").mean(), pl.col("unit").first())
         .sort("analyte", "day"))
    order = {a: i for i, a in enumerate(analytes)}
    m = m.with_columns(pl.col("analyte").replace_strict(order, default=len(order),
                                                        return_dtype=pl.Int32).alias("_o"))
    return _labelled(one, m.sort("_o", "day").drop("_o"))


def _support(one: Study) -> pl.DataFrame:
    schema = {"row": pl.String, "day": pl.Int64, "end_day": pl.Int64, "key": pl.String,
              "text": pl.String}
    ev = one.events
    tr = ev.filter(pl.col("category") == "transfusion").select(
        pl.format("{} transfusion", pl.col("product").fill_null("other")).alias("row"), "day",
        pl.col("end_day").fill_null(pl.col("day")),
        pl.col("product").fill_null("other").alias("key"),
        pl.format("day {}: {}{}", pl.col("day"), pl.col("term").fill_null(pl.col("product")),
                  pl.when(pl.col("units").is_not_null())
                  .then(pl.format(", {} unit(s)", pl.col("units").cast(pl.Int64)))
                  .otherwise(pl.lit(""))).alias("text"))
    med = ev.filter(pl.col("category").is_in(["medication", "growth_factor"])).with_columns(
        pl.when(pl.col("category") == "growth_factor").then(pl.lit("g_csf"))
        .otherwise(pl.col("product").fill_null("other")).alias("key"))
    med = med.select(
        pl.col("key").replace_strict(_MED_LABELS, default=pl.col("key")).alias("row"), "day",
        pl.col("end_day").fill_null(pl.col("day")), "key",
        pl.format("days {}-{}: {}", pl.col("day"), pl.col("end_day").fill_null(pl.col("day")),
                  pl.col("term").fill_null(pl.col("key"))).alias("text"))
    out = pl.concat([tr.cast(schema), med.cast(schema)])
    order = ["RBC transfusion", "PLT transfusion", "other transfusion", "G-CSF", "TPO-RA",
             "Tocilizumab", "Corticosteroids", "Ciclosporin", "Anti-infectives",
             "Other medications"]
    rank = {k: i for i, k in enumerate(order)}
    return (out.with_columns(pl.col("row").replace_strict(rank, default=len(rank),
                                                          return_dtype=pl.Int32).alias("_o"))
            .sort("_o", "day").drop("_o"))


def _toxicity(one: Study) -> pl.DataFrame:
    schema = {"row": pl.String, "day": pl.Int64, "end_day": pl.Int64, "key": pl.String,
              "text": pl.String, "grade": pl.Int64, "kind": pl.String, "label": pl.String}
    ev = one.events
    episodes = toxicity.toxicity_episodes(ev)
    # the loader gives every medication its class in `product` (data_loaders.schema)
    meds = ev.filter(pl.col("category") == "medication").with_columns(
        pl.col("product").fill_null("other").alias("_cls"))
    treat = meds.filter(pl.col("_cls").is_in(["tocilizumab", "corticosteroid"]))
    parts = []
    for ep in episodes.iter_rows(named=True):
        given = treat.filter((pl.col("day") <= ep["end"] + 1)
                             & (pl.col("end_day").fill_null(pl.col("day")) >= ep["start"]))
        names = ", ".join(dict.fromkeys(given.get_column("term").fill_null("").to_list()))
        parts.append({"row": ep["kind"], "day": ep["start"], "end_day": ep["end"],
                      "key": ep["kind"].lower(), "grade": ep["grade"], "kind": "episode",
                      "label": None,
                      "text": f"{ep['kind']} grade {ep['grade']}, days {ep['start']}-"
                              f"{ep['end']}" + (f"; treated with {names}" if names else "")})
    for r in treat.iter_rows(named=True):
        row = "CRS treatment" if r["_cls"] == "tocilizumab" else "Steroids"
        parts.append({"row": row, "day": r["day"], "end_day": r["end_day"] or r["day"],
                      "key": r["_cls"], "grade": None, "kind": "dose",
                      "label": _MED_LABELS[r["_cls"]],
                      "text": f"day {r['day']}: {r['term'] or r['_cls']}"})
    for r in toxicity.infections(ev).iter_rows(named=True):
        parts.append({"row": "Infection", "day": r["day"],
                      "end_day": r["end_day"] if r["end_day"] is not None else r["day"],
                      "key": "infection", "grade": r["grade"], "kind": "episode",
                      "label": None,
                      "text": f"{r['term']}, grade {r['grade'] if r['grade'] is not None else '?'}"
                              f", days {r['day']}-{r['end_day'] if r['end_day'] else r['day']}"})
    if not parts:
        return pl.DataFrame(schema=schema)
    out = pl.DataFrame(parts, schema=schema)
    # doses are drawn on the row of what they treat
    out = out.with_columns(pl.when(pl.col("row") == "CRS treatment").then(pl.lit("CRS"))
                           .when(pl.col("row") == "Steroids")
                           .then(pl.lit("CRS") if "CRS" in out.get_column("row").to_list()
                                 else pl.lit("ICANS"))
                           .otherwise(pl.col("row")).alias("row"))
    rank = {"CRS": 0, "ICANS": 1, "Infection": 2}
    return (out.with_columns(pl.col("row").replace_strict(rank, default=3,
                                                          return_dtype=pl.Int32).alias("_o"))
            .sort("_o", "day").drop("_o"))


def _car(one: Study, analytes: Sequence[str]) -> pl.DataFrame:
    s = kinetics.kinetic_series(one, analytes=analytes)
    labels = {a: one.analyte_label(a) for a in analytes}
    return s.with_columns(pl.col("assay").replace_strict(labels, default=pl.col("assay"))
                          .alias("label"))


def _samples(one: Study) -> pl.DataFrame:
    s = one.samples
    if not s.height:
        return pl.DataFrame(schema={"row": pl.String, "day": pl.Int64, "sample_id": pl.String,
                                    "assay": pl.String, "text": pl.String})
    assay = pl.col("assay").fill_null("other") if "assay" in s.columns else pl.lit("other")
    tissue = pl.col("tissue").fill_null("") if "tissue" in s.columns else pl.lit("")
    tp = pl.col("timepoint").fill_null("") if "timepoint" in s.columns else pl.lit("")
    df = s.with_columns(assay.alias("assay"), tissue.alias("_t"), tp.alias("_tp"))
    labels = {a: _ASSAY_LABELS.get(a, a) for a in df.get_column("assay").unique().to_list()}
    opens = {a: f"<br>click to open in {SAMPLE_VIEWS[a][1]}" for a in labels
             if a in SAMPLE_VIEWS}
    return df.select(
        pl.col("assay").replace_strict(labels, return_dtype=pl.String).alias("row"), "day",
        "sample_id", "assay",
        pl.format("{} ({} {}), day {}{}", pl.col("sample_id"), pl.col("_t"), pl.col("_tp"),
                  pl.col("day"),
                  pl.col("assay").replace_strict(opens, default="", return_dtype=pl.String))
        .alias("text"),
    ).sort("row", "day")


def _vaf(one: Study) -> pl.DataFrame:
    if not one.has("mutations"):
        return pl.DataFrame(schema={"day": pl.Int64, "gene": pl.String, "vaf": pl.Float64})
    t = clones.vaf_tracks(one)
    label = pl.format("{} {}", pl.col("gene"), pl.col("variant").fill_null("")) \
        .str.strip_chars() if "variant" in t.columns else pl.col("gene")
    return t.select("day", label.alias("gene"), pl.col("vaf").fill_null(0.0)).sort("gene", "day")


def _clones(one: Study, top: int) -> pl.DataFrame:
    if not one.has("tcr") or top <= 0:
        return pl.DataFrame(schema={"day": pl.Int64, "clonotype": pl.String,
                                    "frequency": pl.Float64})
    t = repertoire.top_clone_tracking(one, top=top)
    return (t.filter(pl.col("rank") <= top)
            .select("day", pl.format("#{} {}", pl.col("rank"), pl.col("clonotype"))
                    .alias("clonotype"), "frequency").sort("clonotype", "day"))


def thresholds(params: PatientParams, one: Study) -> pl.DataFrame:
    rules = rules_for(one)
    lines = response.reference_lines(criteria=params.criteria,
                                     retic_threshold=rules.retic_threshold)
    rows = [(a, float(v), lab) for a, items in lines.items() for v, lab in items
            if a in params.counts]
    return pl.DataFrame(rows, schema={"analyte": pl.String, "value": pl.Float64,
                                      "label": pl.String}, orient="row")


def lanes(study: Study, *, params: PatientParams) -> dict[str, pl.DataFrame]:
    """One frame per lane of components.figures.patient.patient_timeline (empty frames for
    what the study does not have for this patient)."""
    one = patient_study(study, params.subject_id)
    derived = response.derived_responses(one, criteria=params.criteria) \
        if one.has("measurements") else pl.DataFrame(schema={"day": pl.Int64,
                                                             "category": pl.String,
                                                             "rule": pl.String})
    car = _car(one, kinetics.ASSAYS)
    flow = "CAR_PCT" if car.filter(pl.col("assay") == "CAR_PCT").height else "CAR_ABS"
    return {
        "course": _course(one),
        "response": _responses(one, derived, params.criteria),
        "counts": _blood(one, params.counts),
        "support": _support(one),
        "toxicity": _toxicity(one),
        "car_qpcr": car.filter(pl.col("assay") == "CAR_QPCR"),
        "car_flow": car.filter(pl.col("assay") == flow),
        "cytokines": _blood(one, CYTOKINES),
        "inflammation": _blood(one, INFLAMMATION),
        "samples": _samples(one),
        "vaf": _vaf(one),
        "clones": _clones(one, params.top_clones),
    }


def x_range(frames: dict[str, pl.DataFrame], params: PatientParams,
           cohort: Cohort | None) -> tuple[float, float]:
    days = [f.get_column(c) for f in frames.values() if f.height
            for c in ("day", "end_day") if c in f.columns]
    allv = pl.concat([d.cast(pl.Int64) for d in days]).drop_nulls() if days else \
        pl.Series([0, 28])
    window = params.days.filled(cohort.days if cohort is not None else None)
    lo = window.lo if window.lo is not None else int(allv.min())
    hi = window.hi if window.hi is not None else int(allv.max())
    pad = max(2.0, (hi - lo) * 0.01)
    return (lo - pad, hi + pad)


def long_data(frames: dict[str, pl.DataFrame], subject_id: str) -> pl.DataFrame:
    """Everything drawn, as one long CSV: lane, day, end_day, item, value, detail."""
    parts = []
    for lane, f in frames.items():
        if not f.height:
            continue
        item = next((c for c in ("label", "row", "gene", "clonotype", "assay") if c in f.columns),
                    None)
        value = next((c for c in ("value", "vaf", "frequency", "grade", "response")
                      if c in f.columns), None)
        parts.append(f.select(
            pl.lit(subject_id).alias("subject_id"), pl.lit(lane).alias("lane"),
            pl.col("day").cast(pl.Int64),
            (pl.col("end_day").cast(pl.Int64) if "end_day" in f.columns
             else pl.lit(None, pl.Int64)).alias("end_day"),
            (pl.col(item).cast(pl.String) if item else pl.lit(None, pl.String)).alias("item"),
            (pl.col(value).cast(pl.String) if value else pl.lit(None, pl.String)).alias("value"),
            (pl.col("text").cast(pl.String).str.replace_all("<br>", "; ", literal=True)
             if "text" in f.columns else pl.lit(None, pl.String)).alias("detail")))
    return pl.concat(parts) if parts else pl.DataFrame(
        schema={"subject_id": pl.String, "lane": pl.String, "day": pl.Int64,
                "end_day": pl.Int64, "item": pl.String, "value": pl.String,
                "detail": pl.String})


