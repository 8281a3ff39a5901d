"""The Patient view's facts and laboratory listing: Table-1 items, baseline severity, best
response, recovery days (analysis.recovery), CRS/ICANS maxima, NCA kinetics (analysis.kinetics)
and the course; the listing of counts and chemistry with CTCAE v5 grades
(analysis.recovery.ctcae_grades), long and as analyte x day."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import polars as pl

from analysis import kinetics, post_hsct, recovery, response, toxicity
from analysis.cohort import Cohort
from analysis.rules import rules_for
from analysis.vocab import is_blood
from views.patient.base import PatientParams, patient_study
from views.spec import TableSpec, recipe

if TYPE_CHECKING:
    from analysis.cohort import Focus
    from data_loaders import Study

__all__ = ["LAB_ANALYTES", "header", "header_line", "laboratory", "laboratory_wide"]

LAB_ANALYTES = ("WBC", "ANC", "ALC", "AMC", "HGB", "PLT", "RETIC", "CRP", "FERRITIN", "LDH")


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
           focus: Focus | None = None, one: Study | None = None) -> TableSpec:
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


def fact_sections(facts: pl.DataFrame) -> list[tuple[str, list[tuple[str, str]]]]:
    """The header's facts (`header(...).data`) as the page lays them out: each section, in
    order, with its (item, value) pairs."""
    return [(section, [(r["item"], r["value"]) for r in
                       facts.filter(pl.col("section") == section).iter_rows(named=True)])
            for section in facts.get_column("section").unique(maintain_order=True).to_list()]


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
               focus: Focus | None = None) -> TableSpec:
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
    if not params.days.is_everything:
        out = out.filter(params.days.contains("day"))
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

