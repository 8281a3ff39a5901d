"""The Patient view: one patient, every layer of the study on one infusion-aligned time axis.

Recipes (no streamlit) used by pages/patient.py, the patient slide and `cli.py export
--patient-profiles`: each takes the Study, the cohort and a frozen `PatientParams` and returns a
FigureSpec or TableSpec. The analyses are those of the other pages, run on the one patient:
derived responses (analysis.response, NIH or BSH), recovery days (analysis.recovery), CRS/ICANS
episodes and maxima (analysis.toxicity), NCA kinetics (analysis.kinetics), CTCAE v5 grades of
the counts (analysis.recovery.ctcae_grades), somatic VAF tracks (analysis.clones) and the
largest baseline TCR clones followed over time (analysis.repertoire).

A patient's layers come from a one-patient copy of the Study (`patient_study`): every table
filtered to the patient, with its own cache key, so analyses cost the same on a 5- or a
200-patient study.

One job, the Patient page's recipes; the module is long because a patient has twelve layers,
each with its own frame (`lanes`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal

import polars as pl

from analysis import clones, kinetics, post_hsct, recovery, repertoire, response, toxicity
from analysis.cohort import Cohort
from analysis.rules import rules_for
from analysis.vocab import is_blood
from components.figures.patient import cohort_strip, lanes_shown, patient_timeline
from views.spec import FigureSpec, TableSpec, recipe

if TYPE_CHECKING:
    from data_loaders import Study

__all__ = ["PatientParams", "SAMPLE_VIEWS", "patient_study", "patient_order", "neighbours",
           "lanes", "timeline", "header", "header_line", "laboratory", "laboratory_wide",
           "cohort_picker", "sample_view", "profile_slides", "slide", "SLIDE_LANES",
           "selected_subject",
           "selected_sample"]

Criteria = Literal["NIH", "BSH"]
COUNTS = ("ANC", "PLT", "HGB")
CYTOKINES = ("IL6", "IFNG", "IL10", "IL2", "TNFA", "IL2RA")
INFLAMMATION = ("CRP", "FERRITIN")
# a slide has 720 px: the course (as lines), counts, support, toxicity, CAR-T and cytokines
SLIDE_LANES = ("course", "counts", "support", "toxicity", "car_qpcr", "cytokines")
LAB_ANALYTES = ("WBC", "ANC", "ALC", "AMC", "HGB", "PLT", "RETIC", "CRP", "FERRITIN", "LDH")
# samples.assay -> (page file stem, what it shows) for "open this sample"
SAMPLE_VIEWS: dict[str, tuple[str, str]] = {
    "scrna": ("immune_landscape", "Immune landscape (single-cell)"),
    "single_cell": ("immune_landscape", "Immune landscape (single-cell)"),
    "flow_fcs": ("immune_landscape", "Immune landscape (flow cytometry)"),
    "proteomics": ("compare", "Responders vs non-responders (proteomics)"),
    "rna": ("compare", "Responders vs non-responders (bulk RNA)"),
    "tcr": ("clones", "Clones & repertoire"),
    "mutations": ("clones", "Clones & repertoire (somatic variants)"),
}
_ASSAY_LABELS = {"scrna": "single-cell RNA", "flow_fcs": "flow cytometry", "rna": "bulk RNA",
                 "tcr": "TCR repertoire", "mutations": "somatic variants",
                 "proteomics": "proteomics"}
_MED_LABELS = {"tocilizumab": "Tocilizumab", "corticosteroid": "Corticosteroids",
               "ciclosporin": "Ciclosporin", "tpo_ra": "TPO-RA", "g_csf": "G-CSF",
               "anti_infective": "Anti-infectives", "other": "Other medications"}


@dataclass(frozen=True)
class PatientParams:
    """What the Patient view draws. `day_min`/`day_max` limit the x axis (None: the whole
    course); `criteria` is the response rule for the derived responses; `counts` the blood
    counts drawn; `top_clones` how many baseline TCR clones are followed; `lanes` which lanes
    (components.figures.patient.LANES) are drawn, empty for every lane with data."""

    subject_id: str
    criteria: Criteria = "NIH"
    counts: tuple[str, ...] = COUNTS
    top_clones: int = 5
    day_min: int | None = None
    day_max: int | None = None
    lanes: tuple[str, ...] = ()


# ---- the patient's slice of the study ------------------------------------------------------
def patient_study(study: Study, subject_id: str) -> Study:
    """The Study restricted to one patient (a new read-only Study with its own cache key)."""
    if subject_id not in study.subject_ids:
        raise KeyError(f"patient {subject_id!r} is not in study {study.study_id!r}")
    keep = pl.col("subject_id") == subject_id
    samples = study.samples.filter(keep)
    ids = samples.get_column("sample_id").implode()
    by_sample = pl.col("sample_id").is_in(ids)
    rna = study.rna_counts
    if rna.width > 1:
        wanted = set(samples.get_column("sample_id").to_list())
        rna = rna.select(rna.columns[0], *[c for c in rna.columns[1:] if c in wanted])
    return replace(study, fingerprint=f"{study.fingerprint}|patient={subject_id}",
                   patients=study.patients.filter(keep),
                   measurements=study.measurements.filter(keep),
                   events=study.events.filter(keep), responses=study.responses.filter(keep),
                   samples=samples, proteomics=study.proteomics.filter(by_sample),
                   mutations=study.mutations.filter(by_sample), tcr=study.tcr.filter(by_sample),
                   rna_counts=rna)


def patient_order(study: Study, *, cohort: Cohort | None = None,
                  subjects: Sequence[str] | None = None) -> list[str]:
    """The patients to step through: `subjects` (the cohort's patients, as the sidebar
    computed them) in study order, else all; a named-patient cohort keeps its patients."""
    ids = study.subject_ids
    if subjects is not None:
        keep = set(subjects)
        return [s for s in ids if s in keep]
    if cohort is not None and cohort.subjects:
        return [s for s in ids if s in set(cohort.subjects)]
    return list(ids)


def neighbours(order: Sequence[str], current: str) -> tuple[str | None, str | None]:
    """(previous, next) patient around `current` in `order` (None at the ends)."""
    if current not in order:
        return None, (order[0] if order else None)
    i = list(order).index(current)
    return (order[i - 1] if i > 0 else None, order[i + 1] if i + 1 < len(order) else None)


# ---- lanes -------------------------------------------------------------------------------------
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


def _thresholds(params: PatientParams, one: Study) -> pl.DataFrame:
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


def _range(frames: dict[str, pl.DataFrame], params: PatientParams,
           cohort: Cohort | None) -> tuple[float, float]:
    days = [f.get_column(c) for f in frames.values() if f.height
            for c in ("day", "end_day") if c in f.columns]
    allv = pl.concat([d.cast(pl.Int64) for d in days]).drop_nulls() if days else \
        pl.Series([0, 28])
    lo = params.day_min if params.day_min is not None else (
        cohort.day_min if cohort is not None and cohort.day_min is not None else int(allv.min()))
    hi = params.day_max if params.day_max is not None else (
        cohort.day_max if cohort is not None and cohort.day_max is not None else int(allv.max()))
    pad = max(2.0, (hi - lo) * 0.01)
    return (lo - pad, hi + pad)


def _long_data(frames: dict[str, pl.DataFrame], subject_id: str) -> pl.DataFrame:
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


@recipe
def slide(study: Study, *, cohort: Cohort | None = None, params: PatientParams,
          focus: Any = None) -> FigureSpec:
    """The patient's view as one 16:9 slide: the lanes the page shows (those chosen in
    `params`, else every lane with data), drawn compact (two columns of lanes on one day
    axis, the course as lines, no legends), the header facts as caption."""
    spec = timeline(study, cohort=cohort, params=params, focus=focus, compact=True)
    facts = header(study, params=params).data
    caption = " · ".join(f"{r['item']}: {r['value']}" for r in facts.iter_rows(named=True)
                         if r["section"] in ("Response", "Recovery", "Toxicity"))
    return replace(spec, params=params, caption=caption)


@recipe
def timeline(study: Study, *, cohort: Cohort | None = None, params: PatientParams,
             focus: Any = None, compact: bool = False) -> FigureSpec:
    """The stacked-lane figure of one patient. `focus` (a shared selection with `subjects`,
    `day_min`, `day_max`) shades its day window when it includes this patient; `compact`
    draws it for a slide (components.figures.patient.patient_timeline)."""
    frames = lanes(study, params=params)
    if params.lanes:
        frames = {k: (v if k.split("_fit")[0] in params.lanes else v.clear())
                  for k, v in frames.items()}
    one = patient_study(study, params.subject_id)
    title = f"{params.subject_id}: {header_line(study, params=params, one=one)}"
    fig = patient_timeline(frames, thresholds=_thresholds(params, one), title=title,
                           range_x=_range(frames, params, cohort), compact=compact)
    if focus is not None and params.subject_id in getattr(focus, "subjects", ()) and \
            (focus.day_min is not None or focus.day_max is not None):
        lo = focus.day_min if focus.day_min is not None else fig.layout.xaxis.range[0]
        hi = focus.day_max if focus.day_max is not None else fig.layout.xaxis.range[1]
        fig.add_vrect(x0=lo - 0.5, x1=hi + 0.5, fillcolor="#F0E442", opacity=0.25,
                      line={"width": 0}, layer="below")
    shown = lanes_shown(frames)
    return FigureSpec(key=f"patient-{params.subject_id}", title=f"Patient {params.subject_id}",
                      fig=fig, data=_long_data(frames, params.subject_id), params=params,
                      caption="Lanes: " + ", ".join(shown))


# ---- header ------------------------------------------------------------------------------------
def _fmt(v: Any, unit: str = "") -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        text = f"{v:.3g}" if abs(v) < 1000 else f"{v:,.0f}"
        return f"{text}{unit}"
    return f"{v}{unit}"


_TABLE1 = (("age", "Age", " y"), ("sex", "Sex", ""), ("diagnosis", "Diagnosis", ""),
           ("disease_duration_months", "Disease duration", " months"),
           ("prior_therapy", "Prior therapy", ""), ("pnh_clone_pct", "PNH clone", " %"),
           ("marrow_cellularity_pct", "Marrow cellularity", " %"),
           ("weight_kg", "Weight", " kg"), ("dose_per_kg", "CAR-T dose", " cells/kg"),
           ("infusion_date", "Infusion date", ""))


@recipe
def header(study: Study, *, cohort: Cohort | None = None, params: PatientParams,
           focus: Any = None, one: Study | None = None) -> TableSpec:
    """The patient's facts: Table-1 items, baseline severity, best response, recovery days,
    CRS/ICANS maxima, CAR-T kinetics (NCA) and the course (section, item, value). `one` is
    the patient's slice when the caller has made it already."""
    one = one if one is not None else patient_study(study, params.subject_id)
    pat = one.patients.row(0, named=True)
    rows: list[tuple[str, str, str]] = []
    for col, label, unit in _TABLE1:
        if col in pat and pat[col] is not None:
            value = pat[col]
            if col == "dose_per_kg" and isinstance(value, (int, float)):
                rows.append(("Patient", label, f"{value:.2g} cells/kg"))
            else:
                rows.append(("Patient", label, _fmt(value, unit)))
    rules = rules_for(one)
    if one.has("measurements"):
        sev = response.baseline_severity(one, retic_threshold=rules.retic_threshold)
        if sev.height:
            rows.append(("Baseline", "Severity (modified Camitta)", str(sev.get_column("rule")[0])))
        best = response.best_response(one, criteria=params.criteria)
        b = best.row(0, named=True)
        rows.append(("Response", f"Best response ({params.criteria})",
                     b["best_response"] + (f" (day {b['best_response_day']})"
                                           if b["best_response_day"] is not None else "")))
        rec = one.responses
        if rec.height:
            rows.append(("Response", "Recorded responses",
                         ", ".join(f"d{d} {r}" for d, r in rec.select("day", "response")
                                   .sort("day").iter_rows())))
        rt = recovery.recovery_table(one)
        if rt.height:
            r = rt.row(0, named=True)
            for col, label in (("anc_recovery_day", "Neutrophil recovery (ANC >= 0.5 x3)"),
                               ("plt_recovery_day", "Platelet recovery (PLT >= 20 x3)"),
                               ("transfusion_independence_day", "Transfusion independence")):
                if col in r:
                    rows.append(("Recovery", label, "not reached" if r[col] is None
                                 else f"day {r[col]}"))
    crs = toxicity.crs_summary(one.events, subjects=[params.subject_id])
    if crs.height:
        c = crs.row(0, named=True)
        for kind in ("crs", "icans"):
            grade = c.get(f"{kind}_max_grade")
            onset = c.get(f"{kind}_onset_day")
            dur = c.get(f"{kind}_duration_days")
            rows.append(("Toxicity", f"{kind.upper()} max grade (ASTCT)",
                         "none" if not grade else
                         f"grade {grade}, onset day {onset}, {dur} day(s)"))
    kin = kinetics.kinetic_parameters(kinetics.kinetic_series(one, analytes=["CAR_QPCR"]),
                                      hsct=post_hsct.hsct_days(one))
    if kin.height:
        k = kin.row(0, named=True)
        auc = kinetics.auc_column()
        rows.append(("CAR-T kinetics", "Cmax (qPCR)", _fmt(k["cmax"], " copies/µg")))
        rows.append(("CAR-T kinetics", "Tmax", _fmt(k["tmax"], " d")))
        rows.append(("CAR-T kinetics", "AUC0-28", _fmt(k.get(auc), " copies/µg x d")))
        rows.append(("CAR-T kinetics", "Tlast (>= LLOQ)", _fmt(k["tlast"], " d")))
    course = []
    for col, label in (("hsct_day", "HSCT"), ("progression_day", "progression"),
                       ("death_day", "death")):
        if pat.get(col) is not None:
            course.append(f"{label} day {pat[col]}")
    if pat.get("last_contact_day") is not None:
        course.append(f"last contact day {pat['last_contact_day']}")
    if course:
        rows.append(("Course", "Events", "; ".join(course)))
    data = pl.DataFrame(rows, schema={"section": pl.String, "item": pl.String,
                                      "value": pl.String}, orient="row")
    return TableSpec(key=f"patient-header-{params.subject_id}",
                     title=f"Patient {params.subject_id}", data=data, params=params)


