"""The Patient view's figure: the stacked-lane timeline of one patient (every layer on one
infusion-aligned axis), the same as one 16:9 slide, and one page per patient for the profile
PDF (`cli.py export --patient-profiles`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from analysis.cohort import Cohort
from components.figures.patient import lanes_shown, patient_timeline
from views.patient.base import PatientParams, patient_order, patient_study
from views.patient.facts import header, header_line
from views.patient.layers import lanes, long_data, thresholds, x_range
from views.spec import FigureSpec, recipe

if TYPE_CHECKING:
    from analysis.cohort import Focus
    from data_loaders import Study

__all__ = ["SLIDE_LANES", "timeline", "slide", "profile_slides"]

# a slide has 720 px: the course (as lines), counts, support, toxicity, CAR-T and cytokines
SLIDE_LANES = ("course", "counts", "support", "toxicity", "car_qpcr", "cytokines")


@recipe
def timeline(study: Study, *, cohort: Cohort | None = None, params: PatientParams,
             focus: Focus | None = None) -> FigureSpec:
    """The stacked-lane figure of one patient. `params.shade` (a focus from another page
    that includes this patient) shades its day window; `params.compact` draws it for a slide
    (components.figures.patient.patient_timeline)."""
    frames = lanes(study, params=params)
    if params.lanes:
        frames = {k: (v if k.split("_fit")[0] in params.lanes else v.clear())
                  for k, v in frames.items()}
    one = patient_study(study, params.subject_id)
    title = f"{params.subject_id}: {header_line(study, params=params, one=one)}"
    fig = patient_timeline(frames, thresholds=thresholds(params, one), title=title,
                           range_x=x_range(frames, params, cohort), compact=params.compact)
    if params.shade is not None and not params.shade.is_everything:
        lo, hi = params.shade.within(*fig.layout.xaxis.range)
        fig.add_vrect(x0=lo - 0.5, x1=hi + 0.5, fillcolor="#F0E442", opacity=0.25,
                      line={"width": 0}, layer="below")
    shown = lanes_shown(frames)
    return FigureSpec(key=f"patient-{params.subject_id}", title=f"Patient {params.subject_id}",
                      fig=fig, data=long_data(frames, params.subject_id), params=params,
                      caption="Lanes: " + ", ".join(shown))



@recipe
def slide(study: Study, *, cohort: Cohort | None = None, params: PatientParams,
          focus: Focus | None = None) -> FigureSpec:
    """The patient's view as one 16:9 slide: the lanes the page shows (those chosen in
    `params`, else every lane with data), drawn compact (two columns of lanes on one day
    axis, the course as lines, no legends), the header facts as caption."""
    spec = timeline(study, cohort=cohort, params=replace(params, compact=True), focus=focus)
    facts = header(study, params=params).data
    caption = " · ".join(f"{r['item']}: {r['value']}" for r in facts.iter_rows(named=True)
                         if r["section"] in ("Response", "Recovery", "Toxicity"))
    return replace(spec, params=params, caption=caption)



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

