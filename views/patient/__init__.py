"""The Patient view: one patient, every layer of the study on one infusion-aligned time axis.

Recipes (no streamlit) used by pages/patient.py, the patient slide and `cli.py export
--patient-profiles`: each takes the Study, the cohort and a frozen `PatientParams` and returns a
FigureSpec or TableSpec. Split by job:

- base: `PatientParams`, the patient's slice of the study (`patient_study`), the order to
  step through;
- layers: one frame per lane of the timeline;
- figures: the timeline, the slide and the profile pages;
- facts: the patient's facts (header) and the laboratory listing;
- picking: the cohort strip, clicked patients and samples, where a sample opens.
"""

from views.patient.base import (
    COUNTS,
    Criteria,
    PatientParams,
    neighbours,
    patient_order,
    patient_study,
)
from views.patient.facts import (
    LAB_ANALYTES,
    fact_sections,
    header,
    header_line,
    laboratory,
    laboratory_wide,
)
from views.patient.figures import SLIDE_LANES, profile_slides, slide, timeline
from views.patient.layers import CYTOKINES, INFLAMMATION, lanes
from views.patient.picking import (
    SAMPLE_VIEWS,
    cohort_picker,
    sample_view,
    selected_sample,
    selected_subject,
)

__all__ = ["PatientParams", "COUNTS", "Criteria", "SAMPLE_VIEWS", "SLIDE_LANES", "LAB_ANALYTES",
           "CYTOKINES", "INFLAMMATION", "patient_study", "patient_order", "neighbours",
           "lanes", "timeline", "header", "fact_sections", "header_line", "laboratory", "laboratory_wide",
           "cohort_picker", "sample_view", "profile_slides", "slide", "selected_subject",
           "selected_sample"]