def header_line(study: Study, *, params: PatientParams, one: Study | None = None) -> str:
    """One line for titles: age/sex, diagnosis, best response, CRS/ICANS maxima."""
    facts = {(r["section"], r["item"]): r["value"] for r in
             header(study, params=params, one=one).data.iter_rows(named=True)}
    bits = []
    age, sex = facts.get(("Patient", "Age")), facts.get(("Patient", "Sex"))
    if age or sex:
        bits.append(" ".join(x for x in (age, sex) if x))
    if facts.get(("Patient", "Diagnosis")):
        bits.append(facts[("Patient", "Diagnosis")])
    best = facts.get(("Response", f"Best response ({params.criteria})"))
    if best:
        bits.append(f"best {best}")
    for kind in ("CRS", "ICANS"):
        v = facts.get(("Toxicity", f"{kind} max grade (ASTCT)"))
        if v:
            bits.append(f"{kind} {'none' if v == 'none' else v.split(',')[0]}")
    return " · ".join(bits)


# ---- laboratory listing ------------------------------------------------------------------------
@recipe
def laboratory(study: Study, *, cohort: Cohort | None = None, params: PatientParams,
               focus: Any = None) -> TableSpec:
    """Laboratory listing (teal `tm_t_pp_laboratory` style): day, analyte, value, unit, CTCAE
    v5 term and grade (counts graded by analysis.recovery.ctcae_grades; 0 = within normal)."""
    one = patient_study(study, params.subject_id)
    m = one.series(analytes=list(LAB_ANALYTES))
    if "tissue" in m.columns:
        m = m.filter(is_blood())
    m = m.group_by("analyte", "day").agg(pl.col("value").mean(), pl.col("unit").first())
    sex = one.patients.select("subject_id", "sex") if "sex" in one.patients.columns else None
    graded = recovery.ctcae_grades(one.measurements, sex=sex).group_by("analyte", "day").agg(
        pl.col("term").first(), pl.col("grade").max())
    out = (m.join(graded, on=["analyte", "day"], how="left")
           .with_columns(pl.col("analyte").replace_strict(
               {a: i for i, a in enumerate(LAB_ANALYTES)}, default=99,
               return_dtype=pl.Int32).alias("_o"))
           .sort("_o", "day").drop("_o")
           .select("day", "analyte", "value", "unit", pl.col("term").alias("ctcae_term"),
                   pl.col("grade").alias("ctcae_grade")))
    if params.day_min is not None:
        out = out.filter(pl.col("day") >= params.day_min)
    if params.day_max is not None:
        out = out.filter(pl.col("day") <= params.day_max)
    return TableSpec(key=f"patient-lab-{params.subject_id}",
                     title=f"Laboratory listing {params.subject_id}", data=out, params=params,
                     caption="CTCAE v5 grades for ANC, PLT, HGB and ALC (0 = at or above the "
                             "lower limit of normal); other analytes are not graded by count.")


