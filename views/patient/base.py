"""The Patient view's Params and the patient's slice of the study: `PatientParams`, the
one-patient copy of the Study every patient view works on (`patient_study`: every table
filtered to the patient, with its own cache key, so analyses cost the same on a 5- or a
200-patient study) and the order the page steps through."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import polars as pl

from analysis.cohort import Cohort
from analysis.vocab import DayWindow, ResponseCriteria

if TYPE_CHECKING:
    from data_loaders import Study

__all__ = ["PatientParams", "COUNTS", "Criteria", "SAMPLE_VIEWS", "patient_study", "patient_order",
           "neighbours"]

Criteria = ResponseCriteria
COUNTS = ("ANC", "PLT", "HGB")
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


@dataclass(frozen=True)
class PatientParams:
    """What the Patient view draws. `days` limits the x axis and the laboratory listing (an
    open side: the cohort's window, else the whole course); `criteria` is the response rule for the derived responses; `counts` the blood
    counts drawn; `top_clones` how many baseline TCR clones are followed; `lanes` which lanes
    (components.figures.patient.LANES) are drawn, empty for every lane with data; `compact`
    draws the timeline for a slide; `shade` is a day window to highlight (a focus chosen on
    another page that includes this patient; None or every day: no band)."""

    subject_id: str
    criteria: Criteria = "NIH"
    counts: tuple[str, ...] = COUNTS
    top_clones: int = 5
    days: DayWindow = DayWindow()
    lanes: tuple[str, ...] = ()
    compact: bool = False
    shade: DayWindow | None = None


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
    computed them) in study order, else the cohort's patients, else all."""
    ids = study.subject_ids
    if subjects is not None:
        keep = set(subjects)
        return [s for s in ids if s in keep]
    if cohort is not None:
        from views.common import subjects as cohort_subjects

        return cohort_subjects(study, cohort)
    return list(ids)


def neighbours(order: Sequence[str], current: str) -> tuple[str | None, str | None]:
    """(previous, next) patient around `current` in `order` (None at the ends)."""
    if current not in order:
        return None, (order[0] if order else None)
    i = list(order).index(current)
    return (order[i - 1] if i > 0 else None, order[i + 1] if i + 1 < len(order) else None)

