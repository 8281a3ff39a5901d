"""Figures of the clinical course, one module per figure family:

- `swimmer`: swimmer plot (follow-up lanes and events per patient);
- `counts`: blood counts over time, per patient or group median with IQR ribbon, values after
  an HSCT drawn apart;
- `response`: response heatmap (patients x assessment timepoints);
- `survival`: Kaplan-Meier curves with numbers at risk, ORR bars;
- `style`: the event marks and fills they share.

Factories take frames first and column names as keywords and return a plotly Figure with the
"cart" template. `from components.figures.clinical import km_plot` keeps working.
"""

from components.figures.clinical.counts import (
    POST_HSCT_NAME,
    counts_by_group,
    counts_by_patient,
    post_hsct_split,
)
from components.figures.clinical.response import response_heatmap
from components.figures.clinical.style import EVENT_STYLE
from components.figures.clinical.survival import km_plot, orr_plot
from components.figures.clinical.swimmer import swimmer_plot

__all__ = ["swimmer_plot", "post_hsct_split", "POST_HSCT_NAME", "counts_by_patient",
           "counts_by_group", "response_heatmap", "km_plot", "orr_plot", "EVENT_STYLE"]