def laboratory_wide(listing: pl.DataFrame) -> pl.DataFrame:
    """The listing as analyte x day (columns "d-5", "d0", ...), each cell "value" or
    "value (G3)" where a CTCAE grade >= 1 applies."""
    if not listing.height:
        return pl.DataFrame(schema={"analyte": pl.String})
    cell = listing.with_columns(
        pl.when(pl.col("ctcae_grade").fill_null(0) >= 1)
        .then(pl.format("{} (G{})", pl.col("value").round_sig_figs(3), pl.col("ctcae_grade")))
        .otherwise(pl.col("value").round_sig_figs(3).cast(pl.String)).alias("cell"),
        pl.format("d{}", pl.col("day")).alias("visit"),
        pl.format("{} ({})", pl.col("analyte"), pl.col("unit").fill_null("")).alias("test"))
    days = cell.select("day", "visit").unique().sort("day").get_column("visit").to_list()
    wide = cell.pivot(on="visit", index="test", values="cell", aggregate_function="first")
    return wide.select("test", *[d for d in days if d in wide.columns]).rename(
        {"test": "analyte"})


# ---- picking a patient and opening samples -----------------------------------------------------
@recipe
def cohort_picker(study: Study, *, cohort: Cohort | None = None, params: PatientParams,
                  subjects: Sequence[str] | None = None, groups: pl.DataFrame | None = None,
                  focus: Any = None) -> FigureSpec:
    """A strip of the cohort's patients (follow-up, coloured by best response); a click picks
    one (customdata holds the subject_id). `groups` (analysis.cohort.response_groups, as the
    sidebar has them) gives the best responses; without it they are derived here."""
    order = patient_order(study, cohort=cohort, subjects=subjects)
    pts = study.patients.filter(pl.col("subject_id").is_in(order))
    if groups is not None and "best_response" in groups.columns:
        best = groups.select("subject_id", "best_response")
    elif study.has("measurements"):
        best = response.best_response(study, criteria=params.criteria)
    else:
        best = pts.select("subject_id").with_columns(pl.lit("NE").alias("best_response"))
    end = pl.col("last_contact_day") if "last_contact_day" in pts.columns else pl.lit(None)
    day_max = study.measurements.group_by("subject_id").agg(pl.col("day").max().alias("_m"))
    df = (pts.select("subject_id", end.alias("_end"))
          .join(day_max, on="subject_id", how="left")
          .join(best.select("subject_id", "best_response"), on="subject_id", how="left")
          .select("subject_id", pl.lit(0).alias("start"),
                  pl.coalesce("_end", "_m", pl.lit(0)).cast(pl.Int64).alias("end"),
                  pl.col("best_response").fill_null("NE")))
    fig = cohort_strip(df, selected=params.subject_id,
                       title="Patients (click one to open it)")
    return FigureSpec(key="patient-picker", title="Patients", fig=fig, data=df, params=params)


