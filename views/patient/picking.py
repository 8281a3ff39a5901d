"""Picking a patient and opening a sample from the Patient view: the cohort strip (a click
picks a patient), where a clicked sample opens (its page, the focus and widget presets) and
reading the patient or sample of a clicked point."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import polars as pl

from analysis import response
from analysis.cohort import Cohort
from analysis.vocab import DayWindow
from components.figures.patient import cohort_strip
from views import common
from views.patient.base import SAMPLE_VIEWS, PatientParams, patient_order
from views.spec import FigureSpec, recipe

if TYPE_CHECKING:
    from analysis.cohort import Focus
    from data_loaders import Study

__all__ = ["SAMPLE_VIEWS", "cohort_picker", "sample_view", "selected_subject",
           "selected_sample"]



@recipe
def cohort_picker(study: Study, *, cohort: Cohort | None = None, params: PatientParams,
                  subjects: Sequence[str] | None = None, groups: pl.DataFrame | None = None,
                  focus: Focus | None = None) -> FigureSpec:
    """A strip of the cohort's patients (follow-up, coloured by best response); a click picks
    one (customdata holds the subject_id). `groups` (analysis.cohort.response_groups, as the
    sidebar has them, by default the study's) gives the best responses."""
    order = patient_order(study, cohort=cohort, subjects=subjects)
    pts = study.patients.filter(pl.col("subject_id").is_in(order))
    groups = groups if groups is not None else common.groups(study)
    if "best_response" in groups.columns:
        best = groups.select("subject_id", "best_response")
    elif study.has("measurements"):
        best = response.best_response(study, criteria=params.criteria)
    else:
        best = pts.select("subject_id").with_columns(pl.lit("NE").alias("best_response"))
    end = pl.col("last_contact_day") if "last_contact_day" in pts.columns else pl.lit(None)
    last_day = study.measurements.group_by("subject_id").agg(pl.col("day").max().alias("_m"))
    df = (pts.select("subject_id", end.alias("_end"))
          .join(last_day, on="subject_id", how="left")
          .join(best.select("subject_id", "best_response"), on="subject_id", how="left")
          .select("subject_id", pl.lit(0).alias("start"),
                  pl.coalesce("_end", "_m", pl.lit(0)).cast(pl.Int64).alias("end"),
                  pl.col("best_response").fill_null("NE")))
    fig = cohort_strip(df, selected=params.subject_id,
                       title="Patients (click one to open it)")
    return FigureSpec(key="patient-picker", title="Patients", fig=fig, data=df, params=params)


def sample_view(study: Study, sample_id: str
                ) -> tuple[str, str, dict[str, Any], dict[str, Any]] | None:
    """Where a sample opens: (page stem, label, focus fields: subjects, days (the sample's
    day), label, widget presets of the target page), or None when no page shows that assay.

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
    return target[0], target[1], {"subjects": (r["subject_id"],),
                                  "days": DayWindow(r["day"], r["day"]),
                                  "label": f"sample {sample_id}"}, presets


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

