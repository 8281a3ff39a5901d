"""Figures of one patient, one module per job:

- `timeline`: every layer of the study on one infusion-aligned time axis (stacked lanes
  sharing x); a lane without rows is left out;
- `lanes`: the lane keys and titles and one drawing function per lane;
- `strip`: a clickable strip of the cohort to pick a patient from.

Frames in, `go.Figure` out (no analysis, no data loading): `views.patient` prepares one frame per
lane. Log axes for counts, CAR-T, cytokines and inflammation markers; values below the LLOQ at
LLOQ/2 with an open marker of their own, the LLOQ as a dashed line.
`from components.figures.patient import LANES, patient_timeline` keeps working.
"""

from components.figures.patient.lanes import LANE_TITLES, LANES
from components.figures.patient.strip import cohort_strip
from components.figures.patient.timeline import lanes_shown, patient_timeline

__all__ = ["LANES", "LANE_TITLES", "patient_timeline", "cohort_strip", "lanes_shown"]