def sample_view(study: Study, sample_id: str
                ) -> tuple[str, str, dict[str, Any], dict[str, Any]] | None:
    """Where a sample opens: (page stem, label, focus fields: subjects, day_min, day_max,
    label, widget presets of the target page), or None when no page shows that assay.

    The focus (patient and day of the sample) is what the target page highlights; the presets
    are widget values of that page (its widget keys) that put the sample in view: the
    embedding coloured by the focus, the repertoire of the sample's patient."""
    s = study.samples.filter(pl.col("sample_id") == sample_id)
    if not s.height:
        return None
    r = s.row(0, named=True)
    assay = str(r.get("assay") or "")
    target = SAMPLE_VIEWS.get(assay)
    if target is None:
        return None
    presets: dict[str, Any] = {}
    if target[0] == "immune_landscape":
        presets["il-color"] = "Shared focus"
    elif assay == "tcr":
        presets["cln-patient"] = r["subject_id"]
    return target[0], target[1], {"subjects": (r["subject_id"],), "day_min": r["day"],
                                  "day_max": r["day"], "label": f"sample {sample_id}"}, presets


def _points(event: Mapping[str, Any] | None) -> list[Any]:
    if not event:
        return []
    sel = event.get("selection", {}) if isinstance(event, dict) else getattr(event, "selection",
                                                                              {})
    pts = sel.get("points", []) if isinstance(sel, dict) else getattr(sel, "points", [])
    return [p.get("customdata") for p in pts if isinstance(p, dict)]


def selected_subject(event: Mapping[str, Any] | None) -> str | None:
    """The patient of the first clicked point of a plotly selection whose traces carry the
    subject_id as (the first item of) `customdata`; None when nothing is selected."""
    for cd in _points(event):
        value = cd[0] if isinstance(cd, list) and cd else cd
        if isinstance(value, str) and value and value != "sample":
            return value
    return None


def selected_sample(event: Mapping[str, Any] | None) -> str | None:
    """The sample_id of the first clicked sample marker (customdata ["sample", id, assay])."""
    for cd in _points(event):
        if isinstance(cd, list) and len(cd) >= 2 and cd[0] == "sample":
            return str(cd[1])
    return None


# ---- the patient profile (one page per patient) ------------------------------------------------
@recipe
def profile_slides(study: Study, *, cohort: Cohort | None = None,
                   params: PatientParams | None = None,
                   subjects: Sequence[str] | None = None) -> list[FigureSpec]:
    """The timeline of every patient (or `subjects`), for a multi-page patient profile: each
    FigureSpec's caption holds the header facts."""
    base = params or PatientParams(subject_id="")
    out = []
    for sid in subjects if subjects is not None else patient_order(study, cohort=cohort):
        p = replace(base, subject_id=sid)
        spec = timeline(study, cohort=cohort, params=p)
        facts = header(study, params=p).data
        caption = " · ".join(f"{r['item']}: {r['value']}" for r in facts.iter_rows(named=True)
                             if r["section"] in ("Response", "Recovery", "Toxicity",
                                                 "CAR-T kinetics"))
        out.append(replace(spec, caption=caption))
    return out
